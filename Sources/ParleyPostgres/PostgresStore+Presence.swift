import Foundation
import Logging
import ParleyCore
import PostgresNIO
import Synchronization

/// Who is online on which node (docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"): each node's presence
/// changes go into the log (`presence_log`, ids from the same blocks as messages) in the transaction of their
/// batch, and `presence` keeps the present that they add up to, for a node that starts later. Each node holds a
/// lease (`node_leases`); when one runs out, exactly one other node ends its sessions with one `nodeGone` entry.
extension PostgresStore {
    /// Rows per INSERT of presence entries when they are written in parts: 3 binds a row, well under
    /// PostgreSQL's 65,535.
    static let presenceRowsPerInsert = 10_000

    /// What a batch's presence changes write: the entries into the log, and the last state of each session into
    /// `presence`. Worked out once; written with the ids the log gave (`fragments`).
    struct PresenceWrites: Sendable {
        let node: String
        let entries: [PresenceEntry]
        let documents: [String]
        /// A roster (the node's sessions, after it lost the database) drops the others' rows.
        let roster: [Int64]?
        let gone: [Int64]
        let present: [(session: Int64, profile: String)]

        init?(_ entries: [PresenceEntry], node: String?) throws {
            guard let node, !entries.isEmpty else { return nil }
            let encoder = JSONEncoder()
            self.node = node
            self.entries = entries
            documents = try entries.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
            // The batch's last word on each session decides what `presence` holds for it. (A roster, a room's
            // moderation or a kick is news only.)
            var last: [UInt64: PresenceEntry] = [:]
            for entry in entries where [.online, .joined, .parted, .updated, .offline].contains(entry.kind) { last[entry.session] = entry }
            roster = entries.last { $0.kind == .roster }?.sessions.map { $0.map { Int64(bitPattern: $0) } }
            gone = last.values.filter { $0.kind == .offline }.map { Int64(bitPattern: $0.session) }
            present = try last.values.filter { $0.kind != .offline }.sorted { $0.session < $1.session }.map { entry in
                (Int64(bitPattern: entry.session), String(decoding: try encoder.encode(entry.profile), as: UTF8.self))
            }
        }

        /// How many values the fragments bind.
        var binds: Int { entries.count * 3 + present.count * 3 + 4 }

        /// The statements, each an INSERT or DELETE without a terminator, their values bound in `statement`, ids moved
        /// by `offset`. The rows they touch are distinct (a roster keeps the present, a session is gone or present),
        /// so they may run as parts of one statement.
        func fragments(offset: Int64, in statement: inout Statement) -> [String] {
            parts(offset: offset, rowsPerPart: .max).map { $0(&statement) }
        }

        /// The same, each a statement of its own, the INSERTs in parts of `presenceRowsPerInsert` rows (a batch too
        /// large for one statement's binds: a node telling its many users again).
        func queries(offset: Int64) -> [PostgresQuery] {
            parts(offset: offset, rowsPerPart: PostgresStore.presenceRowsPerInsert).map { part in
                var statement = Statement()
                statement.sql = part(&statement)
                return statement.query
            }
        }

        private func parts(offset: Int64, rowsPerPart: Int) -> [(inout Statement) -> String] {
            var parts: [(inout Statement) -> String] = []
            for start in stride(from: 0, to: entries.count, by: rowsPerPart) {
                let indices = start..<min(start + min(rowsPerPart, entries.count), entries.count)
                parts.append { statement in
                    let rows = indices.map { index in
                        "(\(statement.bind(entries[index].id + offset)), \(statement.bind(node)), \(statement.bind(documents[index])))"
                    }
                    return "INSERT INTO presence_log (id, node, entry) VALUES " + rows.joined(separator: ",")
                }
            }
            if let roster {
                parts.append { "DELETE FROM presence WHERE node = \($0.bind(node)) AND NOT (session = ANY(\($0.bind(roster))))" }
            }
            if !gone.isEmpty {
                parts.append { "DELETE FROM presence WHERE node = \($0.bind(node)) AND session = ANY(\($0.bind(gone)))" }
            }
            for start in stride(from: 0, to: present.count, by: rowsPerPart) {
                let slice = present[start..<min(start + min(rowsPerPart, present.count), present.count)]
                parts.append { statement in
                    let rows = slice.map { "(\(statement.bind(node)), \(statement.bind($0.session)), \(statement.bind($0.profile)))" }
                    return "INSERT INTO presence (node, session, profile) VALUES " + rows.joined(separator: ",")
                        + " ON CONFLICT (node, session) DO UPDATE SET profile = EXCLUDED.profile"
                }
            }
            return parts
        }
    }

    /// Who is online on the other nodes now, each as an `online` entry with its rooms; from here on this node
    /// reads the log from the point that present was read at (one snapshot: nothing is missed, and an entry
    /// applied twice changes nothing the second time).
    public func presence() async throws -> [PresenceEntry] {
        let (head, entries) = try await present()
        log.withLock { $0 = max($0, head) }
        return entries
    }

    public func othersPresent() async throws -> [PresenceEntry] {
        try await present().entries
    }

    /// The other nodes' sessions, and the log's head they add up to.
    private func present() async throws -> (head: Int64, entries: [PresenceEntry]) {
        guard let node else { return (0, []) }
        return try await transaction { [logger] connection -> (Int64, [PresenceEntry]) in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
            var head: Int64 = 0
            for try await (seq) in try await connection.query("SELECT seq FROM log_head", logger: logger).decode(Int64.self) { head = seq }
            let decoder = JSONDecoder()
            var entries: [PresenceEntry] = []
            let rows = try await connection.query("SELECT node, session, profile FROM presence WHERE node <> \(node) ORDER BY node, session", logger: logger)
            for try await (writer, session, profile) in rows.decode((String, Int64, String).self) {
                let profile = try decoder.decode(PresenceProfile.self, from: Data(profile.utf8))
                entries.append(PresenceEntry(id: 0, node: writer, session: UInt64(bitPattern: session), kind: .online, profile: profile))
            }
            return (head, entries)
        }
    }

    /// This node starts: what an earlier run under its name left (sessions it did not end, having stopped without
    /// a word) is ended for the other nodes with one `nodeGone`, and its lease is taken.
    func beginNode() async throws {
        guard let node else { return }
        let seconds = nodeTimeout.seconds
        try await transaction { [logger] connection in
            var left = 0
            for try await (count) in try await connection.query("SELECT count(*) FROM presence WHERE node = \(node)", logger: logger).decode(Int.self) {
                left = count
            }
            if left > 0 {
                try await Self.endNode(node, reason: "its server restarted", in: connection, logger: logger)
            }
            try await connection.query(
                """
                INSERT INTO node_leases (node, expires) VALUES (\(node), now() + make_interval(secs => \(seconds)))
                ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires
                """,
                logger: logger
            )
        }
    }

    /// Renews this node's lease, then ends any other node whose lease ran out: the DELETE of its lease is what
    /// makes exactly one node do it, whichever many try at once. True when this node's own lease had to be made
    /// anew: another node ended it (it went unrenewed too long: a stall, a lost database), and the others are to
    /// be told again who is here.
    func keepLease(on connection: PostgresConnection) async throws -> Bool {
        guard let node else { return false }
        let logger = logger
        let seconds = nodeTimeout.seconds
        var made = false
        let renew: PostgresQuery = """
            INSERT INTO node_leases (node, expires) VALUES (\(node), now() + make_interval(secs => \(seconds)))
            ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires RETURNING (xmax = 0)
            """
        for try await (inserted) in try await connection.query(renew, logger: logger).decode(Bool.self) { made = inserted }
        var expired: [String] = []
        let query: PostgresQuery = "SELECT node FROM node_leases WHERE expires < now() AND node <> \(node)"
        for try await (name) in try await connection.query(query, logger: logger).decode(String.self) { expired.append(name) }
        for name in expired {
            try await transaction { connection in
                var won = false
                let claim: PostgresQuery = "DELETE FROM node_leases WHERE node = \(name) AND expires < now() RETURNING node"
                for try await _ in try await connection.query(claim, logger: logger).decode(String.self) { won = true }
                guard won else { return }
                logger.notice("node ended: its lease ran out", metadata: ["node": "\(name)"])
                try await Self.endNode(name, reason: "its server stopped answering", in: connection, logger: logger)
            }
        }
        return made
    }

    /// How long presence entries are kept: far longer than any node reading the log takes to read them (a node
    /// that could not read for this long was ended by the others long before, and tells them again who it has).
    static let presenceKept: Duration = .seconds(3600)

    /// Forgets presence entries older than `presenceKept` (each node does, once a minute: a DELETE that finds
    /// nothing costs an index probe), at most `presencePrunedAtOnce` at a time, so that a large backlog (the rows a
    /// database had when it came to schema 4 all age at once) goes in steps that each finish well inside the
    /// deadline.
    func prunePresence() async throws {
        let seconds = Self.presenceKept.seconds
        let most = Self.presencePrunedAtOnce
        try await transaction { [logger] connection in
            try await connection.query(
                """
                DELETE FROM presence_log WHERE id IN
                    (SELECT id FROM presence_log WHERE written < now() - make_interval(secs => \(seconds)) LIMIT \(most))
                """,
                logger: logger
            )
        }
    }

    static let presencePrunedAtOnce = 20_000

    /// Writes one `nodeGone` for `node` into the log (under its name, so every other node reads it) and forgets its
    /// present, in the caller's transaction.
    private static func endNode(_ node: String, reason: String, in connection: PostgresConnection, logger: Logger) async throws {
        var id: Int64 = 0
        for try await (seq) in try await connection.query("UPDATE log_head SET seq = seq + 1 RETURNING seq", logger: logger).decode(Int64.self) {
            id = seq
        }
        let entry = PresenceEntry(id: id, session: 0, kind: .nodeGone, cause: "lost", reason: "connection lost (\(reason))")
        let document = String(decoding: try JSONEncoder().encode(entry), as: UTF8.self)
        try await connection.query("INSERT INTO presence_log (id, node, entry) VALUES (\(id), \(node), \(document))", logger: logger)
        try await connection.query("DELETE FROM presence WHERE node = \(node)", logger: logger)
        // Every node, the one writing this included, reads it (it is filed under the ended node's name).
        try await connection.query("SELECT pg_notify(\(logChannel), '')", logger: logger)
    }
}

extension Duration {
    /// Whole and fractional seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
