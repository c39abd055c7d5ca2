import Foundation
import NIOCore
import ParleyCore
import ParleyPostgres
import ParleyServer
import PostgresNIO
import Synchronization
import Testing

/// What only the PostgreSQL store has: its URL, its start-up errors, and a server that rides out the database
/// going away and coming back. Against real PostgreSQL servers (`PostgresCluster`), never a mock.
@Suite("PostgreSQL storage")
struct PostgresStoreTests {
    /// How a test server opens `address`: as `parley serve` does (owning the database), with `timeout` for each
    /// operation. Tests that wait out the deadline use 8 s: short enough to wait, long enough that a loaded
    /// machine meets it while the database is up.
    static func serverStorage(_ address: PostgresAddress, timeout: Duration = .seconds(8)) -> (ServerConfiguration) async throws -> any ChatStorage {
        { _ in try await PostgresStore.open(address, serving: true, timeout: timeout, logger: PostgresCluster.quiet) }
    }

    /// A cluster of the test's own (it will be stopped and started) with one database, `chat`.
    static func privateDatabase() async throws -> (PostgresCluster, PostgresAddress) {
        let cluster = try await PostgresCluster.start()
        try await cluster.execute("CREATE DATABASE chat")
        return (cluster, try cluster.address(database: "chat"))
    }

    @Test("database URLs: TCP, a Unix socket folder, IPv6, sslmode; mistakes are named, the password never shown")
    func addresses() throws {
        let tcp = try PostgresAddress("postgres://parley:s%40cret@db.example.org:6543/chat?sslmode=require")
        #expect(tcp.endpoint == .tcp(host: "db.example.org", port: 6543))
        #expect(tcp.user == "parley" && tcp.password == "s@cret" && tcp.database == "chat" && tcp.tls == .require)
        #expect(tcp.description == "postgres://parley@db.example.org:6543/chat")
        let socket = try PostgresAddress("postgresql://parley@/chat?host=/run/postgresql")
        #expect(socket.endpoint == .socket(path: "/run/postgresql/.s.PGSQL.5432") && socket.tls == .prefer)
        #expect(socket.description == "postgres://parley@/chat?host=/run/postgresql")
        #expect(try PostgresAddress("postgres://u@[::1]/d").endpoint == .tcp(host: "::1", port: 5432))
        #expect(try PostgresAddress("postgres://u@/d").endpoint == .tcp(host: "localhost", port: 5432))
        let mistakes: [(String, String)] = [
            ("mysql://u@h/d", "must start postgres://"), ("postgres://h/d", "names no user"), ("postgres://u:pw@h/", "names no database"),
            ("postgres://u:pw@h/d?sslmode=maybe", "sslmode maybe"), ("postgres://u:pw@h/d?pool=3", "parameter pool"),
            ("postgres://u:pw@h/d?port=99999", "port 99999"),
        ]
        for (url, says) in mistakes {
            #expect {
                _ = try PostgresAddress(url)
            } throws: { error in
                "\(error)".contains(says) && !"\(error)".contains("pw")
            }
        }
    }

    @Test("start-up errors say what to do: no server there, no such database, a wrong password, a schema from a newer parley")
    func startupErrors() async throws {
        let cluster = try await PostgresCluster.shared.value
        let nowhere = try PostgresAddress("postgres://parley@/chat?host=/tmp/no-postgres-\(UUID().uuidString.prefix(8))")
        await #expect { try await PostgresStore.open(nowhere, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)".contains("cannot reach the database postgres://parley@/chat") && "\(error)".contains("is PostgreSQL running there?")
        }
        let missing = try cluster.address(database: "nonexistent")
        await #expect { try await PostgresStore.open(missing, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)" == "the database \(missing) does not exist; create it (createdb) or fix the URL"
        }
        let database = try await cluster.newDatabase()
        let (user, password) = PostgresCluster.passwordRole
        let wrong = try PostgresAddress("postgres://\(user):not-\(password)@/\(database.database)?host=\(cluster.folder.path)")
        await #expect { try await PostgresStore.open(wrong, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)".contains("refused the login: password authentication failed for user \"\(user)\"") && !"\(error)".contains("not-\(password)")
        }
        // The right password gets in (the role may not create tables in a database it does not own: that is the
        // next error, and it is named too). PostgreSQL 15 denies it by default; older ones need telling.
        try await cluster.execute(database: database.database, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        let right = try PostgresAddress("postgres://\(user):\(password)@/\(database.database)?host=\(cluster.folder.path)")
        await #expect { try await PostgresStore.open(right, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)".contains("permission denied")
        }
        // A command that only reads (parley account list) makes no tables in a database without Parley's.
        await #expect { try await PostgresStore.open(database, creating: false, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)" == "the database \(database) holds no Parley data yet; parley serve or parley account add makes it (is the URL right?)"
        }
        // A database a newer Parley has upgraded is left alone.
        let store = try await PostgresStore.open(database, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        await store.close()
        try await cluster.execute(database: database.database, "UPDATE parley_schema SET version = 99")
        await #expect { try await PostgresStore.open(database, logger: PostgresCluster.quiet) } throws: { error in
            "\(error)" == "the database \(database) has schema version 99, but this parley knows only up to \(PostgresStore.schemaVersion); run a newer parley"
        }
    }

    @Test("a server on PostgreSQL: messages are acknowledged once stored, and a restarted server replays them")
    func serverKeepsHistory() async throws {
        let database = try await PostgresCluster.newDatabase()
        let storage = Self.serverStorage(database, timeout: PostgresCluster.patience)
        try await TestServer.run(storage: storage) { server in
            let alice = try await server.jsonUser("alice")
            let bob = try await server.jsonUser("bob")
            try await alice.send(##"{"type":"send","room":"#general","text":"kept in postgres","ref":"k"}"##)
            try await alice.waitFor(isEvent("ack", ["ref": "k"]))
            try await bob.waitFor { $0.contains("kept in postgres") }
        }
        try await TestServer.run(storage: storage) { server in
            let carol = try await server.jsonUser("carol")
            let history = try json(try await carol.waitFor(isEvent("history", ["room": "#general"])))["messages"] as! [[String: Any]]
            #expect(history.map { $0["text"] as! String } == ["kept in postgres"])
        }
    }

    @Test("parley account works on PostgreSQL, and a running server picks the new account up")
    func accountCommand() async throws {
        let database = try await PostgresCluster.newDatabase()
        try await TestServer.run(storage: { _ in try await PostgresStore.open(database, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet) }) { server in
            // The URL in the environment, as the docs advise (a password in it stays out of ps).
            let add = try ParleyProcess(
                ["account", "add", "gina", "--password", "gina-pass", "--store", "postgres"], input: .nullDevice,
                environment: ["PARLEY_DATABASE_URL": "\(database)"]
            )
            #expect(try await add.waitForExit() == 0, "\(add.log.text)")
            let list = try ParleyProcess(["account", "list", "--store", "postgres", "--database-url", "\(database)"], input: .nullDevice)
            #expect(try await list.waitForExit() == 0)
            #expect(list.output.text == "gina\n")
            let missing = try ParleyProcess(["account", "list", "--store", "postgres"], input: .nullDevice)
            #expect(try await missing.waitForExit() != 0)
            #expect(missing.log.text.contains("needs the database: set PARLEY_DATABASE_URL"))
            // The server notices within a second or so (it polls the accounts' version).
            try await eventually("the server knows gina", timeout: .seconds(20)) {
                let guest = try await TestClient.connect(port: server.port)
                try await guest.send(#"{"type":"hello","version":1,"nick":"gina","ref":"h"}"#)
                let reply = try await guest.waitFor { $0.contains("welcome") || $0.contains(#""ref":"h""#) }
                await guest.close()
                return reply.contains("nick_registered")
            }
            let gina = try await TestClient.connect(port: server.port)
            try await gina.send(#"{"type":"hello","version":1,"nick":"gina","password":"gina-pass"}"#)
            try await gina.waitFor(isEvent("welcome", ["nick": "gina"]))
        }
    }

    @Test("the database stops and comes back: messages get not_stored meanwhile, nothing unstored is delivered, and the chat recovers by itself")
    func databaseRestart() async throws {
        let (cluster, address) = try await Self.privateDatabase()
        let storage = Self.serverStorage(address)
        try await TestServer.run(configure: { $0.historyOnJoin = 0; HistoryTests.relaxed(&$0) }, storage: storage) { server in
            let alice = try await server.jsonUser("alice")
            let bob = try await server.jsonUser("bob")
            try await alice.send(##"{"type":"send","room":"#general","text":"before","ref":"b"}"##)
            try await alice.waitFor(isEvent("ack", ["ref": "b"]))
            try await cluster.stopServer()
            try await alice.send(##"{"type":"send","room":"#general","text":"while down","ref":"d"}"##)
            let refused = try json(try await alice.waitFor(timeout: .seconds(30)) { $0.contains(#""ref":"d""#) })
            #expect(refused["code"] as? String == "not_stored", "\(refused)")
            // What needs no storage goes on; /healthz tells a load balancer that this server cannot store.
            try await alice.send(##"{"type":"ping","ref":"p"}"##)
            try await alice.waitFor(isEvent("pong", ["ref": "p"]))
            #expect(try await BrowserDoorTests.get("/healthz", port: server.httpPort).first == "HTTP/1.1 503 Service Unavailable")
            try await cluster.startServer()
            // The pool reconnects by itself, with backoff: send until a message is stored again.
            var attempts = 0
            try await eventually("a message is stored again", timeout: .seconds(60)) {
                attempts += 1
                let ref = "a\(attempts)"
                try await alice.send(##"{"type":"send","room":"#general","text":"after \##(ref)","ref":"\##(ref)"}"##)
                let reply = try await alice.waitFor(timeout: .seconds(30)) { $0.contains(#""ref":"\#(ref)""#) }
                return reply.contains(#""type":"ack""#)
            }
            let last = "after a\(attempts)"
            try await bob.waitFor { $0.contains(last) }
            // Healthy again once a probe runs after the recovery (a probe's answer is reused for a second).
            try await eventually("healthy again", timeout: .seconds(30)) {
                try await BrowserDoorTests.get("/healthz", port: server.httpPort).first == "HTTP/1.1 200 OK"
            }
            // The server owns the database again (its lock went with the restart): a second server is refused.
            try await eventually("the database is owned again", timeout: .seconds(60)) {
                do {
                    let second = try await PostgresStore.open(address, serving: true, timeout: .seconds(8), logger: PostgresCluster.quiet)
                    await second.close()
                    return false
                } catch let error as DatabaseError {
                    guard case .inUse = error else { throw error }
                    return true
                }
            }
            let bobSawUnstored = try await bob.lines.contains { $0.contains("while down") }
            #expect(!bobSawUnstored)
        }
        let store = try await storage(ServerConfiguration())
        let kept = try await store.history(room: "#general", .latest(100), below: .max).map(\.text)
        await store.close()
        try await cluster.stopServer()
        #expect(kept.first == "before" && kept.last?.hasPrefix("after") == true && !kept.contains("while down"), "\(kept)")
    }

    @Test("PostgreSQL restarted under load: not_stored while it is down, recovery after, and exactly the acknowledged messages delivered, all kept")
    func restartUnderLoad() async throws {
        let (cluster, address) = try await Self.privateDatabase()
        let storage = Self.serverStorage(address)
        // A box the senders' tasks share (a Mutex alone cannot be captured by them: it is not copyable).
        final class Outcome: Sendable {
            let state = Mutex<(acked: [Int], refused: [String], ackedAfterRestart: Int, restarted: Bool, done: Bool)>(([], [], 0, false, false))
            func withLock<Result>(_ body: (inout (acked: [Int], refused: [String], ackedAfterRestart: Int, restarted: Bool, done: Bool)) -> Result) -> Result {
                state.withLock { body(&$0) }
            }
        }
        let outcome = Outcome()
        try await TestServer.run(configure: { $0.historyOnJoin = 0; HistoryTests.relaxed(&$0) }, storage: storage) { server in
            let receiver = try await server.jsonUser("receiver")
            let senders = try await withThrowingTaskGroup(of: TestClient.self) { group in
                for index in 0..<3 { group.addTask { try await server.jsonUser("sender\(index)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Each sender in a closed loop: a message, then its answer, then the next; no pacing by the clock.
                for (index, sender) in senders.enumerated() {
                    group.addTask {
                        var count = 0
                        while !outcome.withLock({ $0.done }) {
                            count += 1
                            let ref = "s\(index)-\(count)"
                            try await sender.send(##"{"type":"send","room":"#general","text":"\##(ref)","ref":"\##(ref)"}"##)
                            let reply = try json(try await sender.waitFor(timeout: .seconds(60)) { $0.contains(#""ref":"\#(ref)""#) })
                            outcome.withLock { state in
                                if reply["type"] as? String == "ack" {
                                    state.acked.append(reply["id"] as! Int)
                                    if state.restarted { state.ackedAfterRestart += 1 }
                                } else {
                                    state.refused.append(ref)
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    try await eventually("traffic is stored", timeout: .seconds(60)) { outcome.withLock { $0.acked.count >= 100 } }
                    try await cluster.stopServer()
                    try await eventually("a message is refused", timeout: .seconds(60)) { outcome.withLock { !$0.refused.isEmpty } }
                    try await cluster.startServer()
                    outcome.withLock { $0.restarted = true }
                    try await eventually("traffic is stored again", timeout: .seconds(90)) { outcome.withLock { $0.ackedAfterRestart >= 100 } }
                    outcome.withLock { $0.done = true }
                }
                try await group.waitForAll()
            }
            let (acked, refused) = outcome.withLock { ($0.acked, $0.refused) }
            #expect(!refused.isEmpty && acked.count >= 200)
            // The receiver got exactly the acknowledged messages: none refused slipped through, none stored was lost.
            let last = acked.max()!
            var delivered: [Int] = []
            try await eventually("the receiver has every acknowledged message", timeout: .seconds(30)) {
                delivered = try await receiver.lines.compactMap { line in
                    guard let event = try? json(line), event["type"] as? String == "message" else { return nil }
                    return event["id"] as? Int
                }
                return delivered.contains(last)
            }
            #expect(Set(delivered) == Set(acked), "delivered but not acked: \(Set(delivered).subtracting(acked).sorted().prefix(10)); acked but not delivered: \(Set(acked).subtracting(delivered).sorted().prefix(10))")
            #expect(delivered == delivered.sorted(), "delivered in id order")
        }
        let store = try await PostgresStore.open(address, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        let kept = try await store.history(room: "#general", .latest(100_000), below: .max)
        await store.close()
        try await cluster.stopServer()
        let acked = outcome.withLock { $0.acked }
        #expect(Set(acked).isSubset(of: Set(kept.map { Int($0.id) })), "acknowledged but not kept")
        // Not asserted: that nothing refused is kept. A batch whose COMMIT reached the disk just as the server was
        // stopped (`immediate`, as a crash) is kept by recovery though its sender was told not_stored: in the
        // history, never delivered, never lost (docs/ARCHITECTURE.md).
    }

    @Test("a database that stops answering mid-write: the sender gets not_stored at the deadline, the ordered stream goes on, and the write is rolled back")
    func writeHangs() async throws {
        let cluster = try await PostgresCluster.shared.value
        let database = try await cluster.newDatabase()
        let storage = Self.serverStorage(database)
        try await TestServer.run(configure: { $0.historyOnJoin = 0; HistoryTests.relaxed(&$0) }, storage: storage) { server in
            let alice = try await server.jsonUser("alice")
            let bob = try await server.jsonUser("bob")
            // Another session holds the messages table: every INSERT waits, as on a frozen or partitioned database.
            let blocker = try await PostgresConnection.connect(
                configuration: .init(unixSocketPath: "\(cluster.folder.path)/.s.PGSQL.5432", username: "parley", password: nil, database: database.database),
                id: 9, logger: PostgresCluster.quiet
            )
            try await blocker.query("BEGIN", logger: PostgresCluster.quiet)
            try await blocker.query("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE", logger: PostgresCluster.quiet)
            try await alice.send(##"{"type":"send","room":"#general","text":"held up","ref":"h"}"##)
            let refused = try json(try await alice.waitFor(timeout: .seconds(30)) { $0.contains(#""ref":"h""#) })
            #expect(refused["code"] as? String == "not_stored", "\(refused)")
            // The publisher did not wait for the stuck INSERT: a reply behind it in the ordered stream arrives.
            try await alice.send(##"{"type":"ping","ref":"p"}"##)
            try await alice.waitFor(isEvent("pong", ["ref": "p"]))
            try await blocker.query("ROLLBACK", logger: PostgresCluster.quiet)
            try await blocker.close()
            try await eventually("a message is stored again", timeout: .seconds(30)) {
                let ref = "a\(UUID().uuidString.prefix(6))"
                try await alice.send(##"{"type":"send","room":"#general","text":"after \##(ref)","ref":"\##(ref)"}"##)
                return try await alice.waitFor(timeout: .seconds(30)) { $0.contains(#""ref":"\#(ref)""#) }.contains(#""type":"ack""#)
            }
            try await bob.waitFor { $0.contains("after a") }
            let bobSawHeldUp = try await bob.lines.contains { $0.contains("held up") }
            #expect(!bobSawHeldUp)
        }
        // The INSERT that outlived its deadline was rolled back (statement_timeout, then no COMMIT): what the
        // sender was told, not_stored, is what the history says.
        let store = try await PostgresStore.open(database, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        let kept = try await store.history(room: "#general", .latest(100), below: .max).map(\.text)
        await store.close()
        #expect(!kept.contains("held up") && kept.contains { $0.hasPrefix("after a") }, "\(kept)")
    }

    @Test("parley serve --store postgres: the URL from the environment, shown without its password; an unreachable database stops the start with exit 3")
    func serveCommand() async throws {
        let cluster = try await PostgresCluster.shared.value
        let database = try await cluster.newDatabase()
        // A password in the URL (the trusted socket ignores it): it must never reach the log or --print-config.
        let url = "postgres://parley:hush-hush@/\(database.database)?host=\(cluster.folder.path)"
        let printed = try ParleyProcess(["serve", "--store", "postgres", "--print-config"], input: .nullDevice, environment: ["PARLEY_DATABASE_URL": url])
        #expect(try await printed.waitForExit() == 0)
        #expect(printed.output.text.contains(#/database-url = "\*{8}" +# environment PARLEY_DATABASE_URL/#) && !printed.output.text.contains("hush-hush"), "\(printed.output.text)")
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--store", "postgres", "--database-timeout", "30"], environment: ["PARLEY_DATABASE_URL": url])
        let alice = try await TestServer.jsonUser("alice", port: port)
        try await alice.send(##"{"type":"send","room":"#general","text":"via the executable","ref":"x"}"##)
        try await alice.waitFor(isEvent("ack", ["ref": "x"]))
        // One server per database: a second is refused, naming the first.
        let second = try ParleyProcess(
            ["serve", "--console", "off", "--store", "postgres", "--port", "0", "--no-irc", "--no-http"], input: .nullDevice,
            environment: ["PARLEY_DATABASE_URL": url]
        )
        #expect(try await second.waitForExit() == 3)
        #expect(second.log.text.contains("is in use by parley serve (pid \(server.pid) on "), "\(second.log.text)")
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        #expect(server.log.text.contains("storage opened") && server.log.text.contains("at=\(database)"), "\(server.log.text)")
        #expect(!server.log.text.contains("hush-hush"))
        let store = try await PostgresStore.open(database, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        #expect(try await store.history(room: "#general", .latest(10), below: .max).map(\.text) == ["via the executable"])
        await store.close()

        let nowhere = "postgres://parley:hush-hush@/chat?host=/tmp/no-postgres-\(UUID().uuidString.prefix(8))"
        let refused = try ParleyProcess(["serve", "--console", "off", "--store", "postgres", "--port", "0", "--no-irc", "--no-http"], input: .nullDevice, environment: ["PARLEY_DATABASE_URL": nowhere])
        #expect(try await refused.waitForExit() == 3)
        #expect(refused.log.text.contains("cannot start: cannot reach the database postgres://parley@/chat"), "\(refused.log.text)")
        #expect(!refused.log.text.contains("hush-hush"))
        let unneeded = try ParleyProcess(["serve", "--database-url", url, "--print-config"], input: .nullDevice)
        #expect(try await unneeded.waitForExit() == 64)
        #expect(unneeded.log.text.contains("--database-url is for --store postgres"), "\(unneeded.log.text)")
    }
}
