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
            Self.count(keys, in: &state, now: now, window: window, capacity: capacity)
            return nil
        }
    }

    /// Counts an attempt for every key whatever the count (the limit only marks a key as held back, which
    /// keeps it in the table).
    func record(_ keys: [(key: String, limit: Int)], now: ContinuousClock.Instant = .now) {
        state.withLock { Self.count(keys, in: &$0, now: now, window: window, capacity: capacity) }
    }

    private static func count(_ keys: [(key: String, limit: Int)], in state: inout State, now: ContinuousClock.Instant, window: Duration, capacity: Int) {
        for (key, limit) in keys {
            state.clock += 1
            var entry = state.entries[key] ?? Entry(attempts: 0, since: now, used: state.clock, limit: limit)
            if entry.since.duration(to: now) >= window { entry = Entry(attempts: 0, since: now, used: state.clock, limit: limit) }
            entry.attempts += 1
            entry.used = state.clock
            entry.limit = limit
            if state.entries[key] == nil && state.entries.count >= capacity { evict(&state, now: now, window: window) }
            state.entries[key] = entry
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
    private static func evict(_ state: inout State, now: ContinuousClock.Instant, window: Duration) {
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
