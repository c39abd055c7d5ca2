import Foundation
import ParleyCore
import Logging
import PostgresNIO
import Synchronization

/// The log every node of one database shares (docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"): message
/// ids come from the one row of `log_head`, in blocks, inside the transaction that stores the block's messages.
/// The row stays locked until that transaction ends, so blocks commit one after another in id order, whichever
/// node writes them: a reader never sees an id before every lower id has committed or been given up. That is
/// what a sequence cannot give (its values are handed out at once and commit in any order), and why a reader of
/// this log never skips a late commit.
extension PostgresStore {
    /// The channel nodes `NOTIFY` after each batch that stored messages, with the node's name (so that it can
    /// ignore its own), and `LISTEN` on. Readers read the table, not the payload.
    static let logChannel = "parley_log"

    /// Stores the batch's messages in the block of ids the log gives it, and reads what other nodes committed
    /// since this node last read: one transaction, one commit. The block starts at the batch's first provisional
    /// id or above it (never below: see `ChatHub`), so on a single server the ids stay as the hub gave them.
    public func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit {
        try await commit(messages, ids: ids, readingOthers: node != nil)
    }

    /// `commit`, with the batch's presence changes (`PostgresStore+Presence`) in the same transaction.
    public func commit(_ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>) async throws -> LogCommit {
        try await commit(messages, presence: presence, ids: ids, readingOthers: node != nil)
    }

    /// `commit`; `readingOthers` false: what other nodes committed is left for `catchUp` (messages stored by a
    /// command, not delivered by a server).
    func commit(_ messages: [ChatMessage], presence: [PresenceEntry] = [], ids: Range<Int64>, readingOthers: Bool) async throws -> LogCommit {
        // Nothing to store and nobody else to make room for: the next batch's GREATEST keeps its ids above these.
        guard !ids.isEmpty, !messages.isEmpty || node != nil else { return .asNumbered }
        guard node != nil else {
            // A server that owns the database alone (`DatabaseOwner`) is the log's only writer: its ids stand, and
            // `log_head` is brought up to them when a node next opens the database (`migrate`), not per batch.
            let statements = insertStatements(for: messages)(0)
            try await transaction { [logger] connection in
                for statement in statements { try await connection.query(statement, logger: logger) }
            }
            return .asNumbered
        }
        let count = Int64(ids.count)
        let (node, logger) = (node, logger)
        // Inside the lock, only what came since this node last read: a publisher woken by other nodes reads first,
        // outside it (`catchUp`, at least once a second), so a node back from a long absence does not hold every
        // node's commits up while it reads.
        let applied = log.withLock { $0 }
        let statements = insertStatements(for: messages)
        let presenceStatements = try presenceStatements(for: presence)
        let database = address.description
        let (end, later, laterPresence) = try await transaction { connection -> (Int64, [ChatMessage], [PresenceEntry]) in
            // READ COMMITTED, whatever the database's default (every connection asks for it at login,
            // `startupParameters`): the UPDATE below waits for the lock and then reads the row as the previous holder
            // committed it (under REPEATABLE READ it would fail instead), and the read after it, a statement of its
            // own, sees every block committed before (one statement with both would read with a snapshot taken
            // before the wait, and miss the last holder's rows).
            var end: Int64?
            let reserve: PostgresQuery = "UPDATE log_head SET seq = GREATEST(seq, \(ids.lowerBound - 1)) + \(count) RETURNING seq"
            for try await (last) in try await connection.query(reserve, logger: logger).decode(Int64.self) { end = last }
            guard let end else { throw DatabaseError.failed(address: database, reason: "the log's head (table log_head) has no row") }
            let offset = end - (ids.upperBound - 1)
            var later: [ChatMessage] = []
            var laterPresence: [PresenceEntry] = []
            if readingOthers {
                // Everything below this block that this node has not read yet is another node's, committed before
                // the lock was ours: delivered before this batch.
                later = try await Self.othersMessages(after: applied, below: end - count + 1, node: node, in: connection, logger: logger)
                laterPresence = try await Self.othersPresence(after: applied, below: end - count + 1, node: node, in: connection, logger: logger)
            }
            for statement in statements(offset) { try await connection.query(statement, logger: logger) }
            for statement in presenceStatements(offset) { try await connection.query(statement, logger: logger) }
            if let node, !messages.isEmpty || !presence.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.logChannel), \(node))", logger: logger)
            }
            return (end, later, laterPresence)
        }
        // Read up to the block's end, unless others' messages were left unread below it.
        if readingOthers || node == nil { log.withLock { $0 = max($0, end) } }
        return LogCommit(offset: end - (ids.upperBound - 1), others: later, presence: laterPresence)
    }

    /// What other nodes committed since this node last read the log, oldest first.
    public func catchUp() async throws -> LogCommit {
        guard node != nil else { return .asNumbered }
        let found = try await unread(after: log.withLock { $0 })
        if let last = found.lastRead { log.withLock { $0 = max($0, last) } }
        return found
    }

    /// Other nodes' messages and presence changes above `after`, in one snapshot (one transaction, REPEATABLE
    /// READ), so that what the two reads see ends at the same commit.
    private func unread(after: Int64) async throws -> LogCommit {
        let node = node
        return try await transaction { [logger] connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
            let messages = try await Self.othersMessages(after: after, below: nil, node: node, in: connection, logger: logger)
            let presence = try await Self.othersPresence(after: after, below: nil, node: node, in: connection, logger: logger)
            return LogCommit(others: messages, presence: presence)
        }
    }

    /// The messages other nodes than `node` stored above `after` (and below `below`), oldest first.
    static func othersMessages(
        after: Int64, below: Int64?, node: String?, in connection: PostgresConnection, logger: Logger
    ) async throws -> [ChatMessage] {
        var statement = Statement()
        let upper = below.map { " AND id < \(statement.bind($0))" } ?? ""
        statement.sql = "\(selectMessage) WHERE id > \(statement.bind(after))\(upper) AND node IS DISTINCT FROM \(statement.bind(node)) ORDER BY id"
        return try await connection.query(statement.query, logger: logger).collect().map(message)
    }
}

extension PostgresStore {
    /// `.log` whenever another node says it committed a batch (`LISTEN`, on a connection of its own, taken again
    /// after it is lost), and once a second besides: a wake-up lost with a connection only delays what it
    /// announced. Ends when the store closes or the consumer stops reading.
    func logWakeUps() -> AsyncStream<StorageChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StorageChange.self, bufferingPolicy: .bufferingNewest(4))
        // Unstructured, like the accounts' poller: the stream outlives this call; cancelled when its consumer
        // stops reading (onTermination).
        let listener = Task { [address, timeout, logger, node, weak self] in
            let open: @Sendable () -> Bool = { [weak self] in self.map { !$0.closed.load(ordering: .relaxed) } ?? false }
            while !Task.isCancelled && open() {
                var held: PostgresConnection?
                do {
                    let connection = try await Self.connect(
                        address, timeout: timeout, id: 3, applicationName: DatabaseOwner.applicationName, limited: false, logger: logger
                    )
                    held = connection
                    // Held while this connection is: the loop ends within a second of `close()` (`open`).
                    let store = self
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await notification in try await connection.listen(Self.logChannel) where notification.payload != node {
                                continuation.yield(.log)
                            }
                        }
                        group.addTask {
                            while open() {
                                try await Task.sleep(for: .seconds(1))
                                // The lease, on this connection (a node that cannot renew it cannot listen either).
                                let ended = try await Self.withDeadline(timeout, address: address) { try await store?.keepLease(on: connection) ?? false }
                                continuation.yield(ended ? .presenceLost : .log)
                                // A connection that went half-open would wait for notifications for ever: ask.
                                _ = try await Self.withDeadline(timeout, address: address) {
                                    try await connection.query("SELECT 1", logger: logger).collect()
                                }
                            }
                        }
                        // Either ends only by failing (the connection is gone) or with the store: start again.
                        try await group.next()
                        group.cancelAll()
                    }
                } catch {
                    continuation.yield(.log)
                }
                if let held { try? await held.close() }
                // Not at once, whatever ended the last connection.
                try? await Task.sleep(for: .seconds(1))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in listener.cancel() }
        return stream
    }

    /// Both sequences' changes, as they come.
    static func merging(_ first: AsyncStream<StorageChange>, _ second: AsyncStream<StorageChange>) -> AsyncStream<StorageChange> {
        // Room for a burst: the newest are kept, and `.log` wake-ups may be dropped freely (one is as good as many).
        let (stream, continuation) = AsyncStream.makeStream(of: StorageChange.self, bufferingPolicy: .bufferingNewest(16))
        let forwarding = Task {
            await withTaskGroup(of: Void.self) { group in
                for source in [first, second] {
                    group.addTask {
                        for await change in source {
                            // A burst of wake-ups may push out older ones (one is as good as many), but never an
                            // account change or a lost presence: put back, it pushes out a wake-up instead.
                            switch continuation.yield(change) {
                            case .dropped(.accounts): continuation.yield(.accounts)
                            case .dropped(.presenceLost): continuation.yield(.presenceLost)
                            default: break
                            }
                        }
                    }
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in forwarding.cancel() }
        return stream
    }
}
