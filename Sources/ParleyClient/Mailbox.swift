import Synchronization

/// Inputs for the full-screen loop from several producers; the loop takes everything waiting at once, so a
/// burst of traffic costs one redraw, not one per message.
final class Mailbox<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<[Element], Never>?
    }

    private let state = Mutex(State())

    func post(_ item: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<[Element], Never>? in
            state.items.append(item)
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        if let waiter { waiter.resume(returning: state.withLock { state in defer { state.items = [] }; return state.items }) }
    }

    /// Everything posted since the last call, waiting for at least one item.
    func next() async -> [Element] {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Element]? in
                guard state.items.isEmpty else {
                    defer { state.items = [] }
                    return state.items
                }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
