import NIOCore

/// Splits a byte stream into bounded lines, taking telnet negotiation out on the way (and handing on its answers
/// as `.telnet` frames, see `TelnetNegotiation`).
///
/// Framing is lazy: `append` only stores bytes, `next()` cuts one frame at a time, so a connection's unread
/// input stays as raw bytes (bounded by what one socket read brings) instead of becoming thousands of frames.
/// A line longer than `maximumLineBytes` is not buffered but counted while it is skipped, and reported as
/// `.overlong` when its newline comes, or as `.overflow` once `hardLimitBytes` pass with no newline. Empty
/// lines are dropped: no mode gives them a meaning.
public struct LineFramer: Sendable {
    public struct Limits: Sendable, Equatable {
        /// The longest line accepted, in bytes, without its terminator.
        public var maximumLineBytes: Int
        /// How many bytes without any newline are skipped before the connection is given up.
        public var hardLimitBytes: Int

        public init(maximumLineBytes: Int = 4096, hardLimitBytes: Int? = nil) {
            self.maximumLineBytes = max(16, maximumLineBytes)
            self.hardLimitBytes = max(self.maximumLineBytes, hardLimitBytes ?? self.maximumLineBytes * 16)
        }
    }

    private enum State: Sendable {
        case collecting
        /// Inside an over-long line: `bytes` skipped so far, `lastByte` to tell whether it ends in CRLF.
        case skipping(bytes: Int, lastByte: UInt8?)
        case closed
    }

    public let limits: Limits
    private let stripsTelnet: Bool
    /// A lone CR ends a line too (IRC, where some clients send one).
    private let carriageReturnEndsLine: Bool
    private var state = State.collecting
    private var telnet = TelnetNegotiation()
    /// Filtered bytes not yet framed; while collecting, the start of the current line.
    private var buffered = ByteBuffer()

    /// `stripsTelnet` removes IAC sequences and answers them. It is safe on UTF-8 input, where the byte 0xFF
    /// never occurs.
    public init(limits: Limits, stripsTelnet: Bool, carriageReturnEndsLine: Bool = false) {
        self.limits = limits
        self.stripsTelnet = stripsTelnet
        self.carriageReturnEndsLine = carriageReturnEndsLine
    }

    /// Bytes waiting to be framed (for tests of the memory bound).
    public var bufferedBytes: Int { buffered.readableBytes }

    /// Stores bytes for `next()`.
    public mutating func append(_ input: ByteBuffer) {
        if case .closed = state { return }
        if stripsTelnet && (telnet.isInsideCommand || input.readableBytesView.contains(TelnetNegotiation.IAC)) {
            telnet.filter(input, into: &buffered)
        } else {
            buffered.writeImmutableBuffer(input)
        }
    }

    /// Consumes `input` and appends every frame it completes.
    public mutating func feed(_ input: ByteBuffer, into frames: inout [InboundFrame]) {
        append(input)
        while let frame = next() { frames.append(frame) }
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() -> InboundFrame? {
        // Answers first: they are about bytes already read, and a telnet client may be waiting for one.
        if let replies = telnet.takeReplies() { return .telnet(replies) }
        defer { compact() }
        while buffered.readableBytes > 0 {
            let newline = carriageReturnEndsLine
                ? buffered.readableBytesView.firstIndex { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
                : buffered.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))
            switch state {
            case .closed:
                buffered.clear()
                return nil
            case .skipping(let skipped, let lastSkipped):
                guard let newline else {
                    let last = buffered.readableBytesView.last
                    let total = skipped + buffered.readableBytes
                    buffered.clear()
                    return skip(total, lastByte: last)
                }
                var total = skipped + (newline - buffered.readerIndex)
                let lastByte = newline > buffered.readerIndex ? buffered.getInteger(at: newline - 1, as: UInt8.self) : lastSkipped
                if lastByte == UInt8(ascii: "\r") { total -= 1 }  // the length of the line, not of its terminator
                buffered.moveReaderIndex(to: newline + 1)
                state = .collecting
                return .overlong(total)
            case .collecting:
                guard let newline else {
                    // +1: the CR of a CRLF may still follow a line of exactly the maximum length.
                    guard buffered.readableBytes > limits.maximumLineBytes + 1 else { return nil }
                    let last = buffered.readableBytesView.last
                    let total = buffered.readableBytes
                    buffered.clear()
                    return skip(total, lastByte: last)
                }
                var line = buffered.readSlice(length: newline - buffered.readerIndex)!
                buffered.moveReaderIndex(forwardBy: 1)
                if line.readableBytesView.last == UInt8(ascii: "\r") {
                    line.moveWriterIndex(to: line.writerIndex - 1)
                }
                if line.readableBytes > limits.maximumLineBytes { return .overlong(line.readableBytes) }
                if line.readableBytes > 0 { return .line(line) }
            }
        }
        return nil
    }

    /// Starts or continues skipping; past the hard limit the framer closes and says so, once.
    private mutating func skip(_ total: Int, lastByte: UInt8?) -> InboundFrame? {
        guard total > limits.hardLimitBytes else {
            state = .skipping(bytes: total, lastByte: lastByte)
            return nil
        }
        state = .closed
        return .overflow
    }

    /// Gives back the space of framed lines once it is most of the buffer.
    private mutating func compact() {
        if buffered.readerIndex > 4096 && buffered.readerIndex > buffered.readableBytes {
            buffered.discardReadBytes()
        }
    }
}
