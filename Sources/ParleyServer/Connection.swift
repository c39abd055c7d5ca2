import Logging
import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// What every connection of one listening port shares: one instance per port, referenced by each connection (a
/// copy in each would cost hundreds of bytes per connection, twice: the connection's and its reader's).
final class PortContext: Sendable {
    /// The listener's door, which builds each accepted channel (a connection's own door may be another).
    let door: any FrontDoor
    let hub: ChatHub<Fanout>
    let accounts: AccountDesk
    /// The limits a connection accepted now starts with (SIGHUP may change them for the next ones): read once per
    /// accepted connection, whose reader keeps what it needs of them for its whole life.
    let liveLimits: LiveLimits
    /// What every connection must give before it registers, when set.
    let serverPassword: String?
    let security: PortSecurity
    let metrics: ServerMetrics
    let logger: Logger
    /// Lines an operator acts on, rate-limited.
    let operatorLog: OperatorLog

    init(
        door: any FrontDoor, hub: ChatHub<Fanout>, accounts: AccountDesk, liveLimits: LiveLimits, serverPassword: String?, security: PortSecurity,
        metrics: ServerMetrics, logger: Logger, operatorLog: OperatorLog
    ) {
        (self.door, self.hub, self.accounts, self.liveLimits, self.serverPassword) = (door, hub, accounts, liveLimits, serverPassword)
        (self.security, self.metrics, self.logger, self.operatorLog) = (security, metrics, logger, operatorLog)
    }
}

/// One connection from accept to close, driven by its channel: it has no task of its own while it waits.
///
/// Frames from the door's framing land in a small inbox (`Driver`, at the end of the pipeline). The first frame
/// into an empty inbox starts a short-lived task that reads the inbox empty — flood control, the session, the
/// reader's window — and ends; the reader's state waits in the inbox until the next frame. A task that lives
/// as long as its connection keeps its async frames and stack slabs all that time (9 KiB of each idle
/// connection's 21 KiB, heaptrack measured), so connections that mostly wait cost what their state costs and
/// no more. While the inbox is full the socket is not read (the framing keeps at most one read of raw bytes).
///
/// The end is reached once from two sides: input is over (the client left or was sent away, or closed its
/// side) and the channel closed. Then, with no burst running, the session leaves the hub and the listener's
/// registry lets the connection go.
final class Connection: Sendable {
    /// Who holds the reader's state.
    private enum Reading {
        /// The inbox is empty; the state waits here for the next frame.
        case idle(Reader)
        /// A burst task has it and reads the inbox until it is empty.
        case busy
        /// Nothing more is read: the session asked to stop, the client closed its side, or the channel closed.
        case over
    }

    private struct Inbox {
        var frames = CircularBuffer<InboundFrame>(initialCapacity: 4)
        var reading: Reading
        /// The client closed its side (or the socket failed): what is queued is read, then input is over.
        var inputEnded = false
        var closed = false
        /// The pipeline asked to read while the inbox was full: the burst asks again once it has room.
        var readParked = false
        /// A flood-control wait in progress; the close cuts it short.
        var wait: Scheduled<Void>?
        var registrationDeadline: Scheduled<Void>?
        var keepAlive: RepeatedTask?
        var finished = false
    }

    /// The last connection id given (per process, over every door).
    private static let ids = Atomic<UInt64>(0)

    /// The inbox stops the socket at this many frames, and lets it go again at `resumeAt`.
    static let parkAt = 16
    static let resumeAt = 4

    let channel: any Channel
    let state: ConnectionState
    /// The door that serves it: the listener's, or one behind it (a WebSocket door of the HTTP port).
    let door: any FrontDoor
    let port: PortContext
    /// The timers `start` sets, as the limits were when the connection was accepted (the rest of the limits
    /// live in the reader and the outbox; a whole copy here would cost each connection 200 bytes).
    private let timeouts: (registration: Duration, ping: Duration)
    let logger: Logger
    private let inbox: Mutex<Inbox>
    /// Its door's name in the metrics (`-tls` added on a TLS port).
    private let metricsDoor: String
    private let onFinished: @Sendable (Connection) -> Void

    /// Call on the channel's event loop, once the door has built its pipeline; `onFinished` is called once,
    /// when the connection is over and its session has left.
    init(
        channel: any Channel, outbox: Outbox, door: any FrontDoor, port: PortContext, limits: ServerConfiguration.Limits,
        onFinished: @escaping @Sendable (Connection) -> Void
    ) {
        self.channel = channel
        self.door = door
        self.port = port
        self.timeouts = (limits.registrationTimeout, limits.pingInterval)
        self.onFinished = onFinished
        var logger = port.logger
        logger[metadataKey: "peer"] = "\(door.forwardedFor ?? channel.remoteAddress?.display ?? "?")"
        if door.name != port.door.name { logger[metadataKey: "over"] = "\(door.name)" }
        // Ties a connection's lines together in the log, before it has a session or a nick, and after.
        logger[metadataKey: "conn"] = "\(Self.ids.add(1, ordering: .relaxed).newValue)"
        self.metricsDoor = port.security.encrypted ? "\(door.name)-tls" : door.name
        port.metrics.connectionOpened(door: metricsDoor)
        self.logger = logger
        let state = ConnectionState(outbox: outbox)
        self.state = state
        let context = SessionContext(
            connection: state, hub: port.hub, accounts: port.accounts,
            address: door.forwardedFor ?? channel.remoteAddress?.ipAddress ?? "unknown", serverPassword: port.serverPassword,
            security: port.security, maximumLineBytes: limits.line.maximumLineBytes, logger: logger
        )
        self.inbox = Mutex(Inbox(reading: .idle(Reader(port: port, limits: limits, door: door, session: door.makeSession(context), connection: state))))
    }

    var hub: ChatHub<Fanout> { port.hub }

    /// The pipeline's end, where frames come in and `read` is held back while the inbox is full.
    final class Driver: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = InboundFrame
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let connection: Connection

        init(_ connection: Connection) {
            self.connection = connection
        }

        func handlerAdded(context: ChannelHandlerContext) {
            connection.start()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            connection.receive(unwrapInboundIn(data))
        }

        func read(context: ChannelHandlerContext) {
            if connection.mayRead() { context.read() }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .inputClosed = event as? ChannelEvent { connection.inputEnded() }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A reset, a TLS failure: nothing more can be read or written reliably.
            connection.logger.debug("connection failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            connection.closed()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            connection.closed()
        }
    }

    /// The timers that bound registration and, for a door that has one, silence. They run on the event loop:
    /// a task each would cost kilobytes per connection.
    private func start() {
        logger.info("connected")
        let loop = channel.eventLoop
        let state = state
        let registration = loop.scheduleTask(in: timeouts.registration.timeAmount) {
            guard state.session == nil else { return }
            let error = ChatError(.registrationTimeout, "No nickname was chosen in time. Goodbye.")
            state.end(with: .error(error, ref: nil), reason: .connectionLost)
        }
        let keepAlive = door.keepAlive(serverName: hub.serverName, interval: timeouts.ping).map {
            Self.start($0, for: state, on: loop)
        }
        inbox.withLock { inbox in
            inbox.registrationDeadline = registration
            inbox.keepAlive = keepAlive
        }
    }

    /// The door's keep-alive (IRC's): a client silent for a whole interval is pinged, and one silent for another
    /// interval after that is gone (a dead peer or a half-open connection), so its nick and rooms are freed.
    private static func start(_ keepAlive: KeepAlive, for connection: ConnectionState, on loop: any EventLoop) -> RepeatedTask {
        let interval = keepAlive.interval.timeAmount
        let silence = NIOLoopBoundBox.makeBoxSendingValue((heard: UInt64(0), pinged: false), eventLoop: loop)
        return loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            let now = connection.framesHeard.load(ordering: .relaxed)
            if !connection.isOpen {
                task.cancel()
            } else if now != silence.value.heard {
                silence.value = (now, false)
            } else if !silence.value.pinged {
                silence.value.pinged = true
                connection.send(keepAlive.ping)
            } else {
                task.cancel()
                connection.send(keepAlive.goodbye)
                connection.end(with: nil, reason: .pingTimeout)
            }
        }
    }

    /// A frame from the framing, on the event loop: queued, and a burst started when none is running.
    private func receive(_ frame: InboundFrame) {
        // Counted as the framing hands it over, not as the session reads it: a client is alive when its PONG
        // reaches the server, however long a loaded machine takes to run the task that reads it. (While the inbox
        // is full the socket is not read at all, so a client that far ahead is heard again once it drains.)
        state.framesHeard.add(1, ordering: .relaxed)
        let reader = inbox.withLock { inbox -> Reader? in
            switch inbox.reading {
            case .over:
                return nil
            case .busy:
                inbox.frames.append(frame)
                return nil
            case .idle(let reader):
                inbox.frames.append(frame)
                inbox.reading = .busy
                return reader
            }
        }
        // Unstructured on purpose, and awaited by nobody: a burst lives only while the inbox has frames, and no
        // second one starts while it runs (`.busy`), so lines are handled one at a time in order. Nothing cancels
        // it: it ends when the inbox is empty, and the close cuts a flood-control wait short (`pause`).
        if let reader { Task { await self.readBurst(reader) } }
    }

    /// Whether the socket may be read now: not while the inbox is full, nor once input is over.
    private func mayRead() -> Bool {
        inbox.withLock { inbox in
            switch inbox.reading {
            case .over:
                return false
            case .idle, .busy:
                guard inbox.frames.count >= Self.parkAt else { return true }
                inbox.readParked = true
                return false
            }
        }
    }

    /// Reads the inbox until it is empty, then leaves the reader's state there for the next burst.
    private func readBurst(_ reader: Reader) async {
        enum Next {
            case frame(InboundFrame, resumeReading: Bool)
            case idle
            case over
        }
        var reader = reader
        while true {
            let next = inbox.withLock { inbox -> Next in
                if !inbox.closed, let frame = inbox.frames.popFirst() {
                    let resume = inbox.readParked && inbox.frames.count <= Self.resumeAt
                    if resume { inbox.readParked = false }
                    return .frame(frame, resumeReading: resume)
                }
                if inbox.closed || inbox.inputEnded {
                    inbox.reading = .over
                    inbox.frames.removeAll()
                    return .over
                }
                inbox.reading = .idle(reader)
                // After a paste it would keep room for 32 frames while the connection waits.
                if inbox.frames.capacity > 8 { inbox.frames = CircularBuffer(initialCapacity: 4) }
                return .idle
            }
            switch next {
            case .idle:
                return
            case .over:
                return inputOver()
            case .frame(let frame, let resume):
                if resume { channel.read() }
                guard await reader.handle(frame, in: self) == .proceed else {
                    inbox.withLock { inbox in
                        inbox.reading = .over
                        inbox.frames.removeAll()
                    }
                    return inputOver()
                }
            }
        }
    }

    /// The client closed its side: what is queued is still read, then input is over.
    private func inputEnded() {
        let over = inbox.withLock { inbox -> Bool in
            inbox.inputEnded = true
            guard case .idle = inbox.reading else { return false }
            inbox.reading = .over
            return true
        }
        if over { offLoop { self.inputOver() } }
    }

    /// Runs hub work asked for on the event loop (a departure costs work for each member of the rooms left) on
    /// a task instead, when there is a session to remove: a crowd leaving at once must not hold up the I/O of
    /// everyone else on the loop.
    /// Awaited by nobody: `inputOver` and `finishIfDone` each act once, under the inbox's flags, whichever runs
    /// first, and the registry waits for `finishIfDone` at shutdown. Order with the connection's own replies is
    /// not at stake: input is over by then.
    private func offLoop(_ work: @escaping @Sendable () -> Void) {
        if state.session == nil { work() } else { Task { work() } }
    }

    /// Nothing more will be read. Replies to what the client sent may still be in the publisher's queue, so a
    /// registered session is closed by the hub, after them; the outbox's end bounds the drain.
    private func inputOver() {
        if let session = state.session {
            hub.disconnect(session, reason: state.finalReason, closing: true)
        } else {
            state.outbox.finish()
        }
        finishIfDone()
    }

    /// The channel closed: a flood-control wait ends at once, and with no burst running the connection is done.
    private func closed() {
        let (wait, first) = inbox.withLock { inbox -> (Scheduled<Void>?, Bool) in
            defer { inbox.closed = true }
            let first = !inbox.closed
            if case .idle = inbox.reading { inbox.reading = .over }
            defer { inbox.wait = nil }
            return (inbox.wait, first)
        }
        wait?.cancel()
        // Counted here, before the hub hears of the departure, so whoever sees it announced sees it counted.
        if first && state.outbox.phase == .overflowed {
            port.metrics.slowClientDropped()
            var logger = logger
            if let nick = state.registeredNick { logger[metadataKey: "nick"] = "\(nick)" }
            port.operatorLog.log(
                .slowClient, .notice, "client dropped: it read too slowly", metadata: ["send-queue-bytes": "\(state.outbox.limitBytes)"], to: logger
            )
        }
        offLoop { self.finishIfDone() }
    }

    /// Once closed, with input over: the session leaves the hub, the log says why, and the registry lets go.
    private func finishIfDone() {
        let timers = inbox.withLock { inbox -> (Scheduled<Void>?, RepeatedTask?)? in
            guard inbox.closed, case .over = inbox.reading, !inbox.finished else { return nil }
            inbox.finished = true
            defer { (inbox.registrationDeadline, inbox.keepAlive) = (nil, nil) }
            return (inbox.registrationDeadline, inbox.keepAlive)
        }
        guard let timers else { return }
        timers.0?.cancel()
        timers.1?.cancel()
        var logger = logger
        let reason = state.finalReason
        if let session = state.session {
            logger[metadataKey: "session"] = "\(session)"
            if let nick = state.registeredNick { logger[metadataKey: "nick"] = "\(nick)" }
            hub.disconnect(session, reason: reason)
        }
        logger.info("disconnected", metadata: ["reason": "\(reason.cause)"])
        port.metrics.connectionClosed(door: metricsDoor)
        onFinished(self)
    }

    /// The first time flood control holds this connection's lines back, for the operator (rate-limited).
    func logFloodControl() {
        var logger = logger
        if let nick = state.registeredNick { logger[metadataKey: "nick"] = "\(nick)" }
        port.operatorLog.log(.limitHit, .notice, "flood control: lines delayed (said once per connection)", to: logger)
    }

    /// Flood control's wait: false when the channel closed first (the wait is cut short; stop reading).
    func pause(for duration: Duration) async -> Bool {
        let scheduled = channel.eventLoop.scheduleTask(in: duration.timeAmount) {}
        let waiting = inbox.withLock { inbox -> Bool in
            guard !inbox.closed else { return false }
            inbox.wait = scheduled
            return true
        }
        guard waiting else {
            scheduled.cancel()
            return false
        }
        let waited: Void? = try? await scheduled.futureResult.get()
        inbox.withLock { $0.wait = nil }
        return waited != nil
    }
}

extension Connection: Hashable {
    static func == (lhs: Connection, rhs: Connection) -> Bool { lhs === rhs }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// What reads a connection's frames: its session, flood control and its window on the publisher. A value: only one
/// burst task has it at a time, handed from one to the next through the inbox (`Reading`).
private struct Reader: Sendable {
    let port: PortContext
    /// The door's framing bounds, which its line-length errors quote.
    let line: LineFramer.Limits
    var session: any LineSession
    var pacer: Pacer
    var window: ProgressWindow

    init(port: PortContext, limits: ServerConfiguration.Limits, door: any FrontDoor, session: any LineSession, connection: ConnectionState) {
        self.port = port
        self.session = session
        self.line = door.lineLimits(limits)
        self.pacer = Pacer(
            bucket: TokenBucket(limits.flood, now: .now),
            warning: limits.explainDelays ?? door.explainsDelays
                ? "You are sending too fast: after a burst of \(limits.flood.burst) lines, "
                    + "your lines are delayed to \(limits.flood.perSecond.formatted) per second." : nil
        )
        self.window = ProgressWindow(size: limits.linesAhead)
    }

    /// One frame, lines paced by flood control; `.stop` as soon as the connection is ending, so nothing is
    /// read after a goodbye.
    mutating func handle(_ frame: InboundFrame, in connection: Connection) async -> Flow {
        let state = connection.state
        guard state.isOpen else { return .stop }
        switch frame {
        case .greet, .json:
            session.signal(frame)
            return .proceed
        case .telnet(let answer):
            // Negotiation, not chat: no flood token, and at once (a telnet client may be waiting for it).
            state.send(answer)
            return .proceed
        case .overflow:
            let error = ChatError(.lineTooLong, "More than \(line.hardLimitBytes) bytes arrived without a line break. Goodbye.")
            state.end(with: .error(error, ref: nil), reason: .connectionLost)
            return .stop
        case .overlong(let bytes):
            guard await pacer.pace(1, connection), state.isOpen else { return .stop }
            let error = ChatError(
                .lineTooLong, "Line too long (\(bytes) bytes; the limit is \(line.maximumLineBytes)). It was not sent."
            )
            state.send(.error(error, ref: nil))
            return .proceed
        case .line(let line):
            // Every line costs a token, refused ones included; a flooder waits, nobody else does.
            guard await pacer.pace(1, connection), state.isOpen, state.beginLine() else { return .stop }
            let flow = await session.receive(line)
            state.endLine()
            guard flow == .proceed else { return .stop }
            await window.noteLine(port.hub)
            // A line that made the server do more (many targets, modes, channels, a long history) costs more:
            // the reader waits for it before reading on.
            return await pacer.pace(state.extraCost.exchange(0, ordering: .relaxed), connection) ? .proceed : .stop
        }
    }
}

/// Flood control for one reader: takes tokens, waits when they run out, and says why at most every 10 s.
private struct Pacer {
    var bucket: TokenBucket
    /// What the client is told when its lines start to wait (nil: nothing).
    let warning: String?
    var lastWarning: ContinuousClock.Instant?
    /// Whether the operator was told that this connection hit flood control (once per connection).
    var logged = false

    /// False when the connection closed during the wait.
    mutating func pace(_ tokens: Int, _ connection: Connection) async -> Bool {
        guard tokens > 0 else { return true }
        let wait = bucket.take(tokens, now: .now)
        guard wait > .zero else { return true }
        if !logged {
            logged = true
            connection.logFloodControl()
        }
        if let warning, lastWarning.map({ $0.duration(to: .now) > .seconds(10) }) ?? true {
            lastWarning = .now
            connection.state.send(.notice(warning))
        }
        return await connection.pause(for: wait)
    }
}

extension Double {
    fileprivate var formatted: String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}
