import Logging
import ParleyCore
import SQLiteNIO
import Synchronization

/// Copies the write-ahead log back into the database, beside the writers rather than inside their commits.
///
/// SQLite checkpoints by itself in whichever commit finds the log past 1,000 pages: that commit then writes the
/// pages back and fsyncs the database file, and the publisher, which waits for it, delivers nothing meanwhile.
/// On the virtual disk measured, that put 20–60 ms into one message in a hundred (S4's p99: 22–27 ms with
/// SQLite, 3.7 ms with `--store none`). Here a connection of its own, on a thread of its own, runs a passive
/// checkpoint (which never blocks a writer) each time the writers have added about a megabyte to the log; the
/// writers' own checkpoints start only if it falls far behind (`writersTakeOverPages`).
///
/// Rung by the writers, not woken by a clock: an idle server does nothing, and a test's server that writes a
/// few messages never checkpoints (every fsync counts when a whole test suite shares one disk). "Never blocks a
/// writer" is SQLite's locks: the checkpoint's writes and fsync still share the disk with the commits' own.
final class Checkpointer: Sendable {
    /// Where the writers checkpoint by themselves after all: 64 MiB of log, in 4 KiB pages.
    static let writersTakeOverPages = 16_384
    /// What the log file is cut back to when it starts over, in bytes.
    static let logSizeLimit = 8 << 20
    /// A gap small enough to copy again at once, in pages.
    static let catchUpFrames = 64
    /// About a megabyte of log between two checkpoints.
    static let pagesBetween = 256

    /// Each finished checkpoint: the log's frames, and how many of them are in the database now. Kept for whoever
    /// reads it (a test waiting for a checkpoint; nobody in a server: only the newest few are kept).
    let passes: AsyncStream<(log: Int, copied: Int)>
    private let passed: AsyncStream<(log: Int, copied: Int)>.Continuation
    private let connection: SQLiteConnection
    /// Pages written since the last ring, as the writers estimate them.
    private let written = Atomic<Int>(0)
    private let doorbell: AsyncStream<Void>.Continuation
    private let running: Task<Void, Never>

    init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        // One ring waiting is enough: a checkpoint copies whatever the log holds when it runs.
        let (rings, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.doorbell = doorbell
        let (passes, passed) = AsyncStream.makeStream(of: (log: Int, copied: Int).self, bufferingPolicy: .bufferingNewest(4))
        (self.passes, self.passed) = (passes, passed)
        // Unstructured: it runs as long as the store is open; `stop()` ends its sequence and waits for it.
        self.running = Task { [connection, passed] in
            for await _ in rings {
                do {
                    // Once more, at most twice, when only a few commits came in meanwhile: the log starts over from
                    // its beginning only once a checkpoint has copied all of it, so a log always a little ahead
                    // would grow until the writers' own checkpoints took over. A larger gap waits for the next
                    // ring (each pass costs an fsync, which shares the disk with the commits).
                    for _ in 0..<3 {
                        let row = try await connection.query("PRAGMA wal_checkpoint(PASSIVE)").first
                        guard let log = row?.column("log")?.integer, let copied = row?.column("checkpointed")?.integer else { break }
                        passed.yield((log, copied))
                        guard copied < log, log - copied <= Self.catchUpFrames else { break }
                    }
                } catch {
                    logger.warning("checkpoint failed; the writers will checkpoint by themselves", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// A writer committed about `pages` pages (a guess is enough: it only spaces the checkpoints out).
    func committed(pages: Int) {
        guard written.add(pages, ordering: .relaxed).newValue >= Self.pagesBetween else { return }
        written.subtract(Self.pagesBetween, ordering: .relaxed)
        doorbell.yield()
    }

    /// The pages a commit of `messages` adds to the log, about: the table's and each index's leaf, and the text.
    static func pages(for messages: [ChatMessage]) -> Int {
        3 + messages.reduce(0) { $0 + 100 + $1.text.utf8.count } / 4096
    }

    func stop() async {
        doorbell.finish()
        await running.value
        passed.finish()
        try? await connection.close().get()
    }
}
