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
        try channel.pipeline.syncOperations.addHandler(
            WebSocketLines(outgoing: binary ? .binary : .text, maximumMessageBytes: lineLimits(limits).maximumLineBytes)
        )
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
/// on, as on the other doors (a single frame past the decoder's limit is closed with 1009 by NIO's protocol
/// error handler). Pings are answered while the socket takes writes, and a close is answered and ends input.
/// Outbound, each line of what the outbox writes becomes one message, and the channel's close is preceded by
/// a close frame.
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
    }

    private let outgoing: WebSocketOpcode
    private let maximumMessageBytes: Int
    private var receiving = Receiving.idle
    private var closeSent = false

    init(outgoing: WebSocketOpcode, maximumMessageBytes: Int) {
        self.outgoing = outgoing
        self.maximumMessageBytes = maximumMessageBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard case .idle = receiving else { return fail(context, .protocolError) }
            receiving = .message(ByteBuffer())
            append(frame, context: context)
        case .continuation:
            guard !isIdle else { return fail(context, .protocolError) }
            append(frame, context: context)
        case .ping:
            // A client that pings and never reads would otherwise queue pongs without bound.
            guard context.channel.isWritable, !closeSent else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            // The client is leaving: what is queued for it is sent, then our close (`close` below) and the end.
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        default:
            break  // pongs, and opcodes no extension here gave a meaning
        }
    }

    private var isIdle: Bool {
        if case .idle = receiving { return true }
        return false
    }

    private func append(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        switch receiving {
        case .idle:
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
        guard frame.fin else { return }
        switch receiving {
        case .idle:
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

    private func fail(_ context: ChannelHandlerContext, _ code: WebSocketErrorCode) {
        sendClose(context, code: code).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var lines = unwrapOutboundIn(data)
        guard !closeSent else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        guard lines.readableBytes > 0 else {
            // The outbox's last, empty write, whose promise says what went before it has been handed on: writes
            // complete in order, so what went before is as far as NIO takes it.
            promise?.succeed()
            return
        }
        while let end = lines.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            var line = lines.readSlice(length: end - lines.readerIndex + 1)!
            line.moveWriterIndex(to: line.writerIndex - 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
            let more = lines.readableBytes > 0
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: outgoing, data: line)), promise: more ? nil : promise)
            if !more { return }
        }
        // A last line without its newline (renderers always end theirs; kept whole all the same).
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: outgoing, data: lines)), promise: promise)
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
