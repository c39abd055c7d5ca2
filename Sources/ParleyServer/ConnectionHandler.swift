import Logging
import NIOCore
import ParleyCore
import ParleyProtocols
import ServiceLifecycle
import Synchronization

/// Serves one connection from accept to close: a reader task that turns lines into chat requests, a writer
/// task that drains the outbox, and the timers that bound how long either may take.
struct ConnectionHandler: Sendable {
    let door: any FrontDoor
    let hub: ChatHub<Fanout>
    let accounts: AccountDesk
    let limits: ServerConfiguration.Limits
    /// What every connection must give before it registers, when set.
    let serverPassword: String?
    let logger: Logger

    /// Never throws: one connection's failure is logged and ends that connection only.
    func run(_ accepted: AcceptedConnection) async {
        let (channel, outbox) = (accepted.channel, accepted.outbox)
        var logger = logger
        logger[metadataKey: "peer"] = "\(channel.channel.remoteAddress?.display ?? "?")"
        logger.info("connected")
        let socket = channel.channel
        let connection = ConnectionState(outbox: outbox)
        let context = SessionContext(
            connection: connection, hub: hub, accounts: accounts,
            address: channel.channel.remoteAddress?.ipAddress ?? "unknown", serverPassword: serverPassword,
            maximumLineBytes: limits.line.maximumLineBytes, logger: logger
        )
        do {
            try await channel.executeThenClose { inbound in
                await withGracefulShutdownHandler {
                    await serve(context, socket: socket, inbound: inbound)
                } onGracefulShutdown: {
                    connection.shutDown(grace: limits.shutdownGrace, hub: hub)
                }
            }
        } catch {
            logger.debug("connection failed", metadata: ["error": "\(error)"])
        }
        let reason = connection.finalReason
        if let session = connection.session {
            logger[metadataKey: "session"] = "\(session)"
            if let nick = connection.registeredNick { logger[metadataKey: "nick"] = "\(nick)" }
            hub.disconnect(session, reason: reason)
        }
        logger.info("disconnected", metadata: ["reason": "\(reason.cause)"])
    }

    /// Reads until input ends, then waits for the outbox to drain and close the channel. The timers run on the
    /// event loop rather than as tasks: a task's stack is kilobytes, and every connection would pay for them.
    private func serve(
        _ context: SessionContext,
        socket: any Channel,
        inbound: NIOAsyncChannelInboundStream<InboundFrame>
    ) async {
        let connection = context.connection
        let registrationDeadline = socket.eventLoop.scheduleTask(in: limits.registrationTimeout.timeAmount) {
            guard connection.session == nil else { return }
            let error = ChatError(.registrationTimeout, "No nickname was chosen in time. Goodbye.")
            connection.end(with: .error(error, ref: nil), reason: .connectionLost)
        }
        let keepAlive = door.keepAlive(serverName: hub.serverName, interval: limits.pingInterval).map {
            start($0, for: connection, on: socket.eventLoop)
        }
        defer {
            registrationDeadline.cancel()
            keepAlive?.cancel()
        }
        await read(inbound, context: context)
        // Input is over. Replies to what the client sent may still be in the publisher's queue, so a registered
        // session is closed by the hub, after them; the outbox's end bounds the drain.
        if let session = connection.session {
            hub.disconnect(session, reason: connection.finalReason, closing: true)
        } else {
            connection.outbox.finish()
        }
        await withTaskCancellationHandler {
            try? await socket.closeFuture.get()
        } onCancel: {
            socket.close(promise: nil)
        }
    }

    /// The door's keep-alive (IRC's): a client silent for a whole interval is pinged, and one silent for another
    /// interval after that is gone (a dead peer or a half-open connection), so its nick and rooms are freed.
    private func start(_ keepAlive: KeepAlive, for connection: ConnectionState, on loop: any EventLoop) -> RepeatedTask {
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

    /// Feeds frames to the door's session, lines paced by flood control. Stops as soon as the connection is
    /// ending, so nothing arrives after a goodbye.
    private func read(_ inbound: NIOAsyncChannelInboundStream<InboundFrame>, context: SessionContext) async {
        let connection = context.connection
        var session = door.makeSession(context)
        var pacer = Pacer(bucket: TokenBucket(limits.flood, now: .now), warning: floodWarning)
        var window = ProgressWindow(size: limits.linesAhead)
        do {
            for try await frame in inbound {
                guard connection.isOpen else { return }
                connection.framesHeard.add(1, ordering: .relaxed)
                switch frame {
                case .greet, .json:
                    session.signal(frame)
                    continue
                case .telnet(let answer):
                    // Negotiation, not chat: no flood token, and at once (a telnet client may be waiting for it).
                    connection.send(answer)
                    continue
                case .overflow:
                    let error = ChatError(
                        .lineTooLong,
                        "More than \(limits.line.hardLimitBytes) bytes arrived without a line break. Goodbye."
                    )
                    connection.end(with: .error(error, ref: nil), reason: .connectionLost)
                    return
                case .line, .overlong:
                    break
                }
                // Every line costs a token, refused ones included; a flooder waits, nobody else does.
                try await pacer.pace(1, connection)
                guard connection.isOpen else { return }
                switch frame {
                case .line(let line):
                    guard connection.beginLine() else { return }
                    let flow = await session.receive(line)
                    connection.endLine()
                    if flow == .stop { return }
                    await window.noteLine(hub)
                    // A line that made the server do more (many targets, modes, channels, a long history)
                    // costs more: the reader waits for it before reading on.
                    try await pacer.pace(connection.extraCost.exchange(0, ordering: .relaxed), connection)
                case .overlong(let bytes):
                    connection.send(.error(lineTooLong(bytes), ref: nil))
                default:
                    continue
                }
            }
        } catch {
            // Cancelled while paced, or the channel failed: either way this connection is done reading.
        }
    }

    private var floodWarning: String {
        "You are sending too fast: after a burst of \(limits.flood.burst) lines, "
            + "your lines are delayed to \(limits.flood.perSecond.formatted) per second."
    }

    private func lineTooLong(_ bytes: Int) -> ChatError {
        ChatError(.lineTooLong, "Line too long (\(bytes) bytes; the limit is \(limits.line.maximumLineBytes)). It was not sent.")
    }
}

/// Flood control for one reader: takes tokens, waits when they run out, and says why at most every 10 s.
private struct Pacer {
    var bucket: TokenBucket
    let warning: String
    var lastWarning: ContinuousClock.Instant?

    mutating func pace(_ tokens: Int, _ connection: ConnectionState) async throws {
        guard tokens > 0 else { return }
        let wait = bucket.take(tokens, now: .now)
        guard wait > .zero else { return }
        if lastWarning.map({ $0.duration(to: .now) > .seconds(10) }) ?? true {
            lastWarning = .now
            connection.send(.notice(warning))
        }
        try await Task.sleep(for: wait)
    }
}

extension Double {
    fileprivate var formatted: String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}

/// A connection as the listener's channel initializer set it up on the event loop: frames in through the
/// async channel, frames out through the outbox at the front of the pipeline.
struct AcceptedConnection: Sendable {
    let channel: NIOAsyncChannel<InboundFrame, Never>
    let outbox: Outbox
}
