import NIOCore

/// The first handler of a connection: frames lines with `LineFramer` and, on the shared text/JSON port, tells
/// a JSON client from a person before anything is sent (see docs/PROTOCOL.md, "Choosing the mode").
///
/// Frames are handed on only as fast as the next handler asks for them (`read`), at most `framesPerRead` at a
/// time; the socket is read again only once every complete line has been taken. So a client that pastes
/// megabytes costs the server at most one socket read of raw bytes, not a queue of frames.
public final class FrameHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = InboundFrame
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum Sniffing {
        /// Waiting for the first byte or the end of the greeting window.
        case waiting(Scheduled<Void>?)
        /// Greeted for silence; a first byte `{` may still come from a slow JSON client.
        case greetedSilent
        case decided
    }

    public static let framesPerRead = 16

    private var framer: LineFramer
    private let greetingWindow: TimeAmount?
    private var sniffing: Sniffing

    /// With a `greetingWindow`, the handler first emits `.json` when the first byte is `{`, and `.greet` when
    /// it is anything else or no byte arrives within the window; without one it only frames. A client greeted
    /// for silence whose first byte then is `{` still gets `.json` (a JSON client slower than the window).
    public init(limits: LineFramer.Limits, stripsTelnet: Bool, greetingWindow: TimeAmount?, carriageReturnEndsLine: Bool = false) {
        self.framer = LineFramer(limits: limits, stripsTelnet: stripsTelnet, carriageReturnEndsLine: carriageReturnEndsLine)
        self.greetingWindow = greetingWindow
        self.sniffing = greetingWindow == nil ? .decided : .waiting(nil)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startGreetingTimer(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        startGreetingTimer(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        if case .waiting(let timer) = sniffing { timer?.cancel() }
        sniffing = .decided
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let first = bytes.readableBytesView.first {
            switch sniffing {
            case .waiting(let timer):
                timer?.cancel()
                context.fireChannelRead(wrapInboundOut(first == UInt8(ascii: "{") ? .json : .greet))
            case .greetedSilent where first == UInt8(ascii: "{"):
                context.fireChannelRead(wrapInboundOut(.json))
            case .greetedSilent, .decided:
                break
            }
            sniffing = .decided
        }
        framer.append(bytes)
        deliver(context: context)
    }

    /// The next handler wants more: give it buffered lines first, and read the socket only when there are none.
    public func read(context: ChannelHandlerContext) {
        guard deliver(context: context) > 0 else {
            context.read()
            return
        }
        context.fireChannelReadComplete()
        // Nothing else will ask again: autoRead re-reads only after a socket read. So ask from the tail on a
        // later turn of the loop; the connection's driver passes it on if it wants more, or keeps it for when it does.
        let channel = context.channel
        context.eventLoop.execute { channel.read() }
    }

    /// At end of input every buffered line still goes on, before the event that says no more will come.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent, deliver(context: context, limit: .max) > 0 {
            context.fireChannelReadComplete()
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if deliver(context: context, limit: .max) > 0 { context.fireChannelReadComplete() }
        context.fireChannelInactive()
    }

    @discardableResult
    private func deliver(context: ChannelHandlerContext, limit: Int = FrameHandler.framesPerRead) -> Int {
        var delivered = 0
        while delivered < limit, let frame = framer.next() {
            context.fireChannelRead(wrapInboundOut(frame))
            delivered += 1
        }
        return delivered
    }

    private func startGreetingTimer(context: ChannelHandlerContext) {
        guard case .waiting(nil) = sniffing, let window = greetingWindow else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: window) {
            let (handler, context) = loopBound.value
            guard case .waiting = handler.sniffing else { return }
            handler.sniffing = .greetedSilent
            context.fireChannelRead(handler.wrapInboundOut(.greet))
            context.fireChannelReadComplete()
        }
        sniffing = .waiting(timer)
    }
}

@available(*, unavailable)
extension FrameHandler: Sendable {}
