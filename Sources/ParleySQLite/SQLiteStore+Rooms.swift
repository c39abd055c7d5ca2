import Foundation
import ParleyCore
import SQLiteNIO

extension SQLiteStore {
    /// One transaction for a whole batch (one fsync, however many modes one line changed). Only the publisher
    /// calls it, one batch at a time, and `roomWriter` is its own, so nothing else joins the transaction.
    public func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws {
        do {
            _ = try await roomWriter.query("BEGIN IMMEDIATE")
            do {
                for change in changes { try await apply(change) }
                for entry in audits {
                    _ = try await roomWriter.query(
                        "INSERT INTO audit (time_ms, actor, action, target, detail) VALUES (?,?,?,?,?)",
                        [.integer(Int(Date().timeIntervalSince1970 * 1000)), .text(entry.actor), .text(entry.action), .text(entry.target), .text(entry.detail)]
                    )
                }
                _ = try await roomWriter.query("COMMIT")
                checkpointer.committed(pages: 2 + changes.count + audits.count)
            } catch {
                _ = try? await roomWriter.query("ROLLBACK")
                throw error
            }
        } catch {
            throw Self.describe(error, path: path)
        }
    }

    private func apply(_ change: RoomChange) async throws {
        switch change {
        case .topic(let room, let text, let setBy, let setAt):
            try await ensure(room)
            _ = try await roomWriter.query(
                "UPDATE rooms SET topic = ?, topic_by = ?, topic_ms = ? WHERE name_key = ?",
                [.text(text), setBy.map { .text($0) } ?? .null, setAt.map { .integer(Self.milliseconds($0)) } ?? .null, .text(room.lowercased())]
            )
        case .topicLock(let room, let locked):
            try await ensure(room)
            _ = try await roomWriter.query("UPDATE rooms SET topic_locked = ? WHERE name_key = ?", [.integer(locked ? 1 : 0), .text(room.lowercased())])
        case .key(let room, let key):
            try await ensure(room)
            _ = try await roomWriter.query("UPDATE rooms SET join_key = ? WHERE name_key = ?", [key.map { .text($0) } ?? .null, .text(room.lowercased())])
        case .modes(let room, let modes):
            try await ensure(room)
            _ = try await roomWriter.query("UPDATE rooms SET modes = ? WHERE name_key = ?", [.text(modes.letters), .text(room.lowercased())])
        case .limit(let room, let limit):
            try await ensure(room)
            _ = try await roomWriter.query("UPDATE rooms SET member_limit = ? WHERE name_key = ?", [limit.map { .integer($0) } ?? .null, .text(room.lowercased())])
        case .addOperator(let room, let account):
            try await ensure(room)
            _ = try await roomWriter.query(
                "INSERT OR IGNORE INTO room_operators (room_key, account_key) VALUES (?, ?)", [.text(room.lowercased()), .text(account)]
            )
        case .removeOperator(let room, let account):
            _ = try await roomWriter.query(
                "DELETE FROM room_operators WHERE room_key = ? AND account_key = ?", [.text(room.lowercased()), .text(account)]
            )
        case .restrict(let room, let restriction):
            try await ensure(room)
            _ = try await roomWriter.query(
                "INSERT OR REPLACE INTO restrictions (room_key, kind, mask, set_by, reason, since_ms, until_ms) VALUES (?,?,?,?,?,?,?)",
                [
                    .text(room.lowercased()), .text(restriction.kind.rawValue), .text(restriction.mask.text), .text(restriction.setBy),
                    restriction.reason.map { .text($0) } ?? .null, .integer(Self.milliseconds(restriction.since)),
                    restriction.until.map { .integer(Self.milliseconds($0)) } ?? .null,
                ]
            )
        case .lift(let room, let kind, let mask):
            _ = try await roomWriter.query(
                "DELETE FROM restrictions WHERE room_key = ? AND kind = ? AND mask = ?", [.text(room.lowercased()), .text(kind.rawValue), .text(mask.text)]
            )
        case .forget(let room):
            _ = try await roomWriter.query("DELETE FROM rooms WHERE name_key = ?", [.text(room.lowercased())])
        }
    }

    /// The row a change hangs on is made first (within the batch's transaction); the name keeps the spelling of
    /// whoever created the room.
    private func ensure(_ room: String) async throws {
        _ = try await roomWriter.query("INSERT OR IGNORE INTO rooms (name_key, name) VALUES (?, ?)", [.text(room.lowercased()), .text(room)])
    }

    public func roomPolicies() async throws -> [RoomPolicy] {
        var policies: [String: RoomPolicy] = [:]
        for row in try await connection.query("SELECT name_key, name, topic, topic_by, topic_ms, topic_locked, join_key, modes, member_limit FROM rooms") {
            guard let key = row.column("name_key")?.string, let name = row.column("name")?.string else { continue }
            var policy = RoomPolicy(name: name)
            policy.topic = row.column("topic")?.string ?? ""
            policy.topicSetBy = row.column("topic_by")?.string
            policy.topicSetAt = row.column("topic_ms")?.integer.map(Self.date)
            policy.topicLocked = row.column("topic_locked")?.integer == 1
            policy.key = row.column("join_key")?.string
            policy.modes = RoomModes(letters: row.column("modes")?.string ?? "n")
            policy.limit = row.column("member_limit")?.integer
            policies[key] = policy
        }
        for row in try await connection.query("SELECT room_key, account_key FROM room_operators") {
            guard let key = row.column("room_key")?.string, let account = row.column("account_key")?.string else { continue }
            policies[key]?.operators.insert(account)
        }
        let restrictions = try await connection.query(
            "SELECT room_key, kind, mask, set_by, reason, since_ms, until_ms FROM restrictions ORDER BY since_ms"
        )
        for row in restrictions {
            guard let key = row.column("room_key")?.string,
                let kind = row.column("kind")?.string.flatMap(Restriction.Kind.init(rawValue:)),
                let mask = row.column("mask")?.string.flatMap({ try? Mask(validating: $0) }),
                let since = row.column("since_ms")?.integer
            else { continue }
            policies[key]?.restrictions.append(
                Restriction(
                    kind: kind, mask: mask, setBy: row.column("set_by")?.string ?? "", reason: row.column("reason")?.string,
                    since: Self.date(since), until: row.column("until_ms")?.integer.map(Self.date)
                )
            )
        }
        return policies.values.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }

    private static func milliseconds(_ date: Date) -> Int { Int((date.timeIntervalSince1970 * 1000).rounded()) }
    private static func date(_ milliseconds: Int) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
