import Foundation
import NIOCore
import ParleyCore
@testable import ParleyServer
import ParleySQLite
import SQLiteNIO
import Testing

@Suite("History and durability")
struct HistoryTests {
    static func relaxed(_ configuration: inout ServerConfiguration) {
        configuration.limits.flood = .init(burst: 10_000, perSecond: 10_000)
    }

    @Test("joining replays the latest messages, marked as history, in text and JSON")
    func replayOnJoin() async throws {
        try await TestServer.run(configure: { $0.historyOnJoin = 3 }) { server in
            let alice = try await server.textUser("alice")
            for index in 1...4 { try await alice.send("m\(index)") }
            try await alice.send("/who")
            try await alice.waitFor { $0.hasPrefix("*** Online") }
            let bob = try await server.textUser("bob")
            try await bob.waitFor { $0 == "*** History of #general, 3 messages:" }
            for index in 2...4 {
                let line = try await bob.nextLine()
                #expect(line.range(of: #"^\[\d\d-\d\d \d\d:\d\d\] <alice> m\#(index)$"#, options: .regularExpression) != nil, "\(line)")
            }
            #expect(try await bob.nextLine() == "*** End of history.")
            let bot = try await server.jsonUser("bot")
            let history = try json(try await bot.waitFor(isEvent("history", ["room": "#general"])))
            let messages = try #require(history["messages"] as? [[String: Any]])
            #expect(messages.map { $0["text"] as? String } == ["m2", "m3", "m4"])
            #expect(messages.allSatisfy { $0["from"] as? String == "alice" && $0["id"] is Int && $0["ts"] is String })
        }
    }

    @Test("/history N, and JSON paging backwards and forwards by id")
    func paging() async throws {
        try await TestServer.run(configure: { $0.historyOnJoin = 0; Self.relaxed(&$0) }) { server in
            let bot = try await server.jsonUser("bot")
            var ids: [Int] = []
            for index in 1...20 {
                try await bot.send(##"{"type":"send","room":"#general","text":"n\##(index)","ref":"s\##(index)"}"##)
                ids.append(try json(try await bot.waitFor(isEvent("ack", ["ref": "s\(index)"])))["id"] as! Int)
            }
            try await bot.send(##"{"type":"history","room":"#general","before":\##(ids[10]),"limit":5,"ref":"back"}"##)
            let back = try json(try await bot.waitFor(isEvent("history", ["ref": "back"])))["messages"] as! [[String: Any]]
            #expect(back.map { $0["text"] as! String } == ["n6", "n7", "n8", "n9", "n10"])
            try await bot.send(##"{"type":"history","room":"#general","after":\##(ids[16]),"ref":"fwd"}"##)
            let forward = try json(try await bot.waitFor(isEvent("history", ["ref": "fwd"])))["messages"] as! [[String: Any]]
            #expect(forward.map { $0["text"] as! String } == ["n18", "n19", "n20"])
            let reader = try await server.textUser("reader")
            try await reader.send("/history 2")
            try await reader.waitFor { $0 == "*** History of #general, 2 messages:" }
            #expect(try await reader.nextLine().hasSuffix("<bot> n19"))
            #expect(try await reader.nextLine().hasSuffix("<bot> n20"))
        }
    }

    @Test("a client that reconnects with the last ids it saw gets exactly what it missed, in order")
    func resume() async throws {
        try await TestServer.run(configure: Self.relaxed) { server in
            let talker = try await server.jsonUser("talker")
            let listener = try await server.jsonUser("listener")
            try await listener.send(##"{"type":"join","room":"#ops"}"##)
            try await listener.waitFor(isEvent("members", ["room": "#ops"]))
            try await talker.send(##"{"type":"join","room":"#ops"}"##)
            try await listener.waitFor(isEvent("joined", ["room": "#ops", "nick": "talker"]))
            try await talker.send(##"{"type":"send","room":"#general","text":"g1"}"##)
            try await talker.send(##"{"type":"send","room":"#ops","text":"o1"}"##)
            let lastGeneral = try json(try await listener.waitFor(isEvent("message", ["text": "g1"])))["id"] as! Int
            let lastOps = try json(try await listener.waitFor(isEvent("message", ["text": "o1"])))["id"] as! Int
            await listener.close()
            // The server must have seen it go before the same nick comes back.
            try await talker.waitFor(isEvent("left", ["room": "#ops", "nick": "listener"]))
            for index in 2...6 {
                try await talker.send(##"{"type":"send","room":"#general","text":"g\##(index)"}"##)
                try await talker.send(##"{"type":"send","room":"#ops","text":"o\##(index)"}"##)
            }
            try await talker.send(##"{"type":"ping","ref":"sent"}"##)
            try await talker.waitFor(isEvent("pong", ["ref": "sent"]))
            let back = try await TestClient.connect(port: server.port)
            try await back.send(##"{"type":"hello","version":1,"nick":"listener","resume":{"#general":\##(lastGeneral),"#ops":\##(lastOps)}}"##)
            let general = try json(try await back.waitFor(isEvent("history", ["room": "#general"])))["messages"] as! [[String: Any]]
            #expect(general.map { $0["text"] as! String } == ["g2", "g3", "g4", "g5", "g6"])
            try await back.send(##"{"type":"join","room":"#ops"}"##)
            let ops = try json(try await back.waitFor(isEvent("history", ["room": "#ops"])))["messages"] as! [[String: Any]]
            #expect(ops.map { $0["text"] as! String } == ["o2", "o3", "o4", "o5", "o6"])
            // Live traffic carries on after the replay, with no duplicates.
            try await talker.send(##"{"type":"send","room":"#ops","text":"o7"}"##)
            try await back.waitFor(isEvent("message", ["text": "o7"]))
            #expect(try await back.lines.filter { $0.contains(#""text":"o6""#) }.count == 1)
        }
    }

    @Test("history and message ids survive a restart; --history 0 replays nothing")
    func restart() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-restart-\(UUID().uuidString)").path
        var lastID = 0
        try await TestServer.run(dataDirectory: data) { server in
            let bot = try await server.jsonUser("bot")
            try await bot.send(##"{"type":"send","room":"#general","text":"before the restart","ref":"r"}"##)
            lastID = try json(try await bot.waitFor(isEvent("ack", ["ref": "r"])))["id"] as! Int
        }
        try await TestServer.run(dataDirectory: data) { server in
            let bot = try await server.jsonUser("bot")
            let history = try json(try await bot.waitFor(isEvent("history", ["room": "#general"])))["messages"] as! [[String: Any]]
            #expect(history.map { $0["text"] as! String } == ["before the restart"])
            try await bot.send(##"{"type":"send","room":"#general","text":"after","ref":"a"}"##)
            #expect(try json(try await bot.waitFor(isEvent("ack", ["ref": "a"])))["id"] as! Int > lastID)
        }
        // The file is in WAL mode (SQLite keeps the mode in the file itself).
        let store = try await SQLiteStore.open(directory: data)
        #expect(try await store.connection.query("PRAGMA journal_mode").first?.column("journal_mode")?.string == "wal")
        await store.close()
        try await TestServer.run(dataDirectory: data, configure: { $0.historyOnJoin = 0 }) { server in
            let bot = try await server.jsonUser("bot")
            try await bot.send(##"{"type":"ping","ref":"p"}"##)
            try await bot.waitFor(isEvent("pong", ["ref": "p"]))
            let botGotHistory = try await bot.lines.contains { $0.contains(#""type":"history""#) }
            #expect(!botGotHistory)
        }
    }

    @Test("kill -9 under heavy traffic: every message acknowledged or delivered is in the history after a restart", arguments: ["sqlite", "postgres"])
    func killNine(store: String) async throws {
        // The same test on each store: SQLite in the data folder, or a PostgreSQL database of its own.
        var (storage, environment): ([String], [String: String]) = ([], [:])
        if store == "postgres" {
            storage = ["--store", "postgres", "--database-timeout", "30"]
            environment["PARLEY_DATABASE_URL"] = "\(try await PostgresCluster.newDatabase())"
        }
        let (server, port) = try await ParleyProcess.serve(
            ["--console", "off", "--flood-burst", "100000", "--flood-rate", "100000", "--history", "0"] + storage, environment: environment
        )
        let data = server.dataDirectory.path
        let receiver = try await TestServer.jsonUser("receiver", port: port)
        let senders = try await withThrowingTaskGroup(of: TestClient.self) { group in
            for index in 0..<4 { group.addTask { try await TestServer.jsonUser("sender\(index)", port: port) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (index, sender) in senders.enumerated() {
            let burst = (0..<2000).map { ##"{"type":"send","room":"#general","text":"s\##(index)-\##($0)","ref":"\##($0)"}"## + "\n" }.joined()
            try await sender.sendRaw(Array(burst.utf8))
        }
        // Kill while traffic is still flowing: once the receiver has seen some, but before it has seen all.
        try await receiver.waitFor(timeout: .seconds(30)) { $0.contains(#""text":"s0-500""#) }
        server.signal(SIGKILL)
        _ = try? await server.waitForExit()
        var promised = Set<Int>()
        for client in senders + [receiver] {
            for line in try await client.lines {
                guard let event = try? json(line), let id = event["id"] as? Int,
                    ["ack", "message"].contains(event["type"] as? String ?? "")
                else { continue }
                promised.insert(id)
            }
        }
        #expect(promised.count > 500)
        if store == "postgres" {
            // PostgreSQL lets the killed server's hold on the database go once its backends see their sockets
            // close; a restart before that would be refused as a second server.
            let pid = server.pid
            try await eventually("the killed server's sessions are gone", timeout: .seconds(30)) {
                try await PostgresCluster.shared.value.number(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'parley serve (pid \(pid) %'"
                ) == 0
            }
        }
        let (again, newPort) = try await ParleyProcess.serve(
            ["--console", "off", "--history", "0", "--flood-burst", "100000", "--flood-rate", "100000"] + storage, dataDirectory: data,
            environment: environment
        )
        let auditor = try await TestServer.jsonUser("auditor", port: newPort)
        var stored = Set<Int>()
        var after = 0
        while true {
            try await auditor.send(##"{"type":"history","room":"#general","after":\##(after),"limit":500,"ref":"p\##(after)"}"##)
            let page = try json(try await auditor.waitFor(isEvent("history", ["ref": "p\(after)"])))["messages"] as! [[String: Any]]
            guard let last = page.last?["id"] as? Int else { break }
            stored.formUnion(page.compactMap { $0["id"] as? Int })
            after = last
        }
        #expect(promised.isSubset(of: stored), "missing after the crash: \(promised.subtracting(stored).sorted().prefix(20))")
        again.signal(SIGTERM)
        #expect(try await again.waitForExit() == 0)
    }

    @Test("SIGTERM with a backed-up queue: the exit is bounded, and every message read is answered, ack or not_stored, never silence")
    func shutdownAnswersEveryone() async throws {
        let (server, port) = try await ParleyProcess.serve(["--console", "off", "--flood-burst", "100000", "--flood-rate", "100000", "--history", "0", "--shutdown-grace", "3"])
        let receiver = try await TestServer.jsonUser("receiver", port: port)
        let senders = try await withThrowingTaskGroup(of: TestClient.self) { group in
            for index in 0..<4 { group.addTask { try await TestServer.jsonUser("sender\(index)", port: port) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (index, sender) in senders.enumerated() {
            let burst = (0..<600).map { ##"{"type":"send","room":"#general","text":"s\##(index)-\##($0)","ref":"\##($0)"}"## + "\n" }.joined()
            try await sender.sendRaw(Array(burst.utf8))
        }
        try await receiver.waitFor(timeout: .seconds(30)) { $0.contains(#""text":"s0-100""#) }
        let stopping = ContinuousClock.now
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        #expect(stopping.duration(to: .now) < .seconds(8), "a 3 s grace")
        for sender in senders {
            let lines = try await sender.waitForClose()
            #expect(lines.contains { $0.contains(#""type":"shutdown""#) }, "\(lines.count) lines, ending \(lines.suffix(3))")
            // Answers come in order: each ref that was read has an ack or not_stored, and only refs the server
            // never read (after the last answer) have none.
            let answered = lines.compactMap { line -> Int? in
                guard let event = try? json(line), ["ack", "error"].contains(event["type"] as? String ?? "") else { return nil }
                if event["type"] as? String == "error" { #expect(event["code"] as? String == "not_stored", "\(line)") }
                return (event["ref"] as? String).flatMap { Int($0) }
            }
            #expect(answered == Array(0..<answered.count), "answers are a prefix of what was sent, with no gap")
        }
        // And every message acknowledged is stored.
        var acknowledged = Set<Int>()
        for sender in senders {
            for line in try await sender.lines {
                if let event = try? json(line), event["type"] as? String == "ack", let id = event["id"] as? Int { acknowledged.insert(id) }
            }
        }
        let store = try await SQLiteStore.open(directory: server.dataDirectory.path)
        let stored = Set(try await store.history(room: "#general", .latest(10_000), below: .max).map { Int($0.id) })
        await store.close()
        #expect(acknowledged.isSubset(of: stored))
    }

    @Test("shutdown during a /register that waits for its hash: the answer comes first, then the goodbye")
    func shutdownDuringRegistration() async throws {
        var client: TestClient?
        // A costly hash (scrypt N = 2^16), so that the shutdown surely comes while it runs, and a grace long
        // enough for it to end however loaded the machine (past the grace, connections are cut regardless).
        try await TestServer.run(configure: {
            $0.passwordCost = 65_536
            $0.limits.shutdownGrace = .seconds(60)
        }) { server in
            let user = try await server.textUser("patient")
            try await user.send("/register right-pass")
            try await waitUntil(server.application.hashing, waiting: 1)
            client = user
        }
        let lines = try await #require(client).waitForClose()
        let answered = try #require(lines.firstIndex { $0.hasPrefix("*** The nickname patient is now registered") }, "\(lines)")
        let goodbye = try #require(lines.firstIndex { $0.hasPrefix("*** The server is shutting down") }, "\(lines)")
        #expect(answered < goodbye)
    }

    @Test("a database newer than this parley, or a damaged one, stops the start with a clear message")
    func badDatabases() async throws {
        let newer = FileManager.default.temporaryDirectory.appendingPathComponent("parley-newer-\(UUID().uuidString)").path
        let store = try await SQLiteStore.open(directory: newer)
        _ = try await store.connection.query("PRAGMA user_version = 99")
        await store.close()
        let refused = try ParleyProcess(["serve", "--port", "0", "--no-irc", "--no-http", "--console", "off", "--data-dir", newer], input: .nullDevice)
        #expect(try await refused.waitForExit() == 3)
        #expect(refused.log.text.contains("schema version 99, but this parley knows only up to \(SQLiteStore.schemaVersion)"))

        let damaged = FileManager.default.temporaryDirectory.appendingPathComponent("parley-damaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: damaged, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 8192).write(to: damaged.appendingPathComponent(SQLiteStore.fileName))
        let broken = try ParleyProcess(["serve", "--port", "0", "--no-irc", "--no-http", "--console", "off", "--data-dir", damaged.path], input: .nullDevice)
        #expect(try await broken.waitForExit() == 3)
        #expect(broken.log.text.contains("cannot start"))
        #expect(broken.log.text.contains(damaged.path))
    }

    @Test("the write-ahead log is copied into the database beside the writers, by the checkpointer, not in a commit")
    func checkpointsBesideTheWriters() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-checkpoint-\(UUID().uuidString)").path
        let store = try await SQLiteStore.open(directory: data)
        let file = URL(fileURLWithPath: data).appendingPathComponent(SQLiteStore.fileName).path
        @Sendable func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        let before = size(file)
        // About 2 MiB of log, in commits of one batch each, as the publisher writes them.
        let text = String(repeating: "x", count: 1000)
        for batch in 0..<40 {
            let messages = (0..<50).map { ChatMessage(id: Int64(batch * 50 + $0 + 1), time: Date(), from: "w", target: .room("#general"), kind: .normal, text: text) }
            try await store.append(messages)
        }
        // About 650 pages (the writers ring the checkpointer every 256): SQLite's own checkpoint (at 1,000) would
        // not have come yet, and the writers' comes only past 64 MiB, so the file grows only by the checkpointer's hand.
        // Each checkpoint is announced (`checkpoints`): wait for one that copied frames, then for the file to have grown.
        try await answer(within: .seconds(30)) {
            for await pass in store.checkpoints where pass.copied > 0 && size(file) > before + (1 << 20) { break }
        }
        #expect(size(file) > before + (1 << 20))
        #expect(try await store.history(room: "#general", .latest(5), below: .max).count == 5)
        await store.close()
        try? FileManager.default.removeItem(atPath: data)
    }
}
