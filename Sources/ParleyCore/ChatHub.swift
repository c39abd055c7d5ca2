import Foundation
import Synchronization

/// How effects reach clients. The server implements it with bounded per-connection queues; tests implement
/// it with arrays.
public protocol EventSink: Sendable {
    /// A client, as the server reaches it; hashable so that history reads can be queued per client.
    associatedtype Peer: Sendable & Hashable

    /// Hands `event` to every recipient. Called by the one `Publisher` task in hub order: it must neither
    /// block nor suspend.
    func deliver(_ event: ChatEvent, to recipients: Recipients<Peer>)

    /// Ends a client's connection once what is queued for it has been sent.
    func close(_ peer: Peer, reason: LeaveReason)

    /// The publisher has carried out a batch, or is about to wait in the middle of one: what was delivered may
    /// go out now. A sink may hold deliveries until then, so a connection sent many events in one batch gets
    /// them in one write.
    func endOfBatch()

    /// A place reserved in one peer's stream.
    associatedtype Hold: Sendable

    /// Reserves `peer`'s next place in its stream for a reply that is ready only later (a history read):
    /// everything delivered to `peer` meanwhile waits behind it. Must neither block nor suspend.
    func hold(_ peer: Peer) -> Hold

    /// Puts `event` in the place `hold` reserved and lets what waited behind it go. Called from any task.
    func release(_ hold: Hold, with event: ChatEvent)

    /// True when nobody will ever read what goes in that place (the connection is gone): the reply need not be
    /// made.
    func isAbandoned(_ hold: Hold) -> Bool
}

extension EventSink {
    public func endOfBatch() {}
    public func isAbandoned(_ hold: Hold) -> Bool { false }
}

/// The chat, safe to share: `ChatState` behind a lock, and the ordered queue of what its changes ask for.
///
/// A lock rather than an actor: every operation is short and never suspends, so callers run it on their own
/// task without a hop. The effects of each operation are appended, in the order the lock admitted them, to
/// one queue that the `Publisher` drains: it stores each batch's messages in one write, then delivers. So
/// nothing is acknowledged or delivered before it is stored, and every client sees events in hub order.
public final class ChatHub<Sink: EventSink>: Sendable {
    public typealias Peer = Sink.Peer

    private struct Shared: ~Copyable {
        var state: ChatState<Peer>
        var pending: [Effect<Peer>] = []
        /// The first message id given out since the last batch was handed out.
        var batchFirstID: Int64
        /// The highest id of the log the publisher has carried out (`logReached`): the next batch's ids start
        /// above it, so that the offset a batch moves by stays small and never negative (a provisional id is
        /// never above the one it becomes, and a resume point kept from it can only repeat, never skip).
        var logHead: Int64 = 0
        /// `wake()` came while the publisher was busy: its next wait returns at once.
        var woken = false
        /// On a node (`sharedLog`), the state when the last batch was handed out: the next batch's `stateBefore`.
        var stateAtHandOut: ChatState<Peer>?
        var waiter: CheckedContinuation<EffectBatch<Peer>?, Never>?
        var finished = false
        /// Set when the server starts to stop: past it, the publisher writes nothing more.
        var shutdownDeadline: ContinuousClock.Instant?
        /// Progress through the queue, counted in changes that queued effects: how many were queued, handed to
        /// the publisher, and carried out by it (it asks for the next batch only once the last is done).
        var queued: UInt64 = 0
        var handedOut: UInt64 = 0
        var carriedOut: UInt64 = 0
        /// Readers waiting for the publisher to reach a position (`carriedOut(through:)`).
        var progressWaiters: [Int: (position: UInt64, continuation: CheckedContinuation<Void, Never>)] = [:]
        var nextWaiterID = 0
        /// The publisher has drained the queue for good: nobody waits for it any more.
        var drained = false

        /// What is queued, as the next batch, with the ids given out for it; the ids of the next start above
        /// what the publisher has carried out.
        mutating func takeBatch() -> EffectBatch<Peer> {
            defer { (pending, woken) = ([], false) }
            let batch = EffectBatch(
                effects: pending, ids: batchFirstID..<state.nextMessageID, woken: woken, logHead: logHead, stateBefore: stateAtHandOut
            )
            state.skipMessageIDs(through: logHead)
            batchFirstID = state.nextMessageID
            // A copy that shares the state's storage until either changes: made only on a node, where every batch
            // then pays for one copy of what the next changes.
            if stateAtHandOut != nil { stateAtHandOut = state }
            return batch
        }

        /// Everything queued goes to the publisher; what it had before is done. Returns the readers that
        /// may go on.
        mutating func handOut() -> [CheckedContinuation<Void, Never>] {
            carriedOut = handedOut
            handedOut = queued
            let reached = carriedOut
            return releaseWaiters { $0 <= reached }
        }

        mutating func releaseWaiters(_ reached: (UInt64) -> Bool) -> [CheckedContinuation<Void, Never>] {
            guard !progressWaiters.isEmpty else { return [] }
            let ready = progressWaiters.filter { reached($0.value.position) }
            for id in ready.keys { progressWaiters[id] = nil }
            return ready.values.map(\.continuation)
        }
    }

    private let shared: Mutex<Shared>
    /// `queued` and `carriedOut`, mirrored (written under the lock) so that readers, which ask after every line,
    /// need not take it.
    private let queuedMirror = Atomic<UInt64>(0)
    private let carriedOutMirror = Atomic<UInt64>(0)
    public let sink: Sink
    private let now: @Sendable () -> Date
    public let serverName: String

    /// `sharedLog`: the store is shared with other nodes, whose messages the publisher delivers before each batch
    /// to those who were members before it (`EffectBatch.stateBefore`).
    public init(
        serverName: String, sink: Sink, firstMessageID: Int64 = 1, historyOnJoin: Int = 50, roomLimits: ChatState<Sink.Peer>.RoomLimits = .init(),
        sharedLog: Bool = false, nodeName: String? = nil, now: @escaping @Sendable () -> Date = Date.init
    ) {
        var state = ChatState<Peer>(serverName: serverName, firstMessageID: firstMessageID, historyOnJoin: historyOnJoin, roomLimits: roomLimits)
        state.replicating = sharedLog
        state.nodeName = nodeName
        self.shared = Mutex(Shared(state: state, batchFirstID: firstMessageID, logHead: firstMessageID - 1, stateAtHandOut: sharedLog ? state : nil))
        self.sink = sink
        self.now = now
        self.serverName = serverName
    }

    public var sessionCount: Int { shared.withLock { $0.state.sessionCount } }
    public var roomCount: Int { shared.withLock { $0.state.roomCount } }
    public var mostOnline: Int { shared.withLock { $0.state.mostOnline } }

    /// The most online at once since the last call, and how many are online now; starts a new count.
    public func takePeak() -> (peak: Int, now: Int) {
        shared.withLock { shared in
            defer { shared.state.resetPeak() }
            return (shared.state.peakSessionCount, shared.state.sessionCount)
        }
    }
    public func isOperator(_ id: SessionID) -> Bool { shared.withLock { $0.state.isOperator(id) } }


    public func handle(_ request: Request, ref: String? = nil, from id: SessionID) {
        let now = now()
        mutate { ((), $0.handle(request, ref: ref, from: id, now: now)) }
    }

    public func disconnect(_ id: SessionID, reason: LeaveReason, closing: Bool = false) {
        mutate { ((), $0.disconnect(id, reason: reason, closing: closing)) }
    }

    public func announce(_ text: String) {
        let now = now()
        mutate { ((), $0.announce(text, now: now)) }
    }

    public func announce(_ text: String, in room: String) throws(ChatError) {
        let now = now()
        try mutate { (state) throws(ChatError) in ((), try state.announce(text, in: room, now: now)) }
    }

    public func kick(_ nick: String, reason: String?, by operator: Actor) throws(ChatError) {
        try mutate { (state) throws(ChatError) in ((), try state.kick(nick, reason: reason, by: `operator`)) }
    }

    public func roomSummaries() -> [RoomSummary] { shared.withLock { $0.state.roomSummaries() } }
    public func roomNeedsKey(_ room: String) -> Bool { shared.withLock { $0.state.roomNeedsKey(room) } }

    /// Admits a new user; `account` is the name of an account whose password the caller has verified.
    public func register(
        nick: String, peer: Peer, resume: [String: Int64] = [:], account: String? = nil, address: String = "",
        joiningGeneral: Bool = true, identity: Identity = Identity()
    ) throws(ChatError) -> SessionID {
        let now = now()
        return try mutate { (state) throws(ChatError) in
            try state.register(
                nick: nick, peer: peer, resume: resume, account: account, address: address, joiningGeneral: joiningGeneral, identity: identity, now: now
            )
        }
    }

    /// A moderation action from the server console; returns what only the console should see.
    public func moderate(_ action: Moderation, in room: String) throws(ChatError) -> ChatEvent? {
        let now = now()
        return try mutate { (state) throws(ChatError) in try state.moderate(action, in: room, by: .console, now: now) }
    }

    /// Shows (`text` nil) or sets a room's topic from the server console; returns what only the console sees.
    public func topic(_ text: String?, in room: String) throws(ChatError) -> ChatEvent? {
        let now = now()
        return try mutate { (state) throws(ChatError) in try state.topic(text, in: room, now: now) }
    }

    /// Lifts the bans and mutes that have run out; the server calls it every second.
    public func expireRestrictions() {
        let now = now()
        mutate { ((), $0.expireRestrictions(now: now)) }
    }

    public func setRoomPolicies(_ policies: [RoomPolicy]) {
        shared.withLock { shared in
            shared.state.setRoomPolicies(policies)
            // The copy the next batch starts from, on a node, knows them too.
            shared.stateAtHandOut?.setRoomPolicies(policies)
        }
    }

    public func setAccounts(_ accounts: [Account]) {
        shared.withLock { shared in
            shared.state.setAccounts(accounts)
            shared.stateAtHandOut?.setAccounts(accounts)
        }
    }
    /// The message of the day: its lines, shown to each client that registers from now on.
    public var motd: [String] {
        get { shared.withLock { $0.state.motd } }
        set { shared.withLock { $0.state.motd = newValue } }
    }
    public func isRegistered(_ nick: String) -> Bool { shared.withLock { $0.state.isRegistered(nick) } }
    public func account(of id: SessionID) -> String? { shared.withLock { $0.state.account(of: id) } }
    /// The account's name as registered (`Alice`), where `account(of:)` gives its key (`alice`).
    public func accountName(of id: SessionID) -> String? { shared.withLock { $0.state.accountName(of: id) } }
    public func nick(of id: SessionID) -> String? { shared.withLock { $0.state.nick(of: id) } }
    public func rooms(of id: SessionID) -> [String] { shared.withLock { $0.state.rooms(of: id) } }
    public func profile(of nick: String) -> Profile? { shared.withLock { $0.state.profile(of: nick) } }

    public func authenticate(_ id: SessionID, as account: Account, takingNick: Bool = true) {
        let now = now()
        mutate { ((), $0.authenticate(id, as: account, takingNick: takingNick, now: now)) }
    }

    /// Applies what other nodes committed to the log and this node has not applied: presence changes
    /// (`ChatState.apply`) and topics, to the chat as it is and to the copy the next batch will take as its state
    /// before (`stateAtHandOut`). The publisher has told those who were here before the batch it carries out
    /// (`toldAlready`, from its own copy, in log order with the messages around them). Returned: what those who
    /// came with that batch are to be told, for the publisher to deliver after the batch's own news. Queued behind
    /// everything queued since: what is to be told to whoever came after it, whose welcome or join is still on its
    /// way, and to the other nodes (a user here renamed after losing a race for a nick).
    public func apply(
        others entries: [PresenceEntry], topics: [ChatMessage] = [], toldAlready: [(ChatEvent, Recipients<Peer>)] = []
    ) -> [(ChatEvent, Recipients<Peer>)] {
        mutateShared { shared in
            func changes(_ state: inout ChatState<Peer>) -> [Effect<Peer>] {
                entries.flatMap { state.apply($0) } + topics.flatMap { state.applyTopic($0) }
            }
            var told = toldAlready
            var afterBatch: [(ChatEvent, Recipients<Peer>)] = []
            if shared.stateAtHandOut != nil {
                for case .deliver(let event, let recipients) in changes(&shared.stateAtHandOut!) {
                    let rest = Self.leavingOut(told, from: event, recipients)
                    if !rest.isEmpty { afterBatch.append((event, rest)) }
                }
                told += afterBatch
            }
            var queued: [Effect<Peer>] = []
            for effect in changes(&shared.state) {
                switch effect {
                case .deliver(let event, let recipients):
                    let rest = Self.leavingOut(told, from: event, recipients)
                    if !rest.isEmpty { queued.append(.deliver(event, to: rest)) }
                case .replicate: queued.append(effect)
                // Applying another node's change stores nothing here and closes nothing: its node did what it needed.
                case .record, .replay, .lookUp, .close, .persist: continue
                }
            }
            return (afterBatch, queued)
        }
    }

    /// `recipients` but those `told` the same event already.
    private static func leavingOut(_ told: [(ChatEvent, Recipients<Peer>)], from event: ChatEvent, _ recipients: Recipients<Peer>) -> Recipients<Peer> {
        let peers = Set(told.filter { $0.0 == event }.flatMap { $0.1.map(\.peer) })
        return peers.isEmpty ? recipients : Recipients(recipients.filter { !peers.contains($0.peer) })
    }

    /// The other nodes' sessions brought into line with the database's present (`ChatState.resync`); those here
    /// are told of the differences, queued.
    public func resync(with present: [PresenceEntry]) {
        mutateShared { shared in
            _ = shared.stateAtHandOut?.resync(with: present)
            // What is told here, and a rename of a user here after a race for a nick, for the others.
            let kept = shared.state.resync(with: present).filter {
                switch $0 {
                case .deliver, .replicate: true
                default: false
                }
            }
            return ((), kept)
        }
    }

    /// Every session of this node told again to the others (`ChatState.presenceSnapshot`): after the database was
    /// unreachable, what changed meanwhile was not.
    public func tellPresenceAgain() {
        mutate { ((), $0.presenceSnapshot()) }
    }

    /// Tells one session something, in order with everything else it receives.
    public func tell(_ id: SessionID, _ event: ChatEvent) {
        mutate { state in ((), state.peer(of: id).map { [.deliver(event, to: [Recipient(peer: $0, focused: true)])] } ?? []) }
    }

    public func nicks(in room: String?) throws(ChatError) -> [String] {
        try shared.withLock { (shared) throws(ChatError) in try shared.state.nicks(in: room) }
    }

    // MARK: - Shutting down

    /// The server is stopping: whatever is still queued after `grace` is answered rather than stored, so that
    /// every sender hears back before its connection closes.
    public func beginShutdown(grace: Duration) {
        shared.withLock { $0.shutdownDeadline = $0.shutdownDeadline ?? .now + grace }
    }

    public var isPastShutdownDeadline: Bool {
        shared.withLock { $0.shutdownDeadline.map { $0 <= .now } ?? false }
    }

    /// Tells a registered user the server is stopping and closes its connection, after everything already
    /// queued for it (the answers to what it sent). Nobody is told of its leaving: everyone is leaving.
    public func shutDown(_ id: SessionID, goodbye: ChatEvent) {
        mutate { state in
            guard let peer = state.peer(of: id) else { return ((), []) }
            return ((), [.deliver(goodbye, to: [Recipient(peer: peer, focused: true)])] + state.disconnect(id, reason: .serverShutdown, closing: true))
        }
    }

    // MARK: - The queue the publisher drains

    /// Everything queued since the last call, waiting for at least one effect (or a `wake()`); nil once finished
    /// and drained. Calling it says the batch before is carried out. Cancellation ends the wait like `finish()`
    /// does.
    public func nextEffects() async -> EffectBatch<Peer>? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let (ready, readers) = shared.withLock { shared -> (EffectBatch<Peer>??, [CheckedContinuation<Void, Never>]) in
                    // What was handed out before is done, even if nothing new is queued.
                    var readers = shared.handOut()
                    carriedOutMirror.store(shared.carriedOut, ordering: .releasing)
                    if !shared.pending.isEmpty || shared.woken {
                        return (.some(shared.takeBatch()), readers)
                    }
                    if shared.finished || Task.isCancelled {
                        shared.drained = true
                        readers += shared.releaseWaiters { _ in true }
                        return (.some(nil), readers)
                    }
                    shared.waiter = continuation
                    return (.none, readers)
                }
                for reader in readers { reader.resume() }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    /// Whatever is queued now, without waiting (for tests that drive a `Publisher` step by step).
    public func takeEffects() -> EffectBatch<Peer> {
        let (batch, readers) = shared.withLock { shared in
            let readers = shared.handOut()
            carriedOutMirror.store(shared.carriedOut, ordering: .releasing)
            return (shared.takeBatch(), readers)
        }
        for reader in readers { reader.resume() }
        return batch
    }

    /// The publisher has carried out the log up to `head` (its own batches and other nodes' entries): ids given
    /// out from now on start above it, or, if some were given out since the last batch, from the next batch on.
    public func logReached(_ head: Int64) {
        shared.withLock { shared in
            shared.logHead = max(shared.logHead, head)
            // Nothing queued since the last batch (no id given out, no bound taken from the counter): the next can
            // start above at once.
            guard shared.pending.isEmpty, shared.state.nextMessageID == shared.batchFirstID else { return }
            shared.state.skipMessageIDs(through: shared.logHead)
            shared.batchFirstID = shared.state.nextMessageID
        }
    }

    /// Makes a waiting publisher run once with whatever is queued, even nothing: another node has committed
    /// entries to the log, and the publisher reads and delivers them (`MessageStore.catchUp`).
    public func wake() {
        let (waiter, batch) = shared.withLock { shared -> (CheckedContinuation<EffectBatch<Peer>?, Never>?, EffectBatch<Peer>) in
            shared.woken = true
            guard let waiter = shared.waiter else { return (nil, EffectBatch(effects: [], ids: 0..<0)) }
            shared.waiter = nil
            shared.handedOut = shared.queued
            return (waiter, shared.takeBatch())
        }
        waiter?.resume(returning: batch)
    }

    // MARK: - Keeping each reader within reach of the publisher

    /// Where the queue ends now. A reader notes it after handling a line: once the publisher has carried out
    /// that far, the line's effects are done.
    public var queuePosition: UInt64 { queuedMirror.load(ordering: .acquiring) }

    /// Waits until the publisher has carried out everything queued up to `position`, or has stopped for good.
    ///
    /// Why: a change is queued in a moment, but carrying it out (a durable write, deliveries) takes longer. A
    /// reader that went on reading regardless could queue work without bound, and everyone else's messages
    /// would wait behind it; so each reader keeps at most a few lines ahead of the publisher (the server's
    /// `ProgressWindow`), and a client that sends faster than its lines are carried out waits in its own
    /// socket, not in everyone's queue. Cancellation ends the wait.
    public func carriedOut(through position: UInt64) async {
        guard carriedOutMirror.load(ordering: .acquiring) < position else { return }
        let id: Int? = shared.withLock { shared in
            guard shared.carriedOut < position, !shared.drained else { return nil }
            defer { shared.nextWaiterID += 1 }
            return shared.nextWaiterID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let waiting = shared.withLock { shared in
                    guard shared.carriedOut < position, !shared.drained, !Task.isCancelled else { return false }
                    shared.progressWaiters[id] = (position, continuation)
                    return true
                }
                if !waiting { continuation.resume() }
            }
        } onCancel: {
            shared.withLock { $0.progressWaiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    /// No more waiting: once the queue is drained, `nextEffects` returns nil.
    public func finish() {
        let (waiter, readers) = shared.withLock { shared -> (CheckedContinuation<EffectBatch<Peer>?, Never>?, [CheckedContinuation<Void, Never>]) in
            shared.finished = true
            defer { shared.waiter = nil }
            // A waiting publisher has nothing left: it is done for good, and so is every wait for it.
            guard shared.waiter != nil else { return (nil, []) }
            shared.drained = true
            return (shared.waiter, shared.releaseWaiters { _ in true })
        }
        for reader in readers { reader.resume() }
        waiter?.resume(returning: nil)
    }

    /// Runs a change under the lock and queues its effects in the same critical section, so queue order is
    /// lock order.
    private func mutate<Result: Sendable, Failure: Error>(
        _ change: @Sendable (inout ChatState<Peer>) throws(Failure) -> (Result, [Effect<Peer>])
    ) throws(Failure) -> Result {
        try mutateShared { (shared) throws(Failure) in try change(&shared.state) }
    }

    /// `mutate`, with everything the lock holds.
    private func mutateShared<Result: Sendable, Failure: Error>(
        _ change: (inout Shared) throws(Failure) -> (Result, [Effect<Peer>])
    ) throws(Failure) -> Result {
        let (result, waiter, batch) = try shared.withLock {
            (shared) throws(Failure) -> (Result, CheckedContinuation<EffectBatch<Peer>?, Never>?, EffectBatch<Peer>?) in
            let (result, effects) = try change(&shared)
            guard !effects.isEmpty else { return (result, nil, nil) }
            shared.pending.append(contentsOf: effects)
            shared.queued += 1
            queuedMirror.store(shared.queued, ordering: .releasing)
            guard let waiter = shared.waiter else { return (result, nil, nil) }
            shared.waiter = nil
            // The publisher finished its last batch when it began to wait (`nextEffects` counted it).
            shared.handedOut = shared.queued
            return (result, waiter, shared.takeBatch())
        }
        if let waiter, let batch { waiter.resume(returning: batch) }
        return result
    }
}
