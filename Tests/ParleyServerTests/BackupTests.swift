import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ParleyCore
import ParleyServer
import ParleySQLite
import SQLiteNIO
import Testing

/// `parley backup` and `parley restore` as an operator runs them (the real executable), and the data folder's
/// one-server rule.
@Suite("Backups and the data folder's owner")
struct BackupTests {
    static func folder(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(name)-\(UUID().uuidString)").path
    }

    /// The message ids in a database file.
    static func ids(in path: String) async throws -> Set<Int> {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: .singleton, on: MultiThreadedEventLoopGroup.singleton.any()).get()
        defer { _ = connection.close() }
        return Set(try await connection.query("SELECT id FROM messages").compactMap { $0.columns.first?.data.integer })
    }

    @Test("a backup taken while messages are being written holds every one acknowledged before it began; restore puts it back")
    func backupUnderLoadAndRestore() async throws {
        let data = Self.folder("live")
        let backup = Self.folder("backup") + ".sqlite3"
        let acknowledged = NIOLockedValueBox<[Int]>([])
        let before = NIOLockedValueBox<Set<Int>>([])
        try await TestServer.run(dataDirectory: data, configure: HistoryTests.relaxed) { server in
            let writer = try await server.jsonUser("writer")
            try await withThrowingTaskGroup(of: Void.self) { group in
                // The load: a message after each acknowledgement, until the backup is done. Only this task waits
                // on the writer; it tells the test of each acknowledgement.
                let done = ManagedAtomicFlag()
                let (acks, counted) = AsyncStream.makeStream(of: Int.self)
                group.addTask {
                    defer { counted.finish() }
                    var index = 0
                    while !done.isSet {
                        index += 1
                        try await writer.send(##"{"type":"send","room":"#general","text":"load \##(index)","ref":"\##(index)"}"##)
                        let ack = try json(try await writer.waitFor(isEvent("ack", ["ref": "\(index)"])))
                        acknowledged.withLockedValue { $0.append(ack["id"] as? Int ?? 0) }
                        counted.yield(index)
                    }
                }
                for await count in acks where count >= 50 { break }
                before.withLockedValue { $0 = Set(acknowledged.withLockedValue { $0 }) }
                let run = try ParleyProcess(["backup", "--to", backup, "--data-dir", data], input: .nullDevice)
                #expect(try await run.waitForExit() == 0, "\(run.log.text)")
                #expect(run.output.text.hasPrefix("backed up "), "\(run.output.text)")
                done.set()
                try await group.waitForAll()
            }
            // A backup never overwrites.
            let again = try ParleyProcess(["backup", "--to", backup, "--data-dir", data], input: .nullDevice)
            #expect(try await again.waitForExit() == 3)
            #expect(again.log.text.contains("it exists already"), "\(again.log.text)")
        }
        // Readable by its owner only: it holds password hashes and private messages.
        #expect((try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int) == 0o600)
        let copied = try await Self.ids(in: backup)
        let acknowledgedBefore = before.withLockedValue { $0 }
        #expect(acknowledgedBefore.count >= 50)
        #expect(acknowledgedBefore.isSubset(of: copied), "missing: \(acknowledgedBefore.subtracting(copied).sorted())")

        // Restored into a new folder, a server serves it: the history is the backup's. A WAL left there (its
        // database deleted by hand) is moved aside, never replayed onto the restored file.
        let restored = Self.folder("restored")
        try FileManager.default.createDirectory(atPath: restored, withIntermediateDirectories: true)
        try Data(repeating: 0x57, count: 4096).write(to: URL(fileURLWithPath: restored).appendingPathComponent(SQLiteStore.fileName + "-wal"))
        let restore = try ParleyProcess(["restore", "--from", backup, "--data-dir", restored], input: .nullDevice)
        #expect(try await restore.waitForExit() == 0, "\(restore.log.text)")
        #expect(restore.output.text.contains("restored \(copied.count) messages"), "\(restore.output.text)")
        let left = try FileManager.default.contentsOfDirectory(atPath: restored)
        #expect(!left.contains(SQLiteStore.fileName + "-wal") && left.contains { $0.hasSuffix("-wal") && $0.contains("before-restore") }, "\(left)")
        try await TestServer.run(dataDirectory: restored) { server in
            let reader = try await server.jsonUser("reader")
            try await reader.send(##"{"type":"history","room":"#general","after":0,"limit":500,"ref":"h"}"##)
            let page = try json(try await reader.waitFor { $0.contains(#""ref":"h""#) })
            let ids = Set((page["messages"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int })
            #expect(acknowledgedBefore.isSubset(of: ids))
        }
        // Restoring over a database keeps the one replaced; a file that is no database is refused.
        let over = try ParleyProcess(["restore", "--from", backup, "--data-dir", restored], input: .nullDevice)
        #expect(try await over.waitForExit() == 0)
        #expect(over.output.text.contains("the database it replaced is kept as"), "\(over.output.text)")
        let junk = Self.folder("junk")
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: junk))
        let refused = try ParleyProcess(["restore", "--from", junk, "--data-dir", restored], input: .nullDevice)
        #expect(try await refused.waitForExit() == 3)
        #expect(refused.log.text.contains("damaged") || refused.log.text.contains("not a database"), "\(refused.log.text)")
    }

    @Test("a second server on the same data folder is refused at start, naming the first's process; restore is too")
    func oneServerPerFolder() async throws {
        let data = Self.folder("owned")
        let (first, _) = try await ParleyProcess.serve(["--console", "off"], dataDirectory: data)
        let second = try ParleyProcess(
            ["serve", "--port", "0", "--no-irc", "--no-http", "--console", "off", "--data-dir", data], input: .nullDevice
        )
        #expect(try await second.waitForExit() == 3)
        #expect(second.log.text.contains("another parley (process \(first.pid)) is using the data folder"), "\(second.log.text)")
        let restore = try ParleyProcess(["restore", "--from", "/nonexistent", "--data-dir", data], input: .nullDevice)
        #expect(try await restore.waitForExit() == 3)
        #expect(restore.log.text.contains("another parley (process \(first.pid))"), "\(restore.log.text)")
        // Accounts are managed beside a running server, as ever.
        let add = try ParleyProcess(["account", "add", "beside", "--password", "a-long-password", "--data-dir", data], input: .nullDevice)
        #expect(try await add.waitForExit() == 0, "\(add.log.text)")
        first.signal(SIGTERM)
        #expect(try await first.waitForExit() == 0)
    }
}

/// A flag one task sets and another reads.
final class ManagedAtomicFlag: Sendable {
    private let value = NIOLockedValueBox(false)
    var isSet: Bool { value.withLockedValue { $0 } }
    func set() { value.withLockedValue { $0 = true } }
}
