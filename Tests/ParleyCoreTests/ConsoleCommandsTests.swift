import ParleyCore
import Testing

@Suite("ConsoleCommands")
struct ConsoleCommandsTests {
    private static func parse(_ line: String) throws(ChatError) -> ConsoleAction? {
        try ConsoleCommands.action(forLine: line)
    }

    @Test("a line without a slash is announced to everyone, trimmed, even when it starts with a command word")
    func announce() throws {
        #expect(try Self.parse("Server restarts at noon") == .announce("Server restarts at noon"))
        #expect(try Self.parse("  hello  ") == .announce("hello"))
        #expect(try Self.parse("exit now") == .announce("exit now"))
        #expect(try Self.parse("who wants pizza?") == .announce("who wants pizza?"))
        #expect(try Self.parse("help is on the way") == .announce("help is on the way"))
        #expect(try Self.parse("say hello to the new folks") == .announce("say hello to the new folks"))
        #expect(try Self.parse("topic of the day: backups") == .announce("topic of the day: backups"))
        #expect(try Self.parse("/announce kick off at five") == .announce("kick off at five"))
        #expect(try Self.parse("/wall rooms are open") == .announce("rooms are open"))
    }

    @Test("a bare command word runs the command, as if typed with its slash")
    func bareWords() throws {
        #expect(try Self.parse("exit") == .shutdown)
        #expect(try Self.parse("  exit  ") == .shutdown)
        #expect(try Self.parse("quit") == .shutdown)
        #expect(try Self.parse("help") == .help)
        #expect(try Self.parse("WHO") == .who(room: nil))
        #expect(try Self.parse("rooms") == .rooms)
        // A bare word that needs arguments is not sent either: its usage is shown.
        let error = #expect(throws: ChatError.self) { try Self.parse("kick") }
        #expect(error?.message == "Usage: /kick [#room] NICK [reason]")
    }

    @Test("a whole command typed without its slash is questioned, not announced", arguments: [
        "kick bob spam", "who #general", "say #general hi", "ban #dev bob 1h", "topic #dev release on Friday",
    ])
    func missingSlash(_ line: String) {
        let error = #expect(throws: ChatError.self) { try Self.parse(line) }
        #expect(error?.message == "Not sent: did you mean /\(line)? Type it with the slash to run it, or /announce \(line) to send it to everyone.")
    }

    @Test("a blank line is nothing", arguments: ["", "   ", "\t"])
    func blank(_ line: String) throws {
        #expect(try Self.parse(line) == nil)
    }

    @Test(
        "every command and alias parses to its action",
        arguments: [
            ("/say #general hello all", ConsoleAction.say(room: "#general", text: "hello all")),
            ("/kick bob", .kick(nick: "bob", reason: nil)),
            ("/kick bob stop spamming now", .kick(nick: "bob", reason: "stop spamming now")),
            ("/who", .who(room: nil)),
            ("/who #rust", .who(room: "#rust")),
            ("/online", .who(room: nil)),
            ("/names #rust", .who(room: "#rust")),
            ("/rooms", .rooms),
            ("/list", .rooms),
            ("/help", .help),
            ("/?", .help),
            ("/shutdown", .shutdown),
            ("/topic #dev", .topic(room: "#dev", text: nil)),
            ("/topic #dev release on Friday", .topic(room: "#dev", text: "release on Friday")),
            ("/exit", .shutdown),
            ("/quit", .shutdown),
            ("/SHUTDOWN", .shutdown),
        ]
    )
    func commands(_ line: String, _ expected: ConsoleAction) throws {
        #expect(try Self.parse(line) == expected)
    }

    @Test("an unknown command is refused with a pointer to /help")
    func unknown() {
        let error = #expect(throws: ChatError.self) { try Self.parse("/reboot") }
        #expect(error?.code == .unknownCommand)
        #expect(error?.message.contains("/reboot") == true)
        #expect(error?.message.contains("/help") == true)
    }

    @Test(
        "missing arguments give the usage line",
        arguments: [
            ("/say", "Usage: /say #room text"),
            ("/say #general", "Usage: /say #room text"),
            ("/say general hello", "Usage: /say #room text"),
            ("/topic dev", "Usage: /topic #room [text]"),
            ("/who bob", "Usage: /who [#room]"),
            ("/help me", "Usage: /help"),
            ("/kick", "Usage: /kick [#room] NICK [reason]"),
            ("/kick   ", "Usage: /kick [#room] NICK [reason]"),
            ("/ban bob", "Usage: /ban #room NICK|MASK [DURATION] [reason]"),
            ("/topiclock #general maybe", "Usage: /topiclock #room on|off"),
        ]
    )
    func usage(_ line: String, _ message: String) {
        let error = #expect(throws: ChatError.self) { try Self.parse(line) }
        #expect(error?.code == .usage)
        #expect(error?.message == message)
    }

    @Test("the table lists every command with its usage")
    func table() {
        let usages = ConsoleCommands.table.map(\.usage)
        #expect(
            usages == [
                "/help", "/announce text", "/say #room text", "/topic #room [text]", "/kick [#room] NICK [reason]", "/who [#room]", "/rooms",
                "/shutdown",
                "/ban #room NICK|MASK [DURATION] [reason]", "/unban #room NICK|MASK", "/bans #room",
                "/mute #room NICK|MASK [DURATION] [reason]", "/unmute #room NICK|MASK", "/exempt #room NICK|MASK", "/unexempt #room NICK|MASK", "/op #room NICK", "/deop #room NICK",
                "/voice #room NICK", "/devoice #room NICK", "/mode #room +LETTERS|-LETTERS", "/limit #room N|off",
                "/topiclock #room on|off", "/key #room KEY|off",
            ]
        )
    }

    @Test("help lists every command with its aliases, exit among them, and says what plain lines do")
    func help() {
        let help = ConsoleCommands.help
        #expect(help.contains("/shutdown  stop the server gracefully (also /exit, /quit)"))
        #expect(help.contains { $0.hasPrefix("/topic #room [text]") })
        #expect(help.contains { $0.contains("bare command word") })
    }

    @Test("room commands need the room named; /kick without one disconnects")
    func moderation() throws {
        #expect(try Self.parse("/kick bob flooding") == .kick(nick: "bob", reason: "flooding"))
        #expect(try Self.parse("/kick #dev bob flooding") == .moderate(room: "#dev", .kick(nick: "bob", reason: "flooding")))
        #expect(try Self.parse("/ban #dev guest* 2h spam") == .moderate(room: "#dev", .ban(mask: "guest*", seconds: 7200, reason: "spam")))
        #expect(try Self.parse("/mute #dev bob") == .moderate(room: "#dev", .mute(mask: "bob", seconds: nil, reason: nil)))
        #expect(try Self.parse("/bans #dev") == .moderate(room: "#dev", .restrictions))
        #expect(try Self.parse("/op #dev alice") == .moderate(room: "#dev", .op(nick: "alice")))
    }
}
