import Foundation
import NIOCore
import NIOPosix
import ParleyCore
import ParleyServer
import ParleySQLite
import SQLiteNIO
import Testing

@Suite("Store failures")
struct StoreFailureTests {
    @Test("a full disk: the sender gets not_stored, nobody gets that message, and the chat goes on once there is room")
    func fullDisk() async throws {
        try await TestServer.run(configure: { $0.historyOnJoin = 0; HistoryTests.relaxed(&$0) }) { server in
            let store = try #require(server.application.storage as? SQLiteStore)
            let alice = try await server.jsonUser("alice")
            let bob = try await server.jsonUser("bob")
            // SQLite's own size cap fails a write exactly as a full disk does (SQLITE_FULL), without needing one.
            let pages = try await store.connection.query("PRAGMA page_count").first?.columns.first?.data.integer ?? 0
            _ = try await store.connection.query("PRAGMA max_page_count = \(pages)")
            let text = String(repeating: "x", count: 3000)
            var acked: [Int] = []
            var refused = 0
            for index in 1...8 {
                try await alice.send(##"{"type":"send","room":"#general","text":"\##(text)","ref":"f\##(index)"}"##)
                let reply = try json(try await alice.waitFor { line in
                    line.contains(##""ref":"f\##(index)""##)
                })
                if reply["type"] as? String == "ack" {
                    acked.append(reply["id"] as! Int)
                } else {
                    #expect(reply["code"] as? String == "not_stored")
                    #expect((reply["text"] as? String)?.contains("could not store your message") == true)
                    refused += 1
                }
            }
            #expect(refused > 0, "the cap never filled up")

            _ = try await store.connection.query("PRAGMA max_page_count = 1073741823")
            try await alice.send(##"{"type":"send","room":"#general","text":"room again","ref":"after"}"##)
            try await alice.waitFor(isEvent("ack", ["ref": "after"]))
            // bob got exactly the stored messages, then the new one: nothing unstored slipped through.
            var delivered: [Int] = []
            while true {
                let message = try json(try await bob.waitFor(isEvent("message")))
                if message["text"] as? String == "room again" { break }
                delivered.append(message["id"] as! Int)
            }
            #expect(delivered == acked)
            let history = try await store.history(room: "#general", .latest(100), below: Int64.max)
            #expect(history.map { Int($0.id) } == acked + [history.last.map { Int($0.id) } ?? 0])
            #expect(history.last?.text == "room again")
        }
    }

    @Test("a database another program holds locked stops the start with a clear message")
    func locked() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-locked-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let holder = try await SQLiteConnection.open(
            storage: .file(path: directory.appendingPathComponent(SQLiteStore.fileName).path),
            threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton.any()
        ).get()
        _ = try await holder.query("CREATE TABLE other_program (x)")
        _ = try await holder.query("BEGIN EXCLUSIVE")
        let refused = try ParleyProcess(["serve", "--port", "0", "--no-irc", "--no-http", "--console", "off", "--data-dir", directory.path], input: .nullDevice)
        #expect(try await refused.waitForExit() == 3)
        #expect(refused.log.text.contains("is locked by another program; stop it (or wait) and try again"), "\(refused.log.text)")
        _ = try await holder.query("ROLLBACK")
        try await holder.close().get()
    }

    @Test("a migration that fails changes nothing and says which version failed")
    func failedMigration() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-migration-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteStore.open(directory: directory)
        // Back to version 2 with something in the way of version 3's tables.
        _ = try await store.connection.query("DROP TABLE restrictions")
        _ = try await store.connection.query("CREATE TABLE restrictions (unrelated TEXT)")
        _ = try await store.connection.query("DROP TABLE room_operators")
        _ = try await store.connection.query("DROP TABLE rooms")
        _ = try await store.connection.query("PRAGMA user_version = 2")
        await store.close()
        let refused = try ParleyProcess(["serve", "--port", "0", "--no-irc", "--no-http", "--console", "off", "--data-dir", directory], input: .nullDevice)
        #expect(try await refused.waitForExit() == 3)
        #expect(refused.log.text.contains("to schema version 3 failed"), "\(refused.log.text)")
        #expect(refused.log.text.contains("nothing was changed"))
        let reopened = try await SQLiteConnection.open(storage: .file(path: "\(directory)/\(SQLiteStore.fileName)"), threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton.any()).get()
        #expect(try await reopened.query("PRAGMA user_version").first?.columns.first?.data.integer == 2)
        #expect(try await reopened.query("SELECT name FROM sqlite_master WHERE name = 'rooms'").isEmpty)
        try await reopened.close().get()
    }

    @Test("several opens of one new database at once all succeed: the setup lock serialises them")
    func concurrentFirstOpen() async throws {
        // Each round: a fresh folder opened by several connections at once, as `parley serve` and
        // `parley account add` do when started together. Before, the losers re-ran a migration the winner had
        // committed ("table already exists").
        for round in 1...4 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-race-\(round)-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let stores = try await withThrowingTaskGroup(of: SQLiteStore.self) { group in
                for _ in 1...4 { group.addTask { try await SQLiteStore.open(directory: directory) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for store in stores {
                #expect(try await store.connection.query("PRAGMA user_version").first?.columns.first?.data.integer == SQLiteStore.schemaVersion)
                await store.close()
            }
        }
    }

    @Test("parley account add while parley serve starts on the same new data folder: both work")
    func accountAddDuringStart() async throws {
        for round in 1...6 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-race-proc-\(round)-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let add = try ParleyProcess(["account", "add", "op\(round)", "--password", "correct-horse", "--data-dir", directory], input: .nullDevice)
            let (server, _) = try await ParleyProcess.serve(["--console", "off"], dataDirectory: directory)
            #expect(try await add.waitForExit() == 0, "\(add.log.text) \(add.output.text)")
            server.signal(SIGTERM)
            #expect(try await server.waitForExit() == 0, "\(server.log.text)")
        }
    }
}
