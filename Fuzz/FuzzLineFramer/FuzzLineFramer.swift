import NIOCore
import ParleyProtocols

/// `LineFramer` with telnet negotiation, as the plain-text port runs it (and with lone CRs ending lines, as
/// the IRC port does): the input is cut into reads by its own first bytes, and every promise the framer makes
/// is checked — lines never empty nor longer than the limit, buffered input bounded, telnet answers bounded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let control = bytes.first else { return 0 }
    let limits = LineFramer.Limits(maximumLineBytes: 32, hardLimitBytes: 256)
    var framer = LineFramer(limits: limits, stripsTelnet: control & 1 == 0, carriageReturnEndsLine: control & 2 != 0)
    let chunk = Int(control >> 2) + 1
    var input = bytes.dropFirst()
    var closed = false
    while !input.isEmpty {
        let piece = input.prefix(chunk)
        input = input.dropFirst(piece.count)
        framer.append(ByteBuffer(bytes: piece))
        while let frame = framer.next() {
            switch frame {
            case .line(let line):
                precondition(line.readableBytes > 0, "an empty line")
                precondition(line.readableBytes <= limits.maximumLineBytes, "a line over the limit")
            case .overlong(let length):
                precondition(length > limits.maximumLineBytes, "overlong but within the limit")
            case .overflow:
                precondition(!closed, "two overflows")
                closed = true
            case .telnet(let answer):
                precondition(answer.readableBytes <= 1024, "an unbounded telnet answer")
            case .greet, .json:
                preconditionFailure("the framer never sniffs")
            }
        }
        // Unread input is at most a line (plus its CR) and one read.
        precondition(framer.bufferedBytes <= limits.maximumLineBytes + 1 + chunk, "\(framer.bufferedBytes) bytes buffered")
    }
    return 0
}
