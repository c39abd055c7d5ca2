import Foundation
import Logging
import NIOCore
import PostgresNIO

/// One `parley serve` per database, as one per data folder with SQLite (`ServerLock`): until several nodes can
/// share one database (issue 17, part 3: docs/ARCHITECTURE.md), a second server on it would hand out the same
/// message ids as the first and neither would see the other's users. A session-level advisory lock, held on a
/// connection of its own for as long as the server runs, refuses the second at start, naming the first (its
/// `application_name`).
///
/// PostgreSQL lets the lock go with the connection. If the database restarts, the owner takes it again as soon as
/// the database answers; should another server have taken it meanwhile, that is logged as critical, and the
/// ids the two hand out clash in the primary key, so the second's messages get `not_stored` rather than mixing.
final class DatabaseOwner: Sendable {
    /// Any 64-bit number, the same in every Parley.
    static let lock: Int64 = 0x7061_726C_6579_0002

    private let keeper: Task<Void, Never>

    private init(keeper: Task<Void, Never>) {
        self.keeper = keeper
    }

    /// Takes the lock or throws `DatabaseError.inUse`.
    static func acquire(_ address: PostgresAddress, logger: Logger) async throws -> DatabaseOwner {
        let connection = try await take(address, logger: logger)
        // Unstructured: it holds the lock for the store's life and retakes it after a lost connection; `release`
        // cancels it, which closes the connection and so lets the lock go.
        let keeper = Task {
            var held: PostgresConnection? = connection
            var attempt = 0
            while !Task.isCancelled {
                if let current = held {
                    try? await withTaskCancellationHandler {
                        try await current.closeFuture.get()
                    } onCancel: {
                        let closing: EventLoopFuture<Void> = current.close()
                        _ = closing
                    }
                    held = nil
                    if Task.isCancelled { break }
                    logger.warning("lost the connection that holds the database for this server; taking it again", metadata: ["database": "\(address)"])
                }
                attempt += 1
                guard (try? await Task.sleep(for: .milliseconds(min(5000, 250 * attempt)))) != nil else { break }
                do {
                    held = try await take(address, logger: logger)
                    attempt = 0
                } catch let error as DatabaseError {
                    if case .inUse = error { logger.critical("\(error)") }
                } catch {}
            }
        }
        return DatabaseOwner(keeper: keeper)
    }

    func release() async {
        keeper.cancel()
        await keeper.value
    }

    private static func take(_ address: PostgresAddress, logger: Logger) async throws -> PostgresConnection {
        var configuration = try address.connectionConfiguration()
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
        do {
            var taken = false
            for try await (ok) in try await connection.query("SELECT pg_try_advisory_lock(\(lock))", logger: logger).decode(Bool.self) { taken = ok }
            guard taken else {
                // Advisory locks show in pg_locks with the key's high and low halves as classid and objid.
                let (high, low) = (Int64(UInt64(bitPattern: lock) >> 32), Int64(UInt64(bitPattern: lock) & 0xFFFF_FFFF))
                var holder = "another server"
                let rows = try await connection.query(
                    """
                    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = \(high) AND l.objid = \(low)
                    """,
                    logger: logger
                )
                for try await (name) in rows.decode(String?.self) { holder = name.flatMap { $0.isEmpty ? nil : $0 } ?? holder }
                try? await connection.close()
                throw DatabaseError.inUse(address: address.description, by: holder)
            }
            return connection
        } catch let error as DatabaseError {
            throw error
        } catch {
            try? await connection.close()
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// What the holder is called in `pg_stat_activity`, and so in the refusal another server gets.
    static var applicationName: String {
        "parley serve (pid \(getpid()) on \(ProcessInfo.processInfo.hostName))"
    }
}
