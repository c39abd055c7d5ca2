import Foundation
import NIOCore
import ParleyCore

/// The client's half of JSON lines: requests out, events in. `parley connect` and the tests speak through it.
extension JSONCodec {
    public func encodeHello(
        nick: String, password: String? = nil, resume: [String: Int64] = [:], serverPassword: String? = nil, joinGeneral: Bool = true,
        ref: String? = nil
    ) -> ByteBuffer {
        var json = JSONWriter(type: "hello")
        json.field("version", Int64(Self.version))
        json.field("nick", nick)
        json.field("password", password)
        json.field("server_password", serverPassword)
        json.field("ref", ref)
        if !resume.isEmpty { json.field("resume", integers: resume.sorted { $0.key < $1.key }) }
        if !joinGeneral { json.field("join_general", false) }
        return json.finished()
    }

    /// Encodes a request. `.say` needs its room filled in (JSON has no "current room"); `.help` has no JSON
    /// form and is answered by the client itself, so it encodes to nil (as does a `range` history query, which
    /// only IRC asks).
    public func encode(_ request: Request, ref: String?) -> ByteBuffer? {
        var json: JSONWriter
        switch request {
        case .say(let room, let text, let kind, _):
            json = JSONWriter(type: "send")
            json.field("room", room)
            json.field("text", text)
            if kind != .normal { json.field("kind", kind.rawValue) }
        case .whisper(let nick, let text, let kind, _):
            json = JSONWriter(type: "send")
            json.field("to", nick)
            json.field("text", text)
            if kind != .normal { json.field("kind", kind.rawValue) }
        case .join(let room, let key):
            json = JSONWriter(type: "join")
            json.field("room", room)
            json.field("key", key)
        case .part(let room, let reason):
            json = JSONWriter(type: "part")
            json.field("room", room)
            json.field("reason", reason)
        case .nick(let nick):
            json = JSONWriter(type: "nick")
            json.field("nick", nick)
        case .who(let room):
            json = JSONWriter(type: "who")
            json.field("room", room)
        case .rooms:
            json = JSONWriter(type: "rooms")
        case .topic(let room, let text):
            json = JSONWriter(type: "topic")
            json.field("room", room)
            json.field("text", text)
        case .ping:
            json = JSONWriter(type: "ping")
        case .quit(let reason):
            json = JSONWriter(type: "quit")
            json.field("reason", reason)
        case .away(let text):
            json = JSONWriter(type: "away")
            json.field("text", text)
        case .history(let room, let query, _):
            json = JSONWriter(type: "history")
            json.field("room", room)
            switch query {
            case .latest(let count):
                json.field("limit", Int64(count))
            case .before(let id, let count):
                json.field("before", id)
                json.field("limit", Int64(count))
            case .after(let id, let count):
                json.field("after", id)
                json.field("limit", Int64(count))
            case .range, .around:
                return nil  // IRC's CHATHISTORY only; JSON pages by id with before and after
            }
        case .register(let password):
            json = JSONWriter(type: "register")
            json.field("password", password)
        case .login(let nick, let password):
            json = JSONWriter(type: "login")
            json.field("nick", nick)
            json.field("password", password)
        case .changePassword(let old, let new):
            json = JSONWriter(type: "passwd")
            json.field("old", old)
            json.field("new", new)
        case .moderate(let room, let action):
            json = encode(action)
            json.field("room", room)
        case .whois(let nick):
            json = JSONWriter(type: "whois")
            json.field("nick", nick)
        case .whowas(let nick, let count):
            json = JSONWriter(type: "whowas")
            json.field("nick", nick)
            json.field("limit", count.map(Int64.init))
        case .invite(let nick, let room):
            json = JSONWriter(type: "invite")
            json.field("nick", nick)
            json.field("room", room)
        case .modes(let room):
            json = JSONWriter(type: "modes")
            json.field("room", room)
        case .help, .partAll, .lookup, .invisible, .historyTargets:
            return nil  // IRC's JOIN 0, WHO and MODE +i: CHATHISTORY TARGETS: no JSON form
        }
        json.field("ref", ref)
        return json.finished()
    }

    private func encode(_ action: Moderation) -> JSONWriter {
        var json: JSONWriter
        switch action {
        case .kick(let nick, let reason):
            json = JSONWriter(type: "kick")
            json.field("nick", nick)
            json.field("reason", reason)
        case .ban(let mask, let seconds, let reason), .mute(let mask, let seconds, let reason):
            json = JSONWriter(type: { if case .ban = action { "ban" } else { "mute" } }())
            json.field("mask", mask)
            json.field("duration", seconds.map(Int64.init))
            json.field("reason", reason)
        case .unban(let mask), .unmute(let mask):
            json = JSONWriter(type: { if case .unban = action { "unban" } else { "unmute" } }())
            json.field("mask", mask)
        case .exempt(let mask), .unexempt(let mask):
            json = JSONWriter(type: { if case .exempt = action { "exempt" } else { "unexempt" } }())
            json.field("mask", mask)
        case .restrictions:
            json = JSONWriter(type: "bans")
        case .op(let nick), .deop(let nick):
            json = JSONWriter(type: { if case .op = action { "op" } else { "deop" } }())
            json.field("nick", nick)
        case .topicLock(let locked):
            json = JSONWriter(type: "topic_lock")
            json.field("locked", locked)
        case .key(let key):
            json = JSONWriter(type: "key")
            json.field("key", key)
        case .modes(let on, let off):
            json = JSONWriter(type: "modes")
            json.field("modes", (on.isEmpty ? "" : "+" + on.letters) + (off.isEmpty ? "" : "-" + off.letters))
        case .limit(let limit):
            json = JSONWriter(type: "limit")
            json.field("limit", limit.map(Int64.init))
        case .voice(let nick), .devoice(let nick):
            json = JSONWriter(type: { if case .voice = action { "voice" } else { "devoice" } }())
            json.field("nick", nick)
        }
        return json
    }

    /// Decodes one event line from a server; nil when it is not an event this client knows (later protocol
    /// versions may add types, which a client ignores). An `ack` carries only the id and time the server gave;
    /// its message has an empty text and `.everyone` as target, for the client to fill in from its own send.
    public func decodeEvent(_ line: String) -> ChatEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let type = object["type"] as? String
        else { return nil }
        func string(_ key: String) -> String? { object[key] as? String }
        func int(_ key: String) -> Int64? { (object[key] as? NSNumber)?.int64Value }
        func time() -> Date { string("ts").flatMap(Timestamps.parseISO8601) ?? Date() }
        switch type {
        case "welcome":
            guard let nick = string("nick") else { return nil }
            return .welcome(nick: nick, server: string("server") ?? "")
        case "motd":
            return .motd(lines: (object["lines"] as? [Any] ?? []).compactMap { $0 as? String })
        case "message":
            guard let id = int("id"), let text = string("text") else { return nil }
            let target: ChatMessage.Target =
                if let room = string("room") { .room(room) } else if let to = string("to") { .user(to) } else { .everyone }
            let kind = string("kind").flatMap(ChatMessage.Kind.init(rawValue:)) ?? .normal
            return .message(ChatMessage(id: id, time: time(), from: string("from"), account: string("account"), target: target, kind: kind, text: text))
        case "ack":
            guard let id = int("id") else { return nil }
            return .ack(ref: string("ref"), message: ChatMessage(id: id, time: time(), from: nil, target: .everyone, kind: .normal, text: ""))
        case "joined":
            guard let room = string("room"), let nick = string("nick") else { return nil }
            return .joined(room: room, nick: nick, account: string("account"))
        case "left":
            guard let room = string("room"), let nick = string("nick") else { return nil }
            let cause = string("cause") ?? "lost"
            let text = string("reason") ?? cause
            // A plain part shows as "left", like the server's own text rendering of `.parted(nil)`.
            let reason: LeaveReason = cause == "part" && text == "left" ? .parted(nil) : .received(cause: cause, text: text)
            return .left(room: room, nick: nick, reason: reason)
        case "nick":
            guard let from = string("from"), let to = string("to") else { return nil }
            return .nickChanged(from: from, to: to)
        case "members":
            return .members(room: string("room"), nicks: object["nicks"] as? [String] ?? [], operators: object["operators"] as? [String] ?? [])
        case "rooms":
            let rooms = (object["rooms"] as? [[String: Any]] ?? []).compactMap { room -> RoomSummary? in
                guard let name = room["name"] as? String else { return nil }
                return RoomSummary(name: name, members: (room["members"] as? NSNumber)?.intValue ?? 0, topic: room["topic"] as? String ?? "")
            }
            return .rooms(rooms)
        case "topic":
            guard let room = string("room") else { return nil }
            return .topic(room: room, text: string("text") ?? "", setBy: string("by"), setAt: string("ts").flatMap(Timestamps.parseISO8601))
        case "error":
            let code = string("code").flatMap(ChatError.Code.init(rawValue:)) ?? .badRequest
            return .error(ChatError(code, string("text") ?? code.rawValue), ref: string("ref"))
        case "notice":
            return .notice(string("text") ?? "")
        case "shutdown":
            return .shutdown(reason: string("reason") ?? "server shutting down")
        case "pong":
            return .pong(ref: string("ref"))
        case "history":
            guard let room = string("room") else { return nil }
            let messages = (object["messages"] as? [[String: Any]] ?? []).compactMap { entry -> ChatMessage? in
                guard let data = try? JSONSerialization.data(withJSONObject: entry.merging(["type": "message"]) { $1 }),
                    case .message(let message)? = decodeEvent(String(decoding: data, as: UTF8.self))
                else { return nil }
                return message
            }
            return .history(room: room, messages: messages, ref: string("ref"))
        case "moderation":
            guard let room = string("room"), let action = string("action").flatMap(ModerationNotice.Action.init(rawValue:)) else { return nil }
            return .moderation(
                ModerationNotice(
                    room: room, action: action, target: string("target") ?? "", by: string("by").map(Actor.user), reason: string("reason"),
                    until: string("until").flatMap(Timestamps.parseISO8601)
                )
            )
        case "restrictions":
            guard let room = string("room") else { return nil }
            let list = (object["restrictions"] as? [[String: Any]] ?? []).compactMap { entry -> Restriction? in
                guard let kind = (entry["kind"] as? String).flatMap(Restriction.Kind.init(rawValue:)),
                    let mask = (entry["mask"] as? String).flatMap({ try? Mask(validating: $0) })
                else { return nil }
                return Restriction(
                    kind: kind, mask: mask, setBy: entry["by"] as? String ?? "", reason: entry["reason"] as? String,
                    since: (entry["since"] as? String).flatMap(Timestamps.parseISO8601) ?? Date(),
                    until: (entry["until"] as? String).flatMap(Timestamps.parseISO8601)
                )
            }
            return .restrictions(room: room, list)
        case "away":
            guard let nick = string("nick") else { return nil }
            return .awayChanged(nick: nick, message: string("message"))
        case "whois":
            guard let query = string("nick") else { return nil }
            guard object["online"] as? Bool == true else { return .whois(query: query, nil) }
            let operated = Set(object["operator_of"] as? [String] ?? [])
            let rooms = (object["rooms"] as? [String] ?? []).map { Profile.Room(name: $0, isOperator: operated.contains($0)) }
            let profile = Profile(
                nick: query, username: string("username") ?? query, realName: string("real_name") ?? query, account: string("account"),
                away: string("away"), rooms: rooms, isServerOperator: object["server_operator"] as? Bool ?? false
            )
            return .whois(query: query, profile)
        case "invited":
            guard let room = string("room"), let nick = string("nick"), let by = string("by") else { return nil }
            return .invited(room: room, nick: nick, by: by)
        case "inviting":
            guard let room = string("room"), let nick = string("nick") else { return nil }
            return .inviting(room: room, nick: nick)
        default:
            return nil
        }
    }
}
