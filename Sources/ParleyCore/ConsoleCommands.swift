/// What the operator at the server's terminal can do.
public enum ConsoleAction: Sendable, Equatable {
    /// A server notice to everyone online (any line that is not a command).
    case announce(String)
    case say(room: String, text: String)
    /// Disconnects a user from the server.
    case kick(nick: String, reason: String?)
    /// A room operator's action, with the console's powers.
    case moderate(room: String, Moderation)
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
        ConsoleCommand(name: "help", aliases: ["?"], arguments: "", summary: "list the console commands") { _ in .help },
        ConsoleCommand(name: "say", aliases: [], arguments: "#room text", summary: "a server notice to one room") { args in
            let (room, text) = args.firstWord
            guard !room.isEmpty, !text.isEmpty else { return nil }
            return .say(room: String(room), text: String(text))
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
            let (room, _) = args.firstWord
            return .who(room: room.isEmpty ? nil : String(room))
        },
        ConsoleCommand(name: "rooms", aliases: ["list"], arguments: "", summary: "list rooms") { _ in .rooms },
        ConsoleCommand(name: "shutdown", aliases: ["exit", "quit"], arguments: "", summary: "stop the server gracefully") {
            _ in .shutdown
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

    /// Interprets one console line; nil for a blank line. A bare `exit` stops the server, as in the scripts
    /// Parley grew from; any other line without a slash is announced to everyone.
    public static func action(forLine line: String) throws(ChatError) -> ConsoleAction? {
        let trimmed = Sanitizer.trimmed(line)
        guard !trimmed.isEmpty else { return nil }
        if trimmed == "exit" { return .shutdown }
        guard trimmed.hasPrefix("/") else { return .announce(trimmed) }
        let (word, arguments) = trimmed.dropFirst().firstWord
        guard let command = index[asciiLowercased(String(word))] else {
            throw ChatError(.unknownCommand, "Unknown command /\(word). Type /help for the console commands.")
        }
        guard let action = command.parse(arguments) else { throw ChatError(.usage, "Usage: \(command.usage)") }
        return action
    }
}
