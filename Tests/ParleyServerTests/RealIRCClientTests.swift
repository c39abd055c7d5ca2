import Foundation
import NIOCore
import Testing

/// A real IRC client from Debian against the IRC front door: sic (package `sic`), which reads commands on
/// stdin and prints every line from the server on stdout, so it runs as a plain subprocess with pipes.
/// `scripts/test` installs it; when it is missing the test fails rather than skips, so CI cannot lose it quietly.
///
/// sic prints each line as `<where, padded to 12> : <date time> <what>`: `<nick> text` for a PRIVMSG (where
/// is its target: the channel, or sic's own nick for a private message) and `>< COMMAND (params): text` for
/// anything else. Commands: `:j #chan` joins, `:s #chan` sets where plain lines go, `:m target text` sends a
/// message, and any other `:`-line goes to the server as it is.
///
/// Its input is a pseudo-terminal, as for a user at a prompt, not a pipe: sic waits in select() and then
/// reads with stdio, so of two lines that reach a pipe together the second stays in stdio's buffer until
/// more input comes. A terminal hands over one line per read.
@Suite("A real IRC client (sic)")
struct RealIRCClientTests {
    static let sic = "/usr/bin/sic"

    @Test("sic registers, joins #general, and talks with a text user in rooms and in private")
    func conversation() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.sic) else {
            throw TestFailure("\(Self.sic) is missing: run scripts/test, which installs it (or apt-get install sic)")
        }
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let sic = try ParleyProcess(
                ["-h", "127.0.0.1", "-p", "\(server.ircPort)", "-n", "sicuser"], input: .terminal,
                executable: URL(fileURLWithPath: Self.sic)
            )
            defer {
                if !sic.hasEnded { sic.signal(SIGKILL) }
                try? sic.closeInput()
            }
            let out = sic.output

            // sic sends NICK and USER; Parley welcomes it; it joins #general (which also makes it sic's default).
            try await out.waitFor { $0.contains(">< 001 (sicuser): Welcome to Parley") }
            try sic.type(":j #general")
            try await out.waitFor { $0.contains(">< JOIN (#general)") && $0.hasPrefix("sicuser ") }
            try await out.waitFor { $0.contains(">< 366 (sicuser #general): End of /NAMES list.") }
            try await alice.waitFor { $0 == "*** sicuser joined #general" }
            try sic.type("hello from sic")
            try await alice.waitFor { $0.hasSuffix("] <sicuser> hello from sic") }

            try await alice.send("hello from alice")
            try await out.waitFor { $0.hasPrefix("#general ") && $0.hasSuffix(" <alice> hello from alice") }
            try await alice.send("/msg sicuser psst")
            try await out.waitFor { $0.hasPrefix("sicuser ") && $0.hasSuffix(" <alice> psst") }
            try sic.type(":m alice back at you")
            try await alice.waitFor { $0.hasSuffix("-> (private) <sicuser> back at you") }

            // A JOIN sic sends itself, and a room both are in besides #general.
            try sic.type(":j #dev")
            try await out.waitFor { $0.contains(">< 366 (sicuser #dev): End of /NAMES list.") }
            try await alice.send("/join #dev")
            try await out.waitFor { $0.hasPrefix("alice ") && $0.contains(">< JOIN (#dev)") }
            try sic.type(":m #dev in dev")
            try await alice.waitFor { $0.hasSuffix("<sicuser> in dev") }

            // QUIT goes to the server as it is; the server closes the link and sic exits.
            try sic.type(":QUIT :bye")
            try await alice.waitFor { $0.hasPrefix("*** sicuser left ") && $0.hasSuffix("(quit: bye)") }
            do {
                _ = try await sic.waitForExit(timeout: .seconds(5))
            } catch {
                throw TestFailure("sic did not exit after QUIT; it printed:\n\(out.text)")
            }
            // The log is read on a thread of its own, so it may lag the exit a little: wait for it.
            try await sic.log.waitFor(timeout: .seconds(5)) { $0.contains("remote host closed connection") }
        }
    }
}
