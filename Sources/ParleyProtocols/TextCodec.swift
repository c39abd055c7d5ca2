import Foundation
import NIOCore
import ParleyCore

/// Plain-text mode: what `nc` and `telnet` users read and type. Every event becomes one or more
/// human-readable lines ending in LF; chat lines carry a local `[HH:MM]` time stamp.
public struct TextCodec: Sendable {
    public init() {}

    /// Decodes a line as UTF-8, replacing invalid bytes with U+FFFD.
    public func string(from line: ByteBuffer) -> String {
        String(decoding: line.readableBytesView, as: UTF8.self)
    }

    /// The lines sent on connect, before the user has a nickname.
    public func greeting(server: String, askingPassword: Bool = false) -> ByteBuffer {
        frame(["*** Welcome to Parley on \(server).", askingPassword ? "*** This server needs a password:" : "*** Choose a nickname:"])
    }

    /// Asks for a nickname, again after a refused one.
    public func nicknamePrompt(after error: ChatError? = nil) -> ByteBuffer {
        frame((error.map { ["!!! \($0.message)"] } ?? []) + ["*** Choose a nickname:"])
    }

    /// Renders `event`; nil when text mode shows nothing for it. `focused` is false when the event belongs to
    /// a room other than the reader's current one, so the room name is shown.
    public func encode(_ event: ChatEvent, focused: Bool = true) -> ByteBuffer? {
        let lines = render(event, focused: focused)
        return lines.isEmpty ? nil : frame(lines)
    }

    /// The lines `encode` would send, without terminators.
    public func render(_ event: ChatEvent, focused: Bool) -> [String] {
        switch event {
        case .welcome(let nick, _, _, _, _):
            return ["*** Hello \(nick)! Type /help for the commands; anything else you type goes to your current room."]
        case .motd(let lines):
            return lines.map { "*** " + $0 }
        case .message(let message) where message.kind == .tags, .ack(_, let message) where message.kind == .tags:
            return []  // tags alone (IRC's TAGMSG) are nothing to read
        case .message(let message), .announcement(let message, _):
            let stamp = "[\(Timestamps.localClock(message.time))] "
            switch message.target {
            case .room(let room):
                return [stamp + (focused ? "" : "\(room) ") + body(of: message)]
            case .user:
                return [stamp + "-> (private) " + body(of: message)]
            case .everyone:
                return [stamp + body(of: message)]
            }
        case .ack(_, let message):
            guard case .user(let recipient) = message.target else { return [] }
            let text = message.kind == .action ? "* \(message.from ?? "") \(message.text)" : message.text
            return ["[\(Timestamps.localClock(message.time))] <- (private to \(recipient)) \(text)"]
        case .joined(let room, let nick, _, _):
            return ["*** \(nick) joined \(room)"]
        case .left(let room, let nick, let reason):
            if case .parted(nil) = reason { return ["*** \(nick) left \(room)"] }
            return ["*** \(nick) left \(room) (\(reason.text))"]
        case .nickChanged(let old, let new):
            return ["*** \(old) is now known as \(new)"]
        case .members(let room, let nicks, let operators, let voiced, _, _):
            let names = ChatEvent.marked(nicks, operators: operators, voiced: voiced)
            return ["*** \(room.map { "In \($0)" } ?? "Online") (\(nicks.count)): \(names.joined(separator: ", "))"]
        case .rooms(let rooms):
            return ["*** Rooms (\(rooms.count)):"]
                + rooms.map { room in
                    let members = room.members == 1 ? "1 member" : "\(room.members) members"
                    return "***   \(room.name) (\(members))" + (room.topic.isEmpty ? "" : ": \(room.topic)")
                }
        case .topicChanged(let room, let text, let by, _, _):
            return render(.topic(room: room, text: text, setBy: by.description), focused: focused)
        case .topic(let room, let text, let setBy, let setAt):
            if text.isEmpty { return ["*** \(room) has no topic. Set one with /topic \(room) text"] }
            let when = setAt.map { " on \(Timestamps.localDateAndClock($0))" } ?? ""
            return ["*** Topic of \(room): \(text)" + (setBy.map { " (set by \($0)\(when))" } ?? "")]
        case .error(let error, _):
            return ["!!! \(error.message)"]
        case .notice(let text):
            return ["*** \(text)"]
        case .help(let commands):
            let width = commands.map(\.usage.count).max() ?? 0
            return ["*** Commands:"]
                + commands.map { command in
                    let padding = String(repeating: " ", count: width - command.usage.count)
                    let aliases = command.aliases.isEmpty ? "" : " (also \(command.aliases.joined(separator: ", ")))"
                    return "***   \(command.usage)\(padding)  \(command.summary)\(aliases)"
                }
                + ["*** Anything else you type is sent to your current room; start it with // to send a leading /."]
        case .shutdown(let reason):
            return ["*** The server is shutting down" + (reason.map { " (\($0))" } ?? "") + ". Goodbye!"]
        case .currentRoom(let room?):
            return ["*** Your current room is now \(room)."]
        case .currentRoom(nil):
            return ["*** You are in no room now. Type /join #room to enter one."]
        case .pong:
            return ["*** pong"]
        case .historyTargets:
            return []  // asked for on IRC only (CHATHISTORY TARGETS)
        case .history(let room, var messages, _):
            messages.removeAll { $0.kind == .tags }  // reactions and the like: nothing to read
            guard !messages.isEmpty else { return [] }
            let count = messages.count == 1 ? "1 message" : "\(messages.count) messages"
            return ["*** History of \(room), \(count):"]
                + messages.map { "[\(Timestamps.localDateAndClock($0.time))] " + body(of: $0) }
                + ["*** End of history."]
        case .moderation(let notice):
            return ["*** " + notice.sentence(time: Timestamps.localDateAndClock)]
        case .restrictions(let room, let list, _):
            guard !list.isEmpty else { return ["*** Nobody is banned or muted in \(room)."] }
            return ["*** Bans and mutes in \(room) (\(list.count)):"] + list.map { "***   " + $0.summary(time: Timestamps.localDateAndClock) }
        case .awayChanged(let nick, let message?), .isAway(let nick, let message):
            return ["*** \(nick) is away: \(message)"]
        case .awayChanged(let nick, nil):
            return ["*** \(nick) is back."]
        case .whois(let query, nil):
            return ["!!! Nobody called \(query) is online."]
        case .whois(_, let profile?):
            return profile.summary.map { "*** " + $0 }
        case .whowas(let query, let profiles):
            guard !profiles.isEmpty else { return ["!!! Nobody went by \(query) lately."] }
            return profiles.map { "*** \($0.nick) was here" + ($0.realName != $0.nick ? " (\($0.realName))" : "") + ($0.account.map { ", logged in as \($0)" } ?? "") }
        case .whoList(let query, let profiles, _):
            return ["*** Who \(query) (\(profiles.count)): \(profiles.map(\.nick).joined(separator: ", "))"]
        case .invited(let room, _, let by, _):
            return ["*** \(by) invites you to \(room): /join \(room)"]
        case .inviting(let room, let nick):
            return ["*** You invited \(nick) to \(room)."]
        case .modes(let room, let modes, let key, let limit, _):
            let described = modes.meanings + (key.map { ["key \($0)"] } ?? []) + (limit.map { ["at most \($0) members"] } ?? [])
            return ["*** Modes of \(room): +\(modes.letters)" + (described.isEmpty ? "" : " (\(described.joined(separator: ", ")))")]
        case .invisible(let on):
            return [on ? "*** You are invisible to searches by mask." : "*** You are visible to searches by mask."]
        }
    }


    private func body(of message: ChatMessage) -> String {
        switch (message.kind, message.from) {
        case (.topic, let from): "*** \(from ?? Moderator.consoleName) set the topic: \(message.text)"
        case (.action, let from?): "* \(from) \(message.text)"
        case (_, let from?) where message.kind != .notice: "<\(from)> \(message.text)"
        case (_, let from?): "-\(from)- \(message.text)"
        case (_, nil): "*** server notice: \(message.text)"
        }
    }

    private func frame(_ lines: [String]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for line in lines {
            buffer.writeString(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return buffer
    }
}
