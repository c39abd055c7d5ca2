/// The tables, as migrations: `migrations[n]` upgrades version n to n + 1, all in one transaction (PostgreSQL's
/// DDL is transactional), under an advisory lock so that nodes starting at once migrate one after another.
/// Version 1 is the SQLite store's schema as it stood at its version 12, in PostgreSQL's types.
enum PostgresSchema {
    static var version: Int { migrations.count }

    /// Any 64-bit number, the same in every Parley: the advisory lock that migrations take.
    static let migrationLock: Int64 = 0x7061_726C_6579_0001

    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE messages (
                id BIGINT PRIMARY KEY,
                room TEXT,
                room_name TEXT,
                recipient TEXT,
                sender TEXT,
                kind TEXT NOT NULL,
                text TEXT NOT NULL,
                time_ms BIGINT NOT NULL,
                sender_account TEXT,
                recipient_account TEXT,
                tags TEXT
            )
            """,
            "CREATE INDEX messages_by_room ON messages (room, id)",
            "CREATE INDEX messages_room_time ON messages (room, time_ms)",
            "CREATE INDEX messages_by_sender_conversation ON messages (sender_account, lower(recipient), id) WHERE sender_account IS NOT NULL",
            "CREATE INDEX messages_by_recipient_conversation ON messages (recipient_account, lower(sender), id) WHERE recipient_account IS NOT NULL",
            """
            CREATE TABLE accounts (
                name_key TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                hash BYTEA NOT NULL,
                salt BYTEA NOT NULL,
                parameters TEXT NOT NULL,
                operator BOOLEAN NOT NULL DEFAULT false,
                created_ms BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE audit (
                id BIGSERIAL PRIMARY KEY,
                time_ms BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                detail TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE rooms (
                name_key TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                topic TEXT NOT NULL DEFAULT '',
                topic_by TEXT,
                topic_ms BIGINT,
                topic_locked BOOLEAN NOT NULL DEFAULT false,
                join_key TEXT,
                modes TEXT NOT NULL DEFAULT 'n',
                member_limit INTEGER
            )
            """,
            """
            CREATE TABLE room_operators (
                room_key TEXT NOT NULL REFERENCES rooms (name_key) ON DELETE CASCADE,
                account_key TEXT NOT NULL,
                PRIMARY KEY (room_key, account_key)
            )
            """,
            """
            CREATE TABLE restrictions (
                room_key TEXT NOT NULL REFERENCES rooms (name_key) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                mask TEXT NOT NULL,
                set_by TEXT NOT NULL,
                reason TEXT,
                since_ms BIGINT NOT NULL,
                until_ms BIGINT,
                PRIMARY KEY (room_key, kind, mask)
            )
            """,
            // What a server watches for account changes made elsewhere: one row, moved by every row changed (per
            // row, as in SQLite: a statement that changes nothing, like a refused insert, moves nothing).
            "CREATE TABLE account_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
            "INSERT INTO account_version (id, version) VALUES (1, 0)",
            """
            CREATE FUNCTION parley_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE account_version SET version = version + 1;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER accounts_changed AFTER INSERT OR UPDATE OR DELETE ON accounts
            FOR EACH ROW EXECUTE FUNCTION parley_accounts_changed()
            """,
        ],
        // Version 2: the log's order (docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"). Message ids are
        // handed out in blocks from one row, whose lock is held until the block's transaction commits: so ids
        // are committed in increasing order, and a reader that has seen id n has seen every id below it. `node`:
        // the node that wrote the message (NULL: a server without --node-name).
        [
            "CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
            "INSERT INTO log_head (id, seq) SELECT 1, COALESCE(MAX(id), 0) FROM messages",
            "ALTER TABLE messages ADD COLUMN node TEXT",
        ],
        // Version 3: who is online on which node (`PostgresStore+Presence`). `presence_log` holds the nodes'
        // presence changes at their places in the log (ids from `log_head`, like messages'); `presence` what they
        // add up to now; `node_leases` when each node's claim to its sessions runs out unless renewed.
        [
            "CREATE TABLE presence_log (id BIGINT PRIMARY KEY, node TEXT NOT NULL, entry TEXT NOT NULL)",
            "CREATE TABLE presence (node TEXT NOT NULL, session BIGINT NOT NULL, profile TEXT NOT NULL, PRIMARY KEY (node, session))",
            "CREATE TABLE node_leases (node TEXT PRIMARY KEY, expires TIMESTAMPTZ NOT NULL)",
        ],
        // Version 4: when each presence entry was written, so that the log of them does not grow for ever: they
        // are news for the nodes reading the log now, not history (`PostgresStore.prunePresence`).
        [
            "ALTER TABLE presence_log ADD COLUMN written TIMESTAMPTZ NOT NULL DEFAULT now()",
            "CREATE INDEX presence_log_by_time ON presence_log (written)",
        ],
    ]
}
