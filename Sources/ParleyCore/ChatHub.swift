import Foundation
import Synchronization

/// How the hub reaches clients. The server implements it with bounded per-connection queues; tests implement
/// it with arrays.
public protocol EventSink: Sendable {
    associatedtype Peer: Sendable

    /// Hands `event` to every recipient. Called while the hub holds its lock, so that every client sees events
    /// in the order the hub made them: it must neither block nor suspend, and must not call back into the hub.
    func deliver(_ event: ChatEvent, to recipients: [Recipient<Peer>])

    /// Ends a client's connection once what is queued for it has been sent.
    func close(_ peer: Peer, reason: LeaveReason)
}

/// The chat, safe to share: `ChatState` behind a lock, its effects carried out under the same lock.
///
/// A lock rather than an actor: every operation is short and never suspends, so callers run it on their own
/// task without a hop, and fan-out happens in the same critical section that assigned the message its id.
public final class ChatHub<Sink: EventSink>: Sendable {
    public typealias Peer = Sink.Peer

    private let state: Mutex<ChatState<Peer>>
    private let sink: Sink
    private let now: @Sendable () -> Date

    public init(serverName: String, sink: Sink, now: @escaping @Sendable () -> Date = Date.init) {
        self.state = Mutex(ChatState(serverName: serverName))
        self.sink = sink
        self.now = now
    }

    public var serverName: String { state.withLock { $0.serverName } }
    public var sessionCount: Int { state.withLock { $0.sessionCount } }

    public func register(nick: String, peer: Peer) throws(ChatError) -> SessionID {
        try state.withLock { (state) throws(ChatError) -> SessionID in
            let (id, effects) = try state.register(nick: nick, peer: peer)
            apply(effects)
            return id
        }
    }

    public func handle(_ request: Request, ref: String? = nil, from id: SessionID) {
        let now = now()
        state.withLock { apply($0.handle(request, ref: ref, from: id, now: now)) }
    }

    public func disconnect(_ id: SessionID, reason: LeaveReason) {
        state.withLock { apply($0.disconnect(id, reason: reason)) }
    }

    public func announce(_ text: String) {
        let now = now()
        state.withLock { apply($0.announce(text, now: now)) }
    }

    public func announce(_ text: String, in room: String) throws(ChatError) {
        let now = now()
        try state.withLock { (state) throws(ChatError) in apply(try state.announce(text, in: room, now: now)) }
    }

    public func kick(_ nick: String, reason: String?, by operator: String) throws(ChatError) {
        try state.withLock { (state) throws(ChatError) in apply(try state.kick(nick, reason: reason, by: `operator`)) }
    }

    public func roomSummaries() -> [RoomSummary] { state.withLock { $0.roomSummaries() } }

    public func nicks(in room: String?) throws(ChatError) -> [String] {
        try state.withLock { (state) throws(ChatError) in try state.nicks(in: room) }
    }

    private func apply(_ effects: [Effect<Peer>]) {
        for effect in effects {
            switch effect {
            case .deliver(let event, let recipients) where !recipients.isEmpty:
                sink.deliver(event, to: recipients)
            case .deliver:
                continue
            case .close(let peer, let reason):
                sink.close(peer, reason: reason)
            }
        }
    }
}
