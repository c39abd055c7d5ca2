import Foundation
import ParleyCore
@testable import ParleyServer
import Testing

/// The IRC command table's metadata is what the door enforces, for every entry: checked over a real socket, so
/// a command added to the table is covered without a test of its own.
@Suite("IRC command table")
struct IRCCommandTableTests {
    @Test("before registration, every command not marked for it gets 451; unknown ones too")
    func beforeRegistration() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.ircPort)
            let refused = IRCSession.commands.filter { !$0.value.beforeRegistration }.keys.sorted()
            #expect(refused.contains("PRIVMSG") && !refused.contains("NICK"))
            for command in refused + ["BOGUS"] {
                try await client.send("\(command) x y z")
                try await client.waitFor { $0 == ":test.parley 451 * \(command) :You have not registered" }
            }
        }
    }

    @Test("registered, every command sent with too few parameters gets 461 and does nothing else")
    func tooFewParameters() async throws {
        try await TestServer.run { server in
            let client = try await IRCTests.ircUser("tabler", port: server.ircPort)
            let needy = IRCSession.commands.filter { $0.value.minimumParameters > 0 }
            #expect(needy.count > 10)
            for (command, entry) in needy.sorted(by: { $0.key < $1.key }) {
                // One parameter short (PASS and USER, once registered, are 462 whatever they carry: checked after).
                let params = Array(repeating: "p", count: entry.minimumParameters - 1).joined(separator: " ")
                try await client.send(params.isEmpty ? command : "\(command) \(params)")
                try await client.waitFor { $0 == ":test.parley 461 tabler \(command) :Not enough parameters" }
            }
            try await client.send("USER a b c d")
            try await client.waitFor { $0 == ":test.parley 462 tabler :You may not reregister" }
            try await client.send("PING :end")
            try await client.waitFor { $0 == ":test.parley PONG test.parley :end" }
            // Nothing but the 461s, the 462 and the PONG came (no command ran on too few parameters).
            let lines = try await client.lines.drop { !$0.contains(" 461 tabler ") }
            #expect(lines.allSatisfy { $0.contains(" 461 tabler ") || $0.contains(" 462 tabler ") || $0.contains(" PONG ") }, "\(Array(lines))")
        }
    }

    @Test("operator-only commands get 481 from anyone else")
    func operatorOnly() async throws {
        try await TestServer.run { server in
            let client = try await IRCTests.ircUser("plainuser", port: server.ircPort)
            let guarded = IRCSession.commands.filter { $0.value.operatorOnly }.keys.sorted()
            #expect(guarded == ["KILL"])
            for command in guarded {
                try await client.send("\(command) somebody :why")
                try await client.waitFor { $0 == ":test.parley 481 plainuser :Permission Denied- You're not an IRC operator" }
            }
        }
    }
}
