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
            let aliceLines = try await alice.lines
            #expect(!aliceLines.contains { $0.contains("<alice>") })
        }
    }
}
