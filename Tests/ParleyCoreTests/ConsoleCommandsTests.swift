import ParleyCore
import Testing

@Suite("ConsoleCommands")
struct ConsoleCommandsTests {
    private static func parse(_ line: String) throws(ChatError) -> ConsoleAction? {
        try ConsoleCommands.action(forLine: line)
    }

    @Test("a line without a slash is announced to everyone, trimmed")
    func announce() throws {
        #expect(try Self.parse("Server restarts at noon") == .announce("Server restarts at noon"))
        #expect(try Self.parse("  hello  ") == .announce("hello"))
        #expect(try Self.parse("exit now") == .announce("exit now"))
    }

    @Test("a bare exit stops the server", arguments: ["exit", "  exit  "])
    func exit(_ line: String) throws {
        #expect(try Self.parse(line) == .shutdown)
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
                "/help", "/say #room text", "/kick [#room] NICK [reason]", "/who [#room]", "/rooms", "/shutdown",
                "/ban #room NICK|MASK [DURATION] [reason]", "/unban #room NICK|MASK", "/bans #room",
                "/mute #room NICK|MASK [DURATION] [reason]", "/unmute #room NICK|MASK", "/op #room NICK", "/deop #room NICK",
                "/topiclock #room on|off", "/key #room KEY|off",
            ]
        )
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
