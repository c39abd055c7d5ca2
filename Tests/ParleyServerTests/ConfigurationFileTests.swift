import Foundation
import Testing

/// `parley serve --config FILE`, the environment and `--print-config`, and what SIGHUP changes, on the real
/// executable.
@Suite("Configuration file")
struct ConfigurationFileTests {
    static func longLine(_ bytes: Int) -> String { String(repeating: "x", count: bytes) }

    @Test("the file, PARLEY_ variables and flags are merged in that order; --print-config says where each value came from")
    func merged() async throws {
        let motd = try temporaryFile("from the file's motd\n")
        let config = try temporaryFile("""
            # Parley on the class server
            server-name = "file.parley"   # the flag --server-name beats it
            max-line-bytes = 200
            flood-burst = 30              # PARLEY_FLOOD_BURST beats it
            motd = "\(motd)"
            server-password = "sesame"
            """)
        let environment = ["PARLEY_FLOOD_BURST": "40", "PARLEY_HISTORY": "7"]
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--config", config], environment: environment)
        let client = try await TestClient.connect(port: port)
        try await client.waitFor { $0 == "*** Welcome to Parley on proc.parley." }
        try await client.waitFor { $0 == "*** This server needs a password:" }
        try await client.send("sesame")
        try await client.send("ana")
        try await client.waitFor { $0 == "*** from the file's motd" }
        try await client.send(Self.longLine(300))
        try await client.waitFor { $0.contains("Line too long (300 bytes; the limit is 200)") }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        #expect(server.log.text.contains("settings read") && server.log.text.contains("file=\(config)"))

        let printed = try ParleyProcess(["serve", "--config", config, "--server-name", "flag.parley", "--print-config"], input: .nullDevice, environment: environment)
        #expect(try await printed.waitForExit() == 0)
        try await printed.output.waitForEndOfFile()
        let lines = printed.output.lines
        func line(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) } }
        #expect(line("server-name = \"flag.parley\"")?.hasSuffix("# flag --server-name") == true)
        #expect(line("max-line-bytes = 200")?.hasSuffix("# file \(config), line 3") == true)
        #expect(line("flood-burst = 40")?.hasSuffix("# environment PARLEY_FLOOD_BURST") == true)
        #expect(line("history = 7")?.hasSuffix("# environment PARLEY_HISTORY") == true)
        #expect(line("port = 5000")?.hasSuffix("# default") == true)
        #expect(line("server-password = \"********\"")?.hasSuffix("# file \(config), line 6") == true)
        #expect(!printed.output.text.contains("sesame"))
        #expect(printed.log.text.isEmpty, "print-config starts nothing: \(printed.log.text)")

        // PARLEY_CONFIG names the file when --config does not.
        let fromVariable = try ParleyProcess(["serve", "--print-config"], input: .nullDevice, environment: ["PARLEY_CONFIG": config])
        #expect(try await fromVariable.waitForExit() == 0)
        try await fromVariable.output.waitForEndOfFile()
        #expect(fromVariable.output.lines.contains { $0.hasPrefix("max-line-bytes = 200") })
    }

    @Test("a mistake in the file stops the start, naming the file, the line and a fix; so does a bad variable")
    func refused() async throws {
        for (text, environment, complaint) in [
            ("port = 6000\nfloodrate = 3\n", [:], "line 2: unknown key \"floodrate\"; did you mean \"flood-rate\"?"),
            ("history = 5000\n", [:], "line 1: history = 5000: must be 0 to 1000"),
            ("[irc]\nport = 6667\n", [:], "line 1: irc: there are no sections"),
            ("tls-cert = \"/etc/cert.pem\"\n", [:], "tls-cert (%FILE%, line 1) and --tls-key go together."),
            ("", ["PARLEY_FLOOD_RATE": "fast"], "PARLEY_FLOOD_RATE=fast: flood-rate must be a number"),
        ] {
            let config = try temporaryFile(text)
            let refused = try ParleyProcess(["serve", "--console", "off", "--config", config], input: .nullDevice, environment: environment)
            #expect(try await refused.waitForExit() == 64)
            try await refused.log.waitForEndOfFile()
            let expected = complaint.replacingOccurrences(of: "%FILE%", with: config)
            #expect(refused.log.text.contains(expected), "\(refused.log.text)")
            #expect(!refused.log.text.contains("listening"))
        }
        let missing = try ParleyProcess(["serve", "--config", "/nonexistent/parley.toml"], input: .nullDevice)
        #expect(try await missing.waitForExit() == 64)
        try await missing.log.waitForEndOfFile()
        #expect(missing.log.text.contains("cannot read the configuration file /nonexistent/parley.toml: no such file"))
    }

    @Test("SIGHUP reads the file again: limits apply to new connections, log level at once; a change that needs a restart is named, not applied")
    func reload() async throws {
        let config = try temporaryFile("max-line-bytes = 4096\nlog-level = \"info\"\n")
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--config", config])
        let before = try await TestServer.textUser("before", port: port)
        try "max-line-bytes = 100\nlog-level = \"warning\"\nhistory = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("setting changed") && $0.contains("max-line-bytes: 4096 -> 100") }
        try await server.log.waitFor { $0.contains("only a restart applies it") && $0.contains("history: 50 -> 5") }
        #expect(server.log.lines.contains { $0.contains("setting changed") && $0.contains(#"log-level: "info" -> "warning""#) })

        let after = try await TestServer.textUser("after", port: port)
        try await after.send(Self.longLine(150))
        try await after.waitFor { $0.contains("Line too long (150 bytes; the limit is 100)") }
        // A connection keeps the limits it started with.
        try await before.send(Self.longLine(150))
        try await after.waitFor { $0.hasSuffix("<before> " + Self.longLine(150)) }

        // At warning, the registration of `after` (info) was not logged; the next warning is.
        try "max-line-bytes = 100\nlog-level = \"warning\"\nhistory = 6\n".write(toFile: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("history: 50 -> 6") }
        let loggedAfter = server.log.lines.contains { $0.contains("nick=after") }
        #expect(!loggedAfter)
        #expect(server.log.lines.contains { $0.contains("nick=before") })

        // A broken file keeps everything as it was, and says why.
        try "max-line-bytes = \"big\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("settings not reloaded") && $0.contains("line 1: max-line-bytes must be a whole number") }
        let third = try await TestServer.textUser("third", port: port)
        try await third.send(Self.longLine(150))
        try await third.waitFor { $0.contains("the limit is 100") }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test("SIGHUP: an edit a variable overrides is said to be overridden; a motd key removed clears the message; without --config only the certificate and motd are read")
    func reloadOverridden() async throws {
        let motd = try temporaryFile("the old message\n")
        let config = try temporaryFile("flood-rate = 2\nmotd = \"\(motd)\"\n")
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--config", config], environment: ["PARLEY_FLOOD_RATE": "4"])
        let before = try await TestClient.connect(port: port)
        try await before.send("early")
        try await before.waitFor { $0 == "*** the old message" }
        try "flood-rate = 3\n".write(toFile: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try await server.log.waitFor { $0.contains("setting changed in the file, but PARLEY_FLOOD_RATE sets it and wins") && $0.contains("key=flood-rate") }
        try await server.log.waitFor { $0.contains("message of the day removed") }
        let after = try await TestClient.connect(port: port)
        try await after.send("late")
        try await after.waitFor { $0.hasPrefix("*** In #general") }
        try await after.send("/who")
        try await after.waitFor { $0.hasPrefix("*** Online (2)") }
        #expect(try await !after.lines.contains("*** the old message"))
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)

        let (plain, _) = try await ParleyProcess.serve(["--console", "off"])
        plain.signal(SIGHUP)
        try await plain.log.waitFor { $0.contains("no settings file (--config) to read again") }
        plain.signal(SIGTERM)
        #expect(try await plain.waitForExit() == 0)
    }

    @Test("--irc, --http and --plaintext open what the file closed; --no-tls closes what it opened")
    func inversions() async throws {
        let config = try temporaryFile("no-irc = true\nno-http = true\ntls = true\n")
        let printed = try ParleyProcess(["serve", "--config", config, "--irc", "--http", "--no-tls", "--print-config"], input: .nullDevice)
        #expect(try await printed.waitForExit() == 0, "\(printed.log.text)")
        try await printed.output.waitForEndOfFile()
        for expected in ["no-irc = false", "no-http = false", "tls = false"] {
            #expect(printed.output.lines.contains { $0.hasPrefix(expected) && $0.contains("# flag --") }, "\(expected): \(printed.output.text)")
        }
    }
}
