import Synchronization

/// A test double's "something moved": the double calls `changed()` whenever its state changes, and a test waits
/// for a condition on that state, woken by each change, with a deadline (no polling, no sleeping for it).
final class Changes: Sendable {
    private struct State {
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var next = 0
        var generation = 0
    }

    private let state = Mutex(State())

    func changed() {
        let waiters = state.withLock { state in
            state.generation += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `condition` holds; throws `TimedOut` if it does not within `timeout`.
    func wait(_ what: String, timeout: Duration = .seconds(10), until condition: @escaping @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = state.withLock { $0.generation }
            if condition() { return }
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.change(after: seen) }
                group.addTask { try? await Task.sleep(until: deadline) }  // the deadline, not the wait
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Returns at the first change after generation `seen` (at once if there has been one), or when cancelled.
    private func change(after seen: Int) async {
        let id = state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard state.generation == seen, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}
