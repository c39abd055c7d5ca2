import NIOCore
import ParleyProtocols
import Testing

/// Feeds `bytes` to a fresh framer in chunks of `chunkSize` bytes (the whole input at once when nil); the
/// answers to telnet negotiation are left out unless `answers`.
private func frame(
    _ bytes: [UInt8], chunkSize: Int? = nil, limits: LineFramer.Limits = .init(maximumLineBytes: 16, hardLimitBytes: 64),
    stripsTelnet: Bool = true, answers: Bool = false
) -> [InboundFrame] {
    var framer = LineFramer(limits: limits, stripsTelnet: stripsTelnet)
    return feed(&framer, bytes, chunkSize: chunkSize, answers: answers)
}

private func feed(_ framer: inout LineFramer, _ bytes: [UInt8], chunkSize: Int? = nil, answers: Bool = false) -> [InboundFrame] {
    var frames: [InboundFrame] = []
    var start = 0
    repeat {
        let end = min(bytes.count, start + (chunkSize ?? bytes.count))
        framer.feed(ByteBuffer(bytes: bytes[start..<end]), into: &frames)
        start = end
    } while start < bytes.count
    return answers ? frames : frames.filter { if case .telnet = $0 { false } else { true } }
}

/// Every telnet answer among `frames`, joined.
private func answers(_ frames: [InboundFrame]) -> [UInt8] {
    frames.flatMap { frame -> [UInt8] in
        guard case .telnet(let bytes) = frame else { return [] }
        return Array(bytes.readableBytesView)
    }
}

private func line(_ text: String) -> InboundFrame { .line(ByteBuffer(string: text)) }
private func line(_ bytes: [UInt8]) -> InboundFrame { .line(ByteBuffer(bytes: bytes)) }
private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Telnet bytes (RFC 854).
private let IAC: UInt8 = 0xFF
private let WILL: UInt8 = 0xFB
private let WONT: UInt8 = 0xFC
private let DO: UInt8 = 0xFD
private let DONT: UInt8 = 0xFE
private let SB: UInt8 = 0xFA
private let SE: UInt8 = 0xF0
private let IP: UInt8 = 0xF4
private let NOP: UInt8 = 0xF1
private let AYT: UInt8 = 0xF6
private let ECHO: UInt8 = 1
private let SGA: UInt8 = 3
private let TM: UInt8 = 6

@Suite("LineFramer")
struct LineFramerTests {
    static let chunkSizes: [Int?] = [nil, 1, 2, 3, 5, 7, 16]

    @Test("lines end at LF or CRLF, whatever the chunking", arguments: chunkSizes)
    func lines(_ chunkSize: Int?) {
        let input = bytes("hello\nworld\r\nhéllo 👋\r\n")
        #expect(frame(input, chunkSize: chunkSize) == [line("hello"), line("world"), line("héllo 👋")])
    }

    @Test("with carriageReturnEndsLine a lone CR ends a line too, and CRLF is still one end", arguments: chunkSizes)
    func carriageReturn(_ chunkSize: Int?) {
        var framer = LineFramer(limits: .init(maximumLineBytes: 16), stripsTelnet: false, carriageReturnEndsLine: true)
        let frames = feed(&framer, bytes("one\rtwo\r\nthree\nfour\r\r"), chunkSize: chunkSize)
        #expect(frames == [line("one"), line("two"), line("three"), line("four")])
        #expect(frame(bytes("a\rb\n")) == [line("a\rb")], "without it, a CR inside a line stays")
    }

    @Test("empty lines are dropped", arguments: chunkSizes)
    func emptyLines(_ chunkSize: Int?) {
        #expect(frame(bytes("\n\r\n\nx\n"), chunkSize: chunkSize) == [line("x")])
        #expect(frame(bytes("\r\n"), chunkSize: chunkSize) == [])
        #expect(frame(bytes("\n"), chunkSize: chunkSize) == [])
        #expect(frame(bytes("a\n\n\r\nb\r\n\r\n\n"), chunkSize: chunkSize) == [line("a"), line("b")])
        // A line that is only telnet negotiation is empty once the negotiation is removed.
        #expect(frame([IAC, WILL, 1] + bytes("\r\n") + bytes("c\n"), chunkSize: chunkSize) == [line("c")])
        // White space is not empty.
        #expect(frame(bytes(" \n\t\r\n"), chunkSize: chunkSize) == [line(" "), line("\t")])
    }

    @Test("a .line frame is never empty, whatever the input and chunking", arguments: chunkSizes)
    func linesNeverEmpty(_ chunkSize: Int?) {
        let input = bytes("\r\n\n\r\r\n") + [IAC, DO, 3] + bytes("\n") + bytes(String(repeating: "x", count: 17) + "\n\n")
            + [IAC, IAC] + bytes("\r\n\n\n")
        let frames = frame(input, chunkSize: chunkSize)
        #expect(frames == [line("\r"), .overlong(17), line([IAC])])
        for case .line(let bytes) in frames { #expect(bytes.readableBytes > 0) }
    }

    @Test("a partial line waits for its newline")
    func partialLine() {
        var framer = LineFramer(limits: .init(maximumLineBytes: 16), stripsTelnet: false)
        #expect(feed(&framer, bytes("abc")) == [])
        #expect(feed(&framer, bytes("def")) == [])
        #expect(feed(&framer, bytes("\r")) == [])
        #expect(feed(&framer, bytes("\nghi\nj")) == [line("abcdef"), line("ghi")])
        #expect(feed(&framer, bytes("\n")) == [line("j")])
    }

    @Test("only a CR right before the LF is removed")
    func innerCarriageReturn() {
        #expect(frame(bytes("a\rb\n\r\r\n")) == [line("a\rb"), line("\r")])
    }

    @Test("bytes are passed on as they are, invalid UTF-8 included")
    func rawBytes() {
        #expect(frame([0x61, 0xC3, 0x28, 0x0A], stripsTelnet: false) == [line([0x61, 0xC3, 0x28])])
    }

    @Test("a line exactly at the limit passes", arguments: chunkSizes)
    func atLimit(_ chunkSize: Int?) {
        let sixteen = String(repeating: "x", count: 16)
        let input = bytes(sixteen + "\n" + sixteen + "\r\n")
        #expect(frame(input, chunkSize: chunkSize) == [line(sixteen), line(sixteen)])
    }

    @Test("a line one byte over the limit is reported and dropped; the next line is framed", arguments: chunkSizes)
    func overLimit(_ chunkSize: Int?) {
        let input = bytes(String(repeating: "x", count: 17) + "\nnext\n")
        #expect(frame(input, chunkSize: chunkSize) == [.overlong(17), line("next")])
    }

    @Test("a long line below the hard limit is reported with its length", arguments: chunkSizes)
    func longLine(_ chunkSize: Int?) {
        let input = bytes("ok\n" + String(repeating: "y", count: 60) + "\nafter\n")
        #expect(frame(input, chunkSize: chunkSize) == [line("ok"), .overlong(60), line("after")])
    }

    @Test("an overlong CRLF line reports its length without the terminator", arguments: chunkSizes)
    func overlongCRLF(_ chunkSize: Int?) {
        let input = bytes(String(repeating: "x", count: 20) + "\r\nnext\r\n")
        let frames = frame(input, chunkSize: chunkSize)
        #expect(frames.last == line("next"))
        #expect(frames.count == 2)
        // However the bytes were chunked, the CR of CRLF is not part of the line's length.
        #expect(frames.first == .overlong(20))
    }

    @Test("bytes without a newline past the hard limit give one overflow, then nothing", arguments: chunkSizes)
    func overflow(_ chunkSize: Int?) {
        var framer = LineFramer(limits: .init(maximumLineBytes: 16, hardLimitBytes: 64), stripsTelnet: true)
        #expect(feed(&framer, bytes("first\n")) == [line("first")])
        #expect(feed(&framer, Array(repeating: UInt8(ascii: "z"), count: 64), chunkSize: chunkSize) == [])
        #expect(feed(&framer, bytes("z")) == [.overflow])
        // Closed for good: more bytes, newlines and whole lines give nothing.
        #expect(feed(&framer, Array(repeating: UInt8(ascii: "z"), count: 200), chunkSize: chunkSize) == [])
        #expect(feed(&framer, bytes("\nhello\n\n"), chunkSize: chunkSize) == [])
    }

    @Test("1 MiB without a newline gives one overflow and never buffers more than a line", arguments: [1, 1000, 4097, 65536])
    func memoryBound(_ chunkSize: Int) {
        let limits = LineFramer.Limits()
        var framer = LineFramer(limits: limits, stripsTelnet: true)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "z"), count: chunkSize)
        var frames: [InboundFrame] = []
        var appended = 0
        var largestBuffered = 0
        while appended < 1 << 20 {
            framer.append(chunk)
            appended += chunkSize
            while let frame = framer.next() { frames.append(frame) }
            if frames.isEmpty {
                // Still collecting (or skipping): at most one line and the CR of its CRLF are kept.
                largestBuffered = max(largestBuffered, framer.bufferedBytes)
                #expect(framer.bufferedBytes <= limits.maximumLineBytes + 1, "after \(appended) bytes")
            }
        }
        #expect(frames == [.overflow])
        #expect(largestBuffered <= limits.maximumLineBytes + 1)
        #expect(framer.bufferedBytes == 0)
    }

    @Test("one big chunk past the hard limit overflows at once")
    func overflowInOneChunk() {
        let frames = frame(Array(repeating: UInt8(ascii: "z"), count: 1000) + bytes("\nlater\n"), chunkSize: 1000)
        #expect(frames == [.overflow])
    }

    @Test("limits are clamped: at least 16 bytes, hard limit at least the line limit, 16 times by default")
    func limits() {
        #expect(LineFramer.Limits(maximumLineBytes: 1).maximumLineBytes == 16)
        #expect(LineFramer.Limits(maximumLineBytes: 100).hardLimitBytes == 1600)
        #expect(LineFramer.Limits(maximumLineBytes: 100, hardLimitBytes: 10).hardLimitBytes == 100)
        #expect(LineFramer.Limits().maximumLineBytes == 4096)
    }

    // MARK: Telnet

    @Test("option negotiation is removed", arguments: chunkSizes)
    func negotiation(_ chunkSize: Int?) {
        let input: [UInt8] = [IAC, WILL, 1] + bytes("he") + [IAC, DO, 3] + bytes("l") + [IAC, WONT, 34] + bytes("lo")
            + [IAC, DONT, 31] + bytes("\n")
        #expect(frame(input, chunkSize: chunkSize) == [line("hello")])
    }

    @Test("Ctrl+C in telnet (IP, then DO TIMING-MARK) is answered WILL TIMING-MARK, every time it comes", arguments: chunkSizes)
    func timingMark(_ chunkSize: Int?) {
        let ctrlC: [UInt8] = [IAC, IP, IAC, DO, TM]
        var framer = LineFramer(limits: .init(maximumLineBytes: 16), stripsTelnet: true)
        let first = feed(&framer, bytes("hi\r\n") + ctrlC, chunkSize: chunkSize, answers: true)
        let second = feed(&framer, bytes("again\r\n") + ctrlC, chunkSize: chunkSize, answers: true)
        #expect(answers(first) == [IAC, WILL, TM])
        #expect(answers(second) == [IAC, WILL, TM])
        #expect((first + second).filter { if case .telnet = $0 { false } else { true } } == [line("hi"), line("again")])
        // The answer comes before the lines framed after it: it is about bytes already read.
        if chunkSize == nil { #expect(first.first == .telnet(ByteBuffer(bytes: [IAC, WILL, TM]))) }
        // Many marks in one read ask no more than one does.
        #expect(answers(frame(Array(repeating: ctrlC, count: 50).flatMap { $0 }, answers: true)) == [IAC, WILL, TM])
    }

    @Test("suppress-go-ahead is agreed to once each way; every other option is refused, echo included")
    func optionAnswers() {
        // The client asks the server to suppress go-ahead and to echo, and offers to suppress go-ahead itself
        // and to send its terminal type and window size.
        let offers: [UInt8] = [IAC, DO, SGA, IAC, DO, ECHO, IAC, WILL, SGA, IAC, WILL, 24, IAC, WILL, 31]
        #expect(answers(frame(offers, answers: true)) == [IAC, WILL, SGA, IAC, WONT, ECHO, IAC, DO, SGA, IAC, DONT, 24, IAC, DONT, 31])
        // Asked again, an option already on is not acknowledged again (RFC 854: no loops); switching it off is.
        var framer = LineFramer(limits: .init(maximumLineBytes: 16), stripsTelnet: true)
        #expect(answers(feed(&framer, [IAC, DO, SGA], answers: true)) == [IAC, WILL, SGA])
        #expect(answers(feed(&framer, [IAC, DO, SGA], answers: true)) == [])
        #expect(answers(feed(&framer, [IAC, DONT, SGA], answers: true)) == [IAC, WONT, SGA])
        #expect(answers(feed(&framer, [IAC, DONT, SGA, IAC, DONT, ECHO, IAC, WONT, 24], answers: true)) == [])
        #expect(answers(feed(&framer, [IAC, WILL, SGA, IAC, WONT, SGA, IAC, WONT, SGA], answers: true)) == [IAC, DO, SGA, IAC, DONT, SGA])
        // Are-you-there gets a line a person can read.
        #expect(answers(frame([IAC, AYT], answers: true)) == bytes("*** Parley is here.\n"))
    }

    @Test("a flood of negotiation gets a bounded answer, never more than it sent")
    func answersBounded() {
        let presence: [UInt8] = Array(repeating: [IAC, AYT], count: 10_000).flatMap { $0 }
        let marks: [UInt8] = Array(repeating: [IAC, DO, TM], count: 10_000).flatMap { $0 }
        let options: [UInt8] = Array(repeating: [IAC, DO, 24], count: 10_000).flatMap { $0 }
        let flood = presence + marks + options
        #expect(answers(frame(flood, answers: true)).count <= 1024)
        // Read in small pieces, each piece gets its own answers: bounded per read, and by what was sent.
        #expect(answers(frame(flood, chunkSize: 64, answers: true)).count <= flood.count)
    }

    @Test("without telnet stripping nothing is answered")
    func noAnswersWithoutStripping() {
        #expect(answers(frame([IAC, DO, TM] + bytes("a\n"), stripsTelnet: false, answers: true)) == [])
    }

    @Test("an option byte is not data, even when it is a newline")
    func optionByteIsNotData() {
        #expect(frame([IAC, WILL, 0x0A] + bytes("ab\n")) == [line("ab")])
    }

    @Test("subnegotiation is removed up to IAC SE, escaped 0xFF inside included", arguments: chunkSizes)
    func subnegotiation(_ chunkSize: Int?) {
        let terminalType: [UInt8] = [IAC, SB, 24, 0] + bytes("xterm\n") + [IAC, IAC, 7, IAC, SE]
        let input = bytes("ab") + terminalType + bytes("cd\n")
        #expect(frame(input, chunkSize: chunkSize) == [line("abcd")])
    }

    @Test("IAC IAC is a literal 0xFF", arguments: chunkSizes)
    func escapedIAC(_ chunkSize: Int?) {
        let input: [UInt8] = bytes("a") + [IAC, IAC] + bytes("b\n")
        #expect(frame(input, chunkSize: chunkSize) == [line([0x61, 0xFF, 0x62])])
    }

    @Test("two-byte commands are removed", arguments: chunkSizes)
    func twoByteCommands(_ chunkSize: Int?) {
        let input: [UInt8] = bytes("a") + [IAC, IP] + bytes("b") + [IAC, NOP, IAC, AYT] + bytes("c\r\n")
        #expect(frame(input, chunkSize: chunkSize) == [line("abc")])
    }

    @Test("a stray 0xFF before a byte that is no telnet command is kept, newline included", arguments: chunkSizes)
    func strayIAC(_ chunkSize: Int?) {
        let input: [UInt8] = bytes("a") + [IAC] + bytes("b\nc") + [IAC] + bytes("\nd\n")
        #expect(frame(input, chunkSize: chunkSize) == [line([0x61, IAC, 0x62]), line([0x63, IAC]), line("d")])
    }

    @Test("a sequence split across feeds is removed")
    func splitAcrossFeeds() {
        var framer = LineFramer(limits: .init(maximumLineBytes: 16), stripsTelnet: true)
        #expect(feed(&framer, bytes("ab") + [IAC]) == [])
        #expect(feed(&framer, [WILL]) == [])
        #expect(feed(&framer, [1] + bytes("cd\n") + [IAC, SB, 24]) == [line("abcd")])
        #expect(feed(&framer, bytes("in sb\n") + [IAC]) == [])
        #expect(feed(&framer, [SE] + bytes("ef\n")) == [line("ef")])
    }

    @Test("without telnet stripping, 0xFF bytes pass through")
    func noStripping() {
        let input: [UInt8] = bytes("a") + [IAC, WILL, 1, IAC, IAC] + bytes("b\n")
        #expect(frame(input, stripsTelnet: false) == [line([0x61, IAC, WILL, 1, IAC, IAC, 0x62])])
        #expect(frame(input, chunkSize: 1, stripsTelnet: false) == [line([0x61, IAC, WILL, 1, IAC, IAC, 0x62])])
    }

    @Test("telnet bytes do not count toward the line limit")
    func telnetNotCounted() {
        let sixteen = String(repeating: "x", count: 16)
        let input: [UInt8] = [IAC, WILL, 1, IAC, DO, 3, IAC, SB, 24, 0, 1, 2, 3, 4, IAC, SE] + bytes(sixteen + "\n")
        #expect(frame(input, chunkSize: 1) == [line(sixteen)])
    }
}
