import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import SQLiteNIO
import Synchronization

/// The embedded store: one SQLite file in the data folder, in WAL mode with full synchronous commits, so an
/// acknowledged message survives a crash of the server (and of the machine).
///
/// sqlite-nio, not GRDB: it carries SQLite's own source, so a fresh machine needs no system library, and its
/// calls already run on NIO's thread pool with async wrappers — the shape Parley's server has everywhere.
public final class SQLiteStore: ChatStorage {
    /// The schema this binary knows; `migrations[n]` upgrades version n to n + 1.
    public static var schemaVersion: Int { migrations.count }

    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                room TEXT,
                room_name TEXT,
                recipient TEXT,
                sender TEXT,
                kind TEXT NOT NULL,
                text TEXT NOT NULL,
                time_ms INTEGER NOT NULL
            )
            """,
            "CREATE INDEX messages_by_room ON messages(room, id)",
        ],
        [
            """
            CREATE TABLE accounts (
                name_key TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                hash BLOB NOT NULL,
                salt BLOB NOT NULL,
                parameters TEXT NOT NULL,
                operator INTEGER NOT NULL DEFAULT 0,
                created_ms INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                time_ms INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                detail TEXT NOT NULL
            )
            """,
        ],
        [
            """
            CREATE TABLE rooms (
                name_key TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                topic TEXT NOT NULL DEFAULT '',
                topic_by TEXT,
                topic_locked INTEGER NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE room_operators (
                room_key TEXT NOT NULL REFERENCES rooms(name_key) ON DELETE CASCADE,
                account_key TEXT NOT NULL,
                PRIMARY KEY (room_key, account_key)
            )
            """,
            """
            CREATE TABLE restrictions (
                room_key TEXT NOT NULL REFERENCES rooms(name_key) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                mask TEXT NOT NULL,
                set_by TEXT NOT NULL,
                reason TEXT,
                since_ms INTEGER NOT NULL,
                until_ms INTEGER,
                PRIMARY KEY (room_key, kind, mask)
            )
            """,
        ],
        // v4: a room's key (IRC +k), the word joining it needs.
        ["ALTER TABLE rooms ADD COLUMN join_key TEXT"],
        // v5: history by time (IRC's CHATHISTORY timestamps) reads an index range, not the room's whole past.
        ["CREATE INDEX messages_room_time ON messages (room, time_ms)"],
        // v6: when the topic was set (IRC's 333 shows it).
        ["ALTER TABLE rooms ADD COLUMN topic_ms INTEGER"],
        // v7: a version the accounts table moves on every change, from any process: what a running server
        // watches (SQLite's data_version moves with every commit, room changes and messages included).
        [
            "CREATE TABLE account_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
            "INSERT INTO account_version (id, version) VALUES (1, 0)",
            "CREATE TRIGGER accounts_inserted AFTER INSERT ON accounts BEGIN UPDATE account_version SET version = version + 1; END",
            "CREATE TRIGGER accounts_updated AFTER UPDATE ON accounts BEGIN UPDATE account_version SET version = version + 1; END",
            "CREATE TRIGGER accounts_deleted AFTER DELETE ON accounts BEGIN UPDATE account_version SET version = version + 1; END",
        ],
        // v8: a room's modes other than the topic lock, by their IRC letters (i, m, n, s); a room starts with n.
        ["ALTER TABLE rooms ADD COLUMN modes TEXT NOT NULL DEFAULT 'n'"],
        // v9: the most members a room takes (IRC +l), if any.
        ["ALTER TABLE rooms ADD COLUMN member_limit INTEGER"],
        // v10: private history. A private message is kept for the accounts (keys) of its sender and its
        // recipient when they were logged in; each reads it back as its conversation with the other's nick.
        [
            "ALTER TABLE messages ADD COLUMN sender_account TEXT",
            "ALTER TABLE messages ADD COLUMN recipient_account TEXT",
            "CREATE INDEX messages_by_sender_account ON messages(sender_account, id) WHERE sender_account IS NOT NULL",
            "CREATE INDEX messages_by_recipient_account ON messages(recipient_account, id) WHERE recipient_account IS NOT NULL",
        ],
        // v11: a message's client-only tags (IRCv3 `+name`), as a JSON object; NULL when it has none.
        ["ALTER TABLE messages ADD COLUMN tags TEXT"],
        // v12: a conversation is read by account and the other's nick: indexes on both, so a page reads that
        // conversation, not every private message of the account.
        [
            "DROP INDEX messages_by_sender_account",
            "DROP INDEX messages_by_recipient_account",
            "CREATE INDEX messages_by_sender_conversation ON messages(sender_account, lower(recipient), id) WHERE sender_account IS NOT NULL",
            "CREATE INDEX messages_by_recipient_conversation ON messages(recipient_account, lower(sender), id) WHERE recipient_account IS NOT NULL",
        ],
    ]

    public static let fileName = "parley.sqlite3"

    /// The connection for messages and accounts, and for tools and tests that need plain SQL.
    public let connection: SQLiteConnection
    /// Room changes with their audit entries: one transaction per publisher batch. A connection of their own,
    /// used only by the publisher, so nothing else's statements can fall into the transaction.
    let roomWriter: SQLiteConnection
    /// History reads, beside the writers (WAL lets readers and a writer work at once), on threads of their own,
    /// so a long read never holds up a write.
    let readers: [SQLiteConnection]
    /// Moves the write-ahead log into the database (`Checkpointer`), on a thread of its own.
    let checkpointer: Checkpointer
    /// Each checkpoint as it finishes (the log's frames, and how many are in the database now): what a test waits
    /// for. One reader; only the newest few are kept.
    public var checkpoints: AsyncStream<(log: Int, copied: Int)> { checkpointer.passes }
    static let readerCount = 2
    public var concurrentReads: Int { readers.count }
    private let nextReader = Atomic<Int>(0)
    private let pools: [NIOThreadPool]
    public let path: String
    /// The data folder's owner, when a server opened the store (`serving`); let go at `close()`.
    private let lock: ServerLock?
    /// Where `changes()` starts counting from.
    private let accountVersionAtOpen: Int?
    /// Set by `close()`: the `changes()` sequences end.
    private let closed = Atomic<Bool>(false)

    public var location: String { path }

    private init(
        connection: SQLiteConnection, roomWriter: SQLiteConnection, readers: [SQLiteConnection], checkpointer: Checkpointer, pools: [NIOThreadPool],
        path: String, lock: ServerLock?, accountVersion: Int?
    ) {
        self.checkpointer = checkpointer
        self.accountVersionAtOpen = accountVersion
        self.connection = connection
        self.roomWriter = roomWriter
        self.readers = readers
        self.pools = pools
        self.path = path
        self.lock = lock
    }

    /// Opens the database in `directory` (creating folder and file when missing, unless not `creating`) and
    /// brings its schema up to date. Fails with a `StoreError` that says what to do when the file is missing,
    /// locked, damaged or newer than this binary. A server opens it `serving`: it then owns the data folder
    /// (`ServerLock`) until `close()`, and a second server on the folder is refused, naming the first.
    public static func open(
        directory: String, creating: Bool = true, serving: Bool = false, logger: Logger = Logger(label: "parley.store")
    ) async throws -> SQLiteStore {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        // Commands that only read or change what is there must not leave an empty database behind a typo.
        guard creating || FileManager.default.fileExists(atPath: path) else { throw StoreError.missing(path: path) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.cannotOpen(path: directory, reason: error.localizedDescription)
        }
        let lock = serving ? try ServerLock.acquire(directory: directory) : nil
        // Writers and readers on threads of their own: a burst of reads must not leave a write waiting for a
        // thread (NIO's shared pool has one per core).
        let writing = NIOThreadPool(numberOfThreads: 2)
        let reading = NIOThreadPool(numberOfThreads: Self.readerCount)
        let checkpointing = NIOThreadPool(numberOfThreads: 1)
        writing.start()
        reading.start()
        checkpointing.start()
        var opened: [SQLiteConnection] = []
        do {
            // Held until the schema is up to date; see `SetupLock`.
            let setup = try await SetupLock.acquire(on: directory)
            defer { setup.release() }
            let connection = try await connect(path, pool: writing, logger: logger)
            opened.append(connection)
            try await prepare(connection, path: path)
            let roomWriter = try await connect(path, pool: writing, logger: logger)
            opened.append(roomWriter)
            var readers: [SQLiteConnection] = []
            for _ in 0..<Self.readerCount {
                readers.append(try await connect(path, pool: reading, logger: logger, readOnly: true))
                opened.append(readers[readers.count - 1])
            }
            let checkpoints = try await connect(path, pool: checkpointing, logger: logger)
            opened.append(checkpoints)
            // The writers leave checkpoints to the checkpointer, unless it falls far behind.
            // And a log grown past 8 MiB (a burst the checkpointer fell behind on) is cut back to that when it starts over.
            for writer in [connection, roomWriter] {
                _ = try await writer.query("PRAGMA wal_autocheckpoint = \(Checkpointer.writersTakeOverPages)")
                _ = try await writer.query("PRAGMA journal_size_limit = \(Checkpointer.logSizeLimit)")
            }
            let version = try? await connection.query("SELECT version FROM account_version").first?.column("version")?.integer
            return SQLiteStore(
                connection: connection, roomWriter: roomWriter, readers: readers, checkpointer: Checkpointer(connection: checkpoints, logger: logger),
                pools: [writing, reading, checkpointing], path: path, lock: lock, accountVersion: version
            )
        } catch {
            for connection in opened { try? await connection.close().get() }
            try? await writing.shutdownGracefully()
            try? await reading.shutdownGracefully()
            try? await checkpointing.shutdownGracefully()
            lock?.release()
            throw error
        }
    }

    /// A connection with the settings every one needs (they are per connection): a busy timeout, full
    /// durability, foreign keys; readers cannot write.
    private static func connect(_ path: String, pool: NIOThreadPool, logger: Logger, readOnly: Bool = false) async throws -> SQLiteConnection {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()).get()
        } catch {
            throw StoreError.cannotOpen(path: path, reason: "\(error)")
        }
        do {
            _ = try await connection.query("PRAGMA busy_timeout = 5000")
            _ = try await connection.query("PRAGMA synchronous = FULL")
            _ = try await connection.query("PRAGMA foreign_keys = ON")
            if readOnly { _ = try await connection.query("PRAGMA query_only = 1") }
            return connection
        } catch {
            try? await connection.close().get()
            throw describe(error, path: path)
        }
    }

    /// WAL mode, an integrity check and the migrations, on the first connection, under the setup lock.
    private static func prepare(_ connection: SQLiteConnection, path: String) async throws {
        do {
            let mode = try await connection.query("PRAGMA journal_mode = WAL").first?.column("journal_mode")?.string
            guard mode?.lowercased() == "wal" else { throw StoreError.cannotOpen(path: path, reason: "WAL mode refused (\(mode ?? "?"))") }
            let check = try await connection.query("PRAGMA quick_check").first?.columns.first?.data.string
            guard check == "ok" else { throw StoreError.corrupt(path: path, detail: check ?? "no answer") }
        } catch let error as StoreError {
            throw error
        } catch {
            throw describe(error, path: path)
        }
        try await migrate(connection, path: path)
    }

    /// Applies every migration newer than the file's `user_version`, each in its own transaction. The version
    /// is read inside the transaction, under the write lock, so a process that finds the file already upgraded
    /// by another (an older parley without `SetupLock`, say) does not run a migration twice.
    private static func migrate(_ connection: SQLiteConnection, path: String) async throws {
        // Up to date, the usual case: no write lock, so opening never waits for a busy server.
        let current = try? await connection.query("PRAGMA user_version").first?.columns.first?.data.integer
        if current == schemaVersion { return }
        while true {
            let version: Int
            do {
                _ = try await connection.query("BEGIN IMMEDIATE")
                version = Int(try await connection.query("PRAGMA user_version").first?.columns.first?.data.integer ?? 0)
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw describe(error, path: path)
            }
            guard version < schemaVersion else {
                _ = try? await connection.query("ROLLBACK")
                guard version == schemaVersion else {
                    throw StoreError.newerSchema(path: path, found: version, known: schemaVersion)
                }
                return
            }
            do {
                for statement in migrations[version] { _ = try await connection.query(statement) }
                _ = try await connection.query("PRAGMA user_version = \(version + 1)")
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                // Another program holding the file is not a broken migration: say what to do about it.
                if case .locked = describe(error, path: path) { throw StoreError.locked(path: path) }
                throw StoreError.migrationFailed(path: path, version: version + 1, reason: "\(error)")
            }
        }
    }

    public func close() async {
        closed.store(true, ordering: .relaxed)
        await checkpointer.stop()
        for connection in [connection, roomWriter] + readers { try? await connection.close().get() }
        for pool in pools { try? await pool.shutdownGracefully() }
        lock?.release()
    }

    /// Another process's account changes (`parley account` beside a running server), noticed by asking for the
    /// version the accounts' triggers move, once a second: cheaper than any notification channel, and SQLite
    /// has none across processes.
    public func changes() -> AsyncStream<StorageChange> {
        StorageChange.polling(every: .seconds(1), from: accountVersionAtOpen) { [weak self] in
            guard let self, !self.closed.load(ordering: .relaxed) else { throw CancellationError() }
            return try await self.accountVersion()
        }
    }

    // MARK: - MessageStore

    public func append(_ messages: [ChatMessage]) async throws {
        guard !messages.isEmpty else { return }
        // One multi-row INSERT is one implicit transaction: one commit (one fsync) for the whole batch. No
        // explicit BEGIN: the connection is shared, and another task's statement would join the transaction.
        // (sqlite-nio builds SQLite with 250,000 variables, so a statement holds 31,250 rows; a larger batch
        // is written as several statements, each durable before anything of the batch is delivered.)
        let columns = 11
        let rowsPerStatement = 250_000 / columns
        let chunks = stride(from: 0, to: messages.count, by: rowsPerStatement).map { messages[$0..<min($0 + rowsPerStatement, messages.count)] }
        do {
            for chunk in chunks {
                let placeholders = Array(repeating: "(?,?,?,?,?,?,?,?,?,?,?)", count: chunk.count).joined(separator: ",")
                let binds = chunk.flatMap(Self.binds(for:))
                _ = try await connection.query(
                    "INSERT INTO messages (id, room, room_name, recipient, sender, kind, text, time_ms, sender_account, recipient_account, tags) VALUES \(placeholders)",
                    binds
                )
            }
        } catch {
            throw Self.describe(error, path: path)
        }
        checkpointer.committed(pages: Checkpointer.pages(for: messages))
    }

    public func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        try await history(room: room, query, below: below, withTags: false)
    }

    public func history(room: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        try await read("room = ?" + Self.tagsCondition(withTags), [.text(room.lowercased())], query, below: below)
    }

    public func conversation(account: String, with nick: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        // What the account sent to the nick, and what it received from the nick (sent to itself: both).
        let (account, nick) = (SQLiteData.text(account.lowercased()), SQLiteData.text(nick.lowercased()))
        return try await read(
            "room IS NULL AND ((sender_account = ? AND lower(recipient) = ?) OR (recipient_account = ? AND lower(sender) = ?))" + Self.tagsCondition(withTags),
            [account, nick, account, nick], query, below: below
        )
    }

    /// Leaves out the kept TAGMSGs when they are not wanted, so they do not use up the page.
    private static func tagsCondition(_ withTags: Bool) -> String {
        withTags ? "" : " AND kind <> '\(ChatMessage.Kind.tags.rawValue)'"
    }

    public func targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool) async throws -> [HistoryTarget] {
        let connection = readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
        let window: [SQLiteData] = [.integer(Self.milliseconds(after)), .integer(Self.milliseconds(before))]
        var found: [HistoryTarget] = []
        for room in rooms {
            // A room's latest message is its highest id: one step down its index (time grows with id).
            let rows = try await connection.query(
                "SELECT room_name AS name, time_ms AS latest FROM messages WHERE room = ? ORDER BY id DESC LIMIT 1", [.text(room.lowercased())]
            )
            found += rows.compactMap(Self.target(from:)).filter { $0.latest > after && $0.latest < before }
        }
        if let account {
            let key = SQLiteData.text(account.lowercased())
            let rows = try await connection.query(
                """
                SELECT CASE WHEN sender_account = ? THEN recipient ELSE sender END AS name, MAX(time_ms) AS latest FROM messages
                WHERE room IS NULL AND (sender_account = ? OR recipient_account = ?)
                GROUP BY lower(name) HAVING latest > ? AND latest < ?
                """,
                [key, key, key] + window
            )
            found += rows.compactMap(Self.target(from:))
        }
        // Counted from the end the first bound named (as BETWEEN), shown oldest first.
        let sorted = found.sorted { $0.latest < $1.latest }
        return Array(newest ? sorted.suffix(count) : sorted.prefix(count))
    }

    /// The messages of one room or conversation (`scope`, a condition with its binds) that `query` selects.
    private func read(_ scope: String, _ scopeBinds: [SQLiteData], _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        let connection = readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
        let select = "SELECT id, room_name, recipient, sender, kind, text, time_ms, tags FROM messages WHERE \(scope)"
        let rows: [SQLiteRow]
        switch query {
        case .latest(let count):
            rows = try await connection.query("\(select) AND id < ? ORDER BY id DESC LIMIT ?", scopeBinds + [.integer(Int(below)), .integer(count)]).reversed()
        case .before(let id, let count):
            rows = try await connection.query("\(select) AND id < ? ORDER BY id DESC LIMIT ?", scopeBinds + [.integer(Int(min(id, below))), .integer(count)]).reversed()
        case .after(let id, let count):
            rows = try await connection.query(
                "\(select) AND id > ? AND id < ? ORDER BY id ASC LIMIT ?", scopeBinds + [.integer(Int(id)), .integer(Int(below)), .integer(count)]
            )
        case .range(let after, let before, let count, let newest):
            let (lower, lowerBind) = Self.condition(after, ">")
            let (upper, upperBind) = Self.condition(before, "<")
            let found = try await connection.query(
                "\(select) AND \(lower) AND \(upper) AND id < ? ORDER BY \(Self.order(after, before, descending: newest)) LIMIT ?",
                scopeBinds + [lowerBind, upperBind, .integer(Int(below)), .integer(count)]
            )
            rows = newest ? found.reversed() : found
        case .around(let point, let count):
            // About half before the point, newest first; the rest from the point on.
            let (earlier, earlierBind) = Self.condition(point, "<")
            let (later, laterBind) = Self.condition(point, ">=")
            let before = try await connection.query(
                "\(select) AND \(earlier) AND id < ? ORDER BY \(Self.order(point, point, descending: true)) LIMIT ?",
                scopeBinds + [earlierBind, .integer(Int(below)), .integer((count - 1) / 2)]
            )
            let after = try await connection.query(
                "\(select) AND \(later) AND id < ? ORDER BY \(Self.order(point, point, descending: false)) LIMIT ?",
                scopeBinds + [laterBind, .integer(Int(below)), .integer(count - before.count)]
            )
            rows = before.reversed() + after
        }
        return rows.compactMap(Self.message(from:))
    }

    private static func target(from row: SQLiteRow) -> HistoryTarget? {
        guard let name = row.column("name")?.string, let latest = row.column("latest")?.integer else { return nil }
        return HistoryTarget(name: name, latest: Date(timeIntervalSince1970: Double(latest) / 1000))
    }

    private static func milliseconds(_ date: Date) -> Int {
        Int(exactly: (date.timeIntervalSince1970 * 1000).rounded()) ?? (date.timeIntervalSince1970 < 0 ? .min : .max)
    }

    /// Time and id grow together, so either orders a room's messages; ordering by the one a bound names lets
    /// SQLite walk that index from the bound instead of scanning.
    private static func order(_ a: HistoryPoint, _ b: HistoryPoint, descending: Bool) -> String {
        let direction = descending ? "DESC" : "ASC"
        switch (a, b) {
        case (.time, _), (_, .time): return "time_ms \(direction), id \(direction)"
        default: return "id \(direction)"
        }
    }

    /// A bound on a history point: by id, or by time (stored in milliseconds).
    private static func condition(_ point: HistoryPoint, _ comparison: String) -> (String, SQLiteData) {
        switch point {
        case .id(let id): ("id \(comparison) ?", .integer(Int(clamping: id)))
        case .time(let time): ("time_ms \(comparison) ?", .integer(milliseconds(time)))
        }
    }

    public func lastMessageID() async throws -> Int64 {
        Int64(try await connection.query("SELECT COALESCE(MAX(id), 0) AS last FROM messages").first?.column("last")?.integer ?? 0)
    }

    // MARK: - Rows

    private static func binds(for message: ChatMessage) -> [SQLiteData] {
        let (room, roomName, recipient): (SQLiteData, SQLiteData, SQLiteData) =
            switch message.target {
            case .room(let name): (.text(name.lowercased()), .text(name), .null)
            case .user(let nick): (.null, .null, .text(nick))
            case .everyone: (.null, .null, .null)
            }
        // The accounts a private message is kept for (see migration v10); a room's history is everyone's.
        let (senderAccount, recipientAccount): (SQLiteData, SQLiteData) =
            if case .user = message.target {
                (message.account.map { .text($0.lowercased()) } ?? .null, message.recipientAccount.map { .text($0.lowercased()) } ?? .null)
            } else {
                (.null, .null)
            }
        return [
            .integer(Int(message.id)), room, roomName, recipient, message.from.map { .text($0) } ?? .null,
            .text(message.kind.rawValue), .text(message.text), .integer(milliseconds(message.time)),
            senderAccount, recipientAccount, Self.encode(message.tags),
        ]
    }

    private static func message(from row: SQLiteRow) -> ChatMessage? {
        guard let id = row.column("id")?.integer, let text = row.column("text")?.string,
            let milliseconds = row.column("time_ms")?.integer
        else { return nil }
        let target: ChatMessage.Target =
            if let room = row.column("room_name")?.string { .room(room) } else if let nick = row.column("recipient")?.string { .user(nick) } else { .everyone }
        return ChatMessage(
            id: Int64(id), time: Date(timeIntervalSince1970: Double(milliseconds) / 1000), from: row.column("sender")?.string,
            target: target, kind: row.column("kind")?.string.flatMap(ChatMessage.Kind.init(rawValue:)) ?? .normal, text: text,
            tags: row.column("tags")?.string.flatMap(decode) ?? [:]
        )
    }

    private static func encode(_ tags: [String: String]) -> SQLiteData {
        guard !tags.isEmpty, let data = try? JSONEncoder().encode(tags) else { return .null }
        return .text(String(decoding: data, as: UTF8.self))
    }

    private static func decode(_ text: String) -> [String: String]? {
        try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    static func describe(_ error: any Error, path: String) -> StoreError {
        let text = "\(error)"
        if text.contains("locked") || text.contains("busy") { return .locked(path: path) }
        if text.contains("full") { return .diskFull(path: path) }
        if text.contains("malformed") || text.contains("not a database") || text.contains("corrupt") {
            return .corrupt(path: path, detail: text)
        }
        return .failed(path: path, reason: text)
    }
}

/// What went wrong with the database, in words an operator can act on.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case missing(path: String)
    /// Another parley has been opening the data folder for longer than it should.
    case settingUp(path: String)
    case locked(path: String)
    case corrupt(path: String, detail: String)
    case diskFull(path: String)
    case newerSchema(path: String, found: Int, known: Int)
    case migrationFailed(path: String, version: Int, reason: String)
    case failed(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open the database \(path): \(reason)"
        case .missing(let path): "there is no Parley database at \(path); check --data-dir (parley serve and parley account add create it)"
        case .settingUp(let path): "another parley has been setting up the data folder \(path) for 30 s; is one stuck? stop it and try again"
        case .locked(let path): "the database \(path) is locked by another program; stop it (or wait) and try again"
        case .corrupt(let path, let detail): "the database \(path) is damaged (\(detail)); restore it from a backup or move it away to start afresh"
        case .diskFull(let path): "the disk holding \(path) is full"
        case .newerSchema(let path, let found, let known):
            "the database \(path) has schema version \(found), but this parley knows only up to \(known); run a newer parley"
        case .migrationFailed(let path, let version, let reason):
            "upgrading the database \(path) to schema version \(version) failed: \(reason); nothing was changed"
        case .failed(let path, let reason): "the database \(path) failed: \(reason)"
        }
    }
}
