import Synchronization

/// History replays, read off the publisher's path.
///
/// Reading a room's history can take long (hundreds of large messages), and the publisher carries everyone's
/// messages in one ordered stream: a read done in that stream would stall every user. So the publisher only
/// reserves the requester's place in its own stream (`EventSink.hold`) and queues the read here; a few reads
/// run at once, and each reply is put in its reserved place when it is ready. The requester sees its history
/// exactly where it asked for it, and nobody else waits for it.
///
/// Fair: each client has a queue of its own and the clients are served in turn, so one that asks for a lot
/// waits behind itself, not in front of a user who just joined a room. A client may have at most
/// `maximumAskedPerClient` reads it asked for (`/history`, `CHATHISTORY`) waiting; past that only its own
/// extra requests are refused ("too busy"), never the replays that come with joining a room or resuming, which
/// flood control and the room limit already bound. Reads for a client that has gone are skipped; once the
/// publisher closes (shutdown), what still waits is answered with a refusal instead of read.
final class HistoryReads<Sink: EventSink>: Sendable {
    struct Read: Sendable {
        let peer: Sink.Peer
        let hold: Sink.Hold
        let lookup: HistoryLookup
        let ref: String?
        /// Asked for by the client, as opposed to part of a join or a resume.
        let asked: Bool
    }

    private struct State {
        var queues: [Sink.Peer: [Read]] = [:]
        /// Clients with reads waiting, in the order they are served.
        var turns: [Sink.Peer] = []
        var waiter: CheckedContinuation<Read?, Never>?
        var closed = false
    }

    let store: any MessageStore
    let sink: Sink
    /// Reads running at once: SQLite serves them from readers beside the writer.
    let concurrency: Int
    let maximumAskedPerClient: Int
    /// When true, reads are answered with a refusal instead (past the shutdown deadline).
    let refusing: @Sendable () -> Bool
    let onFailure: @Sendable (any Error) -> Void
    private let state = Mutex(State())

    init(
        store: any MessageStore, sink: Sink, concurrency: Int = 2, maximumAskedPerClient: Int = 4,
        refusing: @escaping @Sendable () -> Bool = { false }, onFailure: @escaping @Sendable (any Error) -> Void
    ) {
        self.store = store
        self.sink = sink
        self.concurrency = max(1, concurrency)
        self.maximumAskedPerClient = maximumAskedPerClient
        self.refusing = refusing
        self.onFailure = onFailure
    }

    /// Queues a read; false when it was refused (the caller then releases the hold with a refusal): the client
    /// has too many asked-for reads waiting, or the reads are closed.
    func submit(_ read: Read) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Read?, Never>?) in
            guard !state.closed else { return (false, nil) }
            let waiting = state.queues[read.peer] ?? []
            if read.asked, waiting.count(where: \.asked) >= maximumAskedPerClient { return (false, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (true, waiter)
            }
            if waiting.isEmpty { state.turns.append(read.peer) }
            state.queues[read.peer, default: []].append(read)
            return (true, nil)
        }
        waiter?.resume(returning: read)
        return accepted
    }

    /// No more reads are taken, and those still waiting are answered with a refusal; `run` returns once the
    /// running ones are done.
    func close() {
        let (waiter, left) = state.withLock { state -> (CheckedContinuation<Read?, Never>?, [Read]) in
            state.closed = true
            let left = state.turns.flatMap { state.queues[$0] ?? [] }
            state.queues = [:]
            state.turns = []
            defer { state.waiter = nil }
            return (state.waiter, left)
        }
        waiter?.resume(returning: nil)
        for read in left { refuse(read) }
    }

    /// Carries out reads, `concurrency` at a time, until closed (or cancelled).
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
        while let read = state.withLock({ Self.take(&$0) }) {
            await perform(read)
        }
    }

    /// The next read, the clients taking turns.
    private static func take(_ state: inout State) -> Read? {
        guard let peer = state.turns.first, var waiting = state.queues[peer], !waiting.isEmpty else { return nil }
        let read = waiting.removeFirst()
        state.turns.removeFirst()
        if waiting.isEmpty {
            state.queues[peer] = nil
        } else {
            state.queues[peer] = waiting
            state.turns.append(peer)
        }
        return read
    }

    private func next() async -> Read? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Read?? in
                    if state.closed || Task.isCancelled { return .some(nil) }
                    if let read = Self.take(&state) { return .some(read) }
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
        guard !sink.isAbandoned(read.hold) else { return }
        guard !refusing() else { return refuse(read) }
        do {
            let reply: ChatEvent =
                switch read.lookup {
                case .room(let room, let query, let below, let withTags):
                    .history(room: room, messages: try await store.history(room: room, query, below: below, withTags: withTags), ref: read.ref)
                case .conversation(let account, let nick, let query, let below, let withTags):
                    .history(
                        room: nick, messages: try await store.conversation(account: account, with: nick, query, below: below, withTags: withTags),
                        ref: read.ref
                    )
                case .targets(let rooms, let account, let after, let before, let count, let newest):
                    .historyTargets(
                        try await store.targets(rooms: rooms, account: account, after: after, before: before, count: count, newest: newest), ref: read.ref
                    )
                }
            sink.release(read.hold, with: reply)
        } catch {
            onFailure(error)
            let failure = ChatError(.historyUnavailable, "The history of \(read.lookup.name) cannot be read just now; ask again with /history.")
            sink.release(read.hold, with: .error(failure, ref: read.ref))
        }
    }

    private func refuse(_ read: Read) {
        let refusal = ChatError(.historyUnavailable, "The server is shutting down; the history of \(read.lookup.name) was not read.")
        sink.release(read.hold, with: .error(refusal, ref: read.ref))
    }
}
