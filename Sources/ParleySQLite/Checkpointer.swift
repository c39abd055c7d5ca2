import Foundation
import Logging
import SQLiteNIO

/// Copies the write-ahead log back into the database, beside the writers rather than inside their commits.
///
/// SQLite checkpoints by itself in whichever commit finds the log past 1,000 pages: that commit then writes the
/// pages back and fsyncs the database file, and the publisher, which waits for it, delivers nothing meanwhile.
/// On the virtual disk measured, that put 20–60 ms into one message in a hundred (S4's p99: 22–27 ms with
/// SQLite, 3.7 ms with `--store none`). Here a connection of its own, on a thread of its own, runs a passive
/// checkpoint (which never blocks a writer) twice a second once the log holds a megabyte; the writers'
/// own checkpoints start only if it falls far behind (`writersTakeOverPages`).
final class Checkpointer: Sendable {
    /// Where the writers checkpoint by themselves after all: 64 MiB of log, in 4 KiB pages.
    static let writersTakeOverPages = 16_384
    static let threshold = 1 << 20
    static let interval: Duration = .milliseconds(500)

    private let connection: SQLiteConnection
    private let running: Task<Void, Never>

    init(connection: SQLiteConnection, path: String, logger: Logger) {
        self.connection = connection
        // Unstructured: it runs as long as the store is open; `stop()` cancels it and waits.
        self.running = Task { [connection] in
            let log = path + "-wal"
            while (try? await Task.sleep(for: Self.interval)) != nil {
                let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
                guard size >= Self.threshold else { continue }
                do {
                    _ = try await connection.query("PRAGMA wal_checkpoint(PASSIVE)")
                } catch {
                    logger.warning("checkpoint failed; the writers will checkpoint by themselves", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    func stop() async {
        running.cancel()
        await running.value
        try? await connection.close().get()
    }
}
