import NIOCore
import Synchronization

/// The open connections of one listener, so that shutdown can reach each of them and wait until every session
/// has left the hub (the publisher stops after the listeners, and must see them go).
final class ConnectionRegistry: Sendable {
    private enum Phase {
        case serving
        /// Goodbyes have been said; a connection accepted from now on is sent away at once.
        case shuttingDown(grace: Duration)
    }

    private struct State {
        var open: Set<Connection> = []
        /// Channels that are no chat connection (yet): HTTP requests, which shutdown closes at once.
        var plain: [ObjectIdentifier: any Channel] = [:]
        var phase = Phase.serving
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.open.count } }

    /// Keeps a plain channel until it closes or becomes a connection (`add`).
    func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        let stopping = state.withLock { state -> Bool in
            guard case .serving = state.phase else { return true }
            state.plain[key] = channel
            return false
        }
        if stopping { return channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.plain.removeValue(forKey: key) } }
    }

    func add(_ connection: Connection) {
        let grace = state.withLock { state -> Duration? in
            state.plain.removeValue(forKey: ObjectIdentifier(connection.channel))
            state.open.insert(connection)
            guard case .shuttingDown(let grace) = state.phase else { return nil }
            return grace
        }
        if let grace { connection.state.shutDown(grace: grace, hub: connection.hub) }
    }

    func remove(_ connection: Connection) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open.remove(connection)
            guard state.open.isEmpty else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Every connection says goodbye and gets `grace` to receive what is queued (`ConnectionState.shutDown`).
    /// Plain channels are closed: an HTTP request is short, and a browser asks again elsewhere.
    func shutDownAll(grace: Duration) {
        let (open, plain) = state.withLock { state in
            state.phase = .shuttingDown(grace: grace)
            return (state.open, state.plain.values)
        }
        for channel in plain { channel.close(promise: nil) }
        for connection in open { connection.state.shutDown(grace: grace, hub: connection.hub) }
    }

    func closeAll() {
        let (open, plain) = state.withLock { ($0.open, $0.plain.values) }
        for channel in plain { channel.close(promise: nil) }
        for connection in open { connection.channel.close(promise: nil) }
    }

    /// Returns once no connection is open, or the task is cancelled.
    func waitUntilEmpty() async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Checked under the lock that `onCancel` takes, so a cancellation is seen either here or there.
                let now = state.withLock { state in
                    guard !state.open.isEmpty, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns true once no connection is open, false when `deadline` passes first (or the task is cancelled).
    func waitUntilEmpty(within deadline: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitUntilEmpty()
                return self.count == 0
            }
            group.addTask {
                _ = try? await Task.sleep(for: deadline)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
