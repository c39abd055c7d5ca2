import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import Testing

@testable import ParleyServer

/// The login and registration limits: guessers slow down, owners get in, and nothing an attacker sends can
/// switch the limits off.
@Suite("Login and registration limits")
struct LoginThrottleTests {
    /// A desk with cheap (but real) scrypt and a small table, so that filling it is quick.
    static func desk(with accounts: [(String, String)] = []) async throws -> AccountDesk {
        let store = MemoryStorage()
        for (name, password) in accounts { try await store.create(Account(name: name, credential: try PasswordHasher.credential(for: password, cost: 1024))) }
        let hub = ChatHub(serverName: "t", sink: Fanout())
        var limits = AccountLimits()
        limits.placesRemembered = 256
        return AccountDesk(store: store, hub: hub, limits: limits, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    @Test("junk names from thousands of addresses neither fill the table nor make it forget a guesser held back")
    func junkFlood() async throws {
        let desk = try await Self.desk(with: [("dave", "right-pass")])
        for attempt in 1...5 {
            await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "wrong\(attempt)", from: "192.0.2.1") }
        }
        // Thousands of names that are no account, each from its own address: more places than the table holds.
        for index in 0..<1_000 {
            _ = try? await desk.verify(nick: "junk\(index)", password: "x", from: "10.\(index / 65536).\((index / 256) % 256).\(index % 256)")
        }
        #expect(desk.attempts.count <= desk.attempts.capacity)
        #expect(desk.attempts.attempts("account junk1") == 0, "names that are no account are not recorded")
        let refused = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "right-pass", from: "192.0.2.1") }
        #expect(refused?.code == .tooManyAttempts)
        // One /64 is one place: a new address in it changes nothing.
        for attempt in 1...5 {
            _ = try? await desk.verify(nick: "dave", password: "wrong\(attempt)", from: "2001:db8:1:2::\(attempt)")
        }
        let sameNetwork = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "right-pass", from: "2001:db8:1:2:ffff::9") }
        #expect(sameNetwork?.code == .tooManyAttempts)
    }

    @Test("an account under attack: spent addresses and a crowd of strangers are held back, its owner gets in")
    func ownerDuringAttack() async throws {
        var desk = try await Self.desk(with: [("dave", "right-pass")])
        desk.limits.attackDelay = .milliseconds(50)
        // dave logged in from home once.
        _ = try await desk.verify(nick: "dave", password: "right-pass", from: "203.0.113.7")
        for address in 1...4 {
            for attempt in 1...5 {
                _ = try? await desk.verify(nick: "dave", password: "wrong\(attempt)", from: "198.51.100.\(address)")
            }
        }
        #expect(desk.attempts.attempts("account dave") == 20)
        // The attackers' addresses are spent, even with the right password.
        let spent = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "right-pass", from: "198.51.100.1") }
        #expect(spent?.code == .tooManyAttempts)
        // Strangers (addresses that never failed) may try, after a wait, five a minute in all.
        for stranger in 1...5 {
            let started = ContinuousClock.now
            let refused = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "guess", from: "192.0.2.\(stranger)") }
            #expect(refused?.code == .loginFailed)
            #expect(started.duration(to: .now) >= .milliseconds(50))
        }
        let crowd = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "right-pass", from: "192.0.2.99") }
        #expect(crowd?.code == .tooManyAttempts)
        // The owner, from home: in at once.
        let account = try await desk.verify(nick: "dave", password: "right-pass", from: "203.0.113.7")
        #expect(account.name == "dave")
    }

    @Test("IPv6: a /64 is one address, and a /48 is held back as a whole")
    func ipv6Networks() async throws {
        let desk = try await Self.desk(with: [("dave", "right-pass")])
        #expect(addressKey("2001:db8:1:2::5") == addressKey("2001:DB8:1:2:ffff::9"))
        #expect(networkKey("2001:db8:1:2::5") == networkKey("2001:db8:1:ff::1"))
        #expect(addressKey("::ffff:192.0.2.1") == "192.0.2.1")
        // Four /64s of one /48 fail five times each: the /48 is spent, a fifth /64 in it is refused at once.
        for subnet in 1...4 {
            for attempt in 1...5 { _ = try? await desk.verify(nick: "dave", password: "wrong\(attempt)", from: "2001:db8:7:\(subnet)::1") }
        }
        let refused = await #expect(throws: ChatError.self) { try await desk.verify(nick: "dave", password: "right-pass", from: "2001:db8:7:99::1") }
        #expect(refused?.code == .tooManyAttempts)
    }

    @Test("the hashing queue is bounded: past it, busy at once")
    func hashingBound() async throws {
        let hashing = PasswordHashing(threads: 1, limit: 2)
        let gate = DispatchSemaphore(value: 0)
        // Two checks that hold the one thread until the gate opens: the queue is full.
        async let first = hashing.run { gate.wait(); return 1 }
        async let second = hashing.run { gate.wait(); return 2 }
        try await waitUntil(hashing, waiting: 2)
        let third = await #expect(throws: ChatError.self) { try await hashing.run { 3 } }
        #expect(third?.code == .busy)
        gate.signal()
        gate.signal()
        #expect(try await first + second == 3)
        // Room again.
        #expect(try await hashing.run { 4 } == 4)
        try await hashing.pool.shutdownGracefully()
    }

    @Test("registrations over real sockets: three an address per ten minutes, then refused; another address may")
    func registrationFlood() async throws {
        try await TestServer.run { server in
            for index in 1...4 {
                let user = try await server.textUser("new\(index)")
                try await user.send("/register pass-\(index)")
                let reply = try await user.waitFor { $0.hasPrefix("*** The nickname") || $0.hasPrefix("!!!") }
                if index <= 3 {
                    #expect(reply.hasPrefix("*** The nickname new\(index) is now registered"), "\(reply)")
                } else {
                    #expect(reply.hasPrefix("!!! Too many new accounts from here. Try again in "), "\(reply)")
                }
            }
            let elsewhere = try await TestServer.textUser("new5", port: server.port, options: .init(from: "127.0.0.2"))
            // A registration that fails does not count against the address.
            try await elsewhere.send("/register short")
            try await elsewhere.waitFor { $0.hasPrefix("!!! A password has at least") }
            try await elsewhere.send("/register pass-5")
            try await elsewhere.waitFor { $0.hasPrefix("*** The nickname new5 is now registered") }
        }
    }

    @Test("over real sockets: guessers from four addresses put the account under attack and are refused; the owner gets in")
    func ownerGetsInOverSockets() async throws {
        try await TestServer.run { server in
            let owner = try await server.textUser("dave")
            try await owner.send("/register right-pass")
            try await owner.waitFor { $0.hasPrefix("*** The nickname dave is now registered") }
            try await owner.send("/quit")
            _ = try await owner.waitForClose()
            // Four addresses fail five times each: dave is under attack.
            for address in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
                let guesser = try await TestServer.textUser("g\(address.suffix(1))", port: server.port, options: .init(from: address))
                for attempt in 1...6 {
                    try await guesser.send("/login dave wrong\(attempt)")
                    let reply = try await guesser.waitFor { $0.hasPrefix("!!!") }
                    #expect(reply == (attempt <= 5 ? "!!! Wrong nickname or password." : reply), "\(reply)")
                    if attempt == 6 { #expect(reply.hasPrefix("!!! Too many failed logins")) }
                }
            }
            // The owner, from an address that never failed.
            let back = try await TestServer.textUser("guest", port: server.port, options: .init(from: "127.0.0.6"))
            try await back.send("/login dave right-pass")
            try await back.waitFor { $0 == "*** You are logged in as dave." }
        }
    }
}

/// Waits until `count` password checks are running or waiting in `hashing` (the pool tells its watchers when the
/// count changes); fails after `timeout`.
func waitUntil(_ hashing: PasswordHashing, waiting count: Int, timeout: Duration = .seconds(10)) async throws {
    do {
        try await answer(within: timeout) { await hashing.waitUntil(waiting: count) }
    } catch {
        throw TestFailure("timed out waiting until \(count) password checks were waiting")
    }
}
