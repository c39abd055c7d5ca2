/// A keystroke (or a paste) as the line editor and the client see it.
public enum Key: Sendable, Equatable {
    case character(Character)
    case enter, tab, backspace, delete
    case left, right, up, down, home, end
    /// PgUp and PgDn (a page of scrollback); Shift+PgUp/PgDn or Ctrl+Home/End (its top and bottom); the mouse
    /// wheel (a few rows).
    case pageUp, pageDown, scrollTop, scrollBottom, wheelUp, wheelDown
    /// Ctrl plus a letter, lowercase: `.control("a")` is Ctrl+A.
    case control(Character)
    /// Alt plus a digit, for switching rooms.
    case altDigit(Int)
    /// Text pasted with bracketed paste: never interpreted as keys or commands.
    case paste(String)
}

/// Turns the bytes a terminal in raw mode sends into keys. Keeps partial UTF-8 and escape sequences
/// between reads, and collects a bracketed paste until its end marker.
public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []
    private var paste: [UInt8]?

    public init() {}

    private static let pasteStart: [UInt8] = Array("\u{1B}[200~".utf8)
    private static let pasteEnd: [UInt8] = Array("\u{1B}[201~".utf8)

    /// Decodes `bytes`; an incomplete sequence at the end waits for the next call.
    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [Key] {
        pending.append(contentsOf: bytes)
        var keys: [Key] = []
        var index = 0
        while index < pending.count {
            if var collected = paste {
                // Inside a paste everything up to the end marker is text.
                if let end = Self.find(Self.pasteEnd, in: pending, from: index) {
                    collected.append(contentsOf: pending[index..<end])
                    keys.append(.paste(String(decoding: collected, as: UTF8.self)))
                    paste = nil
                    index = end + Self.pasteEnd.count
                    continue
                }
                // Keep a possible partial end marker for the next read.
                let keep = min(Self.pasteEnd.count - 1, pending.count - index)
                collected.append(contentsOf: pending[index..<(pending.count - keep)])
                paste = collected
                index = pending.count - keep
                break
            }
            guard let (key, length) = decodeOne(at: index) else { break }  // incomplete: wait for more
            index += length
            if let key { keys.append(key) }
        }
        pending.removeFirst(index)
        return keys
    }

    /// One key at `index`: nil when the bytes there are incomplete; (nil, n) to skip n bytes.
    private mutating func decodeOne(at index: Int) -> (Key?, Int)? {
        let byte = pending[index]
        switch byte {
        case 0x0D, 0x0A: return (.enter, 1)
        case 0x09: return (.tab, 1)
        case 0x7F, 0x08: return (.backspace, 1)
        case 0x1B: return decodeEscape(at: index)
        case 0x01...0x1A: return (.control(Character(Unicode.Scalar(byte + 0x60))), 1)
        case 0x00, 0x1C...0x1F: return (nil, 1)
        default: return decodeUTF8(at: index)
        }
    }

    private mutating func decodeEscape(at index: Int) -> (Key?, Int)? {
        guard index + 1 < pending.count else { return nil }
        let next = pending[index + 1]
        if next == UInt8(ascii: "["), Self.starts(Self.pasteStart, in: pending, at: index) {
            paste = []
            return (nil, Self.pasteStart.count)
        }
        switch next {
        case UInt8(ascii: "[") where index + 2 < pending.count && pending[index + 2] == UInt8(ascii: "<"):
            // An SGR mouse report, `CSI < button ; x ; y M` (or `m` on release): only the wheel is bound.
            var end = index + 3
            while end < pending.count, pending[end] != UInt8(ascii: "M"), pending[end] != UInt8(ascii: "m") { end += 1 }
            guard end < pending.count else { return pending.count - index > 32 ? (nil, pending.count - index) : nil }
            let button = String(decoding: pending[(index + 3)..<end], as: UTF8.self).split(separator: ";").first.flatMap { Int($0) }
            let key: Key? = button == 64 ? .wheelUp : button == 65 ? .wheelDown : nil
            return (key, end - index + 1)
        case UInt8(ascii: "[") where index + 2 < pending.count && pending[index + 2] == UInt8(ascii: "M"):
            // A mouse report from a terminal without SGR reports (X10: `CSI M` and three raw bytes, button + 32,
            // x + 32, y + 32): its bytes must not be typed into the input line; only the wheel is bound.
            guard index + 6 <= pending.count else { return nil }
            let button = Int(pending[index + 3]) - 32
            return (button == 64 ? .wheelUp : button == 65 ? .wheelDown : nil, 6)
        case UInt8(ascii: "["), UInt8(ascii: "O"):
            // CSI or SS3: parameters, then a final byte 0x40–0x7E.
            var end = index + 2
            while end < pending.count, !(0x40...0x7E).contains(pending[end]) { end += 1 }
            guard end < pending.count else { return pending.count - index > 16 ? (nil, pending.count - index) : nil }
            let parameters = String(decoding: pending[(index + 2)..<end], as: UTF8.self)
            return (Self.csiKey(final: pending[end], parameters: parameters), end - index + 1)
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return (.altDigit(Int(next - UInt8(ascii: "0"))), 2)
        default:
            return (nil, 2)  // Alt+other: not bound
        }
    }

    private static func csiKey(final: UInt8, parameters: String) -> Key? {
        switch (final, parameters) {
        case (UInt8(ascii: "A"), _): .up
        case (UInt8(ascii: "B"), _): .down
        case (UInt8(ascii: "C"), _): .right
        case (UInt8(ascii: "D"), _): .left
        case (UInt8(ascii: "H"), "1;5"): .scrollTop
        case (UInt8(ascii: "F"), "1;5"): .scrollBottom
        case (UInt8(ascii: "H"), _): .home
        case (UInt8(ascii: "F"), _): .end
        case (UInt8(ascii: "~"), "5"): .pageUp
        case (UInt8(ascii: "~"), "6"): .pageDown
        case (UInt8(ascii: "~"), "5;2"): .scrollTop
        case (UInt8(ascii: "~"), "6;2"): .scrollBottom
        case (UInt8(ascii: "~"), "1"), (UInt8(ascii: "~"), "7"): .home
        case (UInt8(ascii: "~"), "4"), (UInt8(ascii: "~"), "8"): .end
        case (UInt8(ascii: "~"), "3"): .delete
        default: nil
        }
    }

    private func decodeUTF8(at index: Int) -> (Key?, Int)? {
        let byte = pending[index]
        let length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
        guard index + length <= pending.count else { return nil }
        let text = String(decoding: pending[index..<(index + length)], as: UTF8.self)
        return (text.first.map(Key.character), length)
    }

    private static func starts(_ marker: [UInt8], in bytes: [UInt8], at index: Int) -> Bool {
        bytes.count - index >= marker.count && Array(bytes[index..<(index + marker.count)]) == marker
    }

    private static func find(_ marker: [UInt8], in bytes: [UInt8], from index: Int) -> Int? {
        guard bytes.count - index >= marker.count else { return nil }
        return (index...(bytes.count - marker.count)).first { starts(marker, in: bytes, at: $0) }
    }
}
