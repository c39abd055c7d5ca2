import NIOCore
import NIOEmbedded
import ParleyProtocols
import Testing

@Suite("FrameHandler")
struct FrameHandlerTests {
    static let window = TimeAmount.milliseconds(500)

    private func makeChannel(greetingWindow: TimeAmount? = Self.window) throws -> EmbeddedChannel {
        let handler = FrameHandler(limits: .init(maximumLineBytes: 16), stripsTelnet: true, greetingWindow: greetingWindow)
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        return channel
    }

    /// Everything the handler has passed on so far.
    private func frames(_ channel: EmbeddedChannel) throws -> [InboundFrame] {
        var frames: [InboundFrame] = []
        while let frame = try channel.readInbound(as: InboundFrame.self) { frames.append(frame) }
        return frames
    }

    private func write(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func line(_ text: String) -> InboundFrame { .line(ByteBuffer(string: text)) }

    @Test("a client opening with '{' is told to speak JSON, not greeted; its lines are framed")
    func jsonClient() throws {
        let channel = try makeChannel()
        try write(channel, "{\"type\":\"hello\"}\n{\"type\":")
        #expect(try frames(channel) == [.json, line("{\"type\":\"hello\"}")])
        try write(channel, "\"ping\"}\r\n")
        #expect(try frames(channel) == [line("{\"type\":\"ping\"}")])
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("a client opening with anything else is greeted first, then its lines follow")
    func personTyping() throws {
        let channel = try makeChannel()
        try write(channel, "alice\n")
        #expect(try frames(channel) == [.greet, line("alice")])
        try write(channel, "{not json}\n")
        #expect(try frames(channel) == [line("{not json}")])
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("fed byte by byte, the JSON choice comes with the first byte '{' and the line with the newline")
    func byteByByteJSON() throws {
        let channel = try makeChannel()
        var seen: [[InboundFrame]] = []
        for byte in "{}\r\n{\n".utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            seen.append(try frames(channel))
        }
        #expect(seen == [[.json], [], [], [line("{}")], [], [line("{")]])
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("fed byte by byte, the greeting comes with the first byte and the line with the newline")
    func byteByByte() throws {
        let channel = try makeChannel()
        var seen: [[InboundFrame]] = []
        for byte in "hi\r\nyo\n".utf8 {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            seen.append(try frames(channel))
        }
        #expect(seen == [[.greet], [], [], [line("hi")], [], [], [line("yo")]])
        #expect(try channel.finish().isClean)
    }

    @Test("a silent client is greeted exactly once when the window ends")
    func silentClient() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: Self.window - .milliseconds(1))
        #expect(try frames(channel) == [])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try frames(channel) == [.greet])
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(try frames(channel) == [])
        // Decided: a later '{' or any other byte brings no second greeting and no JSON choice.
        try write(channel, "bob\n")
        #expect(try frames(channel) == [line("bob")])
        try write(channel, "{\"type\":\"hello\"}\n")
        #expect(try frames(channel) == [line("{\"type\":\"hello\"}")])
        #expect(try channel.finish().isClean)
    }

    @Test("a client greeted for silence whose first byte is '{' is still a JSON client")
    func slowJSONClient() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: Self.window)
        #expect(try frames(channel) == [.greet])
        try write(channel, "{\"type\":\"hello\"}\n")
        #expect(try frames(channel) == [.json, line("{\"type\":\"hello\"}")])
        try write(channel, "{}\n")
        #expect(try frames(channel) == [line("{}")])
        #expect(try channel.finish().isClean)
    }

    @Test("an empty read decides nothing")
    func emptyRead() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer())
        #expect(try frames(channel) == [])
        try write(channel, "{}\n")
        #expect(try frames(channel) == [.json, line("{}")])
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("without a greeting window there is never a greeting nor a JSON choice")
    func noWindow() throws {
        let channel = try makeChannel(greetingWindow: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(try frames(channel) == [])
        try write(channel, "alice\n")
        #expect(try frames(channel) == [line("alice")])
        let json = try makeChannel(greetingWindow: nil)
        try write(json, "{}\n")
        #expect(try frames(json) == [line("{}")])
        #expect(try json.finish().isClean)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("added to a channel that is already active, the handler still starts its window")
    func addedWhenActive() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: .init(maximumLineBytes: 16), stripsTelnet: true, greetingWindow: Self.window)
        )
        channel.embeddedEventLoop.advanceTime(by: Self.window)
        #expect(try frames(channel) == [.greet])
        #expect(try channel.finish().isClean)
    }

    @Test("removing the handler cancels the greeting")
    func removedBeforeWindow() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: .init(maximumLineBytes: 16), stripsTelnet: true, greetingWindow: Self.window),
            name: "frames"
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        try channel.pipeline.removeHandler(name: "frames").wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("many lines in one read: at most framesPerRead frames per read(), the socket is read only once all are taken")
    func framesPerRead() throws {
        let perRead = FrameHandler.framesPerRead
        let socketReads = ReadCounter()
        let readCompletes = ReadCompleteCounter()
        let channel = EmbeddedChannel(handlers: [
            socketReads,
            FrameHandler(limits: .init(maximumLineBytes: 16), stripsTelnet: true, greetingWindow: Self.window),
            readCompletes,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        let count = 2 * perRead + 5
        let expected = (1...count).map { line("line \($0)") }
        try write(channel, (1...count).map { "line \($0)\n" }.joined())

        // The read that brought the bytes: the greeting (which is not a line) and the first framesPerRead lines.
        #expect(try frames(channel) == [.greet] + expected[0..<perRead])
        #expect(readCompletes.count == 1)
        // Nothing more until the next handler asks, however long it takes.
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try frames(channel) == [])

        // Each read() is served from the buffered lines, with a read complete, and does not reach the socket.
        channel.read()
        #expect(try frames(channel) == Array(expected[perRead..<2 * perRead]))
        #expect(readCompletes.count == 2)
        #expect(socketReads.count == 0)
        channel.pipeline.read()
        #expect(try frames(channel) == Array(expected[(2 * perRead)...]))
        #expect(readCompletes.count == 3)
        #expect(socketReads.count == 0)

        // With no complete line left (only a partial one), read() goes to the socket and delivers nothing.
        try write(channel, "partial")
        #expect(try frames(channel) == [])
        #expect(readCompletes.count == 4)  // the one of the write itself, passed on
        channel.read()
        #expect(try frames(channel) == [])
        #expect(socketReads.count == 1)
        #expect(readCompletes.count == 4)
        try write(channel, " line\n")
        #expect(try frames(channel) == [line("partial line")])
        #expect(try channel.finish().isClean)
    }

    @Test("exactly framesPerRead lines in one read are all delivered; the next read() goes to the socket")
    func framesPerReadExactly() throws {
        let perRead = FrameHandler.framesPerRead
        let socketReads = ReadCounter()
        let channel = EmbeddedChannel(handlers: [
            socketReads, FrameHandler(limits: .init(maximumLineBytes: 16), stripsTelnet: true, greetingWindow: nil),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        try write(channel, (1...perRead).map { "l\($0)\n" }.joined() + "\n\r\n")
        #expect(try frames(channel) == (1...perRead).map { line("l\($0)") })
        channel.read()
        #expect(try frames(channel) == [])
        #expect(socketReads.count == 1)
        #expect(try channel.finish().isClean)
    }

    @Test("telnet negotiation is stripped and answered, and overlong lines are reported through the handler")
    func framingThroughHandler() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(bytes: [0xFF, 0xFB, 0x01] + Array("hi\n".utf8)))
        try write(channel, String(repeating: "x", count: 20) + "\nok\n")
        // The first byte was IAC, not '{': a telnet client is a person. Its offer to echo is refused.
        #expect(try frames(channel) == [.greet, .telnet(ByteBuffer(bytes: [0xFF, 0xFE, 0x01])), line("hi"), .overlong(20), line("ok")])
        #expect(try channel.finish().isClean)
    }
}

/// Counts the reads that reach the socket (the head of the pipeline).
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

/// Counts the read completes that reach the end of the pipeline, passing frames on.
private final class ReadCompleteCounter: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    private(set) var count = 0

    func channelReadComplete(context: ChannelHandlerContext) {
        count += 1
        context.fireChannelReadComplete()
    }
}
