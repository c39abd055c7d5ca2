import ParleyCore
import ParleyTerminal
import Testing

@Suite("ClientCommands")
struct ClientCommandsTests {
    private func action(_ line: String, room: String? = "#a") -> ClientAction {
        ClientCommands.action(forLine: line, currentRoom: room)
    }

    // MARK: - The client's own commands

    @Test("/switch and its aliases switch rooms", arguments: ["/switch #b", "/s #b", "/window #b", "/SWITCH #b", "/switch   #b"])
    func switchRoom(line: String) {
        #expect(action(line) == .switchRoom("#b"))
        #expect(action(line, room: nil) == .switchRoom("#b"))
    }

    @Test("/switch without a room is a usage error")
    func switchWithoutRoom() {
        #expect(action("/switch") == .error("Usage: /switch #room"))
        #expect(action("/switch   ") == .error("Usage: /switch #room"))
    }

    @Test("/clear and /reconnect")
    func clearAndReconnect() {
        #expect(action("/clear") == .clear)
        #expect(action("/CLEAR") == .clear)
        #expect(action("/clear", room: nil) == .clear)
        #expect(action("/reconnect") == .reconnect)
        #expect(action("/reconnect", room: nil) == .reconnect)
    }

    @Test("As on the server, spaces before a command do not make it a message (a /login must never be sent as text)")
    func leadingSpaces() {
        #expect(action(" /clear") == .clear)
        #expect(action("  /reconnect") == .reconnect)
        #expect(action(" /switch #b") == .switchRoom("#b"))
        #expect(action(" /join #a") == .send(.join("#a")))
        #expect(action(" /help") == .help)
        #expect(action("   /login alice secret") == .send(.login(nick: "alice", password: "secret")))
        #expect(action(" /frobnicate") == .error("Unknown command /frobnicate. Type /help for the list of commands."))
        #expect(action("  hello") == .send(.say(room: "#a", text: "  hello", kind: .normal)))
    }

    @Test("/history is the current room's, another room's, or a private conversation's")
    func history() {
        #expect(action("/history") == .send(.history(room: "#a", .latest(50))))
        #expect(action("/history 5") == .send(.history(room: "#a", .latest(5))))
        #expect(action("/history #b 5") == .send(.history(room: "#b", .latest(5))))
        #expect(action("/history bob") == .send(.history(room: "bob", .latest(50))))
        #expect(action("/history", room: nil) == .error("You are not in a room. Type /join #room to enter one."))
    }

    @Test("In a private conversation, text and /me go to its nick, /history is its history, /part closes it; /query and /close")
    func conversation() {
        let here = { (line: String) in ClientCommands.action(forLine: line, currentRoom: nil, conversation: "alice") }
        #expect(here("hello") == .send(.whisper(to: "alice", text: "hello", kind: .normal)))
        #expect(here("/me waves") == .send(.whisper(to: "alice", text: "waves", kind: .action)))
        #expect(here("/history 5") == .send(.history(room: "alice", .latest(5))))
        #expect(here("/part") == .close)
        #expect(here("/close") == .close)
        #expect(action("/query bob") == .query("bob", text: nil))
        #expect(action("/query bob how are you") == .query("bob", text: "how are you"))
        #expect(action("/q bob") == .query("bob", text: nil))
        #expect(action("/query") == .error("Usage: /query NICK [text]"))
        #expect(action("/query #room") == .error("Usage: /query NICK [text]"))
        #expect(action("/find build") == .find("build"))
        #expect(action("/lastlog build log") == .find("build log"))
        #expect(action("/find") == .error("Usage: /find TEXT"))
        #expect(action("/ignore") == .ignore(nil))
        #expect(action("/ignore eve") == .ignore("eve"))
        #expect(action("/unignore eve") == .unignore("eve"))
        #expect(action("/unignore") == .error("Usage: /unignore NICK"))
    }

    @Test("/help and /? ask for the combined help")
    func help() {
        #expect(action("/help") == .help)
        #expect(action("/?") == .help)
        #expect(action("/help", room: nil) == .help)
    }

    @Test("The help lists the chat commands and the client's commands")
    func helpLines() {
        let lines = ClientCommands.helpLines
        let chat = try? #require(lines.firstIndex(of: "Chat commands:"))
        let client = try? #require(lines.firstIndex(of: "Client commands:"))
        #expect(chat != nil && client != nil)
        if let chat, let client { #expect(chat < client) }
        for command in TextCommands.table {
            #expect(lines.contains("  \(command.usage)  \(command.summary)"))
        }
        for usage in ["/switch #room", "/clear", "/reconnect"] {
            #expect(lines.contains { $0.hasPrefix("  \(usage)  ") })
        }
        #expect(lines.contains { $0.contains("Alt+1") && $0.contains("Ctrl+N") && $0.contains("Ctrl+P") })
        #expect(lines.last?.contains("//") == true)
    }

    @Test("Command names for completion include the chat commands, aliases and client commands")
    func names() {
        let names = ClientCommands.names
        for name in ["/help", "/?", "/nick", "/msg", "/w", "/me", "/join", "/j", "/part", "/leave", "/topic", "/quit",
                     "/switch", "/s", "/window", "/clear", "/reconnect"] {
            #expect(names.contains(name), "\(name)")
        }
        #expect(names.allSatisfy { $0.hasPrefix("/") })
        #expect(Set(names).count == names.count)
    }

    // MARK: - Chat lines and server commands

    @Test("Plain text goes to the current room")
    func plainText() {
        #expect(action("hello all") == .send(.say(room: "#a", text: "hello all", kind: .normal)))
        #expect(action("//clear is a command") == .send(.say(room: "#a", text: "/clear is a command", kind: .normal)))
    }

    @Test("Plain text without a current room is an error the client shows")
    func plainTextNoRoom() {
        let expected = ClientAction.error("You are not in a room. Type /join #room to enter one.")
        #expect(action("hello", room: nil) == expected)
        #expect(action("/me waves", room: nil) == expected)
        #expect(action("/part", room: nil) == expected)
        #expect(action("/topic", room: nil) == expected)
    }

    @Test("/me becomes an action in the current room")
    func me() {
        #expect(action("/me waves") == .send(.say(room: "#a", text: "waves", kind: .action)))
    }

    @Test("/part and /topic fill in the current room")
    func partAndTopic() {
        #expect(action("/part") == .send(.part(room: "#a", reason: nil)))
        #expect(action("/part gone fishing") == .send(.part(room: "#a", reason: "gone fishing")))
        #expect(action("/leave") == .send(.part(room: "#a", reason: nil)))
        #expect(action("/part #b bye") == .send(.part(room: "#b", reason: "bye")))
        #expect(action("/part #b", room: nil) == .send(.part(room: "#b", reason: nil)))
        #expect(action("/topic") == .send(.topic(room: "#a", text: nil)))
        #expect(action("/topic Rust and more") == .send(.topic(room: "#a", text: "Rust and more")))
        #expect(action("/topic #b") == .send(.topic(room: "#b", text: nil)))
        #expect(action("/topic #b new topic", room: nil) == .send(.topic(room: "#b", text: "new topic")))
    }

    @Test("Other server commands pass through unchanged")
    func passThrough() {
        #expect(action("/join #rust") == .send(.join("#rust")))
        #expect(action("/j #rust", room: nil) == .send(.join("#rust")))
        #expect(action("/nick robert") == .send(.nick("robert")))
        #expect(action("/msg alice hi there") == .send(.whisper(to: "alice", text: "hi there", kind: .normal)))
        #expect(action("/who") == .send(.who(room: nil)))
        #expect(action("/who #b") == .send(.who(room: "#b")))
        #expect(action("/rooms") == .send(.rooms(matching: [])))
        #expect(action("/quit") == .send(.quit(reason: nil)))
        #expect(action("/quit see you", room: nil) == .send(.quit(reason: "see you")))
    }

    @Test("Unknown commands and bad usage are errors")
    func errors() {
        #expect(action("/frobnicate now") == .error("Unknown command /frobnicate. Type /help for the list of commands."))
        #expect(action("/join") == .error("Usage: /join #room [key]"))
        #expect(action("/msg alice") == .error("Usage: /msg NICK text"))
        #expect(action("/me") == .error("Usage: /me action"))
    }

    @Test("A blank line does nothing")
    func blank() {
        #expect(action("") == .nothing)
        #expect(action("   ") == .nothing)
        #expect(action("", room: nil) == .nothing)
    }
}
