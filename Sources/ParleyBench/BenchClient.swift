import NIOCore

/// Splits the byte stream into lines (LF, with or without CR), bounded so a misbehaving server cannot grow
/// the bench's memory.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    static let maximumLine = 64 * 1024

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maximumLine { throw BenchError("the server sent a line longer than 64 KiB") }
            return .needMoreData
        }
        var line = buffer.readSlice(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)! }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// One simulated user: registers, joins its room, then counts every bench payload it receives. The room's
/// observer also tells senders that their message got through (for the windowed mode).
///
/// Until it has joined, it reads lines as text (a few, once). From then on it reads raw bytes with a
/// `DeliveryScanner`: no line framing in the pipeline, no `String` and no allocation per delivery.
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case registering, joining, ready
    }

    private let dialect: BenchProtocol
    private let nick: String
    private let room: String
    private let stats: LoopStats
    private let ready: EventLoopPromise<Void>
    /// Set on the one client per room that reports deliveries back to their senders.
    private let observe: (@Sendable (Payload) -> Void)?
    private var phase = Phase.registering
    /// Registration's unfinished line.
    private var pending = ByteBuffer()
    private var scanner: DeliveryScanner

    init(dialect: BenchProtocol, nick: String, room: String, run: UInt32, stats: LoopStats, ready: EventLoopPromise<Void>, observe: (@Sendable (Payload) -> Void)?) {
        self.dialect = dialect
        self.nick = nick
        self.room = room
        self.stats = stats
        self.ready = ready
        self.observe = observe
        self.scanner = DeliveryScanner(run: run, answersPings: dialect == .irc, parsesAll: observe != nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        write(dialect.registration(nick: nick), context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if phase != .ready {
            pending.writeBuffer(&bytes)
            while phase != .ready, let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                var line = pending.readSlice(length: newline - pending.readerIndex)!
                pending.moveReaderIndex(forwardBy: 1)
                if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
                handshake(String(buffer: line), context: context)
            }
            guard phase == .ready else {
                if pending.readableBytes > DeliveryScanner.maximumLine {
                    ready.fail(BenchError("the server sent a line longer than 64 KiB"))
                    context.close(promise: nil)
                }
                return
            }
            // What came after the join's confirmation is the start of the traffic.
            bytes = pending
            pending = ByteBuffer()
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let (stats, observe) = (stats, observe)
        do {
            let found = try bytes.withUnsafeReadableBytes { raw throws(BenchError) in
                try scanner.scan(
                    raw,
                    payload: { payload in
                        if payload.isProbe { stats.sample(payload, at: now) }
                        observe?(payload)
                    },
                    ping: { line in
                        if let reply = self.dialect.reply(to: String(decoding: line, as: UTF8.self)) { self.write(reply, context: context) }
                    }
                )
            }
            stats.count(found, at: now)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    /// Registration and join, line by line.
    private func handshake(_ text: String, context: ChannelHandlerContext) {
        if let reply = dialect.reply(to: text) {
            write(reply, context: context)
        } else if dialect.isError(text) {
            ready.fail(BenchError("\(nick) was refused: \(text)"))
            context.close(promise: nil)
        } else if phase == .registering, dialect.isRegistered(text) {
            phase = .joining
            write(dialect.join(room), context: context)
        } else if phase == .joining, dialect.isJoined(text, room: room) {
            phase = .ready
            ready.succeed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(BenchError("\(nick) lost its connection while \(phase == .registering ? "registering" : "joining")"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
    }
}

/// One sending client's schedule: a fixed rate, or as fast as a window of unconfirmed messages allows.
/// Runs on its channel's event loop; the observer's confirmations hop there.
final class Sender: Sendable {
    enum Mode: Sendable {
        case rate(Double)
        case window(Int)
    }

    private final class State {
        var sequence = 0
        var inFlight = 0
        var stopped = false
        var end = NIODeadline.distantFuture
        /// Rate mode: when sending began, so each message is stamped with the time it was due, and a stall in
        /// the bench counts as latency instead of hiding it (no coordinated omission).
        var start: NIODeadline?
        var pacer: Pacer?
    }

    let index: Int
    let room: String
    let channel: any Channel
    private let state: NIOLoopBound<State>
    private let dialect: BenchProtocol
    private let run: UInt32
    private let payloadBytes: Int

    init(index: Int, room: String, channel: any Channel, dialect: BenchProtocol, run: UInt32, payloadBytes: Int) async throws {
        self.index = index
        self.room = room
        self.channel = channel
        self.dialect = dialect
        self.run = run
        self.payloadBytes = payloadBytes
        self.state = try await channel.eventLoop.submit { NIOLoopBound(State(), eventLoop: channel.eventLoop) }.get()
    }

    /// Starts sending; in rate mode the first message is due at `begin`.
    func start(_ mode: Mode, at begin: NIODeadline, until end: NIODeadline) {
        channel.eventLoop.execute { [self] in
            let state = self.state.value
            state.end = end
            switch mode {
            case .window(let size):
                for _ in 0..<size { send(state) }
                channel.eventLoop.scheduleTask(deadline: end) { self.state.value.stopped = true }
            case .rate(let perSecond):
                state.start = begin
                state.pacer = Pacer(perSecond: perSecond)
                channel.eventLoop.scheduleTask(deadline: begin) { self.tick() }
            }
        }
    }

    /// Rate mode: sends what is due, then sleeps until the next message's own moment. A periodic timer would
    /// add up to its period to every latency (and NIO's repeated tasks drift by each run's duration).
    private func tick() {
        let state = state.value
        guard let start = state.start, var pacer = state.pacer else { return }
        let now = NIODeadline.now()
        guard now < state.end else {
            state.stopped = true
            return
        }
        let elapsed = now > start ? Int64(now.uptimeNanoseconds - start.uptimeNanoseconds) : 0
        let due = pacer.due(elapsed: .nanoseconds(elapsed))
        state.pacer = pacer
        for _ in 0..<due { send(state) }
        let next = start + .nanoseconds(Int64((Double(pacer.sent) / pacer.perSecond * 1e9).rounded(.up)))
        channel.eventLoop.scheduleTask(deadline: next) { self.tick() }
    }

    /// The observer saw one of this sender's messages: in windowed mode, that frees a slot.
    func confirmed() {
        channel.eventLoop.execute { [self] in
            let state = self.state.value
            state.inFlight -= 1
            if !state.stopped, state.pacer == nil, NIODeadline.now() < state.end { send(state) }
        }
    }

    /// How many it sent; ask once it has stopped.
    func sentCount() async throws -> Int {
        try await channel.eventLoop.submit { self.state.value.sequence }.get()
    }

    private func send(_ state: State) {
        let due = state.start.map { $0.uptimeNanoseconds + UInt64(Double(state.sequence) / state.pacer!.perSecond * 1e9) }
        let payload = Payload(run: run, sender: index, sequence: state.sequence, sentNanoseconds: due ?? NIODeadline.now().uptimeNanoseconds)
        state.sequence += 1
        state.inFlight += 1
        channel.writeAndFlush(ByteBuffer(string: dialect.message(payload.text(size: payloadBytes), room: room)), promise: nil)
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
