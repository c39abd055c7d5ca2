import Foundation
import Logging
import NIOCore
import ParleyCore
import PostgresNIO
import Synchronization

/// The shared store: every table in one PostgreSQL database, reached through postgres-nio's connection pool.
/// The same guarantees as the SQLite store: a batch of messages is one transaction, committed (PostgreSQL's
/// default `synchronous_commit`: on disk) before anything in it is acknowledged or delivered.
///
/// While the database is unreachable, each operation gives up after `timeout` rather than wait: the publisher
/// then answers `not_stored` and the chat goes on for what needs no storage. The pool opens new connections by
/// itself, with backoff, as soon as the database answers again.
public final class PostgresStore: ChatStorage {
    public static var schemaVersion: Int { PostgresSchema.version }

    let client: PostgresClient
    let address: PostgresAddress
    let logger: Logger
    /// How long one operation may take, a wait for a connection included.
    let timeout: Duration
    /// The pool's own loop (`PostgresClient.run`): it must run for any query to be served.
    private let running: Task<Void, Never>
    /// Where `changes()` starts counting from.
    private let accountVersionAtOpen: Int?
    /// The database's owner, when a server opened the store.
    private let owner: DatabaseOwner?
    /// Set by `close()`: the `changes()` sequences end.
    let closed = Atomic<Bool>(false)
    /// This node's name when several share the database (`--node-name`); nil for a server that owns it alone.
    let node: String?
    /// How long a node's lease lasts unrenewed (`--node-timeout`): past it, another node ends its sessions.
    let nodeTimeout: Duration
    /// The highest id of the log this node has read: its own batches and what it read of other nodes'.
    let log: Mutex<Int64>

    public var location: String { address.description }
    public var sharesLog: Bool { node != nil }
    public var nodeName: String? { node }

    /// Connects once directly, so that a wrong address, password or database fails at once with words an
    /// operator can act on (the pool would only queue requests and retry), brings the schema up to date (makes
    /// it only when `creating`: a command that reads must not fill a mistyped database with tables), then
    /// starts the pool. A server opens it `serving`: it then owns the database (`DatabaseOwner`) until
    /// `close()`, and a second server on it is refused, naming the first.
    ///
    /// `node`: this server's name among several serving the same database (docs/ARCHITECTURE.md, "Several nodes
    /// on one PostgreSQL"); it then reads the messages the others commit (`catchUp`, and `LogCommit.others`) and
    /// is woken by them (`changes()` yields `.log`). Without it, a server owns the database alone.
    public static func open(
        _ address: PostgresAddress, creating: Bool = true, serving: Bool = false, node: String? = nil, timeout: Duration = .seconds(5),
        nodeTimeout: Duration = .seconds(15), logger: Logger = Logger(label: "parley.postgres")
    ) async throws -> PostgresStore {
        let owner = serving ? try await DatabaseOwner.acquire(address, node: node, timeout: max(timeout, .seconds(10)), logger: logger) : nil
        let (version, head): (Int, Int64)
        do {
            (version, head) = try await migrate(address, creating: creating, timeout: max(timeout, .seconds(10)), logger: logger)
        } catch {
            await owner?.release()
            throw error
        }
        var configuration = address.clientConfiguration
        configuration.options.connectTimeout = timeout
        configuration.options.additionalStartupParameters = startupParameters(timeout: timeout, applicationName: DatabaseOwner.applicationName)
        // Two kept open, so that the publisher's next batch after a quiet spell does not wait for a login.
        configuration.options.minimumConnections = 2
        configuration.options.maximumConnections = 8
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        // Unstructured because the store outlives this call (the server's StoreService, or a `parley account`
        // command, closes it); `close()` cancels it, which shuts the pool down.
        let running = Task { await client.run() }
        let store = PostgresStore(
            client: client, address: address, logger: logger, timeout: timeout, running: running, accountVersion: version, owner: owner,
            node: node, nodeTimeout: nodeTimeout, head: head
        )
        if serving && node != nil {
            do {
                try await store.beginNode()
            } catch {
                await store.close()
                throw error
            }
        }
        return store
    }

    private init(
        client: PostgresClient, address: PostgresAddress, logger: Logger, timeout: Duration, running: Task<Void, Never>, accountVersion: Int,
        owner: DatabaseOwner?, node: String?, nodeTimeout: Duration, head: Int64
    ) {
        self.node = node
        self.nodeTimeout = nodeTimeout
        self.log = Mutex(head)
        self.accountVersionAtOpen = accountVersion
        self.owner = owner
        self.client = client
        self.address = address
        self.logger = logger
        self.timeout = timeout
        self.running = running
    }

    public func close() async {
        closed.store(true, ordering: .relaxed)
        running.cancel()
        await running.value
        await owner?.release()
    }

    /// Applies the migrations this database lacks, in one transaction holding the advisory lock: nodes that
    /// start together each wait for the lock, then find the schema up to date. Gives the accounts' version and
    /// the log's head. Only the connecting has a deadline: a migration under way is left to finish (stopping it
    /// half-way would only roll it back, and the next start would do it again).
    static func migrate(_ address: PostgresAddress, creating: Bool, timeout: Duration, logger: Logger) async throws -> (Int, Int64) {
        let connection = try await connect(address, timeout: timeout, id: 1, limited: false, logger: logger)
        do {
            try await upgrade(connection, address: address, creating: creating, logger: logger)
            var (version, head): (Int, Int64) = (0, 0)
            for try await (found) in try await connection.query("SELECT version FROM account_version", logger: logger).decode(Int.self) {
                version = found
            }
            // A server without a node name writes no head (its ids are the only ones): bring it up to them.
            let catchUp: PostgresQuery = "UPDATE log_head SET seq = GREATEST(seq, (SELECT COALESCE(MAX(id), 0) FROM messages)) RETURNING seq"
            for try await (seq) in try await connection.query(catchUp, logger: logger).decode(Int64.self) { head = seq }
            try await connection.close()
            return (version, head)
        } catch {
            try? await connection.close()
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// A connection of its own (not from the pool), within `timeout`, its failure in an operator's words.
    /// `limited`: with the statement and transaction limits (not for migrations, which may rightly take long).
    static func connect(
        _ address: PostgresAddress, timeout: Duration, id: Int, applicationName: String? = nil, limited: Bool = true, logger: Logger
    ) async throws -> PostgresConnection {
        var configuration = try address.connectionConfiguration()
        // postgres-nio's own connect timeout rather than `withDeadline`: an abandoned connect could still finish
        // and leave a connection nobody closes.
        configuration.options.connectTimeout = .init(timeout)
        configuration.options.additionalStartupParameters = startupParameters(timeout: limited ? timeout : nil, applicationName: applicationName)
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// What every connection tells the server at login: its name in `pg_stat_activity`; a statement past the
    /// deadline is ended, and a transaction left open by a caller that gave up; and TCP keepalives, so that the
    /// server notices a client that vanished (a crashed host holding `DatabaseOwner`'s lock) in about 25 s,
    /// not the two hours of the system's default.
    static func startupParameters(timeout: Duration?, applicationName: String?) -> [(String, String)] {
        var parameters = applicationName.map { [("application_name", $0)] } ?? []
        if let timeout {
            let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
            parameters += [("statement_timeout", "\(milliseconds)"), ("idle_in_transaction_session_timeout", "\(2 * milliseconds)")]
        }
        // READ COMMITTED, whatever the database's default: the log's counter relies on it (`commit`), and asking
        // here costs no statement per transaction.
        return parameters + [
            ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
            ("default_transaction_isolation", "read committed"),
        ]
    }

    private static func upgrade(_ connection: PostgresConnection, address: PostgresAddress, creating: Bool, logger: Logger) async throws {
        let found: Int
        do {
            // Up to date, the usual case: no lock, no transaction, no DDL (a role with data rights only can run).
            found = try await version(connection, logger: logger)
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
        guard found != PostgresSchema.version else { return }
        guard found > 0 || creating else { throw DatabaseError.noSchema(address: address.description) }
        guard found < PostgresSchema.version else {
            throw DatabaseError.newerSchema(address: address.description, found: found, known: PostgresSchema.version)
        }
        var version = found
        do {
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: logger)
                // Made under the lock: two first openings at once would race in CREATE TABLE IF NOT EXISTS.
                try await connection.query("CREATE TABLE IF NOT EXISTS parley_schema (version INTEGER NOT NULL)", logger: logger)
                // Read again under the lock: another node may have migrated while this one waited.
                version = try await Self.version(connection, logger: logger)
                guard version < PostgresSchema.version else { return }
                for step in version..<PostgresSchema.version {
                    version = step
                    for statement in PostgresSchema.migrations[step] { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                }
                try await connection.query("DELETE FROM parley_schema", logger: logger)
                try await connection.query("INSERT INTO parley_schema (version) VALUES (\(PostgresSchema.version))", logger: logger)
            }
        } catch {
            let described = DatabaseError.describe((error as? PostgresTransactionError).flatMap { $0.closureError ?? $0.beginError ?? $0.commitError } ?? error, address: address)
            if case .failed(_, let reason) = described {
                throw DatabaseError.migrationFailed(address: address.description, version: version + 1, reason: reason)
            }
            throw described
        }
        if version > PostgresSchema.version {
            throw DatabaseError.newerSchema(address: address.description, found: version, known: PostgresSchema.version)
        }
        logger.notice("database schema upgraded", metadata: ["from": "\(found)", "to": "\(PostgresSchema.version)"])
    }

    /// The schema's version; 0 when there is none yet.
    private static func version(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        var exists = false
        for try await (found) in try await connection.query("SELECT to_regclass('parley_schema') IS NOT NULL", logger: logger).decode(Bool.self) {
            exists = found
        }
        guard exists else { return 0 }
        for try await (version) in try await connection.query("SELECT COALESCE(MAX(version), 0) FROM parley_schema", logger: logger).decode(Int.self) {
            return version
        }
        return 0
    }

    // MARK: - Running queries

    /// Runs `work`, or gives up with `DatabaseError.timedOut` once `limit` has passed. The work is cancelled then
    /// but not waited for: postgres-nio stops waiting for a connection when cancelled, but not for the answer to
    /// a query already sent, and a database that stopped answering mid-query must not hold up the caller (the
    /// publisher: all delivery). The abandoned query ends when PostgreSQL's `statement_timeout` (the same
    /// limit, set on every pooled connection) or the connection does. The caller's own cancellation cancels the
    /// work too, and a timer no longer needed is cancelled, so none piles up.
    static func withDeadline<Result: Sendable>(
        _ limit: Duration, address: PostgresAddress, _ work: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let outcome = Mutex<(waiting: CheckedContinuation<Result, any Error>?, tasks: [Task<Void, Never>])>((nil, []))
        // Resumes the caller once, with whichever ends first, and cancels the others.
        let finish: @Sendable (Swift.Result<Result, any Error>) -> Void = { result in
            let (waiting, tasks) = outcome.withLock { state in
                defer { state = (nil, []) }
                return (state.waiting, state.tasks)
            }
            for task in tasks { task.cancel() }
            waiting?.resume(with: result)
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard !Task.isCancelled else { return continuation.resume(throwing: CancellationError()) }
                // Waiting before either task starts, so that a quick finish finds it.
                outcome.withLock { $0.waiting = continuation }
                // Unstructured, so that the caller can go on without them.
                let running = Task {
                    do { finish(.success(try await work())) } catch { finish(.failure(error)) }
                }
                let timer = Task {
                    guard (try? await Task.sleep(for: limit)) != nil else { return }
                    finish(.failure(DatabaseError.timedOut(address: address.description, after: limit)))
                }
                let finished = outcome.withLock { state -> Bool in
                    guard state.waiting != nil else { return true }
                    state.tasks = [running, timer]
                    return false
                }
                // Over before the tasks were recorded: the timer (or the work) is not needed any more.
                if finished {
                    running.cancel()
                    timer.cancel()
                }
            }
        } onCancel: {
            finish(.failure(CancellationError()))
        }
    }

    /// Every row of `query`, within the timeout, its errors in an operator's words.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await Self.withDeadline(timeout, address: address) { [client, logger] in
                try await client.query(query, logger: logger).collect()
            }
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
    }

    /// `body` in one transaction, within the timeout.
    @discardableResult
    func transaction<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        do {
            return try await Self.withDeadline(timeout, address: address) { [client, logger] in
                try await client.withTransaction(logger: logger) { connection in
                    let result = try await body(connection)
                    // Past the deadline the caller has been told "not stored": roll back rather than commit.
                    try Task.checkCancellation()
                    return result
                }
            }
        } catch let error as PostgresTransactionError {
            throw DatabaseError.describe(error.closureError ?? error.beginError ?? error.commitError ?? error, address: address)
        } catch {
            throw DatabaseError.describe(error, address: address)
        }
    }

    // MARK: - Changes made elsewhere

    /// Another process's or node's account changes, noticed by asking for the version the accounts' trigger
    /// moves, once a second (the same as the SQLite store does; one cheap query, no connection held); and on a
    /// node, other nodes' batches (`logWakeUps`).
    public func changes() -> AsyncStream<StorageChange> {
        let accounts = StorageChange.polling(every: .seconds(1), from: accountVersionAtOpen) { [weak self] in
            guard let self, !self.closed.load(ordering: .relaxed) else { throw CancellationError() }
            return try await self.accountVersion()
        }
        guard node != nil else { return accounts }
        return Self.merging(accounts, logWakeUps())
    }

    func accountVersion() async throws -> Int {
        try await rows("SELECT version FROM account_version").first?.decode(Int.self) ?? 0
    }
}
