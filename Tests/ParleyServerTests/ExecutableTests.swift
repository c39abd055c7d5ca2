import Foundation
import NIOCore
import Testing

@Suite("The parley executable")
struct ExecutableTests {
    @Test("SIGTERM: every client is told, queues flush, exit status 0 even with a client that does not read")
    func gracefulShutdown() async throws {
        let (server, port) = try await ParleyProcess.serve([
            "--console", "off", "--shutdown-grace", "3", "--flood-burst", "100000", "--flood-rate", "100000",
            "--send-queue-bytes", "100000000",
        ])
        let text = try await TestServer.textUser("alice", port: port)
        let json = try await TestServer.jsonUser("bob", port: port)
        let stuck = try await TestServer.textUser("stuck", port: port, options: .init(receiveBuffer: 4096))
        try await stuck.channel.setOption(.autoRead, value: false).get()
        let sender = try await TestServer.textUser("sender", port: port)
        let payload = String(repeating: "q", count: 1000)
        for batch in 0..<20 {
            try await sender.sendRaw(Array((0..<200).map { "\(batch)-\($0) \(payload)\n" }.joined().utf8))
        }
        try await text.waitFor(timeout: .seconds(30)) { $0.hasSuffix("<sender> 19-199 \(payload)") }
        // Both readers have everything before the signal: on a loaded machine the JSON one could otherwise still be
        // megabytes behind when the grace runs out, and be closed before its goodbye.
        try await json.waitFor(timeout: .seconds(30), isEvent("message", ["text": "19-199 \(payload)"]))

        server.signal(SIGTERM)
        try await text.waitFor { $0 == "*** The server is shutting down. Goodbye!" }
        let said = try await text.waitForClose()
        // Nobody is told that everyone else is leaving too.
        let toldOfLeaving = said.contains { $0.contains(" left #general") }
        #expect(!toldOfLeaving, "\(said.suffix(5))")
        try await json.waitFor(isEvent("shutdown", ["reason": "server shutting down"]))
        try await json.waitForClose()
        #expect(try await server.waitForExit(timeout: .seconds(10)) == 0)
        #expect(server.log.text.contains("stopped"))
        await stuck.close()
    }

    @Test("the console: a typed line is a server notice, /say, /who, /kick, room moderation, and exit stops the server gracefully")
    func console() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "auto"], input: .terminal)
        try await server.output.waitFor { $0.hasPrefix("*** Parley console") }
        let alice = try await TestServer.textUser("alice", port: port)
        let bot = try await TestServer.jsonUser("bot", port: port)

        try server.type("maintenance at noon")
        try await alice.waitFor { $0.hasSuffix("] *** server notice: maintenance at noon") }
        let notice = try json(try await bot.waitFor(isEvent("message", ["kind": "notice"])))
        #expect(notice["text"] as? String == "maintenance at noon")
        #expect(notice["from"] == nil)
        try server.type("/say #general in the room")
        try await alice.waitFor { $0.hasSuffix("] *** server notice: in the room") }
        try server.type("/who")
        try await server.output.waitFor { $0 == "*** Online (2): alice, bot" }
        try server.type("/kick bot misbehaving")
        try await bot.waitFor(isEvent("error", ["code": "kicked"]))
        try await bot.waitForClose()
        try await alice.waitFor { $0 == "*** bot left #general (kicked by the server operator: misbehaving)" }
        // The console has every room operator's power, in any room.
        try server.type("/mute #general alice 5m")
        try await alice.waitFor { $0.hasPrefix("*** the server operator muted alice in #general until ") }
        try server.type("/bans #general")
        try await server.output.waitFor { $0 == "*** Bans and mutes in #general (1):" }
        try server.type("/unmute #general alice")
        try await alice.waitFor { $0 == "*** the server operator unmuted alice in #general" }
        try server.type("/frobnicate")
        try await server.output.waitFor { $0.hasPrefix("!!! Unknown command /frobnicate") }

        try server.type("exit")
        try await alice.waitFor { $0.hasPrefix("*** The server is shutting down") }
        try await alice.waitForClose()
        #expect(try await server.waitForExit() == 0)
    }

    @Test("the console on a terminal: log lines go above the input line, which keeps what the operator typed; /topic; exit restores the terminal")
    func consoleOnTerminal() async throws {
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("parley-console-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: files) }
        let tmux = try await Tmux.start(
            "\(ParleyProcess.executable.path) serve --host 127.0.0.1 --port 0 --irc-port 0 --no-http --data-dir \(files.path)/data "
                + "--server-name term.parley; stty -a > \(files.path)/stty.tmp; mv \(files.path)/stty.tmp \(files.path)/stty",
            width: 150, height: 30
        )
        do {
            let started = try await tmux.waitForScreen("listening") { $0.contains { $0.contains("door=lines") && $0.contains("listening") } }
            let listening = try #require(started.first { $0.contains("door=lines") })
            let port = try #require(listening.components(separatedBy: "address=127.0.0.1:").last.flatMap { Int($0.prefix(while: \.isNumber)) })
            try await tmux.type("half typed")
            try await tmux.waitForScreen("the typed text") { $0.contains("> half typed") }
            // A connection logs a line: it goes above the input line, which still holds what was typed.
            let alice = try await TestServer.textUser("alice", port: port)
            try await tmux.waitForScreen("the log line above the input line") { rows in
                let filled = rows.filter { !$0.isEmpty }
                return filled.last == "> half typed" && filled.dropLast().contains { $0.contains("connected") && $0.contains("peer=") }
            }
            try await tmux.type(" and more")
            try await tmux.press("Enter")
            try await alice.waitFor { $0.hasSuffix("] *** server notice: half typed and more") }
            try await tmux.type("/topic #general set at the console")
            try await tmux.press("Enter")
            try await alice.waitFor { $0 == "*** Topic of #general: set at the console (set by the server operator)" }
            // A command word without its slash is not announced by mistake.
            try await tmux.type("kick alice")
            try await tmux.press("Enter")
            try await tmux.waitForScreen("the question") { $0.contains { $0.hasPrefix("!!! Not sent: did you mean /kick alice?") } }
            try await tmux.type("exit")
            try await tmux.press("Enter")
            try await alice.waitFor { $0.hasPrefix("*** The server is shutting down") }
            let stty = try await waitForFile(files.appendingPathComponent("stty"))
            for setting in ["icanon", "echo"] {
                #expect(stty.range(of: "(^|\\s)\(setting)(\\s|$)", options: .regularExpression) != nil, "\(setting) not restored")
            }
            let aliceSawKick = try await alice.lines.contains { $0.contains("kick alice") }
            #expect(!aliceSawKick)
        } catch {
            await tmux.kill()
            throw error
        }
        await tmux.kill()
    }

    @Test("a console terminal that stops reading never stalls the chat: log lines are dropped, not waited for")
    func stalledConsoleTerminal() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-stalled-\(UUID().uuidString)")
        let server = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--no-irc", "--no-http", "--data-dir", data.path, "--console", "on", "--log-level", "debug"],
            input: .sharedTerminal, dataDirectory: data
        )
        let listening = try await server.readTerminal { $0.contains("listening") && $0.contains("door=lines ") }
        let port = try #require(listening.components(separatedBy: "address=127.0.0.1:").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        // From here on nobody reads the terminal. Hundreds of connections, each logged, fill it up.
        let alice = try await TestServer.textUser("alice", port: port)
        let bob = try await TestServer.textUser("bob", port: port)
        for round in 1...4 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let visitor = try await TestServer.textUser("v\(round)x\(index)", port: port)
                        try await visitor.send("/quit")
                        _ = try await visitor.waitForClose()
                    }
                }
                try await group.waitForAll()
            }
            // The chat goes on meanwhile.
            try await alice.send("still talking \(round)")
            try await bob.waitFor { $0.hasSuffix("<alice> still talking \(round)") }
        }
        server.signal(SIGTERM)
        try await bob.waitFor { $0.hasPrefix("*** The server is shutting down") }
        #expect(try await server.waitForExit() == 0)
    }

    #if os(Linux)  // reads /proc, and the trim is glibc's
    @Test("after a crowd of connections leaves, the server gives its memory back")
    func memoryAfterStorm() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--history", "0", "--log-level", "debug"])
        func rss() throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(server.pid)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        let idle = try rss()
        var crowd: [TestClient] = []
        for start in stride(from: 0, to: 1000, by: 100) {
            crowd += try await withThrowingTaskGroup(of: TestClient.self) { group in
                for index in start..<start + 100 { group.addTask { try await TestServer.textUser("c\(index)", port: port) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        let crowded = try rss()
        let trimsBefore = server.log.text.components(separatedBy: "memory trimmed").count
        for client in crowd { await client.close() }
        // The crowd leaving is a storm of its own (each departure is told to everyone still there); within a
        // few looks (every 5 s) the trimmer gives back what it freed — in one trim, or two when the first came
        // while the last were still leaving. Its log lines say how much; at least a quarter of what the crowd
        // took comes back (without the trimmer, none does).
        func trims() -> [(before: Int, after: Int)] {
            server.log.text.split(separator: "\n").filter { $0.contains("memory trimmed") }.dropFirst(trimsBefore - 1).compactMap { line in
                func kibibytes(_ key: String) -> Int? {
                    line.components(separatedBy: "\(key)=").dropFirst().first.flatMap { Int($0.prefix(while: \.isNumber)) }
                }
                guard let before = kibibytes("rss before"), let after = kibibytes("rss after") else { return nil }
                return (before, after)
            }
        }
        do {
            try await eventually("memory is given back", timeout: .seconds(30)) {
                trims().reduce(0) { $0 + $1.before - $1.after } > (crowded - idle) / 4
            }
        } catch {
            let now = try rss()
            Issue.record("memory was not given back: idle \(idle) kB, crowded \(crowded) kB, now \(now) kB, trims \(trims())")
        }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }
    #endif

    @Test("without a terminal on standard input the console is off")
    func consoleOff() async throws {
        let (server, port) = try await ParleyProcess.serve()
        let alice = try await TestServer.textUser("alice", port: port)
        server.signal(SIGINT)
        try await alice.waitFor { $0.hasPrefix("*** The server is shutting down") }
        #expect(try await server.waitForExit() == 0)
        #expect(!server.output.text.contains("console"))
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: server.dataDirectory.path, isDirectory: &isDirectory))
        #expect(isDirectory.boolValue, "serve creates its --data-dir")
    }

    @Test("--rooms-per-minute: past it, a new room from the same address is refused in words; joining one that exists is not")
    func roomsPerMinute() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--rooms-per-minute", "1"])
        let alice = try await TestServer.textUser("alice", port: port)
        try await alice.send("/join #first")
        try await alice.waitFor { $0.contains("#first") }
        try await alice.send("/join #second")
        try await alice.waitFor { $0.contains("You are creating rooms too fast") }
        try await alice.send("/rooms")
        try await alice.waitFor { $0 == "*** Rooms (2):" }
        let first = try await alice.waitFor { $0.hasPrefix("***   ") }
        let second = try await alice.waitFor { $0.hasPrefix("***   ") }
        #expect([first, second].sorted() == ["***   #first (1 member)", "***   #general (1 member)"])
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test("one log line per connect, registration and disconnect with the peer address, nick and reason; no message bodies")
    func logging() async throws {
        let (server, port) = try await ParleyProcess.serve()
        let alice = try await TestServer.textUser("alice", port: port)
        let bob = try await TestServer.textUser("bob", port: port)
        try await alice.send("the-secret-body-text")
        try await bob.waitFor { $0.hasSuffix("the-secret-body-text") }
        try await alice.send("/quit")
        try await alice.waitForClose()
        let disconnect = try await server.log.waitFor { $0.contains("disconnected") }
        #expect(disconnect.contains("peer=127.0.0.1:"))
        #expect(disconnect.contains("reason=quit"))
        #expect(disconnect.contains("nick=alice"))
        #expect(server.log.lines.contains { $0.contains("nick=bob") && $0.hasSuffix("registered") && $0.contains("peer=127.0.0.1:") })
        #expect(server.log.lines.filter { $0.contains(" connected") && $0.contains("peer=127.0.0.1:") }.count == 2)
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        #expect(!server.log.text.contains("the-secret-body-text"))
    }

    @Test("a port in use is said in words, once, and the exit status is 2")
    func portInUse() async throws {
        let (first, _) = try await ParleyProcess.serve(["--console", "off"])
        let ircLine = try await first.log.waitFor { $0.contains("listening") && $0.contains("door=irc") }
        let ircPort = try #require(ircLine.split(separator: ":").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-port-\(UUID().uuidString)").path
        let second = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--irc-port", "\(ircPort)", "--no-http", "--data-dir", data, "--console", "off"], input: .nullDevice
        )
        #expect(try await second.waitForExit() == 2)
        let log = second.log.text + second.output.text
        #expect(log.components(separatedBy: "port \(ircPort) is in use (another parley?); stop it, or choose another with --irc-port").count == 2, "\(log)")
        #expect(!log.contains("CancellationError") && !log.contains("bind(descriptor") && !log.contains("Error:"), "\(log)")
        first.signal(SIGTERM)
        #expect(try await first.waitForExit() == 0)
    }

    @Test("--log-format json: every line parses; connect, registration and disconnect lines carry the door, the peer, a connection id and the nick")
    func jsonLogs() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-jsonlog-\(UUID().uuidString)").path
        let server = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--no-irc", "--no-http", "--data-dir", data, "--console", "off", "--log-format", "json"],
            input: .nullDevice
        )
        let listening = try json(try await server.log.waitFor { $0.contains(#""message":"listening""#) })
        let port = try #require((listening["address"] as? String)?.split(separator: ":").last.flatMap { Int($0) })
        #expect(listening["door"] as? String == "lines")
        let alice = try await TestServer.textUser("alice", port: port)
        try await alice.send("/quit")
        _ = try await alice.waitForClose()
        let gone = try json(try await server.log.waitFor { $0.contains(#""message":"disconnected""#) })
        #expect(gone["nick"] as? String == "alice")
        #expect(gone["door"] as? String == "lines")
        #expect((gone["peer"] as? String)?.hasPrefix("127.0.0.1:") == true)
        let connected = try json(try #require(server.log.lines.first { $0.contains(#""message":"connected""#) }))
        #expect(connected["conn"] != nil && connected["conn"] as? String == gone["conn"] as? String)
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        try await server.log.waitForEndOfFile()
        for line in server.log.lines { _ = try json(line) }
    }

    @Test("--help of every subcommand lists its flags")
    func help() async throws {
        let serve = try ParleyProcess(["serve", "--help"], input: .nullDevice)
        #expect(try await serve.waitForExit() == 0)
        for flag in ["--host", "--port", "--data-dir", "--log-level", "--max-line-bytes", "--flood-burst", "--flood-rate",
            "--send-queue-bytes", "--registration-timeout", "--shutdown-grace", "--console", "--irc-port", "--no-irc", "--store",
            "--http-port", "--no-http", "--https-port", "--allowed-origin", "--metrics-allow", "--trusted-proxy", "--log-format",
            "--config", "--print-config", "[SIGHUP applies it]"]
        {
            #expect(serve.output.text.contains(flag), "serve --help lacks \(flag)")
        }
        for (arguments, complaint) in [
            (["--allowed-origin", "chat.example.org"], "--allowed-origin chat.example.org: an origin is a scheme and a host"),
            (["--metrics-allow", "10.0.0.0/33"], "--metrics-allow 10.0.0.0/33: not an address or a network"),
            (["--http-port", "5000"], "--port and --http-port are both 5000"),
        ] {
            let refused = try ParleyProcess(["serve", "--console", "off"] + arguments, input: .nullDevice)
            #expect(try await refused.waitForExit() != 0)
            #expect(refused.log.text.contains(complaint), "\(refused.log.text)")
        }
        let bench = try ParleyProcess(["bench", "--help"], input: .nullDevice)
        #expect(try await bench.waitForExit() == 0)
        for flag in ["--host", "--port", "--protocol", "--clients", "--rooms", "--senders", "--rate", "--window", "--duration",
            "--payload", "--connect-rate", "--drain", "--pid", "--json"]
        {
            #expect(bench.output.text.contains(flag), "bench --help lacks \(flag)")
        }
        let root = try ParleyProcess(["--help"], input: .nullDevice)
        #expect(try await root.waitForExit() == 0)
        #expect(root.output.text.contains("serve"))
        for command in ["backup", "restore"] {
            let help = try ParleyProcess([command, "--help"], input: .nullDevice)
            #expect(try await help.waitForExit() == 0)
            #expect(help.output.text.contains("--data-dir"), "\(command) --help: \(help.output.text)")
        }
    }
}
