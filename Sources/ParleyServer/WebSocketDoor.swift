import NIOCore
import NIOWebSocket
import ParleyCore
import ParleyProtocols

/// The two doors behind the HTTP port's WebSocket upgrades: Parley's JSON protocol on `/ws` (one JSON object
/// per message, the JSON-lines session unchanged) and IRC on `/irc` (the IRCv3 WebSocket specification: one IRC
/// line per message, `text.ircv3.net` or `binary.ircv3.net`). Each is the door it carries with a different
/// framing: `WebSocketLines` turns messages into the lines those sessions read, and their rendered lines into
/// messages, so sessions, renderers and the fan-out do not know they are behind a WebSocket.
struct WebSocketDoor: FrontDoor {
    enum Carried: Sendable, Equatable {
        case json
        /// IRC, sent back in text or binary messages as the subprotocol asked.
        case irc(binary: Bool)
    }

    let carried: Carried
    /// The browser's address, as a trusted proxy forwarded it (`WebSite.clientAddress`); nil: the peer's.
    var forwardedFor: String?

    var name: String {
        switch carried {
        case .json: "ws"
        case .irc: "irc-ws"
        }
    }

    var explainsDelays: Bool { carried == .json }

    /// Called once the upgrade's handlers (frame encoder and decoder) are in the pipeline.
    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits, opener: ConnectionOpener) throws {
        let binary = carried == .irc(binary: true)
        // Before the outbox's writer, so that what it writes becomes messages on the way out.
        let line = lineLimits(limits)
        try channel.pipeline.syncOperations.addHandler(
            WebSocketLines(outgoing: binary ? .binary : .text, maximumMessageBytes: line.maximumLineBytes, hardLimitBytes: line.hardLimitBytes)
        )
        // NIO's frame decoder hands on every frame of a read at once, where the other doors' framing hands on 16
        // a read: smaller reads keep what one read can queue in the connection's inbox small (at most 1,365
        // frames of 6 bytes, empty messages, in 8 KiB) while the connection's flood control works through it.
        try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 8192))
        let outbox = try Outbox(channel: channel, limitBytes: limits.sendQueueBytes, linger: limits.linger)
        try opener.open(channel, outbox, self)
    }

    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits {
        switch carried {
        case .json: LinesDoor().lineLimits(limits)
        case .irc: IRCDoor().lineLimits(limits)
        }
    }

    func makeSession(_ context: SessionContext) -> any LineSession {
        switch carried {
        case .json: JSONSession(context)
        case .irc: IRCSession(context)
        }
    }

    func keepAlive(serverName: String, interval: Duration) -> KeepAlive? {
        switch carried {
        case .json: nil
        case .irc: IRCDoor().keepAlive(serverName: serverName, interval: interval)
        }
    }

    /// Not used: a refusal happens before the upgrade, in the HTTP door's words.
    func refusal(_ reason: String, serverName: String) -> ByteBuffer {
        ByteBuffer(string: reason)
    }
}

/// A WebSocket connection as lines. Inbound, each whole message (its fragments joined) is one `.line`, a
/// trailing CR LF taken off; a message longer than the door's line limit is `.overlong` and the connection goes
/// on, as on the other doors; one that runs on past the hard limit (in fragments: a single frame that long is
/// closed with 1009 by NIO's decoder) is closed with 1009 too. Pings are answered, once per read at most and
/// only while the socket takes writes. A close from the client ends input; so does a protocol error (a reserved
/// opcode or bit, an unmasked frame, a continuation out of place), answered with 1002. Nothing is read after
/// either. Outbound, each line of what the outbox writes becomes one message, and the channel's close is
/// preceded by a close frame.
final class WebSocketLines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = InboundFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    /// Where the message being received is.
    private enum Receiving {
        case idle
        case message(ByteBuffer)
        /// Past the limit: its bytes so far are counted, not kept.
        case skipping(Int)
        /// The client closed, or broke the protocol: nothing more is read.
        case over
    }

    private let outgoing: WebSocketOpcode
    private let maximumMessageBytes: Int
    private let hardLimitBytes: Int
    private var receiving = Receiving.idle
    private var closeSent = false
    /// The data of the last ping of this read, answered when the read is over.
    private var ping: ByteBuffer?
    /// The last message written: the outbox's final, empty write completes with it.
    private var lastWrite: EventLoopFuture<Void>?

    init(outgoing: WebSocketOpcode, maximumMessageBytes: Int, hardLimitBytes: Int) {
        self.outgoing = outgoing
        self.maximumMessageBytes = maximumMessageBytes
        self.hardLimitBytes = hardLimitBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if case .over = receiving { return }
        // Clients must mask, and no extension that gives the reserved bits a meaning was agreed.
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return fail(context, .protocolError) }
        switch frame.opcode {
        case .text, .binary:
            guard case .idle = receiving else { return fail(context, .protocolError) }
            receiving = .message(ByteBuffer())
            append(frame, context: context)
        case .continuation:
            if case .idle = receiving { return fail(context, .protocolError) }
            append(frame, context: context)
        case .ping:
            ping = frame.unmaskedData
        case .pong:
            break
        case .connectionClose:
            // The client is leaving: what is queued for it is sent, then our close (`close` below) and the end.
            receiving = .over
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        default:
            fail(context, .protocolError)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A client that pings and never reads would otherwise have pongs queued without bound.
        if let data = ping, context.channel.isWritable, !closeSent {
            ping = nil
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: data)), promise: nil)
        }
        context.fireChannelReadComplete()
    }

    /// NIO's protocol error handler (before this one) has sent its close frame already.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOWebSocketError { closeSent = true }
        context.fireErrorCaught(error)
    }

    private func append(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        switch receiving {
        case .idle, .over:
            return
        case .message(var message):
            receiving = .idle  // the buffer is held once, so appending does not copy it
            if message.readableBytes + data.readableBytes > maximumMessageBytes {
                receiving = .skipping(message.readableBytes + data.readableBytes)
            } else {
                message.writeBuffer(&data)
                receiving = .message(message)
            }
        case .skipping(let bytes):
            receiving = .skipping(bytes + data.readableBytes)
        }
        if case .skipping(let bytes) = receiving, bytes > hardLimitBytes { return fail(context, .messageTooLarge) }
        guard frame.fin else { return }
        switch receiving {
        case .idle, .over:
            break
        case .message(var message):
            receiving = .idle
            while let last = message.readableBytesView.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
                message.moveWriterIndex(to: message.writerIndex - 1)
            }
            context.fireChannelRead(wrapInboundOut(.line(message)))
        case .skipping(let bytes):
            receiving = .idle
            context.fireChannelRead(wrapInboundOut(.overlong(bytes)))
        }
    }

    /// The client broke the protocol: it is told why in a close frame (after which nothing more may be sent),
    /// input ends, and the connection closes within a second whatever the client does.
    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode) {
        receiving = .over
        ping = nil
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        if channel.isWritable { _ = sendClose(context, code: code) } else { closeSent = true }
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var lines = unwrapOutboundIn(data)
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        guard lines.readableBytes > 0 else {
            // The outbox's last, empty write: its promise says that what went before it has been written, and the
            // outbox closes the channel then.
            if let lastWrite, let promise { lastWrite.cascade(to: promise) } else { promise?.succeed() }
            return
        }
        // Writes complete in order: the last message's future stands for all of them.
        let last = promise ?? context.eventLoop.makePromise()
        lastWrite = last.futureResult
        while let end = lines.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            var line = lines.readSlice(length: end - lines.readerIndex + 1)!
            line.moveWriterIndex(to: line.writerIndex - 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
            let more = lines.readableBytes > 0
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: outgoing, data: line)), promise: more ? nil : last)
            if !more { return }
        }
        // A last line without its newline (renderers always end theirs; kept whole all the same).
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: outgoing, data: lines)), promise: last)
    }

    /// The channel's close: the peer is sent a close frame first, once, when the socket takes writes. Never waited
    /// for long: a connection closed because its peer stopped reading (a full send queue) would never see the
    /// frame go, so an unwritable channel closes at once, and any other within a second.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, !closeSent, context.channel.isActive, context.channel.isWritable else {
            return context.close(mode: mode, promise: promise)
        }
        let deadline = context.eventLoop.scheduleTask(in: .seconds(1)) { [channel = context.channel] in channel.close(promise: nil) }
        sendClose(context, code: .normalClosure).assumeIsolated().whenComplete { _ in
            deadline.cancel()
            context.close(mode: mode, promise: promise)
        }
    }

    private func sendClose(_ context: ChannelHandlerContext, code: WebSocketErrorCode) -> EventLoopFuture<Void> {
        guard !closeSent else { return context.eventLoop.makeSucceededVoidFuture() }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: promise)
        return promise.futureResult
    }
}
