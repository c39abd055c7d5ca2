import Foundation
import Logging
import NIOCore
import PostgresNIO

/// One `parley serve` per database, as one per data folder with SQLite (`ServerLock`), unless every server on it
/// is a named node (`--node-name`, docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"): a server without a
/// name assumes it has the chat to itself (its users are nobody else's), so it must not share. Session-level
/// advisory locks, held on a connection of their own for as long as the server runs, refuse the wrong second
/// server at start, naming the first (its `application_name`): a server without a name holds the database's
/// lock alone; a node holds it shared with the other nodes, and a lock of its own name alone, so two nodes of
/// one name are refused too.
///
/// PostgreSQL lets the lock go with the connection. The owner asks over it every few seconds (so a half-open
/// connection is noticed too) and, once it is gone, takes the lock again as soon as the database answers.
/// Should another server have taken it meanwhile, that is logged as critical (once a minute): both then write
/// to the one log (`log_head` keeps every id unique), each serving only its own users, until one is stopped.
final class DatabaseOwner: Sendable {
    /// Any 64-bit number, the same in every Parley.
    static let lock: Int64 = 0x7061_726C_6579_0002
    /// How often the held connection is asked whether it is still there.
    static let checkInterval: Duration = .seconds(5)

    private let keeper: Task<Void, Never>

    private init(keeper: Task<Void, Never>) {
        self.keeper = keeper
    }

    /// How long a start waits for the lock before it refuses: a server restarted at once (`systemctl restart`,
    /// or after a crash) may find its predecessor's session still ending in PostgreSQL.
    static let patience: Duration = .seconds(5)

    /// Takes the lock, waiting up to `patience` for a holder to go, or throws `DatabaseError.inUse`.
    static func acquire(_ address: PostgresAddress, node: String? = nil, timeout: Duration, logger: Logger) async throws -> DatabaseOwner {
        let started = ContinuousClock.now
        var first: PostgresConnection
        while true {
            do {
                first = try await take(address, node: node, timeout: timeout, logger: logger)
                break
            } catch DatabaseError.inUse(let at, let holder, _) where started.duration(to: .now) < patience {
                logger.notice("the database is in use; waiting for it", metadata: ["database": "\(at)", "by": "\(holder)"])
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        // Unstructured: it holds the lock for the store's life and retakes it after a lost connection; `release`
        // cancels it, and it unlocks and closes the connection it holds on the way out.
        let keeper = Task { [first] in
            var held: PostgresConnection? = first
            var failures = 0
            var lastCritical: ContinuousClock.Instant?
            while !Task.isCancelled {
                if let connection = held {
                    guard (try? await Task.sleep(for: checkInterval)) != nil else { break }
                    let alive = try? await PostgresStore.withDeadline(timeout, address: address) {
                        try await connection.query("SELECT 1", logger: logger).collect()
                    }
                    if alive != nil { continue }
                    try? await connection.close()
                    held = nil
                    logger.warning("lost the connection that holds the database for this server; taking it again", metadata: ["database": "\(address)"])
                    continue
                }
                failures += 1
                guard (try? await Task.sleep(for: .milliseconds(min(5000, 250 * failures)))) != nil else { break }
                do {
                    held = try await take(address, node: node, timeout: timeout, logger: logger)
                    failures = 0
                } catch let error as DatabaseError {
                    guard case .inUse = error else { continue }
                    if lastCritical.map({ $0.duration(to: .now) > .seconds(60) }) ?? true {
                        logger.critical("\(error)")
                        lastCritical = .now
                    }
                } catch {}
            }
            if let connection = held {
                // Let go of the lock before closing, so that a server started right after this one (a restart)
                // finds it free rather than racing the end of this session in PostgreSQL. In a task of its own,
                // which this one's cancellation does not reach, and bounded, in case the database stopped answering.
                let unlocking = Task {
                    _ = try? await PostgresStore.withDeadline(timeout, address: address) {
                        try await connection.query("SELECT pg_advisory_unlock_all()", logger: logger).collect()
                    }
                }
                await unlocking.value
                try? await connection.close()
            }
        }
        return DatabaseOwner(keeper: keeper)
    }

    func release() async {
        keeper.cancel()
        await keeper.value
    }

    /// The lock of one node's name: the name's FNV-1a hash, so that every Parley computes the same.
    static func lock(ofNode node: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "parley node \(node)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int64(bitPattern: hash)
    }

    private static func take(_ address: PostgresAddress, node: String?, timeout: Duration, logger: Logger) async throws -> PostgresConnection {
        let connection = try await PostgresStore.connect(address, timeout: timeout, id: 2, applicationName: applicationName, logger: logger)
        // The database's lock, alone or shared by the nodes, then the node's own. The connection's close lets go
        // of any taken before a refusal.
        let locks: [(key: Int64, function: String)] =
            if let node { [(lock, "pg_try_advisory_lock_shared"), (lock(ofNode: node), "pg_try_advisory_lock")] } else { [(lock, "pg_try_advisory_lock")] }
        do {
            for (lock, function) in locks {
                try await take(lock, with: function, on: connection, address: address, node: node, logger: logger)
            }
            return connection
        } catch let error as DatabaseError {
            try? await connection.close()
            throw error
        } catch {
            try? await connection.close()
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// Takes one lock on `connection`, or throws `inUse`, naming the holder.
    private static func take(
        _ lock: Int64, with function: String, on connection: PostgresConnection, address: PostgresAddress, node: String?, logger: Logger
    ) async throws {
        do {
            var taken = false
            for try await (ok) in try await connection.query(PostgresQuery(unsafeSQL: "SELECT \(function)(\(lock))"), logger: logger).decode(Bool.self) {
                taken = ok
            }
            guard taken else {
                // Advisory locks show in pg_locks with the key's high and low halves as classid and objid.
                let (high, low) = (Int64(UInt64(bitPattern: lock) >> 32), Int64(UInt64(bitPattern: lock) & 0xFFFF_FFFF))
                var holder = "another server"
                let rows = try await connection.query(
                    """
                    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted AND l.classid = \(high) AND l.objid = \(low)
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """,
                    logger: logger
                )
                for try await (name) in rows.decode(String?.self) { holder = name.flatMap { $0.isEmpty ? nil : $0 } ?? holder }
                // Only the node's own lock is about its name; the database's is held by a server without one.
                throw DatabaseError.inUse(address: address.description, by: holder, node: function.hasSuffix("_shared") ? nil : node)
            }
        }
    }

    /// What the holder is called in `pg_stat_activity`, and so in the refusal another server gets. The host name
    /// from `gethostname`, which never waits on DNS.
    static let applicationName: String = {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(cString: name) : "?"
        return "parley serve (pid \(getpid()) on \(host))"
    }()
}
