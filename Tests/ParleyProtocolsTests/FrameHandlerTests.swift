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

    @Test("a client opening with '{' is not greeted; its lines are framed")
    func jsonClient() throws {
        let channel = try makeChannel()
        try write(channel, "{\"type\":\"hello\"}\n{\"type\":")
        #expect(try frames(channel) == [line("{\"type\":\"hello\"}")])
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
        // Decided: a later '{' or any other byte brings no second greeting.
        try write(channel, "bob\n")
        #expect(try frames(channel) == [line("bob")])
        #expect(try channel.finish().isClean)
    }

    @Test("an empty read decides nothing")
    func emptyRead() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer())
        #expect(try frames(channel) == [])
        try write(channel, "{}\n")
        #expect(try frames(channel) == [line("{}")])
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try frames(channel) == [])
        #expect(try channel.finish().isClean)
    }

    @Test("without a greeting window there is never a greeting")
    func noWindow() throws {
        let channel = try makeChannel(greetingWindow: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(try frames(channel) == [])
        try write(channel, "alice\n")
        #expect(try frames(channel) == [line("alice")])
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

    @Test("telnet negotiation is stripped and overlong lines are reported through the handler")
    func framingThroughHandler() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(bytes: [0xFF, 0xFB, 0x01] + Array("hi\n".utf8)))
        try write(channel, String(repeating: "x", count: 20) + "\nok\n")
        // The first byte was IAC, not '{': a telnet client is a person.
        #expect(try frames(channel) == [.greet, line("hi"), .overlong(20), line("ok")])
        #expect(try channel.finish().isClean)
    }
}
