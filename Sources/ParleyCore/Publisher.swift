import Synchronization

/// Carries out the hub's effects in order, one batch at a time: first every message of the batch is stored
/// in one write (group commit) and every room change of the batch in another, then deliveries, replays and
/// closes follow in hub order. A message whose write failed is neither acknowledged nor delivered; its sender
/// gets `not_stored` instead. A room change is stored before anything in its batch announces it.
///
/// Only those two writes per batch happen on the ordered path, so what one user asks for costs everyone at
/// most one batch's writes. History replays, which can be long, are read off the path (`HistoryReads`): the
/// requester's place in its stream is held for the reply, and everyone else's deliveries go on.
///
/// When the server stops, the hub's shutdown deadline bounds what is left: past it nothing more is written,
/// and every message still queued is answered `not_stored`, so no sender is left without an answer.
public struct Publisher<Sink: EventSink>: Sendable {
    public let hub: ChatHub<Sink>
    public let store: any MessageStore
    public let rooms: any RoomStore
    /// Called when a write fails (for the log); the chat goes on.
    let onStoreFailure: @Sendable (any Error) -> Void
    let reads: HistoryReads<Sink>
    /// A batch's presence changes could not be written, so other nodes did not learn them: once a write works
    /// again, every session of this node is told anew (`ChatHub.tellPresenceAgain`).
    private let presenceLost = Flag()

    /// History reads run at once beside the writes as many as the store serves (`concurrentReads`).
    public init(
        hub: ChatHub<Sink>, store: any MessageStore, rooms: any RoomStore = NoStore(),
        onStoreFailure: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        self.hub = hub
        self.store = store
        self.rooms = rooms
        self.onStoreFailure = onStoreFailure
        self.reads = HistoryReads(
            store: store, sink: hub.sink, concurrency: store.concurrentReads, refusing: { [hub] in hub.isPastShutdownDeadline }, onFailure: onStoreFailure
        )
    }

    /// Runs until the hub is finished and its queue drained, and every history read it started is answered.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await reads.run() }
            while let batch = await hub.nextEffects() {
                await publish(batch)
            }
            reads.close()
        }
    }

    /// The history reads `publish` queued, carried out now (for tests that drive a publisher without `run`).
    public func settle() async {
        await reads.performQueued()
    }

    /// Stores the batch's messages and room changes, then carries out its effects in order: after what other
    /// nodes committed to the log before it, with the ids it was given there.
    public func publish(_ batch: EffectBatch<Sink.Peer>) async {
        let refusing = hub.isPastShutdownDeadline
        let sink = hub.sink
        // Other nodes' entries, earlier in the log than the batch, go to those who were here before it, in log
        // order (`OthersRelay`). Woken by another node: what it committed goes out now, before this batch's own
        // commit (which would otherwise hold it up), and is read outside the log's lock, however much there is.
        // What the commit reads goes out as soon as it is read, while the commit is flushed: the store hands it over
        // (`whenRead`) and goes on with its commit; this task delivers it meanwhile. Handed over after the commit
        // returned (a transaction abandoned at its deadline), it is refused, and stays unread.
        let relay = OthersRelay(before: batch.stateBefore, hub: hub)
        if batch.woken && !refusing { relay.deliver(await catchUp()) }
        let (commit, notStored): (LogCommit, unstored: Set<Int64>)
        if batch.stateBefore == nil {
            // One server: no other node's entries can be read, so no second task is started to wait for them
            // (each task and stream is another thread wake-up in a batch's path). A hub hands out `stateBefore`
            // exactly when its store shares a log (`ChatHub(sharedLog:)`, set from `ChatStorage.sharesLog`).
            (commit, notStored) = await storeMessages(of: batch, refusing: refusing, handingOver: nil)
        } else {
            let (reads, handOver) = AsyncStream.makeStream(of: LogCommit.self)
            async let stored = storeMessages(of: batch, refusing: refusing, handingOver: handOver)
            for await read in reads { relay.deliver(read) }
            (commit, notStored) = await stored
        }
        let roomsStored = await storeRoomChanges(of: batch.effects, refusing: refusing)
        let othersLast = relay.lastDelivered
        // `notStored` holds provisional ids: moved by the same offset as the effects.
        let unstored = commit.offset == 0 ? notStored : Set(notStored.map { $0 + commit.offset })
        let floor = othersLast.map { max($0, batch.logHead) + 1 } ?? batch.logHead + 1
        let effects = commit.offset == 0 && othersLast == nil ? batch.effects : batch.effects.map { $0.shiftingIDs(by: commit.offset, floor: floor) }
        for effect in effects {
            switch effect {
            case .record(let message, let sender?, let ref) where unstored.contains(message.id):
                let text = refusing
                    ? "The server is shutting down and did not store your message, so it was not sent."
                    : "The server could not store your message, so it was not sent. Try again later."
                sink.deliver(.error(ChatError(.notStored, text), ref: ref), to: [Recipient(peer: sender, focused: true)])
            case .record:
                continue
            case .deliver(.message(let message), _) where unstored.contains(message.id),
                .deliver(.announcement(let message, _), _) where unstored.contains(message.id),
                .deliver(.ack(_, let message), _) where unstored.contains(message.id):
                continue
            case .deliver(_, let recipients) where recipients.isEmpty:
                continue
            case .deliver(let event, let recipients):
                sink.deliver(event, to: recipients)
            case .replay(let peer, let room, let query, let below, let ref, let asked, let withTags):
                read(.room(room, query, below: below, withTags: withTags), for: peer, ref: ref, asked: asked, refusing: refusing)
            case .lookUp(let peer, let lookup, let ref):
                read(lookup, for: peer, ref: ref, asked: true, refusing: refusing)
            case .close(let peer, let reason):
                sink.close(peer, reason: reason)
            case .persist(_, _, let actor?) where !roomsStored:
                // The change holds in the running server; only a restart would lose it, so say so.
                let failure = ChatError(.notStored, "The server could not store that change; it holds until the server restarts.")
                sink.deliver(.error(failure, ref: nil), to: [Recipient(peer: actor, focused: true)])
            case .persist, .replicate:
                continue
            }
        }
        // Other nodes' news for those who came with this batch, after their own.
        for (event, recipients) in relay.takeLateNews() { sink.deliver(event, to: recipients) }
        sink.endOfBatch()
        // Where the log now is, for the hub's next ids; a batch numbered as it was given changes nothing there (the
        // single server's case: no lock taken).
        guard commit.offset != 0 || othersLast != nil else { return }
        hub.logReached(max(othersLast ?? .min, batch.ids.isEmpty || !unstored.isEmpty ? .min : batch.ids.upperBound - 1 + commit.offset))
    }

    /// What other nodes committed since this node last read (`MessageStore.catchUp`); nothing when that fails (the
    /// next wake-up, or the next commit, reads it).
    private func catchUp() async -> LogCommit {
        do {
            return try await store.catchUp()
        } catch {
            onStoreFailure(error)
            return .asNumbered
        }
    }

    /// Reserves `peer`'s place for a history read and queues it (`HistoryReads`); refused, the place gets an error.
    private func read(_ lookup: HistoryLookup, for peer: Sink.Peer, ref: String?, asked: Bool, refusing: Bool) {
        let sink = hub.sink
        let hold = sink.hold(peer)
        let read = HistoryReads<Sink>.Read(peer: peer, hold: hold, lookup: lookup, ref: ref, asked: asked)
        if refusing || !reads.submit(read) {
            let busy = ChatError(.historyUnavailable, "You have asked for history faster than it can be read; ask again in a moment.")
            sink.release(hold, with: ChatEvent.error(busy, ref: ref))
        }
    }

    /// Where the batch landed in the log, and the (provisional) ids of its messages that were not stored: all of
    /// them when the write failed, or when the server is past its shutdown deadline. A batch that gave out no
    /// ids writes nothing. What the commit reads of other nodes' entries is yielded to `reads` (nil on one
    /// server, which has none to read).
    private func storeMessages(
        of batch: EffectBatch<Sink.Peer>, refusing: Bool, handingOver reads: AsyncStream<LogCommit>.Continuation?
    ) async -> (LogCommit, unstored: Set<Int64>) {
        defer { reads?.finish() }
        let whenRead: @Sendable (LogCommit) -> Bool = { read in
            if case .enqueued = reads?.yield(read) { return true }
            return false
        }
        var messages: [ChatMessage] = []
        var presence: [PresenceEntry] = []
        for effect in batch.effects {
            switch effect {
            case .record(let message, _, _): messages.append(message)
            case .replicate(let entry): presence.append(entry)
            default: continue
            }
        }
        guard !refusing else { return (.asNumbered, Set(messages.map(\.id))) }
        do {
            guard !batch.ids.isEmpty else { return (.asNumbered, []) }
            let commit = try await store.commit(messages, presence: presence, ids: batch.ids, whenRead: whenRead)
            // Back from a failure that lost presence changes: every session here is told again.
            if presenceLost.take() { hub.tellPresenceAgain() }
            return (commit, [])
        } catch {
            onStoreFailure(error)
            if !presence.isEmpty { presenceLost.raise() }
            guard batch.stateBefore != nil else { return (.asNumbered, Set(messages.map(\.id))) }
            // On a node, the batch's ids were not reserved: another node may give them out. What is not kept is
            // not sent either (live-only tags, a typing indicator), so no client sees an id twice.
            let unkept = batch.effects.compactMap { effect -> Int64? in
                if case .deliver(.message(let message), _) = effect, !message.isKept { return message.id }
                return nil
            }
            return (.asNumbered, Set(messages.map(\.id) + unkept))
        }
    }

    /// Every room change and audit entry of the batch in one write; false when it failed (or was refused).
    private func storeRoomChanges(of batch: [Effect<Sink.Peer>], refusing: Bool) async -> Bool {
        var changes: [RoomChange] = []
        var audits: [AuditEntry] = []
        for case .persist(let more, let audit, _) in batch {
            changes += more
            if let audit { audits.append(audit) }
        }
        guard !changes.isEmpty || !audits.isEmpty else { return true }
        guard !refusing else { return false }
        do {
            try await rooms.apply(changes, audits: audits)
            return true
        } catch {
            onStoreFailure(error)
            return false
        }
    }
}

/// A flag that copies of a publisher share.
private final class Flag: Sendable {
    private let raised = Atomic(false)
    func raise() { raised.store(true, ordering: .relaxed) }
    /// Whether it was raised, lowering it.
    func take() -> Bool { raised.exchange(false, ordering: .relaxed) }
}

/// Delivers what other nodes wrote to the log before a batch, in log order, to those who were here before it:
/// the copy of the chat as it was then (`before`) takes each presence change and topic in turn, and says who is
/// told; the hub's chat takes them too, and tells whoever came since after their own news. A class, because the
/// store hands it what it read from inside its transaction (`MessageStore.commit(_:presence:ids:whenRead:)`).
final class OthersRelay<Sink: EventSink>: Sendable {
    private let state: Mutex<(before: ChatState<Sink.Peer>?, last: Int64?, late: [(ChatEvent, Recipients<Sink.Peer>)])>
    private let hub: ChatHub<Sink>

    init(before: ChatState<Sink.Peer>?, hub: ChatHub<Sink>) {
        self.state = Mutex((before, nil, []))
        self.hub = hub
    }

    /// The highest id delivered so far.
    var lastDelivered: Int64? { state.withLock { $0.last } }

    /// What those who came with the batch are to be told of what was delivered (`ChatHub.apply`), once their own
    /// news is out.
    func takeLateNews() -> [(ChatEvent, Recipients<Sink.Peer>)] {
        state.withLock { state in
            defer { state.late = [] }
            return state.late
        }
    }

    func deliver(_ read: LogCommit) {
        guard read.lastRead != nil else { return }
        let sink = hub.sink
        state.withLock { state in
            guard state.before != nil else { return }
            var (messages, entries) = (read.others[...], read.presence[...])
            while !messages.isEmpty || !entries.isEmpty {
                let changes: [Effect<Sink.Peer>]
                if let entry = entries.first, entry.id < messages.first?.id ?? .max {
                    entries.removeFirst()
                    changes = state.before!.apply(entry)
                    state.late += hub.apply(others: [entry], toldAlready: Self.deliveries(changes))
                } else {
                    let message = messages.removeFirst()
                    if message.kind == .topic {
                        changes = state.before!.applyTopic(message)
                        state.late += hub.apply(others: [], topics: [message], toldAlready: Self.deliveries(changes))
                    } else {
                        changes = state.before!.deliveries(ofOthers: [message])
                    }
                }
                for (event, recipients) in Self.deliveries(changes) where !recipients.isEmpty { sink.deliver(event, to: recipients) }
            }
            state.last = max(state.last ?? .min, read.lastRead!)
        }
    }

    /// The deliveries among `effects`.
    static func deliveries(_ effects: [Effect<Sink.Peer>]) -> [(ChatEvent, Recipients<Sink.Peer>)] {
        effects.compactMap { effect in
            guard case .deliver(let event, let recipients) = effect else { return nil }
            return (event, recipients)
        }
    }
}
