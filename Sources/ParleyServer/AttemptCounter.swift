import Foundation
import Synchronization

/// Attempts per key over a sliding window, in bounded memory that never forgets the keys that matter.
///
/// An attempt is counted *before* what it tries is checked (a password, say) and refunded when it turned out
/// right, so parallel connections cannot run more tries than the limit. Past `capacity` keys one goes: one
/// whose window is over if any, else the least recently used of those still under their limit, and only when
/// every key is at its limit the least recently used of all. So spraying new keys (thousands of addresses)
/// cannot make the counter forget a key that is being held back.
final class AttemptCounter: Sendable {
    private struct Entry {
        var attempts: Int
        var since: ContinuousClock.Instant
        var used: UInt64
        var limit: Int
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    let window: Duration
    let capacity: Int
    private let state = Mutex(State())

    init(window: Duration, capacity: Int = 4096) {
        self.window = window
        self.capacity = capacity
    }

    /// How many attempts `key` made in its current window.
    func attempts(_ key: String, now: ContinuousClock.Instant = .now) -> Int {
        state.withLock { state in
            guard let entry = state.entries[key], entry.since.duration(to: now) < window else { return 0 }
            return entry.attempts
        }
    }

    /// Counts an attempt for every key, or counts nothing and returns how long to wait when one of them is at
    /// its limit.
    func begin(_ keys: [(key: String, limit: Int)], now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { state in
            var wait: Duration?
            for (key, limit) in keys {
                guard let entry = state.entries[key], entry.since.duration(to: now) < window else { continue }
                if entry.attempts >= limit { wait = max(wait ?? .zero, window - entry.since.duration(to: now)) }
            }
            if let wait { return wait }
            for (key, limit) in keys {
                state.clock += 1
                var entry = state.entries[key] ?? Entry(attempts: 0, since: now, used: state.clock, limit: limit)
                if entry.since.duration(to: now) >= window { entry = Entry(attempts: 0, since: now, used: state.clock, limit: limit) }
                entry.attempts += 1
                entry.used = state.clock
                entry.limit = limit
                if state.entries[key] == nil && state.entries.count >= capacity { evict(&state, now: now) }
                state.entries[key] = entry
            }
            return nil
        }
    }

    /// The attempts turned out right: they do not count.
    func refund(_ keys: [String]) {
        state.withLock { state in
            for key in keys { state.entries[key]?.attempts -= 1 }
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// One pass, no copies: the table is full only under attack, when this runs for every new key.
    private func evict(_ state: inout State, now: ContinuousClock.Instant) {
        // Keys still under their limit go first (0 before 1), the least recently used of them first.
        var best: (key: String, held: Int, used: UInt64)?
        for (key, entry) in state.entries {
            if entry.since.duration(to: now) >= window {
                state.entries[key] = nil
                return
            }
            let held = entry.attempts >= entry.limit ? 1 : 0
            if let current = best, (current.held, current.used) <= (held, entry.used) { continue }
            best = (key, held, entry.used)
        }
        if let best { state.entries[best.key] = nil }
    }
}

/// Where attempts from one place are counted: an IPv4 address, or a whole IPv6 /64 (one user's network, which
/// hands out addresses freely).
func addressKey(_ address: String) -> String {
    guard address.contains(":") else { return address }
    // An IPv4 address written as IPv6 (::ffff:192.0.2.1) is the IPv4 address.
    if address.contains("."), let last = address.split(separator: ":").last { return String(last) }
    let halves = address.components(separatedBy: "::")
    let head = halves[0].split(separator: ":")
    let tail = halves.count > 1 ? halves[1].split(separator: ":") : []
    let groups = head + Array(repeating: "0", count: halves.count > 1 ? max(0, 8 - head.count - tail.count) : 0) + tail
    return groups.prefix(4).map { group in
        let significant = group.drop { $0 == "0" }
        return significant.isEmpty ? "0" : significant.lowercased()
    }.joined(separator: ":") + "::/64"
}
