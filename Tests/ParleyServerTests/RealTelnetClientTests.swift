import Foundation
import NIOCore
import Testing

/// A real telnet client (Debian's inetutils-telnet, which `scripts/test` installs) in a real terminal (tmux),
/// on the plain-text port, as a person following the README would use it.
@Suite("A real telnet client")
struct RealTelnetClientTests {
    @Test("after Ctrl+C (IP, DO TIMING-MARK) a telnet user still sees the chat and can still talk")
    func ctrlC() async throws {
        guard let telnet = ["/usr/bin/telnet", "/usr/bin/inetutils-telnet"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw TestFailure("telnet is missing: run scripts/test, which installs it (or apt-get install inetutils-telnet)")
        }
        try await TestServer.run { server in
            let tmux = try await Tmux.start("\(telnet) 127.0.0.1 \(server.port)", width: 100, height: 24)
            do {
                try await tmux.waitForScreen("the nickname prompt") { $0.contains("*** Choose a nickname:") }
                try await tmux.type("alice")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("alice in #general") { $0.contains("*** In #general (1): alice") }

                // Ctrl+C: telnet sends IAC IP IAC DO TIMING-MARK and discards all output until the mark is
                // answered. The reply to /who comes after the answer, so it shows only if the server answered.
                try await tmux.press("C-c")
                try await tmux.type("/who")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("the reply to /who after Ctrl+C") { $0.contains("*** Online (1): alice") }

                let bob = try await server.textUser("bob")
                try await bob.send("hello after ctrl-c")
                try await tmux.waitForScreen("bob's message") { $0.contains { $0.hasSuffix("<bob> hello after ctrl-c") } }
                try await tmux.type("still here")
                try await tmux.press("Enter")
                try await bob.waitFor { $0.hasSuffix("<alice> still here") }

                // A second Ctrl+C is answered too.
                try await tmux.press("C-c")
                try await bob.send("and again")
                try await tmux.type("/who")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("the second reply to /who") { $0.contains("*** Online (2): alice, bob") }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }
}
