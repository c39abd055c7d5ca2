import Foundation
import ParleyCore
import PostgresNIO

extension PostgresStore {
    /// PostgreSQL takes at most 65,535 binds in one statement: 5,461 rows of 12 columns.
    static let rowsPerInsert = 65_535 / 12

    /// Messages numbered elsewhere (tests, imports): stored through the log like a batch (`commit`), so the
    /// log's head stays above every id; ids at or above the head are kept as they are.
    public func append(_ messages: [ChatMessage]) async throws {
        guard let low = messages.map(\.id).min(), let high = messages.map(\.id).max() else { return }
        _ = try await commit(messages, ids: low..<(high + 1), readingOthers: false)
    }

    /// The INSERTs that store `messages` with their ids moved by the offset given: one per `rowsPerInsert` rows.
    /// The columns `row(for:offset:node:in:)` gives values for.
    static let messageColumns = "id, room, room_name, recipient, sender, kind, text, time_ms, sender_account, recipient_account, tags, node"

    func insertStatements(for messages: [ChatMessage]) -> @Sendable (Int64) -> [PostgresQuery] {
        let node = node
        return { offset in
            stride(from: 0, to: messages.count, by: Self.rowsPerInsert).map { start in
                var statement = Statement()
                let rows = messages[start..<min(start + Self.rowsPerInsert, messages.count)].map {
                    Self.row(for: $0, offset: offset, node: node, in: &statement)
                }
                statement.sql = "INSERT INTO messages (\(Self.messageColumns)) VALUES " + rows.joined(separator: ",")
                return statement.query
            }
        }
    }

    public func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        try await history(room: room, query, below: below, withTags: false)
    }

    public func history(room: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        var statement = Statement()
        let scope = "room = \(statement.bind(room.lowercased()))" + Self.tagsCondition(withTags)
        return try await read(scope, statement, query, below: below)
    }

    public func conversation(account: String, with nick: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        var statement = Statement()
        let (key, other) = (statement.bind(account.lowercased()), statement.bind(nick.lowercased()))
        // The two halves match the two partial indexes (see the schema).
        let scope =
            "room IS NULL AND ((sender_account = \(key) AND lower(recipient) = \(other)) OR (recipient_account = \(key) AND lower(sender) = \(other)))"
            + Self.tagsCondition(withTags)
        return try await read(scope, statement, query, below: below)
    }

    public func targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool) async throws -> [HistoryTarget] {
        var found: [HistoryTarget] = []
        for room in rooms {
            // A room's latest message is its highest id: one step down its index (time grows with id).
            var statement = Statement()
            statement.sql = "SELECT room_name, time_ms FROM messages WHERE room = \(statement.bind(room.lowercased())) ORDER BY id DESC LIMIT 1"
            for row in try await rows(statement.query) {
                let (name, latest) = try row.decode((String?, Int64).self)
                if let name { found.append(HistoryTarget(name: name, latest: Self.date(latest))) }
            }
        }
        if let account {
            var statement = Statement()
            let key = statement.bind(account.lowercased())
            let other = "CASE WHEN sender_account = \(key) THEN recipient ELSE sender END"
            let (lower, upper) = (statement.bind(Self.milliseconds(after)), statement.bind(Self.milliseconds(before)))
            // The other's nick as last spelled, and when the conversation last moved.
            statement.sql = """
                SELECT (array_agg(\(other) ORDER BY id DESC))[1], MAX(time_ms) FROM messages
                WHERE room IS NULL AND (sender_account = \(key) OR recipient_account = \(key))
                GROUP BY lower(\(other)) HAVING MAX(time_ms) > \(lower) AND MAX(time_ms) < \(upper)
                """
            for row in try await rows(statement.query) {
                let (name, latest) = try row.decode((String?, Int64).self)
                if let name { found.append(HistoryTarget(name: name, latest: Self.date(latest))) }
            }
        }
        found = found.filter { $0.latest > after && $0.latest < before }
        let sorted = found.sorted { $0.latest < $1.latest }
        return Array(newest ? sorted.suffix(count) : sorted.prefix(count))
    }

    /// The log's head: above every id stored, and every id a failed batch of a node gave up.
    public func lastMessageID() async throws -> Int64 {
        try await rows("SELECT GREATEST((SELECT seq FROM log_head), (SELECT COALESCE(MAX(id), 0) FROM messages))").first?.decode(Int64.self) ?? 0
    }

    /// The messages of one room or conversation (`scope`, with its binds already in `statement`) that `query`
    /// selects, oldest first.
    private func read(_ scope: String, _ statement: Statement, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        let select = "\(Self.selectMessage) WHERE \(scope)"
        var statement = statement
        switch query {
        case .latest(let count):
            statement.sql = "\(select) AND id < \(statement.bind(below)) ORDER BY id DESC LIMIT \(statement.bind(count))"
            return try await messages(statement).reversed()
        case .before(let id, let count):
            statement.sql = "\(select) AND id < \(statement.bind(min(id, below))) ORDER BY id DESC LIMIT \(statement.bind(count))"
            return try await messages(statement).reversed()
        case .after(let id, let count):
            statement.sql = "\(select) AND id > \(statement.bind(id)) AND id < \(statement.bind(below)) ORDER BY id ASC LIMIT \(statement.bind(count))"
            return try await messages(statement)
        case .range(let after, let before, let count, let newest):
            let lower = Self.condition(after, ">", &statement)
            let upper = Self.condition(before, "<", &statement)
            statement.sql = """
                \(select) AND \(lower) AND \(upper) AND id < \(statement.bind(below)) \
                ORDER BY \(Self.order(after, before, descending: newest)) LIMIT \(statement.bind(count))
                """
            let found = try await messages(statement)
            return newest ? found.reversed() : found
        case .around(let point, let count):
            // About half before the point, newest first; the rest from the point on.
            var earlier = statement
            earlier.sql = """
                \(select) AND \(Self.condition(point, "<", &earlier)) AND id < \(earlier.bind(below)) \
                ORDER BY \(Self.order(point, point, descending: true)) LIMIT \(earlier.bind((count - 1) / 2))
                """
            let before = try await messages(earlier)
            var later = statement
            later.sql = """
                \(select) AND \(Self.condition(point, ">=", &later)) AND id < \(later.bind(below)) \
                ORDER BY \(Self.order(point, point, descending: false)) LIMIT \(later.bind(count - before.count))
                """
            return before.reversed() + (try await messages(later))
        }
    }

    private func messages(_ statement: Statement) async throws -> [ChatMessage] {
        try await rows(statement.query).map(Self.message)
    }

    static let selectMessage = "SELECT id, room_name, recipient, sender, kind, text, time_ms, tags FROM messages"

    /// A row of `selectMessage`.
    static func message(_ row: PostgresRow) throws -> ChatMessage {
        let (id, roomName, recipient, sender, kind, text, time, tags) = try row.decode(
            (Int64, String?, String?, String?, String, String, Int64, String?).self
        )
        return message(id: id, roomName: roomName, recipient: recipient, sender: sender, kind: kind, text: text, time: time, tags: tags)
    }

    /// A message from its columns.
    static func message(
        id: Int64, roomName: String?, recipient: String?, sender: String?, kind: String, text: String, time: Int64, tags: String?
    ) -> ChatMessage {
        let target: ChatMessage.Target = if let roomName { .room(roomName) } else if let recipient { .user(recipient) } else { .everyone }
        return ChatMessage(
            id: id, time: Self.date(time), from: sender, target: target, kind: ChatMessage.Kind(rawValue: kind) ?? .normal, text: text,
            tags: tags.flatMap(Self.decode) ?? [:]
        )
    }

    /// Kept TAGMSGs are left out unless asked for (only IRC's event playback shows them).
    private static func tagsCondition(_ withTags: Bool) -> String {
        withTags ? "" : " AND kind <> '\(ChatMessage.Kind.tags.rawValue)'"
    }

    /// Time and id grow together, so either orders a room's messages; ordering by the one a bound names walks
    /// that index from the bound.
    private static func order(_ a: HistoryPoint, _ b: HistoryPoint, descending: Bool) -> String {
        let direction = descending ? "DESC" : "ASC"
        switch (a, b) {
        case (.time, _), (_, .time): return "time_ms \(direction), id \(direction)"
        default: return "id \(direction)"
        }
    }

    private static func condition(_ point: HistoryPoint, _ comparison: String, _ statement: inout Statement) -> String {
        switch point {
        case .id(let id): "id \(comparison) \(statement.bind(id))"
        case .time(let time): "time_ms \(comparison) \(statement.bind(milliseconds(time)))"
        }
    }

    /// One `(…)` of the multi-row INSERT, its values bound in `statement`.
    static func row(for message: ChatMessage, offset: Int64, node: String?, in statement: inout Statement) -> String {
        let (room, roomName, recipient): (String?, String?, String?) =
            switch message.target {
            case .room(let name): (name.lowercased(), name, nil)
            case .user(let nick): (nil, nil, nick)
            case .everyone: (nil, nil, nil)
            }
        // The accounts a private message is kept for, each reading it back as its conversation with the other.
        let (senderAccount, recipientAccount): (String?, String?) =
            if case .user = message.target { (message.account?.lowercased(), message.recipientAccount?.lowercased()) } else { (nil, nil) }
        let values = [
            statement.bind(message.id + offset), statement.bind(room), statement.bind(roomName), statement.bind(recipient), statement.bind(message.from),
            statement.bind(message.kind.rawValue), statement.bind(message.text), statement.bind(milliseconds(message.time)),
            statement.bind(senderAccount), statement.bind(recipientAccount), statement.bind(encode(message.tags)), statement.bind(node),
        ]
        return "(" + values.joined(separator: ",") + ")"
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64(exactly: (date.timeIntervalSince1970 * 1000).rounded()) ?? (date.timeIntervalSince1970 < 0 ? .min : .max)
    }

    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    private static func encode(_ tags: [String: String]) -> String? {
        guard !tags.isEmpty, let data = try? JSONEncoder().encode(tags) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    private static func decode(_ text: String) -> [String: String]? {
        try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }
}
