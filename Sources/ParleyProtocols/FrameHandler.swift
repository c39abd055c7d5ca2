import NIOCore

/// The first handler of a connection: frames lines with `LineFramer` and, on the shared text/JSON port, tells
/// a JSON client from a person before anything is sent (see docs/PROTOCOL.md, "Choosing the mode").
public final class FrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = InboundFrame

    private enum Sniffing {
        /// Waiting for the first byte or the end of the greeting window.
        case waiting(Scheduled<Void>?)
        case decided
    }

    private var framer: LineFramer
    private let greetingWindow: TimeAmount?
    private var sniffing: Sniffing
    private var frames: [InboundFrame] = []

    /// With a `greetingWindow`, the handler emits `.greet` when the first byte is not `{` or when no byte
    /// arrives within the window; without one it only frames.
    public init(limits: LineFramer.Limits, stripsTelnet: Bool, greetingWindow: TimeAmount?) {
        self.framer = LineFramer(limits: limits, stripsTelnet: stripsTelnet)
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
        if case .waiting(let timer) = sniffing, let first = bytes.readableBytesView.first {
            timer?.cancel()
            sniffing = .decided
            if first != UInt8(ascii: "{") { context.fireChannelRead(wrapInboundOut(.greet)) }
        }
        framer.feed(bytes, into: &frames)
        for frame in frames { context.fireChannelRead(wrapInboundOut(frame)) }
        frames.removeAll(keepingCapacity: true)
    }

    private func startGreetingTimer(context: ChannelHandlerContext) {
        guard case .waiting(nil) = sniffing, let window = greetingWindow else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: window) {
            let (handler, context) = loopBound.value
            guard case .waiting = handler.sniffing else { return }
            handler.sniffing = .decided
            context.fireChannelRead(handler.wrapInboundOut(.greet))
            context.fireChannelReadComplete()
        }
        sniffing = .waiting(timer)
    }
}

@available(*, unavailable)
extension FrameHandler: Sendable {}
