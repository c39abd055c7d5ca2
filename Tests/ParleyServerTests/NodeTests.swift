import Foundation
import NIOCore
import ParleyCore
import ParleyPostgres
import ParleyServer
import Testing

/// Several `parley serve` nodes on one PostgreSQL database (docs/ARCHITECTURE.md, "Several nodes on one
/// PostgreSQL"): the log's order, and messages crossing from one node's users to another's. Against a real
/// PostgreSQL server (`PostgresCluster`).
@Suite("Several nodes")
struct NodeTests {
    static func message(_ id: Int64, _ text: String, room: String = "#general") -> ChatMessage {
        ChatMessage(id: id, time: Date(timeIntervalSince1970: 1_700_000_000), from: "n", target: .room(room), kind: .normal, text: text)
    }

    @Test("the log: a node's batch lands above everything committed before it, and reads what other nodes committed in between")
    func logOrder() async throws {
        let database = try await PostgresCluster.newDatabase()
        let a = try await PostgresStore.open(database, node: "a", timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        let b = try await PostgresStore.open(database, node: "b", timeout: PostgresCluster.patience, logger: PostgresCluster.quiet)
        let first = try await a.commit([Self.message(1, "a1"), Self.message(2, "a2")], ids: 1..<3)
        #expect(first == LogCommit(offset: 0, others: []))
        // b's hub also numbered from 1: its batch is moved above a's, and it reads a's first.
        let second = try await b.commit([Self.message(1, "b1")], ids: 1..<2)
        #expect(second.offset == 2)
        #expect(second.others.map(\.id) == [1, 2] && second.others.map(\.text) == ["a1", "a2"])
        #expect(try await a.catchUp().map(\.text) == ["b1"])
        #expect(try await a.catchUp().isEmpty, "what was read once is not read again")
        #expect(try await b.catchUp().isEmpty, "a node never reads its own")
        // Ids a batch gave out without keeping their messages (live-only tags) hold their places too.
        let third = try await a.commit([Self.message(5, "a5")], ids: 4..<6)
        #expect(third.offset == 0)
        #expect(try await b.catchUp().map(\.id) == [5])
        #expect(try await a.lastMessageID() == 5)
        #expect(try await b.history(room: "#general", .latest(10), below: .max).map(\.text) == ["a1", "a2", "b1", "a5"])
        await a.close()
        await b.close()
    }

    @Test("two nodes writing at once: each sees every id exactly once and in increasing order, whoever committed it")
    func concurrentWriters() async throws {
        let database = try await PostgresCluster.newDatabase()
        let stores = try await [
            PostgresStore.open(database, node: "a", timeout: PostgresCluster.patience, logger: PostgresCluster.quiet),
            PostgresStore.open(database, node: "b", timeout: PostgresCluster.patience, logger: PostgresCluster.quiet),
        ]
        // Each node as its publisher drives it: batches one after another, provisional ids from its own counter
        // kept above what it has seen (as the hub does), and everything it applied in the order it applied it.
        let seen = try await withThrowingTaskGroup(of: (Int, [Int64]).self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    var (next, applied): (Int64, [Int64]) = (1, [])
                    for batch in 0..<40 {
                        let messages = (0..<3).map { Self.message(next + Int64($0), "n\(index) b\(batch) m\($0)") }
                        let commit = try await store.commit(messages, ids: next..<(next + 3))
                        applied += commit.others.map(\.id) + messages.map { $0.id + commit.offset }
                        next = max(next + 3, applied.last! + 1)
                    }
                    return (index, applied)
                }
            }
            var all: [Int: [Int64]] = [:]
            for try await (index, applied) in group { all[index] = applied }
            return all
        }
        let stored = try await stores[0].history(room: "#general", .latest(1000), below: .max).map(\.id)
        #expect(stored.count == 240 && Set(stored).count == 240)
        for (index, store) in stores.enumerated() {
            // What the other committed after this node's last batch, read as a wake-up reads it.
            let applied = try #require(seen[index]) + (try await store.catchUp().map(\.id))
            #expect(applied == stored, "node \(index) applied every id once, in increasing order")
        }
        for store in stores { await store.close() }
    }

    /// How a node opens the database: as `parley serve --store postgres --node-name NAME` does.
    static func node(_ name: String?, of database: PostgresAddress) -> (ServerConfiguration) async throws -> any ChatStorage {
        { _ in try await PostgresStore.open(database, serving: true, node: name, timeout: PostgresCluster.patience, logger: PostgresCluster.quiet) }
    }

    @Test("two nodes, one chat's messages: said on node a, a room's members on node b get it with the same id, and back; history on either has both")
    func messagesCross() async throws {
        let database = try await PostgresCluster.newDatabase()
        try await TestServer.run(storage: Self.node("a", of: database)) { a in
            try await TestServer.run(storage: Self.node("b", of: database)) { b in
                let alice = try await a.jsonUser("alice")
                let carol = try await a.jsonUser("carol")
                let bob = try await b.jsonUser("bob")
                try await alice.send(##"{"type":"send","room":"#general","text":"hello from a","ref":"k"}"##)
                let ack = try json(try await alice.waitFor(isEvent("ack", ["ref": "k"])))
                let atA = try json(try await carol.waitFor(isEvent("message", ["text": "hello from a"])))
                // Node b writes nothing meanwhile: it learns of the message from a's wake-up (or its poll).
                let atB = try json(try await bob.waitFor(isEvent("message", ["text": "hello from a"])))
                #expect(atB["id"] as? Int == ack["id"] as? Int && atA["id"] as? Int == ack["id"] as? Int)
                #expect(atB["from"] as? String == "alice" && atB["room"] as? String == "#general")

                try await bob.send(##"{"type":"send","room":"#general","text":"hello from b","ref":"m"}"##)
                let answer = try json(try await bob.waitFor(isEvent("ack", ["ref": "m"])))
                let back = try json(try await alice.waitFor(isEvent("message", ["text": "hello from b"])))
                #expect(back["id"] as? Int == answer["id"] as? Int)
                #expect(try #require(answer["id"] as? Int) > (try #require(ack["id"] as? Int)), "ids follow the log's order across nodes")

                // A newcomer on either node is replayed both, in order.
                for server in [a, b] {
                    let late = try await server.jsonUser("late\(server.port)")
                    let history = try json(try await late.waitFor(isEvent("history", ["room": "#general"])))["messages"] as! [[String: Any]]
                    #expect(history.map { $0["text"] as! String } == ["hello from a", "hello from b"])
                }
            }
        }
    }

    @Test("who may share a database: nodes of different names do; a second node of one name, or a server without a name beside nodes, is refused in words")
    func sharing() async throws {
        let database = try await PostgresCluster.newDatabase()
        let a = try await Self.node("a", of: database)(ServerConfiguration())
        let b = try await Self.node("b", of: database)(ServerConfiguration())
        await #expect {
            _ = try await PostgresStore.open(database, serving: true, node: "a", timeout: .seconds(2), logger: PostgresCluster.quiet)
        } throws: { error in
            "\(error)".contains("already has a node called a")
        }
        await #expect {
            _ = try await PostgresStore.open(database, serving: true, timeout: .seconds(2), logger: PostgresCluster.quiet)
        } throws: { error in
            "\(error)".contains("is in use by parley serve") && "\(error)".contains("--node-name")
        }
        await a.close()
        await b.close()
        // A server without a name holds it alone: no node may join it.
        let alone = try await Self.node(nil, of: database)(ServerConfiguration())
        await #expect {
            _ = try await PostgresStore.open(database, serving: true, node: "c", timeout: .seconds(2), logger: PostgresCluster.quiet)
        } throws: { error in
            "\(error)".contains("is in use by parley serve")
        }
        await alone.close()
    }

    @Test("parley serve --node-name: two executables on one database serve one chat's messages; the flag needs --store postgres and a plain name")
    func executables() async throws {
        let cluster = try await PostgresCluster.shared.value
        let database = try await cluster.newDatabase()
        let environment = ["PARLEY_DATABASE_URL": "postgres://parley@/\(database.database)?host=\(cluster.folder.path)"]
        let flags = ["--console", "off", "--store", "postgres", "--database-timeout", "30", "--flood-burst", "100000", "--flood-rate", "100000"]
        let (a, portA) = try await ParleyProcess.serve(flags + ["--node-name", "a"], environment: environment)
        let (b, portB) = try await ParleyProcess.serve(flags + ["--node-name", "b"], environment: environment)
        let alice = try await TestServer.jsonUser("alice", port: portA)
        let bob = try await TestServer.jsonUser("bob", port: portB)
        try await alice.send(##"{"type":"send","room":"#general","text":"across the nodes","ref":"x"}"##)
        try await bob.waitFor(isEvent("message", ["text": "across the nodes", "from": "alice"]))
        // The bench spread over both: each room's members on both nodes, nothing lost, their CPU added up.
        let bench = try ParleyProcess(
            ["bench", "--port", "\(portA)", "--port", "\(portB)", "--clients", "6", "--rooms", "2", "--senders", "2", "--rate", "20",
             "--duration", "1", "--drain", "10", "--pid", "\(a.pid)", "--pid", "\(b.pid)", "--json"],
            input: .nullDevice
        )
        #expect(try await bench.waitForExit(timeout: .seconds(60)) == 0, "\(bench.log.text)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(bench.output.text.utf8)) as? [String: Any])
        let sent = try #require(report["sent"] as? Int)
        #expect(sent > 0 && report["received"] as? Int == sent * 2 && report["lost"] as? Int == 0, "\(report)")
        #expect(report["target"] as? String == "127.0.0.1:\(portA),\(portB)")
        #expect(((report["server"] as? [String: Double])?["cpuSeconds"] ?? 0) > 0)
        for server in [a, b] {
            server.signal(SIGTERM)
            #expect(try await server.waitForExit() == 0)
        }
        let elsewhere = try ParleyProcess(["serve", "--node-name", "a", "--print-config"], input: .nullDevice)
        #expect(try await elsewhere.waitForExit() == 64)
        #expect(elsewhere.log.text.contains("--node-name is for --store postgres"), "\(elsewhere.log.text)")
        let odd = try ParleyProcess(["serve", "--store", "postgres", "--node-name", "a b", "--print-config"], input: .nullDevice, environment: environment)
        #expect(try await odd.waitForExit() == 64)
        #expect(odd.log.text.contains("a node's name is 1–64 letters"), "\(odd.log.text)")
        let notWebSocket = try ParleyProcess(["serve", "--node-url", "http://b.lan:8080/", "--print-config"], input: .nullDevice)
        #expect(try await notWebSocket.waitForExit() == 64)
        #expect(notWebSocket.log.text.contains("a node's address is a WebSocket URL"), "\(notWebSocket.log.text)")
    }
}
