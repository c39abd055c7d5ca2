import Foundation
import NIOCore
import ParleyCore

/// What a JSON-lines client can say: `hello` to register, then requests.
public enum ClientMessage: Sendable, Equatable {
    /// `resume` maps rooms to the last message id the client saw there (a client reconnecting).
    case hello(version: Int, nick: String, password: String?, resume: [String: Int64], serverPassword: String? = nil, joinGeneral: Bool = true)
    case request(Request)
}

/// JSON-lines mode: one JSON object per line each way, for `parley connect` and bots (docs/PROTOCOL.md).
public struct JSONCodec: Sendable {
    /// The protocol version this server speaks; `hello` must name it.
    public static let version = 1
    /// The most messages one `history` request returns.
    public static let maximumHistoryPage = 500

    public init() {}

    /// True when a first line opens a JSON object, which puts the connection in JSON mode for its life.
    public static func looksLikeJSON(_ line: ByteBuffer) -> Bool {
        line.readableBytesView.first(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) == UInt8(ascii: "{")
    }

    // MARK: - Requests

    private struct Wire: Decodable {
        var type: String
        var ref: String?
        var version: Int?
        var nick: String?
        var room: String?
        var to: String?
        var text: String?
        var kind: String?
        var reason: String?
        var before: Int64?
        var after: Int64?
        var limit: Int?
        var resume: [String: Int64]?
        var password: String?
        /// Named as on the wire, like every field here.
        var server_password: String?
        var join_general: Bool?
        var old: String?
        var new: String?
        var mask: String?
        var duration: Int?
        var locked: Bool?
        var key: String?
        var modes: String?
    }

    /// Decodes one request line. The `ref` is returned even when the rest is refused, so the error can carry it.
    public func decode(_ line: ByteBuffer) -> (message: Result<ClientMessage, ChatError>, ref: String?) {
        // Invalid UTF-8 becomes U+FFFD first, as in text mode, so one bad byte cannot make a line unreadable.
        let data = Data(String(decoding: line.readableBytesView, as: UTF8.self).utf8)
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: data)
        } catch {
            return (.failure(ChatError(.badRequest, Self.describe(error))), nil)
        }
        // Parsers disagree on which of two values a key means; Parley takes neither (JSONDuplicateKeys).
        if let problem = JSONDuplicateKeys.problem(in: data) {
            // A ref given twice is no ref.
            return (.failure(ChatError(.badRequest, problem)), problem.contains(#""ref""#) ? nil : wire.ref)
        }
        return (Result { () throws(ChatError) in try Self.message(from: wire) }, wire.ref)
    }

    private static func message(from wire: Wire) throws(ChatError) -> ClientMessage {
        func required(_ value: String?, _ name: String) throws(ChatError) -> String {
            guard let value else { throw ChatError(.badRequest, "\"\(wire.type)\" needs the field \"\(name)\".") }
            return value
        }
        switch wire.type {
        case "hello":
            guard let version = wire.version else { throw ChatError(.badRequest, "\"hello\" needs the field \"version\".") }
            return .hello(
                version: version, nick: try required(wire.nick, "nick"), password: wire.password, resume: wire.resume ?? [:],
                serverPassword: wire.server_password, joinGeneral: wire.join_general ?? true
            )
        case "send":
            let kind = try messageKind(wire.kind)
            let text = try required(wire.text, "text")
            switch (wire.room, wire.to) {
            case (let room?, nil): return .request(.say(room: room, text: text, kind: kind))
            case (nil, let nick?): return .request(.whisper(to: nick, text: text, kind: kind))
            default: throw ChatError(.badRequest, "\"send\" needs exactly one of \"room\" and \"to\".")
            }
        case "join": return .request(.join(try required(wire.room, "room"), key: wire.key))
        case "part": return .request(.part(room: try required(wire.room, "room"), reason: wire.reason))
        case "nick": return .request(.nick(try required(wire.nick, "nick")))
        case "who": return .request(.who(room: wire.room))
        case "rooms": return .request(.rooms(matching: []))
        case "topic": return .request(.topic(room: try required(wire.room, "room"), text: wire.text))
        case "ping": return .request(.ping)
        case "register": return .request(.register(password: try required(wire.password, "password")))
        case "login": return .request(.login(nick: try required(wire.nick, "nick"), password: try required(wire.password, "password")))
        case "passwd": return .request(.changePassword(old: try required(wire.old, "old"), new: try required(wire.new, "new")))
        case "history":
            let count = min(max(wire.limit ?? 50, 1), Self.maximumHistoryPage)
            let query: HistoryQuery =
                switch (wire.before, wire.after) {
                case (let before?, nil): .before(before, count: count)
                case (nil, let after?): .after(after, count: count)
                case (nil, nil): .latest(count)
                default: throw ChatError(.badRequest, "\"history\" takes \"before\" or \"after\", not both.")
                }
            return .request(.history(room: try required(wire.room, "room"), query))
        case "quit": return .request(.quit(reason: wire.reason))
        case "away": return .request(.away(wire.text))
        case "whois": return .request(.whois(try required(wire.nick, "nick")))
        case "whowas": return .request(.whowas(try required(wire.nick, "nick"), count: wire.limit))
        case "invite": return .request(.invite(nick: try required(wire.nick, "nick"), room: try required(wire.room, "room")))
        case "modes" where wire.modes == nil: return .request(.modes(room: try required(wire.room, "room")))
        case "kick", "ban", "unban", "bans", "mute", "unmute", "op", "deop", "topic_lock", "key", "modes", "voice", "devoice", "limit", "exempt",
            "unexempt":
            return .request(.moderate(room: try required(wire.room, "room"), try moderation(from: wire)))
        default:
            throw ChatError(
                .unknownType,
                "Unknown request type \"\(wire.type)\". Known: hello, send, join, part, nick, who, rooms, topic, history, register, login, passwd, ping, away, whois, whowas, invite, quit, kick, ban, unban, bans, mute, unmute, op, deop, voice, devoice, limit, topic_lock, key, modes."
            )
        }
    }

    private static func moderation(from wire: Wire) throws(ChatError) -> Moderation {
        func required<Value>(_ value: Value?, _ name: String) throws(ChatError) -> Value {
            guard let value else { throw ChatError(.badRequest, "\"\(wire.type)\" needs the field \"\(name)\".") }
            return value
        }
        if let duration = wire.duration, !(1...Durations.maximumSeconds).contains(duration) {
            throw ChatError(.badRequest, "\"duration\" is a number of seconds from 1 to \(Durations.maximumSeconds).")
        }
        // A ban or mute names a mask; a plain nick is a mask too, so "nick" is accepted in its place.
        let mask = wire.mask ?? wire.nick
        switch wire.type {
        case "kick": return .kick(nick: try required(wire.nick, "nick"), reason: wire.reason)
        case "ban": return .ban(mask: try required(mask, "mask"), seconds: wire.duration, reason: wire.reason)
        case "unban": return .unban(mask: try required(mask, "mask"))
        case "mute": return .mute(mask: try required(mask, "mask"), seconds: wire.duration, reason: wire.reason)
        case "unmute": return .unmute(mask: try required(mask, "mask"))
        case "exempt": return .exempt(mask: try required(mask, "mask"))
        case "unexempt": return .unexempt(mask: try required(mask, "mask"))
        case "op": return .op(nick: try required(wire.nick, "nick"))
        case "deop": return .deop(nick: try required(wire.nick, "nick"))
        case "topic_lock": return .topicLock(try required(wire.locked, "locked"))
        case "key": return .key(wire.key)
        case "voice": return .voice(nick: try required(wire.nick, "nick"))
        case "limit": return .limit(wire.limit)
        case "devoice": return .devoice(nick: try required(wire.nick, "nick"))
        case "modes":
            guard let change = RoomModes.change(try required(wire.modes, "modes")) else {
                throw ChatError(.badRequest, "\"modes\" is a change like \"+i-n\" of the letters i, m, n, s and t.")
            }
            return .modes(on: change.on, off: change.off)
        default: return .restrictions
        }
    }

    private static func messageKind(_ raw: String?) throws(ChatError) -> ChatMessage.Kind {
        switch raw {
        case nil, "normal": .normal
        case "action": .action
        default: throw ChatError(.badRequest, "\"kind\" is \"normal\" or \"action\".")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            "The request needs the field \"\(key.stringValue)\"."
        case DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty:
            "The field \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type."
        default:
            "The line is not a JSON object."
        }
    }

    // MARK: - Events

    public func encode(_ event: ChatEvent) -> ByteBuffer {
        switch event {
        case .welcome(let nick, let server, _, _, _):
            var json = JSONWriter(type: "welcome")
            json.field("version", Int64(Self.version))
            json.field("server", server)
            json.field("nick", nick)
            return json.finished()
        case .motd(let lines):
            var json = JSONWriter(type: "motd")
            json.field("lines", lines)
            return json.finished()
        case .message(let message), .announcement(let message, _):
            var json = JSONWriter(type: "message")
            write(message, into: &json)
            return json.finished()
        case .ack(let ref, let message):
            var json = JSONWriter(type: "ack")
            json.field("ref", ref)
            json.field("id", message.id)
            json.field("ts", Timestamps.iso8601(message.time))
            return json.finished()
        case .joined(let room, let nick, let account, _):
            var json = JSONWriter(type: "joined")
            json.field("room", room)
            json.field("nick", nick)
            json.field("account", account)
            return json.finished()
        case .left(let room, let nick, let reason):
            var json = JSONWriter(type: "left")
            json.field("room", room)
            json.field("nick", nick)
            json.field("cause", reason.cause)
            json.field("reason", reason.text)
            return json.finished()
        case .nickChanged(let old, let new):
            var json = JSONWriter(type: "nick")
            json.field("from", old)
            json.field("to", new)
            return json.finished()
        case .members(let room, let nicks, let operators, let voiced, let secret, let ref):
            var json = JSONWriter(type: "members")
            json.field("room", room)
            json.field("ref", ref)
            json.field("nicks", nicks)
            if !operators.isEmpty { json.field("operators", operators) }
            if !voiced.isEmpty { json.field("voiced", voiced) }
            if secret { json.field("secret", true) }
            return json.finished()
        case .rooms(let rooms):
            var json = JSONWriter(type: "rooms")
            json.field("rooms", objects: rooms) { json, room in
                json.field("name", room.name)
                json.field("members", Int64(room.members))
                json.field("topic", room.topic)
            }
            return json.finished()
        case .topicChanged(let room, let text, let by, let at, _):
            return encode(.topic(room: room, text: text, setBy: by.description, setAt: at))
        case .topic(let room, let text, let setBy, let setAt):
            var json = JSONWriter(type: "topic")
            json.field("room", room)
            json.field("text", text)
            json.field("by", setBy)
            json.field("ts", setAt.map(Timestamps.iso8601))
            return json.finished()
        case .error(let error, let ref):
            return encodeError(error, ref: ref)
        case .notice(let text):
            var json = JSONWriter(type: "notice")
            json.field("text", text)
            return json.finished()
        case .help(let commands):
            var json = JSONWriter(type: "help")
            json.field("commands", objects: commands) { json, command in
                json.field("usage", command.usage)
                json.field("summary", command.summary)
            }
            return json.finished()
        case .currentRoom(let room):
            var json = JSONWriter(type: "current_room")
            json.field("room", room)
            return json.finished()
        case .shutdown(let reason):
            var json = JSONWriter(type: "shutdown")
            json.field("reason", reason ?? "server shutting down")
            return json.finished()
        case .pong(let ref):
            var json = JSONWriter(type: "pong")
            json.field("ref", ref)
            return json.finished()
        case .historyTargets(let targets, let ref):
            // Asked for on IRC only (CHATHISTORY TARGETS) so far; written for completeness.
            var json = JSONWriter(type: "history_targets")
            json.field("ref", ref)
            json.field("targets", objects: targets) { json, target in
                json.field("name", target.name)
                json.field("latest", Timestamps.iso8601(target.latest))
            }
            return json.finished()
        case .history(let room, var messages, let ref):
            messages.removeAll { $0.kind == .tags }  // tags alone have no JSON form yet (see JSONRenderer)
            var json = JSONWriter(type: "history")
            json.field("room", room)
            json.field("ref", ref)
            json.field("messages", objects: messages) { json, message in self.write(message, into: &json) }
            return json.finished()
        case .moderation(let notice):
            var json = JSONWriter(type: "moderation")
            json.field("room", notice.room)
            json.field("action", notice.action.rawValue)
            json.field("target", notice.target)
            json.field("by", notice.by?.description)
            json.field("reason", notice.reason)
            json.field("until", notice.until.map(Timestamps.iso8601))
            return json.finished()
        case .restrictions(let room, let list, let ref):
            var json = JSONWriter(type: "restrictions")
            json.field("room", room)
            json.field("ref", ref)
            json.field("restrictions", objects: list) { json, restriction in
                json.field("kind", restriction.kind.rawValue)
                json.field("mask", restriction.mask.text)
                json.field("by", restriction.setBy)
                json.field("reason", restriction.reason)
                json.field("since", Timestamps.iso8601(restriction.since))
                json.field("until", restriction.until.map(Timestamps.iso8601))
            }
            return json.finished()
        case .awayChanged(let nick, let message):
            var json = JSONWriter(type: "away")
            json.field("nick", nick)
            json.field("message", message)
            return json.finished()
        case .isAway(let nick, let message):
            return encode(.awayChanged(nick: nick, message: message))
        case .whois(let query, let profile):
            var json = JSONWriter(type: "whois")
            json.field("nick", query)
            if let profile { write(profile, into: &json) } else { json.field("online", false) }
            return json.finished()
        case .whowas(let query, let profiles):
            var json = JSONWriter(type: "whowas")
            json.field("nick", query)
            json.field("users", objects: profiles) { json, profile in write(profile, into: &json) }
            return json.finished()
        case .whoList(let query, let profiles, let ref):
            var json = JSONWriter(type: "who_list")
            json.field("ref", ref)
            json.field("mask", query)
            json.field("users", objects: profiles) { json, profile in write(profile, into: &json) }
            return json.finished()
        case .invited(let room, let nick, let by, _):
            var json = JSONWriter(type: "invited")
            json.field("room", room)
            json.field("nick", nick)
            json.field("by", by)
            return json.finished()
        case .inviting(let room, let nick):
            var json = JSONWriter(type: "inviting")
            json.field("room", room)
            json.field("nick", nick)
            return json.finished()
        case .modes(let room, let modes, let key, let limit, let created):
            var json = JSONWriter(type: "modes")
            json.field("room", room)
            json.field("modes", modes.letters)
            json.field("key", key)
            json.field("limit", limit.map(Int64.init))
            json.field("created", Timestamps.iso8601(created))
            return json.finished()
        case .invisible(let on):
            var json = JSONWriter(type: "invisible")
            json.field("on", on)
            return json.finished()
        }
    }

    private func write(_ profile: Profile, into json: inout JSONWriter) {
        json.field("online", true)
        json.field("nick", profile.nick)
        json.field("username", profile.username)
        json.field("real_name", profile.realName)
        json.field("account", profile.account)
        json.field("away", profile.away)
        json.field("rooms", profile.rooms.map(\.name))
        let operated = profile.rooms.filter(\.isOperator).map(\.name)
        if !operated.isEmpty { json.field("operator_of", operated) }
        if profile.isServerOperator { json.field("server_operator", true) }
    }

    public func encodeError(_ error: ChatError, ref: String?) -> ByteBuffer {
        var json = JSONWriter(type: "error")
        json.field("code", error.code.rawValue)
        json.field("text", error.message)
        json.field("ref", ref)
        return json.finished()
    }

    private func write(_ message: ChatMessage, into json: inout JSONWriter) {
        json.field("id", message.id)
        json.field("ts", Timestamps.iso8601(message.time))
        switch message.target {
        case .room(let room): json.field("room", room)
        case .user(let nick): json.field("to", nick)
        case .everyone: break
        }
        json.field("from", message.from)
        json.field("account", message.account)
        json.field("kind", message.kind.rawValue)
        json.field("text", message.text)
    }
}
