/// One row of the command table: what a user types, what it means, and how its arguments become a request.
public struct TextCommand: Sendable {
    public let name: String
    public let aliases: [String]
    /// The argument part of the usage line, e.g. `NICK text`.
    public let arguments: String
    public let summary: String
    /// Turns the arguments into a request; nil when they do not fit the usage.
    let parse: @Sendable (_ arguments: Substring) -> Request?

    public var usage: String { arguments.isEmpty ? "/\(name)" : "/\(name) \(arguments)" }
    public var help: CommandHelp { CommandHelp(usage: usage, summary: summary, aliases: aliases.map { "/\($0)" }) }
}

/// The commands of plain-text mode, as one table: `/help` is generated from it, and lookup is by name or alias.
public enum TextCommands {
    public static let table: [TextCommand] = [
        TextCommand(name: "help", aliases: ["?"], arguments: "", summary: "list the commands") { _ in .help },
        TextCommand(name: "nick", aliases: [], arguments: "NAME", summary: "change your nickname") { args in
            let (name, rest) = args.firstWord
            guard !name.isEmpty, rest.isEmpty else { return nil }
            return .nick(String(name))
        },
        TextCommand(
            name: "who", aliases: ["online", "names"], arguments: "[#room]",
            summary: "who is in a room, or everyone online"
        ) { args in
            let (room, _) = args.firstWord
            return .who(room: room.isEmpty ? nil : String(room))
        },
        TextCommand(name: "whois", aliases: [], arguments: "NICK", summary: "who someone is: rooms, account, away") { args in
            let (nick, rest) = args.firstWord
            guard !nick.isEmpty, rest.isEmpty else { return nil }
            return .whois(String(nick))
        },
        TextCommand(name: "whowas", aliases: [], arguments: "NICK", summary: "who went by a nick lately (* and ? match)") { args in
            let (nick, rest) = args.firstWord
            guard !nick.isEmpty, rest.isEmpty else { return nil }
            return .whowas(String(nick), count: nil)
        },
        TextCommand(name: "invite", aliases: [], arguments: "NICK #room", summary: "invite someone to a room you are in") { args in
            let (nick, rest) = args.firstWord
            let (room, extra) = rest.firstWord
            guard !nick.isEmpty, !room.isEmpty, extra.isEmpty else { return nil }
            return .invite(nick: String(nick), room: String(room))
        },
        TextCommand(
            name: "msg", aliases: ["whisper", "w", "query"], arguments: "NICK text",
            summary: "send a private message"
        ) { args in
            let (nick, text) = args.firstWord
            guard !nick.isEmpty, !text.isEmpty else { return nil }
            return .whisper(to: String(nick), text: String(text), kind: .normal)
        },
        TextCommand(name: "me", aliases: [], arguments: "action", summary: "describe an action: /me waves") { args in
            guard !args.isEmpty else { return nil }
            return .say(room: nil, text: String(args), kind: .action)
        },
        TextCommand(
            name: "join", aliases: ["j"], arguments: "#room [key]",
            summary: "join (or create) a room; it becomes your current room"
        ) { args in
            let (room, rest) = args.firstWord
            let (key, more) = rest.firstWord
            // `/join #a #b` means two rooms, not a key: refused with the usage line.
            guard !room.isEmpty, more.isEmpty, !key.hasPrefix("#") else { return nil }
            return .join(String(room), key: key.isEmpty ? nil : String(key))
        },
        TextCommand(
            name: "part", aliases: ["leave"], arguments: "[#room] [reason]",
            summary: "leave a room (default: the current one)"
        ) { args in
            let (first, rest) = args.firstWord
            if first.hasPrefix("#") {
                return .part(room: String(first), reason: rest.isEmpty ? nil : String(rest))
            }
            return .part(room: nil, reason: args.isEmpty ? nil : String(args))
        },
        TextCommand(name: "rooms", aliases: ["list"], arguments: "", summary: "list rooms with members and topics") {
            _ in .rooms(matching: [])
        },
        TextCommand(
            name: "topic", aliases: [], arguments: "[#room] [text]",
            summary: "show or set the topic of a room (default: the current one)"
        ) { args in
            let (first, rest) = args.firstWord
            if first.hasPrefix("#") {
                return .topic(room: String(first), text: rest.isEmpty ? nil : String(rest))
            }
            return .topic(room: nil, text: args.isEmpty ? nil : String(args))
        },
        TextCommand(
            name: "history", aliases: [], arguments: "[#ROOM|NICK] [N]",
            summary: "show the last N messages (default 50) of the current room, a room, or your private talk with NICK"
        ) { args in
            let (first, rest) = args.firstWord
            let (target, count) = Int(first) == nil && !first.isEmpty ? (String(first), rest) : (nil, args)
            guard count.isEmpty || Int(count) != nil else { return nil }
            return .history(room: target, .latest(min(500, max(1, Int(count) ?? 50))))
        },
        TextCommand(name: "register", aliases: [], arguments: "PASSWORD", summary: "reserve your nickname with a password") { args in
            let (password, rest) = args.firstWord
            guard !password.isEmpty, rest.isEmpty else { return nil }
            return .register(password: String(password))
        },
        TextCommand(name: "login", aliases: ["identify"], arguments: "NICK PASSWORD", summary: "log in to your registered nickname") { args in
            let (nick, password) = args.firstWord
            guard !nick.isEmpty, !password.isEmpty, !password.contains(" ") else { return nil }
            return .login(nick: String(nick), password: String(password))
        },
        TextCommand(name: "passwd", aliases: [], arguments: "OLD NEW", summary: "change your password") { args in
            let (old, new) = args.firstWord
            guard !old.isEmpty, !new.isEmpty, !new.contains(" ") else { return nil }
            return .changePassword(old: String(old), new: String(new))
        },
        TextCommand(name: "away", aliases: [], arguments: "[message]", summary: "mark yourself away (no message: back)") { args in
            .away(args.isEmpty ? nil : String(args))
        },
        TextCommand(name: "back", aliases: [], arguments: "", summary: "you are back (no longer away)") { _ in .away(nil) },
        TextCommand(name: "quit", aliases: ["exit", "bye"], arguments: "[reason]", summary: "leave the chat") { args in
            .quit(reason: args.isEmpty ? nil : String(args))
        },
    ]
    // Room operators' commands, after the everyday ones (and so last in /help).
    + ModerationCommands.table.map { command in
        let arguments = command.arguments.isEmpty ? "[#room]" : "[#room] \(command.arguments)"
        return TextCommand(name: command.name, aliases: [], arguments: arguments, summary: command.summary) { args in
            command.parse(args).map { .moderate(room: $0.room, $0.action) }
        }
    }

    private static let index: [String: TextCommand] = {
        var index: [String: TextCommand] = [:]
        for command in table {
            for name in [command.name] + command.aliases { index[name] = command }
        }
        return index
    }()

    /// Interprets one line typed by a registered text-mode user: a `/command`, or a message to the current
    /// room (`//text` sends text that starts with a slash). Returns nil for a blank line.
    /// Spaces before a `/` do not make a command a message: " /login alice pw" must never reach a room.
    public static func request(forLine raw: String) throws(ChatError) -> Request? {
        guard !Sanitizer.isBlank(raw) else { return nil }
        let stripped = raw.drop(while: { $0 == " " })
        let line = stripped.hasPrefix("/") ? String(stripped) : raw
        guard line.hasPrefix("/"), !line.hasPrefix("//") else {
            let text = line.hasPrefix("//") ? String(line.dropFirst()) : line
            return .say(room: nil, text: text, kind: .normal)
        }
        let (word, arguments) = line.dropFirst().firstWord
        guard let command = index[asciiLowercased(String(word))] else {
            throw ChatError(.unknownCommand, "Unknown command /\(word). Type /help for the list of commands.")
        }
        guard let request = command.parse(arguments) else {
            throw ChatError(.usage, "Usage: \(command.usage)")
        }
        return request
    }
}

extension Substring {
    /// The first space-separated word and the rest, both without surrounding spaces.
    var firstWord: (word: Substring, rest: Substring) {
        var trimmed = self.drop(while: { $0 == " " })
        while trimmed.last == " " { trimmed = trimmed.dropLast() }
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed, "") }
        return (trimmed[..<space], trimmed[space...].drop(while: { $0 == " " }))
    }
}
