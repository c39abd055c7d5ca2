import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// What the tasks of one connection share: its outbox, the mode it settled on, and its registered session.
/// The reader writes it; the shutdown handler and the registration timer read it.
final class ConnectionState: Sendable {
    private struct Shared {
        var format: WireFormat?
        var session: SessionID?
        /// The nick it registered with, for the log (the session may be gone by the time the connection is).
        var nick: String?
        var client: Client?
        var shuttingDown = false
        var endReason: LeaveReason?
        /// The reader is handling a line (which may wait for a password check).
        var busy = false
        /// The goodbye, when shutdown came while the reader was busy: sent once its line is answered.
        var pendingGoodbye: (@Sendable () -> Void)?
    }

    let outbox: Outbox
    let fanout: Fanout
    /// For a connection to the IRC port: its nick and capabilities, shared with its `Client`.
    let irc: IRCPeer?
    private let shared = Mutex(Shared())
    /// Lines (and other frames) received so far: the IRC keep-alive watches it move.
    let framesHeard = Atomic<UInt64>(0)
    /// Flood-control tokens the last line costs beyond its own: one a target, a mode change, a channel, or a
    /// page of history. Only the reader task touches it.
    let extraCost = Atomic<Int>(0)

    /// The line being handled causes more work than one line's: the reader charges it before the next line.
    func charge(_ tokens: Int) {
        extraCost.add(max(0, tokens), ordering: .relaxed)
    }

    init(outbox: Outbox, fanout: Fanout, irc: IRCPeer? = nil) {
        self.outbox = outbox
        self.fanout = fanout
        self.irc = irc
    }

    var session: SessionID? { shared.withLock { $0.session } }

    /// The connection's format; a JSON client that was first greeted as text (it was slower than the greeting
    /// window) switches it once, before registering.
    func settle(on format: WireFormat) {
        shared.withLock { $0.format = format }
    }

    /// A client handle for registering; it shares this connection's outbox.
    func makeClient(format: WireFormat) -> Client {
        Client(format: format, outbox: outbox, irc: irc)
    }

    func registered(_ session: SessionID, nick: String?, as client: Client) {
        shared.withLock {
            $0.session = session
            $0.nick = nick
            $0.client = client
        }
    }

    var registeredNick: String? { shared.withLock { $0.nick } }

    /// Sends an event to this connection alone, in its format (plain text while the mode is undecided).
    func send(_ event: ChatEvent) {
        if let irc {
            if let frame = fanout.encode(event, for: irc) { outbox.send(frame) }
            return
        }
        let format = shared.withLock { $0.format } ?? .text
        if let frame = fanout.encode(event, format: format) { outbox.send(frame) }
    }

    /// Sends raw bytes (the greeting and nickname prompts of text mode).
    func send(_ frame: ByteBuffer) {
        outbox.send(frame)
    }

    /// Says goodbye and ends the outbox for `reason`; the writer drains it, then the connection closes.
    func end(with event: ChatEvent?, reason: LeaveReason, drainingFor deadline: Duration? = nil) {
        shared.withLock { $0.endReason = $0.endReason ?? reason }
        if let event { send(event) }
        outbox.finish(drainingFor: deadline)
    }

    /// The graceful-shutdown handler: every client is told before its connection closes, and gets `grace` to
    /// receive what is queued. A registered client's goodbye goes through the hub, behind the answers to all
    /// it sent (acks, or `not_stored` once the hub's shutdown deadline has passed), so nobody's message goes
    /// unanswered; the connection is closed after `grace` whatever happens.
    func shutDown(grace: Duration, hub: ChatHub<Fanout>) {
        outbox.close(after: grace)
        let goodbye: @Sendable () -> Void = { [self] in
            guard let session = self.session else {
                return self.end(with: .shutdown(reason: nil), reason: .serverShutdown, drainingFor: grace)
            }
            hub.shutDown(session, goodbye: .shutdown(reason: nil))
        }
        // A line being handled (a /register waiting for its hash) is answered first: the goodbye follows it.
        let now = shared.withLock { shared -> Bool in
            shared.shuttingDown = true
            guard shared.busy else { return true }
            shared.pendingGoodbye = goodbye
            return false
        }
        if now { goodbye() }
    }

    /// The reader starts on a line; false when the connection is ending and the line must be left unread.
    func beginLine() -> Bool {
        shared.withLock { shared in
            guard !shared.shuttingDown else { return false }
            shared.busy = true
            return true
        }
    }

    /// The reader is done with its line; a goodbye that waited for it goes now.
    func endLine() {
        let goodbye = shared.withLock { shared in
            shared.busy = false
            defer { shared.pendingGoodbye = nil }
            return shared.pendingGoodbye
        }
        goodbye?()
    }

    /// False once the connection is ending (quit, kick, timeout, shutdown, overflow): stop reading then.
    var isOpen: Bool { outbox.phase == .open && !shared.withLock { $0.shuttingDown } }

    /// Why the connection ended, for the room notices and the log.
    var finalReason: LeaveReason {
        let shared = shared.withLock { $0 }
        if let reason = shared.client?.reasonClosed { return reason }
        if outbox.phase == .overflowed { return .sendQueueFull }
        if shared.shuttingDown { return .serverShutdown }
        return shared.endReason ?? .connectionLost
    }
}
