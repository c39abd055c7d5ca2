import NIOCore
import ParleyProtocols
import Synchronization

/// IRCv3 labeled-response: the replies to one line a client labeled (`@label=x`), collected while the line
/// is carried out and sent as one answer in the place of the line: `ACK` when there were none, the one line
/// labeled when there was one, else a `labeled-response` batch.
///
/// The answer's place in the connection's stream is an outbox hold reserved before the line is handled, so
/// what reaches the connection meanwhile and is no reply (someone else's message) waits behind it, and the
/// answer never overtakes the replies to earlier lines (the session starts collecting only once the hub has
/// carried those out). A history read the line asks for reserves its place inside the answer
/// (`reserve`), so a read that takes long still lands in it; the answer is complete once the line is
/// carried out (`end`) and every such read is filled.
final class LabeledResponse: Sendable {
    private enum Part {
        case lines(ByteBuffer)
        /// A reply still being made, by its place.
        case pending(UInt64)
    }

    private struct State {
        var parts: [Part] = []
        var ended = false
    }

    let label: String
    /// The outbox hold the answer goes into.
    let hold: UInt64
    let serverName: String
    /// Unique on the connection: the batch reference.
    let batch: String
    private let state = Mutex(State())

    init(label: String, hold: UInt64, serverName: String, batch: String) {
        (self.label, self.hold, self.serverName, self.batch) = (label, hold, serverName, batch)
    }

    /// Lines that answer the line.
    func add(_ frame: ByteBuffer) {
        state.withLock { $0.parts.append(.lines(frame)) }
    }

    /// Reserves `place` (numbered by the connection) inside the answer, for a reply still being made.
    func reserve(_ place: UInt64) {
        state.withLock { $0.parts.append(.pending(place)) }
    }

    func holds(_ place: UInt64) -> Bool {
        state.withLock { $0.parts.contains { if case .pending(place) = $0 { true } else { false } } }
    }

    /// Puts a reply in the place reserved for it; the whole answer when that completed it.
    func fill(_ place: UInt64, with frame: ByteBuffer?) -> ByteBuffer? {
        state.withLock { state in
            guard let index = state.parts.firstIndex(where: { if case .pending(place) = $0 { true } else { false } }) else { return nil }
            if let frame { state.parts[index] = .lines(frame) } else { state.parts.remove(at: index) }
            return complete(state)
        }
    }

    /// The line is carried out: the whole answer, unless a reply in it is still being made.
    func end() -> ByteBuffer? {
        state.withLock { state in
            state.ended = true
            return complete(state)
        }
    }

    private func complete(_ state: State) -> ByteBuffer? {
        guard state.ended else { return nil }
        var frames: [ByteBuffer] = []
        for part in state.parts {
            guard case .lines(let frame) = part else { return nil }
            frames.append(frame)
        }
        return Self.answer(label: label, batch: batch, serverName: serverName, lines: frames.flatMap(Self.lines(of:)))
    }

    /// The answer to a labeled line made of `lines` (each without its CR LF).
    static func answer(label: String, batch: String, serverName: String, lines: [ByteBufferView]) -> ByteBuffer {
        let labelTag = "label=" + IRCMessage.escape(label)
        var out = ByteBuffer()
        switch lines.count {
        case 0:
            out.writeString("@\(labelTag) :\(serverName) ACK\r\n")
        case 1:
            write(lines[0], tag: labelTag, into: &out)
        default:
            out.writeString("@\(labelTag) :\(serverName) BATCH +\(batch) labeled-response\r\n")
            // Lines of a batch inside (a chathistory replay) stay in theirs; its own BATCH lines join this one.
            for line in lines { write(line, tag: hasBatchTag(line) ? nil : "batch=\(batch)", into: &out) }
            out.writeString(":\(serverName) BATCH -\(batch)\r\n")
        }
        return out
    }

    /// The frame's lines, without their CR LF (a frame holds whole lines).
    static func lines(of frame: ByteBuffer) -> [ByteBufferView] {
        frame.readableBytesView.split(separator: UInt8(ascii: "\n")).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
    }

    /// `line` with `tag` added to the tags it has, if any.
    private static func write(_ line: ByteBufferView, tag: String?, into out: inout ByteBuffer) {
        if let tag {
            if line.first == UInt8(ascii: "@") {
                out.writeString("@\(tag);")
                out.writeBytes(line.dropFirst())
            } else {
                out.writeString("@\(tag) ")
                out.writeBytes(line)
            }
        } else {
            out.writeBytes(line)
        }
        out.writeString("\r\n")
    }

    private static func hasBatchTag(_ line: ByteBufferView) -> Bool {
        guard line.first == UInt8(ascii: "@") else { return false }
        let tags = line.prefix { $0 != UInt8(ascii: " ") }.dropFirst()
        return tags.split(separator: UInt8(ascii: ";")).contains { $0.starts(with: "batch=".utf8) || $0.elementsEqual("batch".utf8) }
    }
}
