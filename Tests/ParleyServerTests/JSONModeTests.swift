import Foundation
import ParleyServer
import Testing

@Suite("JSON-lines mode, end to end")
struct JSONModeTests {
    @Test("hello, welcome, send and ack, messages with ids and UTC timestamps")
    func conversation() async throws {
        try await TestServer.run { server in
            let ann = try await TestClient.connect(port: server.port)
            try await ann.send(##"{"type":"hello","version":1,"nick":"ann","ref":"h1"}"##)
            // On a loaded machine the hello may come after the greeting window: then the plain-text greeting
            // comes first, which a JSON client skips (docs/PROTOCOL.md, "Choosing the mode").
            let welcome = try json(try await ann.waitFor { $0.hasPrefix("{") })
            #expect(welcome["type"] as? String == "welcome")
            #expect(welcome["version"] as? Int == 1)
            #expect(welcome["nick"] as? String == "ann")
            #expect(welcome["server"] as? String == "test.parley")
            #expect(try json(try await ann.nextLine())["type"] as? String == "joined")
            let members = try json(try await ann.nextLine())
            #expect(members["nicks"] as? [String] == ["ann"])

            let ben = try await server.jsonUser("ben")
            try await ann.waitFor(isEvent("joined", ["room": "#general", "nick": "ben"]))
            try await ann.send(##"{"type":"send","room":"#general","text":"first","ref":"a"}"##)
            try await ann.send(##"{"type":"send","room":"#general","text":"waves","kind":"action","ref":"b"}"##)
            let ackA = try json(try await ann.waitFor(isEvent("ack", ["ref": "a"])))
            let ackB = try json(try await ann.waitFor(isEvent("ack", ["ref": "b"])))
            let first = try json(try await ben.waitFor(isEvent("message", ["text": "first"])))
            let second = try json(try await ben.waitFor(isEvent("message", ["text": "waves"])))
            #expect(first["id"] as? Int == ackA["id"] as? Int)
            #expect(second["id"] as? Int == ackB["id"] as? Int)
            #expect((second["id"] as! Int) > (first["id"] as! Int))
            #expect(first["from"] as? String == "ann")
            #expect(first["room"] as? String == "#general")
            #expect(first["kind"] as? String == "normal")
            #expect(second["kind"] as? String == "action")
            let ts = try #require(first["ts"] as? String)
            #expect(ts.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
            #expect(ts == ackA["ts"] as? String)
            // The sender gets an ack, not its own message back.
            let annGotOwnMessage = try await ann.lines.contains { $0.contains(#""type":"message""#) }
            #expect(!annGotOwnMessage)
        }
    }

    @Test("private messages, join, part, nick, who, rooms, topic and ping")
    func requests() async throws {
        try await TestServer.run { server in
            let ann = try await server.jsonUser("ann")
            let ben = try await server.jsonUser("ben")
            try await ann.send(##"{"type":"send","to":"BEN","text":"psst","ref":"p"}"##)
            let pm = try json(try await ben.waitFor(isEvent("message", ["text": "psst"])))
            #expect(pm["to"] as? String == "ben")
            #expect(pm["room"] == nil)
            try await ann.waitFor(isEvent("ack", ["ref": "p"]))

            try await ann.send(##"{"type":"join","room":"#ops","ref":"j"}"##)
            try await ann.waitFor(isEvent("joined", ["room": "#ops", "nick": "ann"]))
            try await ben.send(##"{"type":"join","room":"#ops"}"##)
            try await ann.waitFor(isEvent("joined", ["room": "#ops", "nick": "ben"]))
            try await ben.send(##"{"type":"topic","room":"#ops","text":"deploys"}"##)
            try await ann.waitFor(isEvent("topic", ["room": "#ops", "text": "deploys", "by": "ben"]))
            try await ann.send(##"{"type":"who","room":"#ops","ref":"w"}"##)
            let who = try json(try await ann.waitFor(isEvent("members", ["room": "#ops"])))
            #expect(who["nicks"] as? [String] == ["ann", "ben"])
            try await ann.send(##"{"type":"rooms"}"##)
            let rooms = try json(try await ann.waitFor(isEvent("rooms")))["rooms"] as? [[String: Any]]
            #expect(rooms?.map { $0["name"] as? String } == ["#general", "#ops"])
            #expect(rooms?.last?["topic"] as? String == "deploys")
            #expect(rooms?.last?["members"] as? Int == 2)
            try await ben.send(##"{"type":"nick","nick":"benny"}"##)
            try await ann.waitFor(isEvent("nick", ["from": "ben", "to": "benny"]))
            try await ben.send(##"{"type":"part","room":"#ops","reason":"lunch"}"##)
            try await ann.waitFor(isEvent("left", ["room": "#ops", "nick": "benny", "cause": "part", "reason": "lunch"]))
            try await ann.send(##"{"type":"ping","ref":"42"}"##)
            try await ann.waitFor(isEvent("pong", ["ref": "42"]))
        }
    }

    @Test("a JSON client slower than the greeting window is still served in JSON after the greeting")
    func slowJSONClient() async throws {
        try await TestServer.run(configure: { $0.limits.greetingWindow = .milliseconds(50) }) { server in
            let slow = try await TestClient.connect(port: server.port)
            #expect(try await slow.nextLine() == "*** Welcome to Parley on test.parley.")
            #expect(try await slow.nextLine() == "*** Choose a nickname:")
            try await slow.send(##"{"type":"hello","version":1,"nick":"tortoise"}"##)
            try await slow.waitFor(isEvent("welcome", ["nick": "tortoise"]))
            try await slow.send(##"{"type":"ping","ref":"p"}"##)
            try await slow.waitFor(isEvent("pong", ["ref": "p"]))
            for line in try await slow.lines.dropFirst(2) { _ = try json(line) }
        }
    }

    @Test("refusals are error events with a stable code and the request's ref")
    func errors() async throws {
        try await TestServer.run { server in
            let early = try await TestClient.connect(port: server.port)
            try await early.send(##"{"type":"send","room":"#general","text":"too soon","ref":"r0"}"##)
            try await early.waitFor(isEvent("error", ["code": "not_registered", "ref": "r0"]))
            try await early.send(##"{"type":"hello","version":2,"nick":"x","ref":"v"}"##)
            try await early.waitFor(isEvent("error", ["code": "unsupported_version", "ref": "v"]))
            _ = try await server.textUser("taken")
            try await early.send(##"{"type":"hello","version":1,"nick":"TAKEN","ref":"t"}"##)
            try await early.waitFor(isEvent("error", ["code": "nick_taken", "ref": "t"]))
            try await early.send(##"{"type":"hello","version":1,"nick":"1bad","ref":"i"}"##)
            try await early.waitFor(isEvent("error", ["code": "invalid_nick", "ref": "i"]))
            try await early.send(##"{"type":"hello","version":1,"nick":"eve"}"##)
            try await early.waitFor(isEvent("welcome", ["nick": "eve"]))
            for (request, code) in [
                (##"{"type":"hello","version":1,"nick":"again","ref":"x"}"##, "already_registered"),
                (##"{"type":"dance","ref":"x"}"##, "unknown_type"),
                (##"{"type":"send","room":"#general","ref":"x"}"##, "bad_request"),
                (##"{"type":"send","room":"#nowhere","text":"hi","ref":"x"}"##, "no_such_room"),
                (##"{"type":"join","room":"general","ref":"x"}"##, "invalid_room"),
                (##"{"type":"who","room":"#nowhere","ref":"x"}"##, "no_such_room"),
                (##"{"type":"send","to":"ghost","text":"boo","ref":"x"}"##, "no_such_nick"),
            ] {
                try await early.send(request)
                try await early.waitFor(isEvent("error", ["code": code, "ref": "x"]))
            }
            try await early.send("this is not json")
            try await early.waitFor(isEvent("error", ["code": "bad_request"]))
        }
    }

    @Test("hello with join_general false starts in no room (a client coming back to the rooms it was in); the default joins #general")
    func helloWithoutGeneral() async throws {
        try await TestServer.run { server in
            let watcher = try await server.textUser("watcher")
            let bot = try await TestClient.connect(port: server.port)
            try await bot.send(#"{"type":"hello","version":1,"nick":"bot","join_general":false}"#)
            try await bot.waitFor(isEvent("welcome", ["nick": "bot"]))
            try await bot.send(##"{"type":"join","room":"#side","ref":"j"}"##)
            try await bot.waitFor { $0.contains(#""type":"members""#) && $0.contains(##""room":"#side""##) }
            let botGotGeneral = try await bot.lines.contains { $0.contains(##""room":"#general""##) }
            #expect(!botGotGeneral)
            try await watcher.send("/who #general")
            let members = try await watcher.waitFor { $0.hasPrefix("*** In #general") }
            #expect(!members.contains("bot"))
            #expect(try await !watcher.lines.contains("*** bot joined #general"))
        }
    }

    @Test("a text user and a JSON user in one room see each other, each in their own format only")
    func mixedModes() async throws {
        try await TestServer.run { server in
            let text = try await server.textUser("nc_user")
            let bot = try await server.jsonUser("bot")
            try await text.waitFor { $0 == "*** bot joined #general" }
            try await text.send("hello bot")
            let message = try json(try await bot.waitFor(isEvent("message", ["text": "hello bot"])))
            #expect(message["from"] as? String == "nc_user")
            try await bot.send(##"{"type":"send","room":"#general","text":"hello human"}"##)
            try await text.waitFor { $0.hasSuffix("] <bot> hello human") }
            try await bot.send(##"{"type":"send","to":"nc_user","text":"private hi"}"##)
            try await text.waitFor { $0.hasSuffix("] -> (private) <bot> private hi") }
            try await text.send("/msg bot back at you")
            try await bot.waitFor(isEvent("message", ["to": "bot", "from": "nc_user", "text": "back at you"]))
            try await text.send("/quit gone")
            try await bot.waitFor(isEvent("left", ["nick": "nc_user", "cause": "quit"]))
            // The nc user never saw JSON; every line the bot got is a JSON object (after the text greeting
            // that a loaded machine may send when the bot's hello comes later than the greeting window).
            let seenByText = try await text.waitForClose()
            // Not `#expect(try await !text.waitForClose().contains { … })`, as this test had: with that line here,
            // the next closure the test ran returned the opposite Bool (a `prefix(while:)` count gave 9 of 9 JSON
            // lines as greeting, and the same expression in a `print` right after gave 0). A suspected miscompile
            // (Swift 6.3.1, debug build; a small reproduction outside this test did not show it), and what made
            // this test fail now and then on loaded machines: its `drop(while:)` kept a greeting whose bytes were
            // right. With the check out of the macro it does not happen, and the count below would show it if it did.
            let textSawJSON = seenByText.contains { $0.hasPrefix("{") }
            #expect(!textSawJSON)
            let transcript = try await bot.lines
            let greeting = transcript.prefix(while: { $0.hasPrefix("*** ") }).count
            #expect(greeting == 0 || greeting == 2, "a greeting is its two lines or none, not \(greeting): \(transcript.map(\.debugDescription))")
            let bad = transcript.dropFirst(greeting).filter { (try? json($0)) == nil }
            #expect(
                bad.isEmpty,
                "not JSON: \(bad.map(\.debugDescription)) (first bytes: \(bad.map { Array($0.utf8.prefix(6)) })) of \(transcript.map(\.debugDescription))"
            )
        }
    }
}
