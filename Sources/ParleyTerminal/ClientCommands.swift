import ParleyCore

/// What a line typed into `parley connect` means.
public enum ClientAction: Sendable, Equatable {
    /// A request for the server, with the current room filled in where the command left it out.
    case send(Request)
    case switchRoom(String)
    /// Shows the current window's lines that contain the text.
    case find(String)
    /// Hides a nick's messages (kept in the config file); nil: lists who is ignored.
    case ignore(String?)
    case unignore(String)
    /// Opens the private conversation with the nick in a window of its own and makes it current; sends the
    /// text, if any, there.
    case query(String, text: String?)
    /// Closes the current private conversation's window.
    case close
    case clear
    case reconnect
    case help
    /// A mistake the client can tell without the server.
    case error(String)
    case nothing
}

/// The client's own commands, added to the server's table; `/help` lists both.
public enum ClientCommands {
    public struct Command: Sendable {
        public let usage: String
        public let summary: String
        let names: [String]
    }

    public static let table: [Command] = [
        Command(usage: "/switch #room", summary: "make a room you are in the current one (also Alt+1…9, Ctrl+N, Ctrl+P)", names: ["switch", "s", "window"]),
        Command(usage: "/query NICK [text]", summary: "open a window for your private conversation with NICK (and say text there)", names: ["query", "q"]),
        Command(usage: "/close", summary: "close the current private conversation's window", names: ["close"]),
        Command(usage: "/ignore [NICK]", summary: "hide NICK's messages, kept in your config file (without NICK: the list)", names: ["ignore"]),
        Command(usage: "/unignore NICK", summary: "show NICK's messages again", names: ["unignore"]),
        Command(usage: "/find TEXT", summary: "show the current window's lines that contain TEXT, highlighted", names: ["find", "lastlog"]),
        Command(usage: "/clear", summary: "clear the current window's scrollback", names: ["clear"]),
        Command(usage: "/reconnect", summary: "drop the connection and connect again", names: ["reconnect"]),
    ]

    /// Every command name, for Tab completion.
    public static var names: [String] {
        // `/query` is the server's alias of `/msg` and the client's own command: listed once.
        var seen = Set<String>()
        return (TextCommands.table.flatMap { [$0.name] + $0.aliases } + table.flatMap(\.names)).map { "/\($0)" }.filter { seen.insert($0).inserted }
    }

    public static var helpLines: [String] {
        ["Chat commands:"] + TextCommands.table.map { "  \($0.usage)  \($0.summary)" }
            + ["Client commands:"] + table.map { "  \($0.usage)  \($0.summary)" }
            + ["Anything else is sent to the current window (a room, or a private conversation); start it with // to send a leading /."]
    }

    /// `currentRoom`: the current window's room; `conversation`: the nick of the current window's private
    /// conversation (text typed there goes to that nick).
    public static func action(forLine line: String, currentRoom: String?, conversation: String? = nil) -> ClientAction {
        // As on the server, spaces before a command do not make it a message.
        let trimmed = line.drop(while: { $0 == " " })
        if trimmed.hasPrefix("/") && !trimmed.hasPrefix("//") {
            let word = trimmed.dropFirst().prefix(while: { $0 != " " }).lowercased()
            let argument = String(trimmed.dropFirst(word.count + 1).drop(while: { $0 == " " }))
            if let command = table.first(where: { $0.names.contains(word) }) {
                switch command.names[0] {
                case "switch": return argument.isEmpty ? .error("Usage: /switch #room") : .switchRoom(argument)
                case "query":
                    let nick = argument.prefix { $0 != " " }
                    let text = argument.dropFirst(nick.count).drop { $0 == " " }
                    return nick.isEmpty || nick.hasPrefix("#") ? .error("Usage: /query NICK [text]") : .query(String(nick), text: text.isEmpty ? nil : String(text))
                case "close": return .close
                case "find": return argument.isEmpty ? .error("Usage: /find TEXT") : .find(argument)
                case "ignore": return .ignore(argument.isEmpty ? nil : String(argument.prefix { $0 != " " }))
                case "unignore": return argument.isEmpty ? .error("Usage: /unignore NICK") : .unignore(String(argument.prefix { $0 != " " }))
                case "clear": return .clear
                default: return .reconnect
                }
            }
        }
        let request: Request?
        do throws(ChatError) {
            request = try TextCommands.request(forLine: line)
        } catch {
            return .error(error.message)
        }
        guard let request else { return .nothing }
        let noRoom = ClientAction.error("You are not in a room. Type /join #room to enter one.")
        switch request {
        case .help:
            return .help
        case .say(nil, let text, let kind, _):
            if let conversation { return .send(.whisper(to: conversation, text: text, kind: kind)) }
            guard let currentRoom else { return noRoom }
            return .send(.say(room: currentRoom, text: text, kind: kind))
        case .part(nil, _) where conversation != nil:
            return .close
        case .part(nil, let reason):
            guard let currentRoom else { return noRoom }
            return .send(.part(room: currentRoom, reason: reason))
        case .topic(nil, let text):
            guard let currentRoom else { return noRoom }
            return .send(.topic(room: currentRoom, text: text))
        case .moderate(nil, let action):
            guard let currentRoom else { return noRoom }
            return .send(.moderate(room: currentRoom, action))
        case .history(nil, let query, let withTags):
            // JSON's history names its room: the current one, as `/history` means on nc (or the conversation).
            guard let target = conversation ?? currentRoom else { return noRoom }
            return .send(.history(room: target, query, withTags: withTags))
        default:
            return .send(request)
        }
    }
}
