import Foundation
import Testing

@Suite("Plain-text mode, end to end")
struct TextModeTests {
    @Test("several users chat in #general; the sender's own line is not echoed")
    func chat() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let carol = try await server.textUser("carol")
            try await alice.waitFor { $0 == "*** carol joined #general" }
            try await alice.send("hello everyone")
            for reader in [bob, carol] {
                let line = try await reader.waitFor { $0.hasSuffix("<alice> hello everyone") }
                #expect(line.range(of: #"^\[\d\d:\d\d\] <alice> hello everyone$"#, options: .regularExpression) != nil)
            }
            try await alice.send("/me waves")
            try await bob.waitFor { $0.hasSuffix("] * alice waves") }
            try await bob.send("hi alice")
            try await alice.waitFor { $0.hasSuffix("<bob> hi alice") }
            let aliceGotOwnLine = try await alice.lines.contains { $0.contains("<alice>") }
            #expect(!aliceGotOwnLine)
        }
    }

    @Test("the greeting asks for a nickname and the welcome names the user")
    func greeting() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.port)
            #expect(try await client.nextLine() == "*** Welcome to Parley on test.parley.")
            #expect(try await client.nextLine() == "*** Choose a nickname:")
            try await client.send("dora")
            #expect(try await client.nextLine().hasPrefix("*** Hello dora!"))
            #expect(try await client.nextLine() == "*** dora joined #general")
            #expect(try await client.nextLine() == "*** In #general (1): dora")
        }
    }

    @Test("a private message reaches only its target, and the sender sees it confirmed")
    func privateMessages() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let carol = try await server.textUser("carol")
            try await alice.send("/msg bob psst")
            try await bob.waitFor { $0.hasSuffix("] -> (private) <alice> psst") }
            try await alice.waitFor { $0.hasSuffix("] <- (private to bob) psst") }
            for (alias, text) in [("/whisper", "two"), ("/w", "three")] {
                try await alice.send("\(alias) BOB \(text)")
                try await bob.waitFor { $0.hasSuffix("<alice> \(text)") }
            }
            try await alice.send("/msg nobody hello")
            try await alice.waitFor { $0 == "!!! Nobody called nobody is online." }
            // carol is told about the others but sees none of the private traffic.
            try await bob.send("public line")
            try await carol.waitFor { $0.hasSuffix("<bob> public line") }
            let carolSawPrivate = try await carol.lines.contains { $0.contains("psst") || $0.contains("(private") }
            #expect(!carolSawPrivate)
        }
    }

    @Test("rooms keep their traffic apart; other rooms' lines name the room")
    func rooms() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let carol = try await server.textUser("carol")
            try await alice.send("/join #rust")
            try await alice.waitFor { $0 == "*** In #rust (1): @alice" }
            try await bob.send("/join #Rust")
            try await bob.waitFor { $0 == "*** In #rust (2): @alice, bob" }
            try await alice.waitFor { $0 == "*** bob joined #rust" }
            try await alice.send("rust talk")
            try await bob.waitFor { $0.hasSuffix("] <alice> rust talk") }
            // carol is only in #general; alice's current room is #rust, so #general lines carry the room.
            try await carol.send("general talk")
            try await alice.waitFor { $0.hasSuffix("] #general <carol> general talk") }
            try await bob.waitFor { $0.hasSuffix("] #general <carol> general talk") }
            try await carol.send("/rooms")
            try await carol.waitFor { $0 == "*** Rooms (2):" }
            #expect(try await carol.nextLine() == "***   #general (3 members)")
            #expect(try await carol.nextLine() == "***   #rust (2 members)")
            let carolSawRustTalk = try await carol.lines.contains { $0.contains("rust talk") }
            #expect(!carolSawRustTalk)
        }
    }

    @Test("topics are shown, set and announced")
    func topics() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            try await alice.send("/topic")
            try await alice.waitFor { $0 == "*** #general has no topic. Set one with /topic #general text" }
            try await alice.send("/topic Friday demo at 3")
            try await bob.waitFor { $0 == "*** Topic of #general: Friday demo at 3 (set by alice)" }
            try await bob.send("/rooms")
            try await bob.waitFor { $0 == "***   #general (2 members): Friday demo at 3" }
            let carol = try await TestClient.connect(port: server.port)
            try await carol.waitFor { $0 == "*** Choose a nickname:" }
            try await carol.send("carol")
            let shown = try await carol.waitFor { $0.hasPrefix("*** Topic of #general: Friday demo at 3 (set by alice on ") }
            #expect(shown.range(of: #"on \d\d-\d\d \d\d:\d\d\)$"#, options: .regularExpression) != nil, "\(shown)")
        }
    }

    @Test("a room name with a space is refused, not cut short; leaving the current room says which one is current now")
    func joinAndPart() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            try await alice.send("/join #bad room")
            try await alice.waitFor { $0 == "!!! Room names have no spaces, and #bad needs no key: /join #bad-room or /join #bad." }
            try await alice.send("/rooms")
            try await alice.waitFor { $0 == "*** Rooms (1):" }
            try await alice.send("/join #one")
            try await alice.waitFor { $0.hasPrefix("*** In #one") }
            try await alice.send("/join #two")
            try await alice.waitFor { $0.hasPrefix("*** In #two") }
            try await alice.send("/part")
            try await alice.waitFor { $0 == "*** alice left #two" }
            try await alice.waitFor { $0 == "*** Your current room is now #one." }
            try await alice.send("/part #general")
            try await alice.waitFor { $0 == "*** alice left #general" }
            try await alice.send("/part")
            try await alice.waitFor { $0 == "*** You are in no room now. Type /join #room to enter one." }
        }
    }

    @Test("/help lists every command; an unknown command points at /help; aliases work")
    func commands() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            _ = try await server.textUser("bob")
            try await alice.send("/help")
            try await alice.waitFor { $0 == "*** Commands:" }
            var help: [String] = []
            while let line = try? await alice.nextLine(), line.hasPrefix("***   ") { help.append(line) }
            for usage in ["/help", "/nick NAME", "/who [#room]", "/msg NICK text", "/me action", "/join #room",
                "/part [#room] [reason]", "/rooms", "/topic [#room] [text]", "/quit [reason]"]
            {
                #expect(help.contains { $0.hasPrefix("***   \(usage) ") }, "missing \(usage)")
            }
            #expect(help.contains { $0.contains("/online") && $0.contains("/names") })
            #expect(help.contains { $0.contains("/whisper") && $0.contains("/w") })
            try await alice.send("/dance now")
            try await alice.waitFor { $0 == "!!! Unknown command /dance. Type /help for the list of commands." }
            for alias in ["/who", "/online", "/names"] {
                try await alice.send(alias)
                try await alice.waitFor { $0 == "*** Online (2): alice, bob" }
            }
            try await alice.send("/who #general")
            try await alice.waitFor { $0 == "*** In #general (2): alice, bob" }
            try await alice.send("/msg bob")
            try await alice.waitFor { $0 == "!!! Usage: /msg NICK text" }
            try await alice.send("//slash is text")
            try await alice.send("/quit")
            try await alice.waitForClose()
        }
    }

    @Test("a taken or invalid nickname is refused with the reason and another try")
    func nicknameRules() async throws {
        try await TestServer.run { server in
            _ = try await server.textUser("Alice")
            let client = try await TestClient.connect(port: server.port)
            try await client.waitFor { $0 == "*** Choose a nickname:" }
            for (attempt, reason) in [
                ("alice", "!!! The nickname alice is taken; choose another."),
                ("9lives", "!!! A nickname cannot start with a digit or '-'."),
                ("-dash", "!!! A nickname cannot start with a digit or '-'."),
                ("has space", #"!!! A nickname may use only letters A-Z, digits and _ - [ ] { } \ | ^ ` (not " ")."#),
                (String(repeating: "x", count: 25), "!!! A nickname has at most 24 characters."),
            ] {
                try await client.send(attempt)
                #expect(try await client.nextLine() == reason)
                #expect(try await client.nextLine() == "*** Choose a nickname:")
            }
            try await client.send("/nick [bob]_`^{|}")
            try await client.waitFor { $0 == "*** [bob]_`^{|} joined #general" }
            try await client.send("/nick ALICE")
            try await client.waitFor { $0 == "!!! The nickname ALICE is taken; choose another." }
        }
    }

    @Test("telnet negotiation bytes are ignored, never shown, never part of a nickname")
    func telnetNegotiation() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let telnet = try await TestClient.connect(port: server.port)
            // IAC DO ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC SB NAWS 0 80 0 24 IAC SE, then the nickname with CRLF.
            try await telnet.sendRaw([255, 253, 1, 255, 251, 3, 255, 250, 31, 0, 80, 0, 24, 255, 240] + Array("dave\r\n".utf8))
            try await telnet.waitFor { $0 == "*** dave joined #general" }
            try await alice.waitFor { $0 == "*** dave joined #general" }
            // IAC IP (what telnet sends for Ctrl+C) inside a line.
            try await telnet.sendRaw(Array("hel".utf8) + [255, 244] + Array("lo\r\n".utf8))
            try await alice.waitFor { $0.hasSuffix("] <dave> hello") }
        }
    }
}
