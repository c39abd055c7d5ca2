import NIOCore
import NIOConcurrencyHelpers
import NIOPosix

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

    static let defaultTimeout: TimeAmount = .seconds(10)

    let channel: any Channel
    private let collector: NIOLoopBound<LineCollector>

    private init(channel: any Channel, collector: NIOLoopBound<LineCollector>) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int, options: Options = .init()) async throws -> TestClient {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
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
    @discardableResult
    func waitForClose(timeout: TimeAmount = defaultTimeout) async throws -> [String] {
        let channel = self.channel
        let timedOut = NIOLockedValueBox(false)
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        try? await channel.closeFuture.get()
        deadline.cancel()
        let lines = try await self.lines
        if timedOut.withLockedValue({ $0 }) {
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

    private(set) var lines: [String] = []
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
            lines.append(String(decoding: partial, as: UTF8.self))
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
