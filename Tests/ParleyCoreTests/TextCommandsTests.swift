import ParleyCore
import Testing

@Suite("TextCommands")
struct TextCommandsTests {
    private static func parse(_ line: String) throws(ChatError) -> Request? {
        try TextCommands.request(forLine: line)
    }

    @Test(
        "every command and alias parses to its request",
        arguments: [
            ("/help", Request.help),
            ("/?", .help),
            ("/nick bob", .nick("bob")),
            ("/who", .who(room: nil)),
            ("/who #rust", .who(room: "#rust")),
            ("/online", .who(room: nil)),
            ("/names #rust", .who(room: "#rust")),
            ("/msg bob hi there", .whisper(to: "bob", text: "hi there", kind: .normal)),
            ("/whisper bob hi", .whisper(to: "bob", text: "hi", kind: .normal)),
            ("/w bob hi", .whisper(to: "bob", text: "hi", kind: .normal)),
            ("/query bob hi", .whisper(to: "bob", text: "hi", kind: .normal)),
            ("/me waves", .say(room: nil, text: "waves", kind: .action)),
            ("/join #rust", .join("#rust")),
            ("/j #rust", .join("#rust")),
            ("/join #vault sesame", .join("#vault", key: "sesame")),
            ("/part", .part(room: nil, reason: nil)),
            ("/leave", .part(room: nil, reason: nil)),
            ("/rooms", .rooms(matching: [])),
            ("/list", .rooms(matching: [])),
            ("/topic", .topic(room: nil, text: nil)),
            ("/quit", .quit(reason: nil)),
            ("/exit", .quit(reason: nil)),
            ("/bye", .quit(reason: nil)),
            ("/quit see you tomorrow", .quit(reason: "see you tomorrow")),
        ]
    )
    func commands(_ line: String, _ expected: Request) throws {
        #expect(try Self.parse(line) == expected)
    }

    @Test("every row of the table is reachable by its name and by each alias")
    func tableIsReachable() {
        for command in TextCommands.table {
            let byName = Result { () throws(ChatError) in try Self.parse("/\(command.name)") }
            switch byName {
            case .success(let request):
                #expect(request != nil, "/\(command.name)")
            case .failure(let error):
                // A command that needs arguments answers with its own usage line, which proves the lookup worked.
                #expect(error.code == .usage, "/\(command.name)")
                #expect(error.message == "Usage: \(command.usage)")
            }
            for alias in command.aliases {
                let byAlias = Result { () throws(ChatError) in try Self.parse("/\(alias)") }
                #expect(byAlias == byName, "/\(alias)")
            }
        }
    }

    @Test("command names are case-insensitive")
    func caseInsensitiveNames() throws {
        #expect(try Self.parse("/HELP") == .help)
        #expect(try Self.parse("/Join #Rust") == .join("#Rust"))
    }

    @Test("extra spaces between and around arguments are ignored")
    func extraSpaces() throws {
        #expect(try Self.parse("/msg   bob    hi  there  ") == .whisper(to: "bob", text: "hi  there", kind: .normal))
        #expect(try Self.parse("/join   #rust   ") == .join("#rust"))
    }

    @Test("plain text goes to the current room")
    func plainText() throws {
        #expect(try Self.parse("hello everyone") == .say(room: nil, text: "hello everyone", kind: .normal))
        #expect(try Self.parse("  indented") == .say(room: nil, text: "  indented", kind: .normal))
        #expect(throws: ChatError.self) { try Self.parse(" /not a command") }
        #expect(try Self.parse("héllo 👋") == .say(room: nil, text: "héllo 👋", kind: .normal))
    }

    @Test("a double slash sends text starting with one slash")
    func doubleSlash() throws {
        #expect(try Self.parse("//x") == .say(room: nil, text: "/x", kind: .normal))
        #expect(try Self.parse("//help me") == .say(room: nil, text: "/help me", kind: .normal))
    }

    @Test("a blank line is no request", arguments: ["", " ", "   \t  "])
    func blank(_ line: String) throws {
        #expect(try Self.parse(line) == nil)
    }

    @Test("an unknown command is refused with a pointer to /help")
    func unknownCommand() {
        let error = #expect(throws: ChatError.self) { try Self.parse("/frobnicate now") }
        #expect(error?.code == .unknownCommand)
        #expect(error?.message.contains("/frobnicate") == true)
        #expect(error?.message.contains("/help") == true)
    }

    @Test(
        "missing or extra arguments give the usage line",
        arguments: [
            ("/msg", "Usage: /msg NICK text"),
            ("/msg bob", "Usage: /msg NICK text"),
            ("/msg bob   ", "Usage: /msg NICK text"),
            ("/w", "Usage: /msg NICK text"),
            ("/nick", "Usage: /nick NAME"),
            ("/nick two words", "Usage: /nick NAME"),
            ("/join", "Usage: /join #room [key]"),
            ("/join #a #b", "Usage: /join #room [key]"),
            ("/join #a key more", "Usage: /join #room [key]"),
            ("/me", "Usage: /me action"),
            ("/me   ", "Usage: /me action"),
        ]
    )
    func usage(_ line: String, _ message: String) {
        let error = #expect(throws: ChatError.self) { try Self.parse(line) }
        #expect(error?.code == .usage)
        #expect(error?.message == message)
    }

    @Test("/part with and without a room and a reason")
    func part() throws {
        #expect(try Self.parse("/part #rust") == .part(room: "#rust", reason: nil))
        #expect(try Self.parse("/part #rust bye for now") == .part(room: "#rust", reason: "bye for now"))
        #expect(try Self.parse("/part bye for now") == .part(room: nil, reason: "bye for now"))
        #expect(try Self.parse("/leave #rust") == .part(room: "#rust", reason: nil))
    }

    @Test("/topic with and without a room and a text")
    func topic() throws {
        #expect(try Self.parse("/topic #rust") == .topic(room: "#rust", text: nil))
        #expect(try Self.parse("/topic #rust All about Rust") == .topic(room: "#rust", text: "All about Rust"))
        #expect(try Self.parse("/topic All about Rust") == .topic(room: nil, text: "All about Rust"))
    }

    @Test("the help entries come from the table, with usage lines and slashed aliases")
    func help() throws {
        let help = TextCommands.table.map(\.help)
        let msg = try #require(help.first { $0.usage == "/msg NICK text" })
        #expect(msg.aliases == ["/whisper", "/w", "/query"])
        #expect(msg.summary == "send a private message")
        #expect(help.contains { $0.usage == "/help" && $0.aliases == ["/?"] })
        #expect(help.contains { $0.usage == "/part [#room] [reason]" })
        #expect(Set(TextCommands.table.map(\.name)) == ["help", "nick", "who", "whois", "whowas", "invite", "msg", "me", "join", "part", "rooms", "topic", "history", "register", "login", "passwd", "away", "back", "quit",
            "kick", "ban", "unban", "bans", "mute", "unmute", "exempt", "unexempt", "op", "deop", "voice", "devoice", "mode", "limit", "topiclock", "key",
        ])
    }
}

@Suite("TextCommands: accounts")
struct AccountCommandTests {
    @Test("account commands parse, and refuse missing or extra words")
    func accountCommands() throws {
        #expect(try TextCommands.request(forLine: "/register s3cret!") == .register(password: "s3cret!"))
        #expect(try TextCommands.request(forLine: "/login alice s3cret!") == .login(nick: "alice", password: "s3cret!"))
        #expect(try TextCommands.request(forLine: "/identify alice s3cret!") == .login(nick: "alice", password: "s3cret!"))
        #expect(try TextCommands.request(forLine: "/passwd old new-one") == .changePassword(old: "old", new: "new-one"))
        for line in ["/register", "/register two words", "/login alice", "/passwd only"] {
            let error = #expect(throws: ChatError.self) { try TextCommands.request(forLine: line) }
            #expect(error?.code == .usage, "\(line)")
        }
    }
}
