import NIOCore

/// Splits a byte stream into bounded lines, dropping telnet negotiation on the way.
///
/// Memory is bounded by `maximumLineBytes`: a longer line is not buffered but counted while it is skipped, and
/// reported as `.overlong` when its newline comes, or as `.overflow` once `hardLimitBytes` pass with no newline.
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
        case skipping(bytes: Int)
        case closed
    }

    /// Where the telnet filter is inside an IAC sequence (RFC 854/855).
    private enum Telnet: Sendable {
        case data, command, option, subnegotiation, subnegotiationCommand
    }

    public let limits: Limits
    private let stripsTelnet: Bool
    private var state = State.collecting
    private var telnet = Telnet.data
    private var pending = ByteBuffer()
    /// The last byte skipped so far, to tell whether a skipped line ended in CRLF.
    private var lastSkipped: UInt8?

    /// `stripsTelnet` removes IAC sequences. It is safe on UTF-8 input, where the byte 0xFF never occurs.
    public init(limits: Limits, stripsTelnet: Bool) {
        self.limits = limits
        self.stripsTelnet = stripsTelnet
    }

    /// Consumes `input` and appends the frames it completes.
    public mutating func feed(_ input: ByteBuffer, into frames: inout [InboundFrame]) {
        var data = input
        if stripsTelnet && (telnet != .data || data.readableBytesView.contains(0xFF)) {
            data = filterTelnet(data)
        }
        while data.readableBytes > 0 {
            let newline = data.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))
            switch state {
            case .closed:
                return
            case .skipping(let skipped):
                guard let newline else {
                    lastSkipped = data.readableBytesView.last
                    skip(skipped + data.readableBytes, into: &frames)
                    return
                }
                var total = skipped + (newline - data.readerIndex)
                let lastByte = newline > data.readerIndex ? data.getInteger(at: newline - 1, as: UInt8.self) : lastSkipped
                if lastByte == UInt8(ascii: "\r") { total -= 1 }  // the length of the line, not of its terminator
                data.moveReaderIndex(to: newline + 1)
                state = .collecting
                frames.append(.overlong(total))
            case .collecting:
                guard let newline else {
                    if pending.readableBytes + data.readableBytes > limits.maximumLineBytes + 1 {  // +1: a CR may follow
                        lastSkipped = data.readableBytesView.last
                        let total = pending.readableBytes + data.readableBytes
                        pending = ByteBuffer()
                        skip(total, into: &frames)
                    } else {
                        pending.writeImmutableBuffer(data)
                    }
                    return
                }
                var line = data.readSlice(length: newline - data.readerIndex)!
                data.moveReaderIndex(forwardBy: 1)
                if pending.readableBytes > 0 {
                    pending.writeBuffer(&line)
                    line = pending
                    pending = ByteBuffer()
                }
                if line.readableBytesView.last == UInt8(ascii: "\r") {
                    line.moveWriterIndex(to: line.writerIndex - 1)
                }
                if line.readableBytes > limits.maximumLineBytes {
                    frames.append(.overlong(line.readableBytes))
                } else {
                    frames.append(.line(line))
                }
            }
        }
    }

    private mutating func skip(_ total: Int, into frames: inout [InboundFrame]) {
        if total > limits.hardLimitBytes {
            state = .closed
            frames.append(.overflow)
        } else {
            state = .skipping(bytes: total)
        }
    }

    private mutating func filterTelnet(_ input: ByteBuffer) -> ByteBuffer {
        var output = ByteBuffer()
        output.reserveCapacity(input.readableBytes)
        for byte in input.readableBytesView {
            switch (telnet, byte) {
            case (.data, 0xFF): telnet = .command
            case (.data, _): output.writeInteger(byte)
            case (.command, 0xFF): output.writeInteger(byte); telnet = .data  // IAC IAC is a literal 255
            case (.command, 0xFB...0xFE): telnet = .option  // WILL, WONT, DO, DONT take one option byte
            case (.command, 0xFA): telnet = .subnegotiation  // SB … IAC SE
            case (.command, 0xF0...0xF9): telnet = .data  // two-byte commands: NOP, IP, AYT, GA, …
            case (.command, _):
                // Not a telnet command: a stray 0xFF in invalid UTF-8. Keep both bytes; they decode to U+FFFD.
                output.writeInteger(UInt8(0xFF))
                output.writeInteger(byte)
                telnet = .data
            case (.option, _): telnet = .data
            case (.subnegotiation, 0xFF): telnet = .subnegotiationCommand
            case (.subnegotiation, _): continue
            case (.subnegotiationCommand, 0xF0): telnet = .data
            case (.subnegotiationCommand, _): telnet = .subnegotiation
            }
        }
        return output
    }
}
