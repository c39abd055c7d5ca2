import Synchronization

/// History replays, read off the publisher's path.
///
/// Reading a room's history can take long (hundreds of large messages), and the publisher carries everyone's
/// messages in one ordered stream: a read done in that stream would stall every user. So the publisher only
/// reserves the requester's place in its own stream (`EventSink.hold`) and queues the read here; a few reads
/// run at once, and each reply is put in its reserved place when it is ready. The requester sees its history
/// exactly where it asked for it, and nobody else waits for it.
///
/// Bounded: at most `maximumQueued` reads wait, and a read past that is answered at once that the server is
/// busy; flood control charges the requester for the size of what it asks (see the front doors).
final class HistoryReads<Sink: EventSink>: Sendable {
    struct Read: Sendable {
        let hold: Sink.Hold
        let room: String
        let query: HistoryQuery
        let below: Int64
        let ref: String?
    }

    private struct State {
        var queued: [Read] = []
        var waiter: CheckedContinuation<Read?, Never>?
        var closed = false
    }

    let store: any MessageStore
    let sink: Sink
    /// Reads running at once: SQLite serves them from readers beside the writer.
    let concurrency: Int
    let maximumQueued: Int
    let onFailure: @Sendable (any Error) -> Void
    private let state = Mutex(State())

    init(store: any MessageStore, sink: Sink, concurrency: Int = 2, maximumQueued: Int = 256, onFailure: @escaping @Sendable (any Error) -> Void) {
        self.store = store
        self.sink = sink
        self.concurrency = max(1, concurrency)
        self.maximumQueued = maximumQueued
        self.onFailure = onFailure
    }

    /// Queues a read; false when too many wait already (the caller then releases the hold with a refusal).
    func submit(_ read: Read) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Read?, Never>?) in
            guard !state.closed, state.queued.count < maximumQueued else { return (false, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (true, waiter)
            }
            state.queued.append(read)
            return (true, nil)
        }
        waiter?.resume(returning: read)
        return accepted
    }

    /// No more reads are taken; `run` returns once the queued ones are done.
    func close() {
        let waiter = state.withLock { state in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Carries out reads, `concurrency` at a time, until closed and drained (or cancelled).
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while let read = await next() {
                if running == concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.perform(read) }
                running += 1
            }
        }
    }

    /// Carries out every queued read, one by one, without `run` (tests that drive a publisher step by step).
    func performQueued() async {
        while let read = state.withLock({ $0.queued.isEmpty ? nil : $0.queued.removeFirst() }) {
            await perform(read)
        }
    }

    private func next() async -> Read? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Read?? in
                    if !state.queued.isEmpty { return .some(state.queued.removeFirst()) }
                    if state.closed || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            close()
        }
    }

    /// Bounded by the id at the time it was asked for, so replayed and live messages never overlap; put in the
    /// place reserved when it was asked for, so they leave no gap. A failed read is an error, never an empty
    /// history (a resuming client would take that for "nothing missed").
    private func perform(_ read: Read) async {
        do {
            let messages = try await store.history(room: read.room, read.query, below: read.below)
            sink.release(read.hold, with: .history(room: read.room, messages: messages, ref: read.ref))
        } catch {
            onFailure(error)
            let failure = ChatError(.historyUnavailable, "The history of \(read.room) cannot be read just now; ask again with /history.")
            sink.release(read.hold, with: .error(failure, ref: read.ref))
        }
    }
}
