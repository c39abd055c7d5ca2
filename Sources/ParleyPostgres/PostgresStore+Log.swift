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

    /// `commit`, handing what it read of the others to `whenRead` before its own commit is flushed: they are
    /// committed already, and marked read at once, so a commit of this batch that then fails does not read them
    /// again.
    public func commit(
        _ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>, whenRead: @escaping @Sendable (LogCommit) -> Bool
    ) async throws -> LogCommit {
        try await commit(messages, presence: presence, ids: ids, readingOthers: node != nil, whenRead: whenRead)
    }

    /// `commit`; `readingOthers` false: what other nodes committed is left for `catchUp` (messages stored by a
    /// command, not delivered by a server).
    func commit(
        _ messages: [ChatMessage], presence: [PresenceEntry] = [], ids: Range<Int64>, readingOthers: Bool,
        whenRead: (@Sendable (LogCommit) -> Bool)? = nil
    ) async throws -> LogCommit {
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
        let writes = try PresenceWrites(presence, node: node)
        // Few round trips while the lock is held, since every node waits for them: the counter's UPDATE with the
        // NOTIFY (held back to the commit anyway), then the batch's writes and the read of the others' entries as
        // one statement (its snapshot is taken after the UPDATE's wait, so it sees the last holder's rows), then
        // the commit. A batch too large for one statement's binds takes one statement per part instead.
        let combined = readingOthers && messages.count * 12 + (writes?.binds ?? 0) + 8 < 60_000
        let notifying = node != nil && (!messages.isEmpty || !presence.isEmpty)
        let database = address.description
        let (end, later, laterPresence) = try await transaction { connection -> (Int64, [ChatMessage], [PresenceEntry]) in
            // READ COMMITTED, whatever the database's default (every connection asks for it at login,
            // `startupParameters`): the UPDATE below waits for the lock and then reads the row as the previous holder
            // committed it (under REPEATABLE READ it would fail instead), and the read after it, a statement of its
            // own, sees every block committed before (one statement with both would read with a snapshot taken
            // before the wait, and miss the last holder's rows).
            var end: Int64?
            let reserve: PostgresQuery = notifying
                ? """
                    WITH head AS (UPDATE log_head SET seq = GREATEST(seq, \(ids.lowerBound - 1)) + \(count) RETURNING seq)
                    SELECT seq, pg_notify(\(Self.logChannel), \(node ?? ""))::text FROM head
                    """
                : "UPDATE log_head SET seq = GREATEST(seq, \(ids.lowerBound - 1)) + \(count) RETURNING seq, ''::text"
            for try await (last, _) in try await connection.query(reserve, logger: logger).decode((Int64, String).self) { end = last }
            guard let end else { throw DatabaseError.failed(address: database, reason: "the log's head (table log_head) has no row") }
            let offset = end - (ids.upperBound - 1)
            // Everything below this block that this node has not read yet is another node's, committed before the
            // lock was ours: delivered before this batch.
            let below = end - count + 1
            if combined {
                var statement = Statement()
                var parts: [String] = []
                if !messages.isEmpty {
                    let rows = messages.map { Self.row(for: $0, offset: offset, node: node, in: &statement) }
                    parts.append("INSERT INTO messages (\(Self.messageColumns)) VALUES " + rows.joined(separator: ","))
                }
                if let writes { parts += writes.fragments(offset: offset, in: &statement) }
                // Each part runs exactly once (PostgreSQL runs every data-modifying WITH), none sees the others' rows.
                let with = parts.isEmpty ? "" : "WITH " + parts.enumerated().map { "w\($0.offset) AS (\($0.element))" }.joined(separator: ", ") + " "
                statement.sql = with + Self.othersSQL(after: applied, below: below, node: node, in: &statement)
                let read = try Self.decodeOthers(try await connection.query(statement.query, logger: logger).collect())
                self.read(through: below - 1, handing: read, to: whenRead)
                return (end, read.others, read.presence)
            }
            var read = LogCommit()
            if readingOthers {
                read = try await Self.others(after: applied, below: below, node: node, in: connection, logger: logger)
                self.read(through: below - 1, handing: read, to: whenRead)
            }
            for statement in statements(offset) { try await connection.query(statement, logger: logger) }
            for query in writes?.queries(offset: offset) ?? [] { try await connection.query(query, logger: logger) }
            return (end, read.others, read.presence)
        }
        // Read up to the block's end, unless others' messages were left unread below it.
        if readingOthers || node == nil { log.withLock { $0 = max($0, end) } }
        return LogCommit(offset: end - (ids.upperBound - 1), others: later, presence: laterPresence)
    }

    /// Everything up to `id` is read, once `whenRead` took it: it is never read again. (Refused, or past the
    /// deadline, it stays unread.)
    private func read(through id: Int64, handing read: LogCommit, to whenRead: (@Sendable (LogCommit) -> Bool)?) {
        guard let whenRead, !Task.isCancelled, whenRead(read) else { return }
        log.withLock { $0 = max($0, id) }
    }

    /// What other nodes committed since this node last read the log, oldest first.
    public func catchUp() async throws -> LogCommit {
        guard node != nil else { return .asNumbered }
        let found = try await unread(after: log.withLock { $0 })
        if let last = found.lastRead { log.withLock { $0 = max($0, last) } }
        return found
    }

    /// Other nodes' messages and presence changes above `after`, on a pooled connection, outside any transaction.
    private func unread(after: Int64) async throws -> LogCommit {
        let node = node
        do {
            return try await Self.withDeadline(timeout, address: address) { [client, logger] in
                try await client.withConnection { connection in
                    try await Self.others(after: after, below: nil, node: node, in: connection, logger: logger)
                }
            }
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// What nodes other than `node` wrote above `after` (and below `below`): their messages and their presence
    /// changes, oldest first. One statement, so one round trip (this runs under the log's lock) and one snapshot:
    /// the two lists end at the same commit.
    static func others(
        after: Int64, below: Int64?, node: String?, in connection: PostgresConnection, logger: Logger
    ) async throws -> LogCommit {
        var statement = Statement()
        statement.sql = othersSQL(after: after, below: below, node: node, in: &statement)
        return try decodeOthers(try await connection.query(statement.query, logger: logger).collect())
    }

    /// The SELECT of `others`, its values bound in `statement`.
    static func othersSQL(after: Int64, below: Int64?, node: String?, in statement: inout Statement) -> String {
        let (from, writer) = (statement.bind(after), statement.bind(node ?? ""))
        let upper = below.map { " AND id < \(statement.bind($0))" } ?? ""
        return """
            SELECT false, id, room_name, recipient, sender, kind, text, time_ms, tags FROM messages
                WHERE id > \(from)\(upper) AND node IS DISTINCT FROM NULLIF(\(writer), '')
            UNION ALL
            SELECT true, id, NULL, NULL, node, '', entry, 0, NULL FROM presence_log
                WHERE id > \(from)\(upper) AND node <> \(writer)
            ORDER BY 2
            """
    }

    /// The rows of `othersSQL`, as messages and presence changes.
    static func decodeOthers(_ rows: [PostgresRow]) throws -> LogCommit {
        var read = LogCommit()
        let decoder = JSONDecoder()
        for row in rows {
            let columns = row.makeRandomAccess()
            if try columns[0].decode(Bool.self) {
                let (id, writer, document) = (try columns[1].decode(Int64.self), try columns[4].decode(String.self), try columns[6].decode(String.self))
                // A kind a newer node writes and this one does not know is passed over, not fatal to every commit.
                guard var entry = try? decoder.decode(PresenceEntry.self, from: Data(document.utf8)) else { continue }
                (entry.id, entry.node) = (id, writer)
                read.presence.append(entry)
            } else {
                let (id, roomName, recipient, sender, kind, text, time, tags) = try (
                    columns[1].decode(Int64.self), columns[2].decode(String?.self), columns[3].decode(String?.self),
                    columns[4].decode(String?.self), columns[5].decode(String.self), columns[6].decode(String.self),
                    columns[7].decode(Int64.self), columns[8].decode(String?.self)
                )
                read.others.append(message(id: id, roomName: roomName, recipient: recipient, sender: sender, kind: kind, text: text, time: time, tags: tags))
            }
        }
        return read
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
                            var ticks = 0
                            while open() {
                                try await Task.sleep(for: .seconds(1))
                                // The lease, on this connection (a node that cannot renew it cannot listen either).
                                let ended = try await Self.withDeadline(timeout, address: address) { try await store?.keepLease(on: connection) ?? false }
                                continuation.yield(ended ? .presenceLost : .log)
                                ticks += 1
                                // Not the lease's business: a failed prune is tried again a minute later.
                                if ticks % 60 == 0 { try? await store?.prunePresence() }
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
