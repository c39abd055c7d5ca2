import Foundation
import ParleyCore
import PostgresNIO

extension PostgresStore {
    /// A whole batch of room changes and its audit entries in one transaction, applied in order.
    public func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws {
        guard !changes.isEmpty || !audits.isEmpty else { return }
        try await transaction { [logger] connection in
            for change in changes {
                for statement in Self.statements(for: change) { try await connection.query(statement, logger: logger) }
            }
            for entry in audits {
                try await connection.query(
                    """
                    INSERT INTO audit (time_ms, actor, action, target, detail)
                    VALUES (\(Self.milliseconds(Date())), \(entry.actor), \(entry.action), \(entry.target), \(entry.detail))
                    """,
                    logger: logger
                )
            }
        }
    }

    /// What one change takes: the room's row first when the change hangs on it (the name keeps the spelling of
    /// whoever created the room), then the change.
    private static func statements(for change: RoomChange) -> [PostgresQuery] {
        func ensure(_ room: String) -> PostgresQuery {
            "INSERT INTO rooms (name_key, name) VALUES (\(room.lowercased()), \(room)) ON CONFLICT (name_key) DO NOTHING"
        }
        switch change {
        case .topic(let room, let text, let setBy, let setAt):
            return [
                ensure(room),
                "UPDATE rooms SET topic = \(text), topic_by = \(setBy), topic_ms = \(setAt.map(milliseconds)) WHERE name_key = \(room.lowercased())",
            ]
        case .topicLock(let room, let locked):
            return [ensure(room), "UPDATE rooms SET topic_locked = \(locked) WHERE name_key = \(room.lowercased())"]
        case .key(let room, let key):
            return [ensure(room), "UPDATE rooms SET join_key = \(key) WHERE name_key = \(room.lowercased())"]
        case .modes(let room, let modes):
            return [ensure(room), "UPDATE rooms SET modes = \(modes.letters) WHERE name_key = \(room.lowercased())"]
        case .limit(let room, let limit):
            return [ensure(room), "UPDATE rooms SET member_limit = \(limit.map(Int32.init(clamping:))) WHERE name_key = \(room.lowercased())"]
        case .addOperator(let room, let account):
            return [
                ensure(room),
                "INSERT INTO room_operators (room_key, account_key) VALUES (\(room.lowercased()), \(account)) ON CONFLICT DO NOTHING",
            ]
        case .removeOperator(let room, let account):
            return ["DELETE FROM room_operators WHERE room_key = \(room.lowercased()) AND account_key = \(account)"]
        case .restrict(let room, let restriction):
            return [
                ensure(room),
                """
                INSERT INTO restrictions (room_key, kind, mask, set_by, reason, since_ms, until_ms)
                VALUES (\(room.lowercased()), \(restriction.kind.rawValue), \(restriction.mask.text), \(restriction.setBy), \(restriction.reason),
                        \(milliseconds(restriction.since)), \(restriction.until.map(milliseconds)))
                ON CONFLICT (room_key, kind, mask) DO UPDATE
                SET set_by = excluded.set_by, reason = excluded.reason, since_ms = excluded.since_ms, until_ms = excluded.until_ms
                """,
            ]
        case .lift(let room, let kind, let mask):
            return ["DELETE FROM restrictions WHERE room_key = \(room.lowercased()) AND kind = \(kind.rawValue) AND mask = \(mask.text)"]
        case .forget(let room):
            return ["DELETE FROM rooms WHERE name_key = \(room.lowercased())"]
        }
    }

    public func roomPolicies() async throws -> [RoomPolicy] {
        var policies: [String: RoomPolicy] = [:]
        for row in try await rows("SELECT name_key, name, topic, topic_by, topic_ms, topic_locked, join_key, modes, member_limit FROM rooms") {
            let (key, name, topic, topicBy, topicAt, locked, joinKey, modes, limit) = try row.decode(
                (String, String, String, String?, Int64?, Bool, String?, String, Int32?).self
            )
            var policy = RoomPolicy(name: name)
            policy.topic = topic
            policy.topicSetBy = topicBy
            policy.topicSetAt = topicAt.map(Self.date)
            policy.topicLocked = locked
            policy.key = joinKey
            policy.modes = RoomModes(letters: modes)
            policy.limit = limit.map(Int.init)
            policies[key] = policy
        }
        for row in try await rows("SELECT room_key, account_key FROM room_operators") {
            let (key, account) = try row.decode((String, String).self)
            policies[key]?.operators.insert(account)
        }
        for row in try await rows("SELECT room_key, kind, mask, set_by, reason, since_ms, until_ms FROM restrictions ORDER BY since_ms") {
            let (key, kind, mask, setBy, reason, since, until) = try row.decode((String, String, String, String, String?, Int64, Int64?).self)
            guard let kind = Restriction.Kind(rawValue: kind), let mask = try? Mask(validating: mask) else { continue }
            policies[key]?.restrictions.append(
                Restriction(kind: kind, mask: mask, setBy: setBy, reason: reason, since: Self.date(since), until: until.map(Self.date))
            )
        }
        return policies.values.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }
}
