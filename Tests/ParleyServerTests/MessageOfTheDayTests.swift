import Foundation
import NIOCore
import ParleyCore
import ParleyServer
import Testing

/// The message of the day (`--motd FILE`): every door shows it after the welcome; SIGHUP reads it again.
@Suite("Message of the day")
struct MessageOfTheDayTests {
    @Test("text, JSON and IRC clients are shown it after the welcome, cleaned; IRC's MOTD asks again; without one, JSON gets nothing")
    func everyDoor() async throws {
        let motd = try temporaryFile("Welcome to the class chat.\n\nBe kind \u{1B}[31mplease\r\n")
        try await TestServer.run(configure: { $0.motdFile = motd }) { server in
            let text = try await TestClient.connect(port: server.port)
            try await text.send("ana")
            try await text.waitFor { $0.hasPrefix("*** Hello ana!") }
            #expect(try await text.nextLine() == "*** Welcome to the class chat.")
            #expect(try await text.nextLine() == "***  ")
            #expect(try await text.nextLine() == "*** Be kind please")
            let program = try await server.jsonUser("bot")
            let event = try json(try #require(try await program.lines.first { $0.contains(#""type":"motd""#) }))
            #expect(event["lines"] as? [String] == ["Welcome to the class chat.", " ", "Be kind please"])
            let irc = try await IRCTests.ircUser("irc", port: server.ircPort)
            #expect(try await irc.lines.contains(":test.parley 372 irc :- Welcome to the class chat."))
            try await irc.send("MOTD")
            try await irc.waitFor { $0 == ":test.parley 375 irc :- test.parley Message of the day -" }
            try await irc.waitFor { $0 == ":test.parley 372 irc :- Be kind please" }
            try await irc.waitFor { $0 == ":test.parley 376 irc :End of /MOTD command." }
        }
        try await TestServer.run { server in
            let program = try await server.jsonUser("bot")
            try await program.send(#"{"type":"ping","ref":"p"}"#)
            try await program.waitFor(isEvent("pong", ["ref": "p"]))
            let programGotMOTD = try await program.lines.contains { $0.contains(#""type":"motd""#) }
            #expect(!programGotMOTD)
            let irc = try await IRCTests.ircUser("irc", port: server.ircPort)
            #expect(try await irc.lines.contains { $0.hasPrefix(":test.parley 372 irc :- Rooms are IRC channels") })
        }
    }

    @Test("SIGHUP reads the file again: the next client sees the new message, and the log says so")
    func reload() async throws {
        let motd = try temporaryFile("the first message\n")
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--motd", motd])
        let before = try await TestClient.connect(port: port)
        try await before.send("early")
        try await before.waitFor { $0 == "*** the first message" }
        try "the second message\n".write(toFile: motd, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("message of the day reloaded") && $0.contains("lines=1") }
        let after = try await TestClient.connect(port: port)
        try await after.send("late")
        try await after.waitFor { $0 == "*** the second message" }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }
}
