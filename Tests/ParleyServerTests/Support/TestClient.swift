import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A raw TCP client for tests: sends bytes, collects the lines it receives, and waits for a line (or for the
/// server to close) with a deadline. Waiting uses event-loop timers, never sleeps.
final class TestClient: Sendable {
    struct Options: Sendable {
        /// When false the client never reads: a slow consumer.
        var reads = true
        /// A small receive buffer makes a non-reading client back up quickly.
        var receiveBuffer: Int?
        /// The loopback address to connect from (any of 127.0.0.0/8): another address, as far as the server
        /// can tell.
        var from: String?

        init(reads: Bool = true, receiveBuffer: Int? = nil, from: String? = nil) {
            self.reads = reads
            self.receiveBuffer = receiveBuffer
            self.from = from
        }
    }

    /// Generous: a wait ends as soon as its line comes, and a loaded machine can be far behind. With the suite's
    /// servers and clients all on two event-loop threads, Chromium and PostgreSQL beside them, and `stress --cpu 3`
    /// on the same two cores, closes that the server made at once reached their clients more than 20 s later.
    static let defaultTimeout: TimeAmount = .seconds(60)

    let channel: any Channel
    private let collector: NIOLoopBound<LineCollector>

    private init(channel: any Channel, collector: NIOLoopBound<LineCollector>) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int, options: Options = .init()) async throws -> TestClient {
        // NIO's default connect timeout is 10 s; a loaded machine once took longer to accept on loopback.
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(30))
            .channelOption(.autoRead, value: options.reads)
        if let size = options.receiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(size))
        }
        if let from = options.from {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: from, port: 0))
        }
        // The collector goes in before the connection is up: a server that answers and closes at once (a
        // refusal) must not beat it.
        let made = NIOLockedValueBox<NIOLoopBound<LineCollector>?>(nil)
        let channel = try await bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let collector = LineCollector()
                try channel.pipeline.syncOperations.addHandler(collector)
                made.withLockedValue { $0 = NIOLoopBound(collector, eventLoop: channel.eventLoop) }
            }
        }.connect(host: "127.0.0.1", port: port).get()
        guard let collector = made.withLockedValue({ $0 }) else { throw TestFailure("no collector") }
        return TestClient(channel: channel, collector: collector)
    }

    /// From now on IRC `PING`s are answered at once, on the event loop (`LineCollector.answersPings`).
    func answerPings() async throws {
        try await channel.eventLoop.submit { [collector] in collector.value.answersPings = true }.get()
    }

    func send(_ line: String) async throws {
        try await sendRaw(Array((line + "\n").utf8))
    }

    func sendRaw(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Every line received so far.
    var lines: [String] {
        get async throws {
            try await channel.eventLoop.submit { self.collector.value.lines }.get()
        }
    }

    /// Waits for the first line not yet consumed that matches, consuming it and every line before it.
    @discardableResult
    func waitFor(
        timeout: TimeAmount = defaultTimeout,
        sourceLine: UInt = #line,
        _ predicate: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        do {
            return try await channel.eventLoop.flatSubmit {
                self.collector.value.wait(for: predicate, timeout: timeout, eventLoop: self.channel.eventLoop)
            }.get()
        } catch let failure as TestFailure {
            throw TestFailure("waiting at line \(sourceLine): \(failure.description)")
        }
    }

    /// The next line not yet consumed.
    func nextLine(timeout: TimeAmount = defaultTimeout) async throws -> String {
        try await waitFor(timeout: timeout) { _ in true }
    }

    /// Waits until the server closes the connection; returns every line received.
    ///
    /// Whether the close came in time is settled on the channel's event loop, by whichever comes first there:
    /// the close or the deadline. Not by this task when it resumes: on a loaded machine the task can resume
    /// long after a close that came in time (seen: a starved test process resumed it after the deadline too,
    /// and a close within a second was reported as none in 20).
    @discardableResult
    func waitForClose(timeout: TimeAmount = defaultTimeout) async throws -> [String] {
        let channel = self.channel
        let closedInTime = NIOLockedValueBox<Bool?>(nil)
        channel.closeFuture.whenComplete { _ in closedInTime.withLockedValue { $0 = $0 ?? true } }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            closedInTime.withLockedValue { $0 = $0 ?? false }
            channel.close(promise: nil)
        }
        try? await channel.closeFuture.get()
        deadline.cancel()
        let lines = try await self.lines
        if closedInTime.withLockedValue({ $0 }) == false {
            throw TestFailure("the server did not close the connection in time; got \(lines)")
        }
        return lines
    }

    func close() async {
        try? await channel.close()
    }
}

/// Splits inbound bytes into lines on the client's event loop and resolves waiters.
final class LineCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var lines: [String] = []
    /// IRC's `PING` answered with `PONG` here, on the event loop, the moment it arrives: a client that answers
    /// however slowly the test's task is scheduled.
    var answersPings = false
    private var closed = false
    private var consumed = 0
    private var partial: [UInt8] = []
    private var waiter: (predicate: (String) -> Bool, promise: EventLoopPromise<String>, timer: Scheduled<Void>)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data).readableBytesView[...]
        while let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            partial.append(contentsOf: bytes[..<newline])
            // IRC ends lines with CR LF; tests compare lines without it.
            if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
            let line = String(decoding: partial, as: UTF8.self)
            lines.append(line)
            if answersPings, line.hasPrefix("PING ") {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "PONG " + line.dropFirst(5) + "\r\n")), promise: nil)
            }
            partial.removeAll(keepingCapacity: true)
            bytes = bytes[(newline + 1)...]
        }
        partial.append(contentsOf: bytes)
        check()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        fail("connection closed while waiting")
        context.fireChannelInactive()
    }

    func wait(for predicate: @escaping (String) -> Bool, timeout: TimeAmount, eventLoop: any EventLoop) -> EventLoopFuture<String> {
        let promise = eventLoop.makePromise(of: String.self)
        let timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { self.fail("timed out") }
        waiter = (predicate, promise, timer)
        check()
        if closed { fail("connection already closed") }
        return promise.futureResult
    }

    private func fail(_ why: String) {
        guard let waiter else { return }
        self.waiter = nil
        waiter.timer.cancel()
        waiter.promise.fail(TestFailure("\(why); unconsumed lines: \(Array(lines[consumed...]))"))
    }

    private func check() {
        guard let waiter else { return }
        while consumed < lines.count {
            let line = lines[consumed]
            consumed += 1
            if waiter.predicate(line) {
                self.waiter = nil
                waiter.timer.cancel()
                waiter.promise.succeed(line)
                return
            }
        }
    }
}

@available(*, unavailable)
extension LineCollector: Sendable {}

extension TestClient {
    /// Sends one WebSocket frame as it is (a WebSocket client only), past the line framing.
    func sendFrame(_ frame: WebSocketFrame) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            do {
                let framing = try channel.pipeline.syncOperations.context(handlerType: WebSocketTestFraming.self)
                let promise = channel.eventLoop.makePromise(of: Void.self)
                framing.writeAndFlush(NIOAny(frame), promise: promise)
                return promise.futureResult
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }

    /// A WebSocket client (NIO's upgrader) that reads and writes as `TestClient` does: each message it receives
    /// is one line, and each line it sends one text message (or binary, with `binary`). The handshake sends
    /// `origin` and `subprotocols` when given.
    static func connectWebSocket(
        port: Int, path: String, origin: String? = nil, subprotocols: [String] = [], binary: Bool = false, receiveBuffer: Int? = nil,
        headers extra: [String: String] = [:]
    ) async throws -> TestClient {
        let made = NIOLockedValueBox<NIOLoopBound<LineCollector>?>(nil)
        let upgraded = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel = try await bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let done = channel.eventLoop.makePromise(of: Void.self)
                upgraded.withLockedValue { $0 = done }
                let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, automaticErrorHandling: false) { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        let collector = LineCollector()
                        try channel.pipeline.syncOperations.addHandlers(WebSocketTestFraming(binary: binary), collector)
                        made.withLockedValue { $0 = NIOLoopBound(collector, eventLoop: channel.eventLoop) }
                        done.succeed()
                    }
                }
                try channel.pipeline.syncOperations.addHTTPClientHandlers(
                    withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                )
            }
        }.connect(host: "127.0.0.1", port: port).get()
        var headers: HTTPHeaders = ["host": "127.0.0.1:\(port)", "content-length": "0"]
        if let origin { headers.add(name: "origin", value: origin) }
        if !subprotocols.isEmpty { headers.add(name: "sec-websocket-protocol", value: subprotocols.joined(separator: ", ")) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        guard let done = upgraded.withLockedValue({ $0 }) else { throw TestFailure("no upgrade promise") }
        let timeout = channel.eventLoop.scheduleTask(in: defaultTimeout) { done.fail(TestFailure("the WebSocket handshake did not complete")) }
        defer { timeout.cancel() }
        do {
            try await done.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        guard let collector = made.withLockedValue({ $0 }) else { throw TestFailure("no collector") }
        return TestClient(channel: channel, collector: collector)
    }
}

/// The test's side of a WebSocket: each message in is a line for `LineCollector` (a close frame ends the
/// connection, its code and reason kept as the line `close CODE REASON`); each line out is one masked message.
final class WebSocketTestFraming: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    let binary: Bool

    init(binary: Bool) {
        self.binary = binary
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            var line = frame.unmaskedData
            if frame.fin { line.writeString("\n") }
            context.fireChannelRead(wrapInboundOut(line))
        case .pong:
            context.fireChannelRead(wrapInboundOut(ByteBuffer(string: "pong \(String(buffer: frame.unmaskedData))\n")))
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode().map { "\($0)" } ?? "none"
            context.fireChannelRead(wrapInboundOut(ByteBuffer(string: "close \(code) \(String(buffer: data))\n")))
            context.close(promise: nil)
        default:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var line = unwrapOutboundIn(data)
        if line.readableBytesView.last == UInt8(ascii: "\n") { line.moveWriterIndex(to: line.writerIndex - 1) }
        let frame = WebSocketFrame(fin: true, opcode: binary ? .binary : .text, maskKey: .random(), data: line)
        context.write(wrapOutboundOut(frame), promise: promise)
    }
}
