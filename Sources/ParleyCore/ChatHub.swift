import Foundation
import Synchronization

/// How effects reach clients. The server implements it with bounded per-connection queues; tests implement
/// it with arrays.
public protocol EventSink: Sendable {
    associatedtype Peer: Sendable

    /// Hands `event` to every recipient. Called by the one `Publisher` task in hub order: it must neither
    /// block nor suspend.
    func deliver(_ event: ChatEvent, to recipients: [Recipient<Peer>])

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
}

extension EventSink {
    public func endOfBatch() {}
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
        var waiter: CheckedContinuation<[Effect<Peer>]?, Never>?
        var finished = false
        /// Set when the server starts to stop: past it, the publisher writes nothing more.
        var shutdownDeadline: ContinuousClock.Instant?
    }

    private let shared: Mutex<Shared>
    public let sink: Sink
    private let now: @Sendable () -> Date
    public let serverName: String

    public init(
        serverName: String, sink: Sink, firstMessageID: Int64 = 1, historyOnJoin: Int = 50, roomLimits: ChatState<Sink.Peer>.RoomLimits = .init(),
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.shared = Mutex(Shared(state: ChatState(serverName: serverName, firstMessageID: firstMessageID, historyOnJoin: historyOnJoin, roomLimits: roomLimits)))
        self.sink = sink
        self.now = now
        self.serverName = serverName
    }

    public var sessionCount: Int { shared.withLock { $0.state.sessionCount } }
    public var roomCount: Int { shared.withLock { $0.state.roomCount } }

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

    /// Admits a new user; `account` is the key of an account whose password the caller has verified.
    public func register(
        nick: String, peer: Peer, resume: [String: Int64] = [:], account: String? = nil, address: String = "",
        joiningGeneral: Bool = true
    ) throws(ChatError) -> SessionID {
        let now = now()
        return try mutate { (state) throws(ChatError) in
            try state.register(
                nick: nick, peer: peer, resume: resume, account: account, address: address, joiningGeneral: joiningGeneral, now: now
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

    public func setRoomPolicies(_ policies: [RoomPolicy]) { shared.withLock { $0.state.setRoomPolicies(policies) } }

    public func setAccounts(_ accounts: [Account]) { shared.withLock { $0.state.setAccounts(accounts) } }
    public func isRegistered(_ nick: String) -> Bool { shared.withLock { $0.state.isRegistered(nick) } }
    public func account(of id: SessionID) -> String? { shared.withLock { $0.state.account(of: id) } }
    public func nick(of id: SessionID) -> String? { shared.withLock { $0.state.nick(of: id) } }
    public func rooms(of id: SessionID) -> [String] { shared.withLock { $0.state.rooms(of: id) } }
    public func profile(of nick: String) -> Profile? { shared.withLock { $0.state.profile(of: nick) } }

    public func authenticate(_ id: SessionID, as account: Account) {
        let now = now()
        mutate { ((), $0.authenticate(id, as: account, now: now)) }
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

    /// Everything queued since the last call, waiting for at least one effect; nil once finished and drained.
    /// Cancellation ends the wait like `finish()` does.
    public func nextEffects() async -> [Effect<Peer>]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = shared.withLock { shared -> [Effect<Peer>]?? in
                    if !shared.pending.isEmpty {
                        defer { shared.pending = [] }
                        return .some(shared.pending)
                    }
                    if shared.finished || Task.isCancelled { return .some(nil) }
                    shared.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    /// Whatever is queued now, without waiting (for tests that drive a `Publisher` step by step).
    public func takeEffects() -> [Effect<Peer>] {
        shared.withLock { shared in
            defer { shared.pending = [] }
            return shared.pending
        }
    }

    /// No more waiting: once the queue is drained, `nextEffects` returns nil.
    public func finish() {
        let waiter = shared.withLock { shared in
            shared.finished = true
            defer { shared.waiter = nil }
            return shared.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Runs a change under the lock and queues its effects in the same critical section, so queue order is
    /// lock order.
    private func mutate<Result: Sendable, Failure: Error>(
        _ change: @Sendable (inout ChatState<Peer>) throws(Failure) -> (Result, [Effect<Peer>])
    ) throws(Failure) -> Result {
        let (result, waiter, batch) = try shared.withLock { (shared) throws(Failure) -> (Result, CheckedContinuation<[Effect<Peer>]?, Never>?, [Effect<Peer>]) in
            let (result, effects) = try change(&shared.state)
            guard !effects.isEmpty else { return (result, nil, []) }
            shared.pending.append(contentsOf: effects)
            guard let waiter = shared.waiter else { return (result, nil, []) }
            shared.waiter = nil
            defer { shared.pending = [] }
            return (result, waiter, shared.pending)
        }
        waiter?.resume(returning: batch)
        return result
    }
}
