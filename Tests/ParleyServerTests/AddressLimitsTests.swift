import Foundation
import NIOCore
import ParleyServer
import Testing

@Suite("Limits per address")
struct AddressLimitsTests {
    @Test("networks: IPv4 and IPv6 ranges, bare addresses, IPv4 written as IPv6")
    func networks() throws {
        let lan = try #require(Network("10.0.0.0/8"))
        #expect(lan.contains("10.200.3.4"))
        #expect(!lan.contains("11.0.0.1"))
        #expect(lan.contains("::ffff:10.1.2.3"))
        let odd = try #require(Network("192.0.2.128/25"))
        #expect(odd.contains("192.0.2.200") && !odd.contains("192.0.2.127"))
        let site = try #require(Network("2001:db8::/32"))
        #expect(site.contains("2001:db8:1::7") && !site.contains("2001:db9::1"))
        #expect(try #require(Network("203.0.113.9")).contains("203.0.113.9"))
        #expect(Network("10.0.0.0/33") == nil && Network("not an address") == nil && Network("::1/129") == nil)
        #expect(Network.loopback.contains { $0.contains("127.0.0.1") } && Network.loopback.contains { $0.contains("::1") })
    }

    @Test("open connections and new ones a minute, per address (an IPv6 /64), logged once a minute")
    func counting() {
        var configuration = AddressLimits.Configuration()
        configuration.maximumOpen = 2
        configuration.perMinute = 3
        let limits = AddressLimits(configuration)
        let start = ContinuousClock.now
        guard case .admitted(let first) = limits.admit("198.51.100.1", now: start),
            case .admitted = limits.admit("198.51.100.1", now: start)
        else { Issue.record("the first two were refused"); return }
        guard case .refused(let reason, _, let log) = limits.admit("198.51.100.1", now: start) else { Issue.record("a third open one was let in"); return }
        #expect(reason.contains("at most 2 at once") && log)
        guard case .refused(_, _, let again) = limits.admit("198.51.100.1", now: start + .seconds(1)) else { Issue.record("let in"); return }
        #expect(!again, "one log line a minute per address")
        limits.release(first)
        // One is free again, but three were opened this minute (refusals do not count): the rate says no.
        guard case .admitted = limits.admit("198.51.100.1", now: start + .seconds(2)) else { Issue.record("refused"); return }
        limits.release(first)
        guard case .refused(let rate, _, _) = limits.admit("198.51.100.1", now: start + .seconds(3)) else { Issue.record("rate not kept"); return }
        #expect(rate.contains("3 a minute"))
        // The rate refills: a minute later, one more.
        guard case .admitted = limits.admit("198.51.100.1", now: start + .seconds(63)) else { Issue.record("rate never refilled"); return }
        // Another address is counted apart; the same IPv6 /64 is one address.
        guard case .admitted = limits.admit("198.51.100.2", now: start) else { Issue.record("refused"); return }
        guard case .admitted = limits.admit("2001:db8::1", now: start), case .admitted = limits.admit("2001:db8::2", now: start) else {
            Issue.record("refused"); return
        }
        guard case .refused = limits.admit("2001:db8::3", now: start) else { Issue.record("a /64 escaped the limit"); return }
        // Exempt: loopback by default.
        for _ in 0..<10 {
            guard case .admitted(nil) = limits.admit("127.0.0.1", now: start) else { Issue.record("loopback was counted"); return }
        }
    }

    @Test("new limits (SIGHUP) apply to the next connections: a higher limit, a network made exempt; those counted stay counted")
    func updated() {
        var configuration = AddressLimits.Configuration()
        configuration.maximumOpen = 1
        configuration.perMinute = 0
        let limits = AddressLimits(configuration)
        guard case .admitted(let first) = limits.admit("198.51.100.7") else { Issue.record("refused"); return }
        guard case .refused = limits.admit("198.51.100.7") else { Issue.record("a second was let in"); return }
        configuration.maximumOpen = 2
        limits.update(configuration)
        guard case .admitted = limits.admit("198.51.100.7") else { Issue.record("the raised limit was not applied"); return }
        guard case .refused = limits.admit("198.51.100.7") else { Issue.record("the first one was forgotten"); return }
        configuration.exempt.append(Network("198.51.100.0/24")!)
        limits.update(configuration)
        guard case .admitted(nil) = limits.admit("198.51.100.7") else { Issue.record("the exempt network was still limited"); return }
        #expect(limits.configuration.maximumOpen == 2)
        limits.release(first)
    }

    @Test("over real sockets: the 33rd connection from one address is refused in its door's words; the rate too; an exempt address is not")
    func realSockets() async throws {
        try await TestServer.run(configure: {
            $0.addressLimits.exempt = []
            $0.addressLimits.perMinute = 1000
        }) { server in
            var open: [TestClient] = []
            for index in 0..<32 {
                // Both doors count: half of them are IRC connections.
                do {
                    open.append(try await TestClient.connect(port: index.isMultiple(of: 2) ? server.port : server.ircPort))
                } catch {
                    Issue.record("connection \(index): \(error)")
                    throw error
                }
            }
            // Each has been accepted (the two doors accept from their own queues): the lines door greets, an
            // IRC connection answers a PING.
            for (index, client) in open.enumerated() {
                if index.isMultiple(of: 2) {
                    let greeting = try await client.nextLine()
                    #expect(greeting.hasPrefix("*** Welcome"), "\(greeting)")
                } else {
                    try await client.send("PING :here")
                    _ = try await client.nextLine()
                }
            }
            let refused = try await TestClient.connect(port: server.port)
            let refusal = try await refused.waitForClose()
            #expect(refusal == ["!!! Too many connections from your address (at most 32 at once). Close one and try again."], "\(refusal)")
            let refusedIRC = try await TestClient.connect(port: server.ircPort)
            let ircRefusal = try await refusedIRC.waitForClose()
            #expect(ircRefusal == ["ERROR :Closing link: Too many connections from your address (at most 32 at once). Close one and try again."], "\(ircRefusal)")
            // The others are untouched, and a freed place is taken again.
            try await open[0].send("stayer")
            try await open[0].waitFor { $0.hasPrefix("*** In #general") }
            await open[1].close()
            try await eventually("a place is free again") {
                // Until the server has seen the close, a new one is still refused (and closed at once).
                let next = try await TestClient.connect(port: server.port)
                guard (try? await next.nextLine())?.hasPrefix("*** Welcome") == true else { return false }
                open.append(next)
                return true
            }
            for client in open { await client.close() }
        }
        try await TestServer.run(configure: {
            $0.addressLimits.exempt = []
            $0.addressLimits.perMinute = 3
        }) { server in
            for _ in 0..<3 { _ = try await server.textUser("u\(UUID().uuidString.prefix(6))") }
            let fourth = try await TestClient.connect(port: server.port)
            #expect(try await fourth.waitForClose().first?.contains("3 a minute") == true)
        }
        try await TestServer.run(configure: {
            $0.addressLimits.exempt = [Network("127.0.0.0/8")!]
            $0.addressLimits.maximumOpen = 2
            $0.addressLimits.perMinute = 2
        }) { server in
            var clients: [TestClient] = []
            for index in 0..<5 { clients.append(try await server.textUser("exempt\(index)")) }
            #expect(clients.count == 5)
        }
    }
}

@Suite("Limits per address, seen from parley connect")
struct AddressLimitsClientTests {
    @Test("parley connect shows why it was refused")
    func refusalShown() async throws {
        try await TestServer.run(configure: {
            $0.addressLimits.exempt = []
            $0.addressLimits.maximumOpen = 1
        }) { server in
            let holder = try await server.textUser("holder")
            let client = try ParleyProcess(["connect", "127.0.0.1:\(server.port)", "--nick", "late"], input: .pipe)
            #expect(try await client.waitForExit() != 0)
            #expect(client.log.text.contains("Too many connections from your address (at most 1 at once)"))
            await holder.close()
        }
    }
}

@Suite("Running out of file descriptors")
struct DescriptorExhaustionTests {
    @Test("out of descriptors the server backs off instead of spinning, logs it once, keeps descriptors for its files, chats on, and accepts again once they free up")
    func exhaustion() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-fd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try "Before the crowd.\n".write(toFile: data + "/motd", atomically: true, encoding: .utf8)
        let server = try ParleyProcess(
            ["serve", "--host", "127.0.0.1", "--port", "0", "--irc-port", "0", "--no-http", "--console", "off", "--data-dir", data,
             "--server-name", "fd.parley", "--motd", data + "/motd"],
            input: .nullDevice
        )
        func port(_ door: String) async throws -> Int {
            let line = try await server.log.waitFor { $0.contains("listening") && $0.contains("door=\(door) ") }
            return try #require(line.split(separator: ":").last.flatMap { Int($0.prefix(while: \.isNumber)) })
        }
        let (textPort, ircPort) = (try await port("lines"), try await port("irc"))
        // Room for twelve connections more than the server holds now, however many descriptors this machine's
        // event loops take (a fixed `ulimit -n` would leave none on a machine with many cores).
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.pid)/fd").count
        let limit = try ParleyProcess.shell("prlimit --pid \(server.pid) --nofile=\(open + 12):\(open + 12)")
        try #require(try await limit.waitForExit() == 0, "\(limit.log.text)")
        do {
            try await exhaust(server, text: textPort, irc: ircPort, motd: data + "/motd")
        } catch {
            Issue.record("\(error); the server's log: \(server.log.text.suffix(3000))")
        }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test("parley serve raises its soft descriptor limit to the hard one, and says so")
    func limitRaised() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-fd-\(UUID().uuidString)").path
        let server = try ParleyProcess(
            ["-c", "ulimit -S -n 256 && exec '\(ParleyProcess.executable.path)' serve --host 127.0.0.1 --port 0 --no-irc --no-http --console off --data-dir '\(data)'"],
            input: .nullDevice, executable: URL(fileURLWithPath: "/bin/sh")
        )
        _ = try await server.log.waitFor { $0.contains("listening") }
        var hard = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &hard)
        let limits = try String(contentsOfFile: "/proc/\(server.pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let numbers = line.split(separator: " ").compactMap { UInt64($0) }
        #expect(numbers.first == UInt64(hard.rlim_max) && hard.rlim_max > 256, "\(line)")
        #expect(server.log.text.contains("limit=\(hard.rlim_max)"), "\(server.log.text)")
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    private func exhaust(_ server: ParleyProcess, text port: Int, irc: Int, motd: String) async throws {
        let alice = try await TestServer.textUser("alice", port: port)
        let bob = try await TestServer.textUser("bob", port: port)
        // More connections than descriptors: the kernel completes them all, the server cannot accept the rest.
        var crowd: [TestClient] = []
        // (A connect may fail when the kernel's queue overflows: those are not what is tested.)
        for _ in 0..<40 { if let client = try? await TestClient.connect(port: port) { crowd.append(client) } }
        try await server.log.waitFor { $0.contains("accepting a connection failed") }
        // The IRC port's listener was waiting for connections all along: it must not take the descriptors the
        // text port's gave up. What it accepts now it closes at once, unanswered.
        let late = try await TestClient.connect(port: irc)
        #expect(try await late.waitForClose().isEmpty)
        // While connections hold every other descriptor, the server can still open a file: the reserve's.
        try "After the crowd.\n".write(toFile: motd, atomically: false, encoding: .utf8)
        server.signal(SIGHUP)
        let reread = try await server.log.waitFor { $0.contains("message of the day reloaded") || $0.contains("message of the day not reloaded") }
        #expect(reread.contains("message of the day reloaded"), "\(reread)")
        // Those already in chat on.
        try await alice.send("still here")
        try await bob.waitFor { $0.hasSuffix("<alice> still here") }
        for client in crowd { await client.close() }
        // Descriptors free up: the server accepts again, on both ports.
        let carol = try await TestServer.textUser("carol", port: port)
        try await carol.send("back in")
        try await bob.waitFor { $0.hasSuffix("<carol> back in") }
        let dave = try await IRCTests.ircUser("dave", port: irc)
        try await dave.send("PRIVMSG #general :me too")
        try await bob.waitFor { $0.hasSuffix("<dave> me too") }
        // Once a minute at most, however many accepts failed meanwhile.
        #expect(server.log.text.components(separatedBy: "accepting a connection failed").count - 1 == 1)
    }
}
