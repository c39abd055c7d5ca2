import Foundation
import NIOConcurrencyHelpers
import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyServer
import Testing

/// One hostile client at a time, doing what was once enough to freeze delivery for everyone (for tens of
/// seconds), while two other users talk: every one of their messages must arrive promptly.
///
/// "Promptly" is a second on a quiet machine with the release build (docs/PERFORMANCE.md has the numbers); here
/// the debug build shares two cores with the whole suite, so the bound is `beatBound`.
@Suite("Hostile clients do not stall the others")
struct StressTests {
    static let beatBound: Duration = .seconds(3)

    /// alice says numbered lines, each once bob has the one before, for as long as `attack` runs (and at
    /// least twenty): each must reach bob within `beatBound`.
    static func talk(alice: TestClient, bob: TestClient, during attack: @escaping @Sendable () async throws -> Void) async throws {
        let attacking = NIOLockedValueBox(true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await attack()
                attacking.withLockedValue { $0 = false }
            }
            var index = 0
            while index < 20 || attacking.withLockedValue({ $0 }) {
                index += 1
                let sent = ContinuousClock.now
                try await alice.send("beat \(index)")
                try await bob.waitFor(timeout: .seconds(10)) { [index] in $0.hasSuffix("<alice> beat \(index)") }
                #expect(sent.duration(to: .now) < beatBound, "beat \(index)")
            }
            try await group.waitForAll()
        }
    }

    /// Flood control is off, so that neither the attacker's lines nor the beats are paced: what is measured is
    /// what the server does with the lines (`chargedPerTarget` tests the pacing).
    static func unpaced(_ configuration: inout ServerConfiguration) {
        configuration.limits.flood = .init(burst: 100_000, perSecond: 100_000)
    }

    @Test("a MODE line of thousands of changes, fifteen times over: others' messages still arrive promptly")
    func modeFlood() async throws {
        try await TestServer.run(configure: Self.unpaced) { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let attacker = try await IRCTests.ircUser("attacker", port: server.ircPort)
            try await attacker.send("JOIN #m")
            try await attacker.waitFor { $0.contains(" 366 attacker #m ") }
            let line = "MODE #m " + String(repeating: "+t-t", count: 1075)
            try await Self.talk(alice: alice, bob: bob) {
                for _ in 1...15 { try await attacker.send(line) }
            }
            // Each line made at most MODES changes, and said so.
            try await attacker.send("PING :done")
            try await attacker.waitFor { $0.hasSuffix(":done") }
            let said = try await attacker.lines
            #expect(said.filter { $0.contains(" MODE #m ") }.count <= 15 * IRCCodec.maximumModes)
            #expect(said.contains { $0.contains("At most \(IRCCodec.maximumModes) mode changes a line") })
        }
    }

    @Test("a PRIVMSG to thousands of comma targets is cut to TARGMAX with one 407; others' messages still arrive")
    func commaTargets() async throws {
        try await TestServer.run(configure: Self.unpaced) { server in
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let victim = try await IRCTests.ircUser("v", port: server.ircPort)
            let attacker = try await IRCTests.ircUser("attacker", port: server.ircPort)
            let targets = Array(repeating: "v", count: 1500).joined(separator: ",")
            try await Self.talk(alice: alice, bob: bob) {
                for _ in 1...5 { try await attacker.send("PRIVMSG \(targets) :x") }
            }
            try await attacker.send("PING :done")
            try await attacker.waitFor { $0.hasSuffix(":done") }
            let refusals = try await attacker.lines.filter { $0.hasPrefix(":test.parley 407 attacker v :Too many targets") }
            #expect(refusals.count == 5)
            try await victim.send("PING :counted")
            try await victim.waitFor { $0.hasSuffix(":counted") }
            let received = try await victim.lines.filter { $0.hasSuffix("PRIVMSG v :x") }
            #expect(received.count == 5 * IRCCodec.maximumTargets)
        }
    }

    @Test("three connections asking for long histories over and over: others' messages still arrive promptly")
    func historyFlood() async throws {
        try await TestServer.run(configure: {
            $0.historyOnJoin = 0
            $0.limits.flood = .init(burst: 100_000, perSecond: 100_000)
            $0.limits.sendQueueBytes = 64 * 1024 * 1024
        }) { server in
            let filler = try await server.jsonUser("filler")
            let big = String(repeating: "h", count: 1000)
            for batch in 0..<10 {
                let lines = (0..<50).map { ##"{"type":"send","room":"#general","text":"\##(big)","ref":"f\##(batch)-\##($0)"}"## }
                try await filler.sendRaw(Array((lines.joined(separator: "\n") + "\n").utf8))
            }
            try await filler.waitFor(timeout: .seconds(30), isEvent("ack", ["ref": "f9-49"]))
            // (That each read is off the ordered path is shown exactly, with a read that never ends, in
            // PublisherTests; here the real store and sockets carry the load.)
            let alice = try await server.textUser("alice")
            let bob = try await server.textUser("bob")
            let readers = try await withThrowingTaskGroup(of: TestClient.self) { group in
                for index in 0..<3 { group.addTask { try await server.jsonUser("reader\(index)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await Self.talk(alice: alice, bob: bob) {
                for reader in readers {
                    let requests = (0..<13).map { ##"{"type":"history","room":"#general","limit":500,"ref":"r\##($0)"}"## }
                    try await reader.sendRaw(Array((requests.joined(separator: "\n") + "\n").utf8))
                }
            }
            // Every reader got every answer, in the order asked, each a full page.
            for reader in readers {
                for index in 0..<13 {
                    let page = try json(try await reader.waitFor(timeout: .seconds(60), isEvent("history", ["ref": "r\(index)"])))
                    #expect((page["messages"] as? [Any])?.count == 500)
                }
            }
        }
    }

    @Test("flood control charges for the work a line causes: four lines of four targets spend a burst of fifteen")
    func chargedPerTarget() async throws {
        try await TestServer.run { server in
            _ = try await IRCTests.ircUser("a", port: server.ircPort)
            _ = try await IRCTests.ircUser("b", port: server.ircPort)
            let sender = try await IRCTests.ircUser("sender", port: server.ircPort)
            for _ in 1...4 { try await sender.send("PRIVMSG a,b,a,b :hi") }
            try await sender.waitFor { $0.contains("You are sending too fast") }
            // One target a line, four lines: no warning (a fresh connection, the same burst).
            let calm = try await IRCTests.ircUser("calm", port: server.ircPort)
            for _ in 1...4 { try await calm.send("PRIVMSG a :hi") }
            try await calm.send("PING :end")
            try await calm.waitFor { $0.hasSuffix(":end") }
            #expect(try await !calm.lines.contains { $0.contains("You are sending too fast") })
        }
    }
}
