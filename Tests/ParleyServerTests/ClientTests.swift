import Foundation
import NIOCore
import NIOPosix
import ParleyCore
import ParleyServer
import Testing

@Suite("parley connect")
struct ClientTests {
    // MARK: - Line mode

    @Test("line mode: a conversation with a raw-socket user; end of input leaves cleanly with exit 0")
    func lineModeConversation() async throws {
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 1000, perSecond: 1000) }) { server in
            let bob = try await server.textUser("bob")
            let client = try ParleyProcess(["connect", "127.0.0.1:\(server.port)", "--nick", "liner"], input: .pipe)
            try await client.output.waitFor { $0 == "*** In #general (2): bob, liner" }
            try client.type("hello from line mode")
            try await bob.waitFor { $0.hasSuffix("] <liner> hello from line mode") }
            try await bob.send("hi liner")
            let line = try await client.output.waitFor { $0.contains("<bob> hi liner") }
            #expect(line.range(of: #"^\[\d\d:\d\d\] <bob> hi liner$"#, options: .regularExpression) != nil)
            try client.type("/me waves")
            try client.type("/msg bob psst")
            try client.type("/join #side")
            try client.type("now in side")
            try await client.output.waitFor { $0.hasSuffix("] <- (private to bob) psst") }
            try await bob.waitFor { $0.hasSuffix("] * liner waves") }
            try await bob.waitFor { $0.hasSuffix("] -> (private) <liner> psst") }
            try await bob.send("/join #side")
            try await bob.waitFor { $0.hasSuffix("] <liner> now in side") || $0 == "*** In #side (2): bob, liner" }
            // Many lines, then end of input: every one is delivered before the client leaves.
            for index in 1...50 { try client.type("burst \(index)") }
            try client.closeInput()
            try await bob.waitFor { $0.hasSuffix("<liner> burst 50") || $0.hasSuffix("#side <liner> burst 50") }
            try await bob.waitFor { $0.hasPrefix("*** liner left") && $0.contains("(quit)") }
            #expect(try await client.waitForExit() == 0)
            let bursts = try await bob.lines.filter { $0.contains("<liner> burst ") }.count
            #expect(bursts == 50)
            for printed in client.output.lines { #expect(!printed.contains("\u{1B}")) }
        }
    }

    @Test("line mode: a taken nick, an unreachable server and a bad address exit non-zero with the reason")
    func lineModeErrors() async throws {
        try await TestServer.run { server in
            _ = try await server.textUser("bob")
            let taken = try ParleyProcess(["connect", "127.0.0.1:\(server.port)", "--nick", "BOB"], input: .pipe)
            #expect(try await taken.waitForExit() == 2)
            #expect(taken.log.text.contains("parley: The nickname BOB is taken"))
        }
        // Port 1 on loopback: nothing listens there.
        let unreachable = try ParleyProcess(["connect", "127.0.0.1:1", "--nick", "x"], input: .nullDevice)
        #expect(try await unreachable.waitForExit() == 1)
        #expect(unreachable.log.text.contains("parley: cannot connect to 127.0.0.1:1"))
        // Several servers, none answering: each is named.
        let none = try ParleyProcess(["connect", "127.0.0.1:1,127.0.0.1:2", "--nick", "x"], input: .nullDevice)
        #expect(try await none.waitForExit() == 1)
        #expect(none.log.text.contains("parley: cannot connect to 127.0.0.1:1") && none.log.text.contains("parley: cannot connect to 127.0.0.1:2"))
        let bad = try ParleyProcess(["connect", "host:notaport"], input: .nullDevice)
        #expect(try await bad.waitForExit() != 0)
        #expect(bad.log.text.contains("HOST[:PORT]"))
    }

    @Test("line mode with --json prints the raw protocol events; of several servers, the first that answers is used")
    func lineModeJSON() async throws {
        try await TestServer.run { server in
            // Nothing listens on port 1: the client goes on to the next server.
            let client = try ParleyProcess(["connect", "127.0.0.1:1,127.0.0.1:\(server.port)", "--nick", "bot", "--json"], input: .pipe)
            try await client.output.waitFor(isEvent("members", ["room": "#general"]))
            try client.type("/who")
            // A reply carries the ref of the request it answers.
            try await client.output.waitFor { $0 == #"{"type":"members","ref":"c1","nicks":["bot"]}"# }
            try client.closeInput()
            #expect(try await client.waitForExit() == 0)
            for line in client.output.lines { _ = try json(line) }
        }
    }

    // MARK: - Full screen, in a real terminal emulator

    @Test("full screen: typing survives heavy traffic, Enter sends, resize rewraps, /quit restores the terminal")
    func fullScreen() async throws {
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 1000, perSecond: 1000) }) { server in
            let files = FileManager.default.temporaryDirectory.appendingPathComponent("parley-tmux-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
            let tmux = try await Tmux.start(
                "\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick alice; "
                    + "echo $? > \(files.path)/status; stty -a > \(files.path)/stty"
            )
            do {
                try await tmux.waitForScreen("the status line") { $0.contains { $0.contains(" 1:#general | alice @ test.parley | connected") } }
                #expect(try await tmux.format("#{alternate_on}") == "1")
                let bob = try await server.textUser("bob")
                try await tmux.type("hello wor")
                for index in 1...200 { try await bob.send("traffic \(index)") }
                let busy = try await tmux.waitForScreen("the last traffic line") { $0.contains { $0.hasSuffix("<bob> traffic 200") } }
                #expect(busy.contains("[#general] hello wor"))
                // The message area shows the latest traffic, in order, one message per row.
                let shown = busy.compactMap { row in row.components(separatedBy: "<bob> traffic ").last.flatMap { Int($0) } }
                #expect(shown == Array((201 - shown.count)...200))
                #expect(shown.count >= 10)
                let trafficMixedWithInput = busy.contains { $0.contains("traffic") && $0.contains("hello wor") }
                #expect(!trafficMixedWithInput)
                try await tmux.type("ld")
                try await tmux.press("Enter")
                try await bob.waitFor { $0.hasSuffix("] <alice> hello world") }
                try await tmux.waitForScreen("own message") { $0.contains { $0.hasSuffix("<alice> hello world") } }

                // Resize: the status line and long lines follow the new width.
                try await tmux.resize(width: 50, height: 15)
                let long = String(repeating: "w", count: 70)
                try await bob.send(long)
                let narrow = try await tmux.waitForScreen("rewrapped long line") { rows in
                    rows.count >= 15 && rows.contains { $0.hasSuffix("<bob> " + String(long.prefix(50 - 12))) }
                }
                #expect(narrow.allSatisfy { $0.count <= 50 })

                // Another room: unread count on the status line, Alt+1 goes back.
                try await tmux.type("/join #side")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("#side current") { $0.contains { $0.hasPrefix(" 2:#side |") } }
                try await bob.send("while you were away")
                try await tmux.waitForScreen("unread count") { $0.contains { $0.hasPrefix(" 2:#side | 1:#general(1) |") } }
                try await tmux.press("M-1")
                try await tmux.waitForScreen("back in #general") { $0.contains { $0.hasSuffix("<bob> while you were away") } }

                // A multi-line paste is text, never a command; its unfinished last line waits in the input line.
                try await tmux.paste("first pasted\n/quit\nthird pasted")
                try await bob.waitFor { $0.hasSuffix("<alice> first pasted") }
                try await bob.waitFor { $0.hasSuffix("<alice> /quit") }
                try await tmux.waitForScreen("the unfinished line in the input") { $0.contains { $0.hasSuffix("] third pasted") } }
                try await tmux.type(", finished")
                try await tmux.press("Enter")
                try await bob.waitFor { $0.hasSuffix("<alice> third pasted, finished") }

                try await tmux.type("/quit")
                try await tmux.press("Enter")
                try await bob.waitFor { $0 == "*** alice left #general (quit)" }
                let status = try await waitForFile(files.appendingPathComponent("status"))
                #expect(status == "0")
                #expect(try await tmux.format("#{alternate_on}") == "0")
                let stty = try String(contentsOf: files.appendingPathComponent("stty"), encoding: .utf8)
                for setting in ["icanon", "echo", "isig"] {
                    #expect(stty.range(of: "(^|\\s)\(setting)(\\s|$)", options: .regularExpression) != nil, "\(setting) not restored")
                }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("full screen: Ctrl+C, Ctrl+D on an empty line and SIGTERM all restore the terminal", arguments: ["C-c", "C-d", "TERM"])
    func fullScreenExits(_ how: String) async throws {
        try await TestServer.run { server in
            let files = FileManager.default.temporaryDirectory.appendingPathComponent("parley-tmux-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
            let nick = "exit\(how.filter(\.isLetter))"
            let tmux = try await Tmux.start(
                "\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick \(nick) --no-color; "
                    + "echo $? > \(files.path)/status; stty -a > \(files.path)/stty"
            )
            do {
                let watcher = try await server.textUser("watcher")
                try await tmux.waitForScreen("connected") { $0.contains { $0.contains("| connected") } }
                if how == "TERM" {
                    let pid = try await tmux.format("#{pane_pid}")
                    let kill = try ParleyProcess.shell("pkill -TERM -P \(pid)")
                    _ = try await kill.waitForExit()
                } else {
                    try await tmux.press(how)
                }
                try await watcher.waitFor { $0.hasPrefix("*** \(nick) left #general") }
                #expect(try await waitForFile(files.appendingPathComponent("status")) == "0")
                #expect(try await tmux.format("#{alternate_on}") == "0")
                let stty = try String(contentsOf: files.appendingPathComponent("stty"), encoding: .utf8)
                for setting in ["icanon", "echo"] {
                    #expect(stty.range(of: "(^|\\s)\(setting)(\\s|$)", options: .regularExpression) != nil, "\(setting) not restored")
                }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("full screen: a registered nick asks for its password without showing it, says when it is wrong, and logs in again after /reconnect")
    func fullScreenPassword() async throws {
        try await TestServer.run { server in
            try await IRCv3Tests.makeAccount("ivan", "right-pass-1", server: server)
            let watcher = try await server.textUser("watcher")
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick ivan --no-color")
            do {
                try await tmux.waitForScreen("the password prompt") { $0.contains { $0.hasPrefix("password>") } && $0.contains { $0.contains("ivan is registered.") } }
                try await tmux.type("wrong-pass")
                let typing = try await tmux.waitForScreen("the prompt, typed into") { $0.contains { $0.hasPrefix("password>") } }
                let passwordShown = typing.contains { $0.contains("wrong-pass") }
                #expect(!passwordShown, "\(typing)")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("wrong password") { $0.contains { $0.contains("Wrong password for ivan.") } }
                // As a password manager gives it: pasted, with a line break.
                try await tmux.paste("right-pass-1\n")
                try await watcher.waitFor { $0 == "*** ivan joined #general" }
                // The password is sent again on a reconnect, without asking.
                try await tmux.type("/reconnect")
                try await tmux.press("Enter")
                try await watcher.waitFor { $0.hasPrefix("*** ivan left #general") }
                try await watcher.waitFor { $0 == "*** ivan joined #general" }
                // It is not in the input history either.
                try await tmux.press("Up")
                try await tmux.press("Up")
                let recalled = try await tmux.waitForScreen("history recalled") { $0.contains { $0.contains("/reconnect") } }
                let passwordRecalled = recalled.contains { $0.contains("right-pass-1") || $0.contains("wrong-pass") }
                #expect(!passwordRecalled, "\(recalled)")
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("full screen: a private message opens a window of its own, marked on the status line; text typed there goes back privately; /close closes it")
    func fullScreenConversation() async throws {
        try await TestServer.run { server in
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick alice --no-color")
            do {
                try await tmux.waitForScreen("connected") { $0.contains { $0.contains(" 1:#general | alice @ test.parley | connected") } }
                let bob = try await server.textUser("bob")
                try await bob.send("/msg alice psst, alice")
                try await tmux.waitForScreen("the window on the status line") { $0.contains { $0.hasPrefix(" 1:#general | 2:bob(1!) |") } }
                try await tmux.press("M-2")
                try await tmux.waitForScreen("the conversation") { rows in
                    rows.contains { $0.hasSuffix("<bob> psst, alice") } && rows.contains { $0.hasPrefix("[bob] ") || $0 == "[bob]" }
                }
                try await tmux.type("hello bob")
                try await tmux.press("Enter")
                try await bob.waitFor { $0.hasSuffix("<alice> hello bob") && $0.contains("private") }
                try await tmux.waitForScreen("own line in the window") { $0.contains { $0.hasSuffix("<- (private to bob) hello bob") } }
                try await tmux.type("/close")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("back in #general") { $0.contains { $0.hasPrefix(" 1:#general |") } }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("full screen: PgUp scrolls back (saying how much is below), past what the client holds into the server's history; Ctrl+End comes back")
    func fullScreenScrollback() async throws {
        try await TestServer.run(configure: {
            $0.historyOnJoin = 5
            $0.limits.flood = .init(burst: 1000, perSecond: 1000)
        }) { server in
            let bob = try await server.textUser("bob")
            for index in 1...60 { try await bob.send("old \(index)") }
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick alice --no-color")
            do {
                try await tmux.waitForScreen("the replay") { $0.contains { $0.hasSuffix("<bob> old 60") } }
                try await tmux.press("PPage")
                try await tmux.waitForScreen("more below") { $0.contains { $0.hasPrefix(" more below (") } }
                // Page back until the first message: the client asks the server for what it does not hold.
                var top: [String] = []
                for _ in 1...40 {
                    try await tmux.press("PPage")
                    top = try await tmux.screen()
                    if top.contains(where: { $0.hasSuffix("<bob> old 1") }) { break }
                }
                // (On a loaded machine the last page may still be on its way.)
                if !top.contains(where: { $0.hasSuffix("<bob> old 1") }) {
                    try await tmux.waitForScreen("the first message") { $0.contains { $0.hasSuffix("<bob> old 1") } }
                }
                try await tmux.press("C-End")
                let bottom = try await tmux.waitForScreen("back at the bottom") { $0.contains { $0.hasSuffix("<bob> old 60") } }
                let moreBelowShown = bottom.contains { $0.contains("more below") }
                #expect(!moreBelowShown)
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("the config file gives the server, nick and rooms (flags win); a mistake in it stops the start with its line")
    func configFile() async throws {
        try await TestServer.run { server in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-config-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("config.toml").path
            try "# test\nserver = \"127.0.0.1:\(server.port)\"\nnick = \"configured\"\nrooms = [\"#cfg\"]\n".write(toFile: path, atomically: true, encoding: .utf8)
            let client = try ParleyProcess(["connect", "--config", path, "--json"], input: .pipe)
            try await client.output.waitFor(isEvent("welcome", ["nick": "configured"]))
            try await client.output.waitFor(isEvent("joined", ["room": "#cfg", "nick": "configured"]))
            try client.closeInput()
            // (Generous deadlines: a loaded machine may take its time over three processes' starts and exits.)
            #expect(try await client.waitForExit(timeout: .seconds(40)) == 0)
            // A flag wins over the file.
            let flagged = try ParleyProcess(["connect", "--config", path, "--nick", "flagged", "--json"], input: .pipe)
            try await flagged.output.waitFor(isEvent("welcome", ["nick": "flagged"]))
            try flagged.closeInput()
            #expect(try await flagged.waitForExit(timeout: .seconds(40)) == 0)

            try "nick = \"a\"\nnickname = \"b\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            let refused = try ParleyProcess(["connect", "--config", path, "--json"], input: .pipe)
            #expect(try await refused.waitForExit(timeout: .seconds(40)) != 0)
            #expect(refused.log.text.contains("config.toml: line 2: unknown key nickname (did you mean nick?)"), "\(refused.log.text)")
        }
    }

    @Test("full screen: /ignore hides a nick's messages and keeps the list in the config file")
    func fullScreenIgnore() async throws {
        try await TestServer.run { server in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-ignore-\(UUID().uuidString)")
            let path = folder.appendingPathComponent("config.toml").path
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick alice --no-color --config \(path)")
            do {
                try await tmux.waitForScreen("in #general") { $0.contains { $0.hasPrefix(" 1:#general | alice @ test.parley | connected") } }
                let eve = try await server.textUser("eve")
                let carol = try await server.textUser("carol")
                try await tmux.type("/ignore eve")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("ignored") { $0.contains { $0.contains("eve's messages are hidden now") } }
                #expect(try String(contentsOfFile: path, encoding: .utf8) == "ignore = [\"eve\"]\n")
                // eve's line comes before carol's in the one ordered stream: when carol's shows, eve's did not.
                try await eve.send("buy now")
                try await carol.send("after eve")
                let screen = try await tmux.waitForScreen("carol's line") { $0.contains { $0.hasSuffix("<carol> after eve") } }
                let ignoredShown = screen.contains { $0.contains("buy now") }
                #expect(!ignoredShown)
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("full screen: after a server restart a registered nick logs in again without asking")
    func fullScreenPasswordAfterRestart() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-relogin-\(UUID().uuidString)").path
        var port = 0
        var tmux: Tmux?
        do {
            try await TestServer.run(dataDirectory: data) { first in
                port = first.port
                try await IRCv3Tests.makeAccount("ivan", "right-pass-1", server: first)
                let watcher = try await first.textUser("watcher")
                tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(first.port) --nick ivan --no-color")
                try await tmux!.waitForScreen("the password prompt") { $0.contains { $0.hasPrefix("password>") } }
                try await tmux!.type("right-pass-1")
                try await tmux!.press("Enter")
                try await watcher.waitFor { $0 == "*** ivan joined #general" }
            }
            try await tmux!.waitForScreen(timeout: .seconds(40), "disconnected") { $0.contains { $0.hasPrefix(" disconnected, retrying in ") } }
            try await TestServer.run(port: port, dataDirectory: data) { second in
                // Registered again (the welcome says "Reconnected."), logged in: no prompt, and the account's nick.
                let screen = try await tmux!.waitForScreen(timeout: .seconds(40), "reconnected") { rows in
                    rows.contains { $0.hasSuffix("*** Reconnected.") } && rows.contains { $0.contains("| ivan @ ") }
                }
                let passwordPrompted = screen.contains { $0.hasPrefix("password>") }
                #expect(!passwordPrompted, "\(screen)")
                let watcher = try await second.textUser("watcher")
                try await watcher.send("/whois ivan")
                try await watcher.waitFor { $0.contains("ivan") && $0.contains("logged in as ivan") }
            }
        } catch {
            await tmux?.kill()
            throw error
        }
        await tmux?.kill()
    }

    @Test("full screen: /history shows the current room's history")
    func fullScreenHistory() async throws {
        try await TestServer.run { server in
            let bob = try await server.textUser("bob")
            try await bob.send("before alice came")
            // Stored before alice joins (the /who answer follows it on the ordered stream), so the join replays it.
            try await bob.send("/who")
            try await bob.waitFor { $0.hasPrefix("*** Online") }
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick alice --no-color")
            do {
                // In #general: registered (connected alone may be before the welcome, when nothing is sent yet).
                try await tmux.waitForScreen("in #general") { $0.contains { $0.hasPrefix(" 1:#general | alice @ test.parley | connected") } }
                try await tmux.type("/history 5")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("the history") { rows in
                    rows.filter { $0 == "*** History of #general:" }.count == 2 && rows.contains { $0.hasSuffix("(history) <bob> before alice came") }
                }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }

    @Test("line mode takes the password from PARLEY_PASSWORD")
    func lineModePassword() async throws {
        try await TestServer.run { server in
            try await IRCv3Tests.makeAccount("vera", "vera-pass-1", server: server)
            let client = try ParleyProcess(
                ["connect", "127.0.0.1:\(server.port)", "--nick", "vera", "--json"], input: .pipe, environment: ["PARLEY_PASSWORD": "vera-pass-1"]
            )
            try await client.output.waitFor(isEvent("welcome", ["nick": "vera"]))
            try client.closeInput()
            #expect(try await client.waitForExit() == 0)
        }
    }

    /// `parley connect --nick alice --room '#side'` in tmux across a server restart on the same port: `before`
    /// runs against the first server, which then shuts down; once the client says it is retrying, `after` runs
    /// against a second server on the port the client knows. The tmux session ends either way.
    private func acrossRestart(
        before: (TestServer, Tmux) async throws -> Void, after: (TestServer, Tmux) async throws -> Void
    ) async throws {
        var port = 0
        var tmux: Tmux?
        do {
            try await TestServer.run { first in
                port = first.port
                let client = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(first.port) --nick alice --room '#side'")
                tmux = client
                try await client.waitForScreen("in #side") { $0.contains { $0.hasPrefix(" 2:#side | alice @ test.parley | connected") } }
                try await before(first, client)
            }
            // The first server has shut down; the client notices and retries (a loaded machine may take a while).
            try await tmux!.waitForScreen(timeout: .seconds(40), "disconnected") { rows in
                rows.contains { $0.hasPrefix(" disconnected, retrying in ") } && rows.contains { $0.contains("Disconnected from the server; reconnecting") }
            }
            try await TestServer.run(port: port) { second in try await after(second, tmux!) }
        } catch {
            await tmux?.kill()
            throw error
        }
        await tmux?.kill()
    }

    @Test("full screen: when the server goes away the client says so, reconnects, rejoins its rooms and keeps the input")
    func fullScreenReconnect() async throws {
        try await acrossRestart(
            before: { _, tmux in
                // The window being read is #general: it stays current across the reconnect.
                try await tmux.press("M-1")
                try await tmux.waitForScreen("in #general") { $0.contains { $0.hasPrefix(" 1:#general | ") } }
                try await tmux.type("half typed")
            },
            after: { second, tmux in
                let bob = try await second.textUser("bob")
                try await bob.send("/join #side")
                let screen = try await tmux.waitForScreen("reconnected") { rows in
                    rows.contains { $0.hasPrefix(" 1:#general |") && $0.hasSuffix("| connected") } && rows.contains { $0.hasSuffix("*** Reconnected.") }
                }
                #expect(screen.contains("[#general] half typed"))
                // And #side was joined again, without taking the screen: a line bob says there after alice is
                // back in it (so after her client has the rejoin) is counted as unread while #general stays current.
                try await bob.waitFor(timeout: .seconds(40)) { $0 == "*** alice joined #side" || ($0.hasPrefix("*** In #side (2): ") && $0.contains("alice")) }
                try await bob.send("welcome back")
                try await tmux.waitForScreen("#side's line unread, #general still current") { $0.contains { $0.hasPrefix(" 1:#general | 2:#side(1) |") } }
            }
        )
    }

    @Test("full screen: a user who left #general is not put back in it by a reconnect (hello's join_general), and stays on the window being read")
    func fullScreenReconnectWithoutGeneral() async throws {
        try await acrossRestart(
            before: { _, tmux in
                try await tmux.type("/part #general")
                try await tmux.press("Enter")
                try await tmux.waitForScreen("only #side") { $0.contains { $0.hasPrefix(" 1:#side | alice @ test.parley | connected") } }
            },
            after: { second, tmux in
                let bob = try await second.textUser("bob")
                try await bob.send("/join #side")
                try await bob.send("hello side")
                let screen = try await tmux.waitForScreen("back in #side only") { rows in
                    rows.contains { $0.hasPrefix(" 1:#side | alice @ test.parley | connected") } && rows.contains { $0.hasSuffix("<bob> hello side") }
                }
                let generalShown = screen.contains { $0.contains("#general") && !$0.contains("alice left") && !$0.contains("You left") }
                #expect(!generalShown)
                // Her hello asked not to be put in #general: bob, there all along, never saw her come or go.
                try await bob.send("/who")
                try await bob.waitFor { $0.hasPrefix("*** Online") }
                let bobSawAlice = try await bob.lines.contains { $0.contains("alice joined #general") || $0.contains("alice left #general") }
                #expect(!bobSawAlice)
                try await bob.send("/who #general")
                let members = try await bob.waitFor { $0.hasPrefix("*** In #general") }
                #expect(!members.contains("alice"), "\(members)")
            }
        )
    }

    @Test("full screen: a mention raises a desktop notification (OSC 9 and OSC 777) and the bell, written to the terminal")
    func desktopNotification() async throws {
        try await TestServer.run { server in
            // A terminal of its own, read raw: tmux would keep the sequences to itself.
            let client = try ParleyProcess(["connect", "127.0.0.1:\(server.port)", "--nick", "alice"], input: .sharedTerminal)
            // Read from the start: a terminal nobody reads fills up, and the client's drawing would wait for it.
            let sequence = "\u{1B}]9;bob in #general: alice: look at this\u{7}\u{1B}]777;notify;Parley;bob in #general: alice: look at this\u{7}\u{7}"
            async let seen = client.readTerminal(timeout: .seconds(40)) { $0.contains(sequence) }
            let bob = try await server.textUser("bob")
            // Alice was there before bob (in the room's list bob got on joining), or joins after him.
            if try await !bob.lines.contains(where: { $0.hasPrefix("*** In #general (2)") && $0.contains("alice") }) {
                try await bob.waitFor(timeout: .seconds(30)) { $0 == "*** alice joined #general" }
            }
            try await bob.send("alice: look at this")
            _ = try await seen
            client.signal(SIGTERM)
            _ = try await client.waitForExit()
        }
    }

    @Test("line mode: a server speaking another protocol version is a clear error")
    func versionMismatch() async throws {
        let server = try await FakeServer.start(reply: #"{"type":"error","code":"unsupported_version","text":"This server speaks protocol version 2, not 1."}"#)
        let client = try ParleyProcess(["connect", "127.0.0.1:\(server.port)", "--nick", "old"], input: .nullDevice)
        #expect(try await client.waitForExit() == 2)
        #expect(client.log.text.contains("parley: This server speaks protocol version 2, not 1."))
        try await server.close()
    }

    @Test("full screen: a taken nick asks for another")
    func fullScreenNickTaken() async throws {
        try await TestServer.run { server in
            let bob = try await server.textUser("bob")
            let tmux = try await Tmux.start("\(ParleyProcess.executable.path) connect 127.0.0.1:\(server.port) --nick bob")
            do {
                try await tmux.waitForScreen("the nick prompt") { $0.contains { $0.hasPrefix("nick>") } }
                try await tmux.type("robert")
                try await tmux.press("Enter")
                try await bob.waitFor { $0 == "*** robert joined #general" }
                try await tmux.waitForScreen("connected as robert") { $0.contains { $0.contains("| robert @ ") } }
            } catch {
                await tmux.kill()
                throw error
            }
            await tmux.kill()
        }
    }
}

/// Waits for a file a shell writes when the client exits, and returns its trimmed contents.
func waitForFile(_ url: URL, timeout: TimeAmount = .seconds(15)) async throws -> String {
    let deadline = NIODeadline.now() + timeout
    while NIODeadline.now() < deadline {
        if let text = try? String(contentsOf: url, encoding: .utf8), text.hasSuffix("\n") {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try await MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(25)) {}.futureResult.get()
    }
    throw TestFailure("\(url.lastPathComponent) was not written in time")
}
