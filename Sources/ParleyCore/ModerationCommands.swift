/// The syntax of the moderation commands, shared by users' text mode (where the room defaults to the current
/// one) and the server console (where it must be named): `/ban [#room] MASK [DURATION] [reason]` and so on.
public struct ModerationCommand: Sendable {
    public let name: String
    /// The arguments after the optional `#room`.
    public let arguments: String
    public let summary: String
    let parse: @Sendable (_ arguments: Substring) -> Moderation?

    /// Splits off a leading `#room`, then parses the rest.
    public func parse(_ arguments: Substring) -> (room: String?, action: Moderation)? {
        let (first, rest) = arguments.firstWord
        let (room, remainder) = first.hasPrefix("#") ? (String(first), rest) : (nil, arguments)
        return parse(remainder).map { (room, $0) }
    }
}

public enum ModerationCommands {
    public static let table: [ModerationCommand] = [
        ModerationCommand(name: "kick", arguments: "NICK [reason]", summary: "remove someone from the room") { args in
            let (nick, reason) = args.firstWord
            guard !nick.isEmpty else { return nil }
            return .kick(nick: String(nick), reason: reason.isEmpty ? nil : String(reason))
        },
        ModerationCommand(
            name: "ban", arguments: "NICK|MASK [DURATION] [reason]",
            summary: "keep someone out (MASK: guest*, *@10.0.0.7; DURATION: 30s, 10m, 2h, 7d)"
        ) { args in
            restriction(args).map { .ban(mask: $0.mask, seconds: $0.seconds, reason: $0.reason) }
        },
        ModerationCommand(name: "unban", arguments: "NICK|MASK", summary: "lift a ban") { args in
            single(args).map { .unban(mask: $0) }
        },
        ModerationCommand(name: "bans", arguments: "", summary: "list the room's bans, mutes and ban exceptions") { args in
            args.firstWord.word.isEmpty ? .restrictions : nil
        },
        ModerationCommand(name: "mute", arguments: "NICK|MASK [DURATION] [reason]", summary: "let someone stay but not speak") { args in
            restriction(args).map { .mute(mask: $0.mask, seconds: $0.seconds, reason: $0.reason) }
        },
        ModerationCommand(name: "unmute", arguments: "NICK|MASK", summary: "lift a mute") { args in
            single(args).map { .unmute(mask: $0) }
        },
        ModerationCommand(name: "exempt", arguments: "NICK|MASK", summary: "let someone in despite any ban (a ban exception)") { args in
            single(args).map { .exempt(mask: $0) }
        },
        ModerationCommand(name: "unexempt", arguments: "NICK|MASK", summary: "lift a ban exception") { args in
            single(args).map { .unexempt(mask: $0) }
        },
        ModerationCommand(name: "op", arguments: "NICK", summary: "make someone an operator of the room") { args in
            single(args).map { .op(nick: $0) }
        },
        ModerationCommand(name: "deop", arguments: "NICK", summary: "take operator rights away") { args in
            single(args).map { .deop(nick: $0) }
        },
        ModerationCommand(name: "voice", arguments: "NICK", summary: "let someone speak while the room is moderated (+m)") { args in
            single(args).map { .voice(nick: $0) }
        },
        ModerationCommand(name: "devoice", arguments: "NICK", summary: "take someone's voice away") { args in
            single(args).map { .devoice(nick: $0) }
        },
        ModerationCommand(
            name: "mode", arguments: "+LETTERS|-LETTERS",
            summary: "room modes: i invite only, m moderated, n members only, s secret, t topic lock (e.g. +im-n)"
        ) { args in
            single(args).flatMap(RoomModes.change).map { .modes(on: $0.on, off: $0.off) }
        },
        ModerationCommand(name: "limit", arguments: "N|off", summary: "let at most N people in (off: any number)") { args in
            guard let word = single(args) else { return nil }
            if asciiLowercased(word) == "off" { return .limit(nil) }
            return Int(word).map { .limit($0) }
        },
        ModerationCommand(name: "topiclock", arguments: "on|off", summary: "let only operators change the topic (on), or anyone (off)") { args in
            switch asciiLowercased(String(args.firstWord.word)) {
            case "on": .topicLock(true)
            case "off": .topicLock(false)
            default: nil
            }
        },
        ModerationCommand(name: "key", arguments: "KEY|off", summary: "make joining the room need a key (off: anyone may join)") { args in
            guard let word = single(args) else { return nil }
            return .key(asciiLowercased(word) == "off" ? nil : word)
        },
    ]

    static var kick: ModerationCommand { table.first { $0.name == "kick" }! }

    private static func single(_ args: Substring) -> String? {
        let (word, rest) = args.firstWord
        return word.isEmpty || !rest.isEmpty ? nil : String(word)
    }

    /// `MASK [DURATION] [reason]`: the second word is a duration when it reads as one.
    private static func restriction(_ args: Substring) -> (mask: String, seconds: Int?, reason: String?)? {
        let (mask, rest) = args.firstWord
        guard !mask.isEmpty else { return nil }
        let (second, afterSecond) = rest.firstWord
        if let seconds = Durations.seconds(parsing: second) {
            return (String(mask), seconds, afterSecond.isEmpty ? nil : String(afterSecond))
        }
        return (String(mask), nil, rest.isEmpty ? nil : String(rest))
    }
}
