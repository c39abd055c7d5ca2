import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// What the tasks of one connection share: its outbox, the renderer its session settled on, and its registered
/// session. The reader writes it; the shutdown handler and the registration timer read it.
final class ConnectionState: Sendable {
    private struct Shared {
        /// Plain text until the session says otherwise.
        var renderer: any Renderer = TextRenderer()
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
    private let shared = Mutex(Shared())
    /// Lines (and other frames) arrived so far, counted on the event loop: the IRC keep-alive watches it move.
    let framesHeard = Atomic<UInt64>(0)
    /// Flood-control tokens the last line costs beyond its own: one a target, a mode change, a channel, or a
    /// page of history. Only the reader task touches it.
    let extraCost = Atomic<Int>(0)

    /// The line being handled causes more work than one line's: the reader charges it before the next line.
    func charge(_ tokens: Int) {
        extraCost.add(max(0, tokens), ordering: .relaxed)
    }

    init(outbox: Outbox) {
        self.outbox = outbox
    }

    var session: SessionID? { shared.withLock { $0.session } }

    /// How the connection's events are rendered; a JSON client that was first greeted as text (it was slower
    /// than the greeting window) switches once, before registering.
    func settle(on renderer: any Renderer) {
        shared.withLock { $0.renderer = renderer }
    }

    var renderer: any Renderer { shared.withLock { $0.renderer } }

    /// A client handle for registering: this connection's outbox and renderer.
    func makeClient() -> Client {
        Client(renderer: renderer, outbox: outbox)
    }

    func registered(_ session: SessionID, nick: String?, as client: Client) {
        shared.withLock {
            $0.session = session
            $0.nick = nick
            $0.client = client
        }
    }

    var registeredNick: String? { shared.withLock { $0.nick } }

    /// Sends an event to this connection alone, as its renderer renders it.
    func send(_ event: ChatEvent) {
        if let frame = renderer.render(event, focused: true) { outbox.send(frame) }
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
