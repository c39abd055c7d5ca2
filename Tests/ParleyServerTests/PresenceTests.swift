import Foundation
import Testing

@Suite("Join, leave and nick-change notices")
struct PresenceTests {
    @Test("joins, parts with and without reason, quits with a reason and lost connections are announced")
    func notices() async throws {
        try await TestServer.run { server in
            let watcher = try await server.textUser("watcher")
            let bob = try await server.textUser("bob")
            try await watcher.waitFor { $0 == "*** bob joined #general" }
            try await bob.send("/join #side")
            try await bob.waitFor { $0 == "*** In #side (1): @bob" }
            try await watcher.send("/join #side")
            try await bob.waitFor { $0 == "*** watcher joined #side" }
            try await bob.send("/part #side")
            try await watcher.waitFor { $0 == "*** bob left #side" }
            try await bob.send("/join #side")
            try await bob.send("/part #side see you")
            try await watcher.waitFor { $0 == "*** bob left #side (see you)" }
            try await bob.send("/quit off to lunch")
            try await watcher.waitFor { $0 == "*** bob left #general (quit: off to lunch)" }

            let carol = try await server.textUser("carol")
            try await watcher.waitFor { $0 == "*** carol joined #general" }
            await carol.close()
            try await watcher.waitFor { $0 == "*** carol left #general (connection lost)" }
        }
    }

    @Test("a nick change is announced once to everyone sharing a room, and the old nick is free again")
    func nickChange() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let json = try await server.jsonUser("bot")
            try await alice.send("/join #two")
            try await alice.waitFor { $0 == "*** In #two (1): @alice" }
            try await bob.send("/join #two")
            try await alice.waitFor { $0 == "*** bob joined #two" }
            try await bob.send("/nick robert")
            try await alice.waitFor { $0 == "*** bob is now known as robert" }
            try await bob.waitFor { $0 == "*** bob is now known as robert" }
            try await json.waitFor(isEvent("nick", ["from": "bob", "to": "robert"]))
            // Shared two rooms, told once.
            try await alice.send("marker")
            try await bob.waitFor { $0.hasSuffix("<alice> marker") }
            #expect(try await alice.lines.filter { $0.contains("is now known as robert") }.count == 1)
            let newcomer = try await server.textUser("bob")
            try await newcomer.send("I am the new bob")
            try await alice.waitFor { $0.hasSuffix("<bob> I am the new bob") }
        }
    }

    @Test("nobody receives anything for a room after leaving it")
    func nothingAfterLeaving() async throws {
        try await TestServer.run { server in
            let stayer = try await server.textUser("stayer")
            let leaver = try await server.textUser("leaver")
            try await stayer.send("/join #room")
            try await stayer.waitFor { $0 == "*** In #room (1): @stayer" }
            try await leaver.send("/join #room")
            try await stayer.waitFor { $0 == "*** leaver joined #room" }
            try await leaver.send("/part #room")
            try await stayer.waitFor { $0 == "*** leaver left #room" }
            try await stayer.send("/topic #room secret plans")
            try await stayer.send("secret words")
            try await stayer.send("/join #general")
            try await stayer.send("public words")
            try await leaver.waitFor { $0.hasSuffix("<stayer> public words") }
            let seen = try await leaver.lines
            let leaverSawSecret = seen.contains { $0.contains("secret") }
            #expect(!leaverSawSecret)
        }
    }
}
