/// What the operator at the server's terminal can do.
public enum ConsoleAction: Sendable, Equatable {
    /// A server notice to everyone online (any line that is not a command).
    case announce(String)
    case say(room: String, text: String)
    /// Disconnects a user from the server.
    case kick(nick: String, reason: String?)
    /// A room operator's action, with the console's powers.
    case moderate(room: String, Moderation)
    /// Shows (`text` nil) or sets a room's topic.
    case topic(room: String, text: String?)
    case who(room: String?)
    case rooms
    case help
    case shutdown
}

/// One row of the console's command table.
public struct ConsoleCommand: Sendable {
    public let name: String
    public let aliases: [String]
    public let arguments: String
    public let summary: String
    let parse: @Sendable (_ arguments: Substring) -> ConsoleAction?

    public var usage: String { arguments.isEmpty ? "/\(name)" : "/\(name) \(arguments)" }
}

/// The server console's commands, as one table.
public enum ConsoleCommands {
    public static let table: [ConsoleCommand] = [
        ConsoleCommand(name: "help", aliases: ["?"], arguments: "", summary: "list the console commands") { args in
            args.isEmpty ? .help : nil
        },
        ConsoleCommand(name: "announce", aliases: ["wall"], arguments: "text", summary: "a server notice to everyone (what a line without a slash is)") {
            args in args.isEmpty ? nil : .announce(String(args))
        },
        ConsoleCommand(name: "say", aliases: [], arguments: "#room text", summary: "a server notice to one room") { args in
            let (room, text) = args.firstWord
            guard room.hasPrefix("#"), !text.isEmpty else { return nil }
            return .say(room: String(room), text: String(text))
        },
        ConsoleCommand(name: "topic", aliases: [], arguments: "#room [text]", summary: "show or set a room's topic (no lock holds the console)") { args in
            let (room, text) = args.firstWord
            guard room.hasPrefix("#") else { return nil }
            return .topic(room: String(room), text: text.isEmpty ? nil : String(text))
        },
        ConsoleCommand(
            name: "kick", aliases: [], arguments: "[#room] NICK [reason]",
            summary: "remove a user from a room, or (without #room) disconnect them"
        ) { args in
            let (first, rest) = args.firstWord
            if first.hasPrefix("#") {
                return ModerationCommands.kick.parse(args).map { .moderate(room: $0.room!, $0.action) }
            }
            guard !first.isEmpty else { return nil }
            return .kick(nick: String(first), reason: rest.isEmpty ? nil : String(rest))
        },
        ConsoleCommand(
            name: "who", aliases: ["online", "names"], arguments: "[#room]",
            summary: "who is in a room, or everyone online"
        ) { args in
            let (room, rest) = args.firstWord
            guard rest.isEmpty, room.isEmpty || room.hasPrefix("#") else { return nil }
            return .who(room: room.isEmpty ? nil : String(room))
        },
        ConsoleCommand(name: "rooms", aliases: ["list"], arguments: "", summary: "list rooms") { args in args.isEmpty ? .rooms : nil },
        ConsoleCommand(name: "shutdown", aliases: ["exit", "quit"], arguments: "", summary: "stop the server gracefully") { args in
            args.isEmpty ? .shutdown : nil
        },
    ]
    // The room operators' commands, with the room named (the console has no current room).
    + ModerationCommands.table.filter { $0.name != "kick" }.map { command in
        let arguments = command.arguments.isEmpty ? "#room" : "#room \(command.arguments)"
        return ConsoleCommand(name: command.name, aliases: [], arguments: arguments, summary: command.summary) { args in
            guard let (room, action) = command.parse(args), let room else { return nil }
            return .moderate(room: room, action)
        }
    }

    private static let index: [String: ConsoleCommand] = {
        var index: [String: ConsoleCommand] = [:]
        for command in table {
            for name in [command.name] + command.aliases { index[name] = command }
        }
        return index
    }()

    /// Interprets one console line; nil for a blank line.
    ///
    /// A line without a slash is announced to everyone — unless it reads as a command someone forgot the slash
    /// of: a bare command word (`help`, `who`, `exit`) runs that command, and a line that is a whole command
    /// with its arguments (`kick bob spam`) is not sent but questioned, since announcing it to everyone cannot
    /// be undone. `/announce` sends such a line on purpose.
    public static func action(forLine line: String) throws(ChatError) -> ConsoleAction? {
        let trimmed = Sanitizer.trimmed(line)
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.hasPrefix("/") else {
            let (word, arguments) = trimmed[...].firstWord
            guard let command = index[asciiLowercased(String(word))] else { return .announce(trimmed) }
            if arguments.isEmpty {
                guard let action = command.parse(arguments) else { throw ChatError(.usage, "Usage: \(command.usage)") }
                return action
            }
            guard command.parse(arguments) == nil else {
                throw ChatError(
                    .usage,
                    "Not sent: did you mean /\(trimmed)? Type it with the slash to run it, or /announce \(trimmed) to send it to everyone."
                )
            }
            return .announce(trimmed)
        }
        let (word, arguments) = trimmed.dropFirst().firstWord
        guard let command = index[asciiLowercased(String(word))] else {
            throw ChatError(.unknownCommand, "Unknown command /\(word). Type /help for the console commands.")
        }
        guard let action = command.parse(arguments) else { throw ChatError(.usage, "Usage: \(command.usage)") }
        return action
    }

    /// The console's help: every command with its aliases, and what plain lines do.
    public static var help: [String] {
        table.map { command in
            let aliases = command.aliases.isEmpty ? "" : " (also " + command.aliases.map { "/\($0)" }.joined(separator: ", ") + ")"
            return "\(command.usage)  \(command.summary)\(aliases)"
        } + [
            "A line without a slash is a notice to everyone. A bare command word (help, who, rooms, exit) runs that command;",
            "a line that is a whole command without its slash (kick bob spam) is not sent: you are asked what you meant.",
        ]
    }
}
