import NIOCore
import NIOEmbedded
import Testing

@testable import ParleyServer

/// The outbox and the per-loop drainer on an `EmbeddedChannel`, whose clock the tests move.
@Suite("Outbox drains")
struct DrainTests {
    let channel = EmbeddedChannel()
    let outbox: Outbox

    init() throws {
        outbox = try Outbox(channel: channel, limitBytes: 1024, linger: .seconds(2))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    func written() throws -> [String] {
        var lines: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { lines.append(String(buffer: buffer)) }
        return lines
    }

    func offer(_ drainer: LoopDrainer, _ text: String) {
        if outbox.offer(ByteBuffer(string: text)) == .needsDrain { drainer.drain([outbox]) }
        channel.embeddedEventLoop.run()
    }

    @Test("a lone message goes out at once; what follows within the interval waits for its end and goes out together")
    func coalescing() throws {
        let drainer = LoopDrainer(loop: channel.embeddedEventLoop, flushInterval: .milliseconds(5))
        offer(drainer, "one")
        #expect(try written() == ["one"])
        offer(drainer, "two")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        offer(drainer, "three")
        #expect(try written() == [])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(3))
        #expect(try written() == ["twothree"])  // one write
        // Quiet for longer than the interval: at once again.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(20))
        offer(drainer, "four")
        #expect(try written() == ["four"])
    }

    @Test("a batch that offers 16 KiB drains at once, including connections already waiting for the interval")
    func largeBatch() throws {
        let other = EmbeddedChannel(loop: channel.embeddedEventLoop)
        let big = try Outbox(channel: other, limitBytes: 1 << 20, linger: .seconds(2))
        try other.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let requests = DrainRequests(flushInterval: .seconds(1))
        let line = ByteBuffer(repeating: 0x61, count: 100)
        func deliver(_ count: Int) {
            requests.collect { drains in
                for _ in 0..<count {
                    drains.offer(line, to: big)
                    drains.delivered(bytes: line.readableBytes)
                }
            }
        }
        func sent() throws -> Int {
            var bytes = 0
            while let buffer = try other.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytes }
            return bytes
        }
        deliver(1)
        requests.request()
        channel.embeddedEventLoop.run()
        #expect(try sent() == 100)  // after quiet: at once
        deliver(1)
        requests.request()
        channel.embeddedEventLoop.run()
        #expect(try sent() == 0)  // within the interval: waits
        let many = Drains.bytesPerRequest / 100 + 1
        deliver(many)
        channel.embeddedEventLoop.run()
        #expect(try sent() == 100 + many * 100)  // too much to wait: at once
    }

    @Test("with no interval every drain goes out at once")
    func noInterval() throws {
        let drainer = LoopDrainer(loop: channel.embeddedEventLoop, flushInterval: .zero)
        for text in ["one", "two", "three"] {
            offer(drainer, text)
            #expect(try written() == [text])
        }
    }

    @Test("past its limit the outbox drops what it holds and closes the channel; a finished one sends what is left, then closes")
    func endings() async throws {
        outbox.send(ByteBuffer(repeating: 0x61, count: 1000))
        #expect(outbox.offer(ByteBuffer(repeating: 0x62, count: 100)) == .dropped)
        #expect(outbox.phase == .overflowed)
        channel.embeddedEventLoop.run()
        #expect(try written() == [])
        #expect(!channel.isActive)

        let other = EmbeddedChannel()
        let finishing = try Outbox(channel: other, limitBytes: 1024, linger: .seconds(2))
        try await other.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        finishing.send(ByteBuffer(string: "last words"))
        finishing.finish()
        #expect(finishing.offer(ByteBuffer(string: "too late")) == .dropped)
        other.embeddedEventLoop.run()
        var sent: [String] = []
        while let buffer = try other.readOutbound(as: ByteBuffer.self) { sent.append(String(buffer: buffer)) }
        #expect(sent.filter { !$0.isEmpty } == ["last words"])
        #expect(!other.isActive)
    }

    // MARK: Holds

    func send(_ text: String) {
        outbox.send(ByteBuffer(string: text))
        channel.embeddedEventLoop.run()
    }

    func release(_ hold: UInt64, _ text: String?) {
        outbox.release(hold, with: text.map { ByteBuffer(string: $0) })
        channel.embeddedEventLoop.run()
    }

    @Test("a hold keeps its place: what comes after waits, released out of order it still goes out in order")
    func holdsKeepOrder() throws {
        send("a")
        let first = outbox.hold()
        send("b")
        let second = outbox.hold()
        send("c")
        #expect(try written() == ["a"])
        release(second, "2")
        #expect(try written() == [], "the second waits for the first")
        release(first, "1")
        #expect(try written() == ["1b2c"])
        send("d")
        #expect(try written() == ["d"])
    }

    @Test("what waits behind a hold counts against the limit; a reply larger than the limit gets in only at the head")
    func holdsAndTheLimit() throws {
        let hold = outbox.hold()
        send(String(repeating: "x", count: 600))
        #expect(outbox.phase == .open)
        send(String(repeating: "y", count: 600))  // 1,200 held bytes: past 1,024
        #expect(outbox.phase == .overflowed)
        release(hold, "late")  // nothing happens: the outbox is gone
        #expect(try written() == [])
    }

    @Test("a large reply at the head of the stream is let in whole")
    func largeReplyAtHead() throws {
        let hold = outbox.hold()
        release(hold, String(repeating: "h", count: 5000))
        #expect(outbox.phase == .open)
        #expect(try written().first?.count == 5000)
    }

    @Test("finishing while a hold is pending: the goodbye waits behind the reply; the linger bounds it")
    func finishWhileHeld() throws {
        let hold = outbox.hold()
        send("bye")
        outbox.finish()
        channel.embeddedEventLoop.run()
        #expect(try written() == [])
        release(hold, "reply")
        #expect(try written() == ["replybye", ""])
        // Never released: the channel closes at the linger anyway.
        let other = EmbeddedChannel(loop: channel.embeddedEventLoop)
        let stuck = try Outbox(channel: other, limitBytes: 1024, linger: .seconds(2))
        try other.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = stuck.hold()
        stuck.finish()
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!other.isActive)
    }
}
