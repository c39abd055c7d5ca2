/// Finds a key that appears twice in one JSON object, anywhere in a document.
///
/// JSON leaves duplicate keys undefined, and parsers disagree: Foundation's decoder keeps the first value, most
/// others the last. A request whose meaning depends on the parser (`{"type":"send","to":"bob","to":"alice"}`)
/// is refused instead (`bad_request`), so what a client means is never in doubt. Keys are compared as strings,
/// after escapes (`"to"` and `"\u0074o"` are the same key). Nesting deeper than 64 is refused too (no request
/// needs it, and the scanner will not follow it). Malformed JSON is the decoder's to report: this gives up on
/// it quietly.
enum JSONDuplicateKeys {
    /// What is wrong with the document for a request, in words, or nil.
    static func problem(in bytes: some Collection<UInt8>) -> String? {
        var scanner = Scanner(bytes: Array(bytes))
        do {
            return try scanner.value(depth: 0).map { "The key \"\($0)\" appears twice in one object; send each key once." }
        } catch is TooDeep {
            return "Objects and arrays may be nested \(Scanner.maximumDepth) deep at most."
        } catch {
            return nil
        }
    }

    private struct Malformed: Error {}
    private struct TooDeep: Error {}

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        /// Nesting deeper than this is not looked into (the decoder refuses such documents anyway).
        static let maximumDepth = 64

        mutating func value(depth: Int) throws -> String? {
            skipSpace()
            guard depth < Self.maximumDepth else { throw TooDeep() }
            guard index < bytes.count else { throw Malformed() }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""):
                _ = try string()
                return nil
            default:
                // A number or a literal: up to the next delimiter.
                while index < bytes.count, !Self.isDelimiter(bytes[index]) { index += 1 }
                return nil
            }
        }

        mutating func object(depth: Int) throws -> String? {
            index += 1
            var keys = Set<String>()
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return nil
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Malformed() }
                let key = try string()
                if !keys.insert(key).inserted { return key }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Malformed() }
                index += 1
                if let duplicate = try value(depth: depth + 1) { return duplicate }
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return nil
                }
                guard bytes[index] == UInt8(ascii: ",") else { throw Malformed() }
                index += 1
            }
        }

        mutating func array(depth: Int) throws -> String? {
            index += 1
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return nil
            }
            while true {
                if let duplicate = try value(depth: depth + 1) { return duplicate }
                skipSpace()
                guard index < bytes.count else { throw Malformed() }
                if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return nil
                }
                guard bytes[index] == UInt8(ascii: ",") else { throw Malformed() }
                index += 1
            }
        }

        /// A string at `index` (its opening quote), unescaped.
        mutating func string() throws -> String {
            index += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw Malformed() }
                    let escaped = bytes[index]
                    index += 1
                    flush()
                    switch escaped {
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count, let unit = UInt16(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
                            throw Malformed()
                        }
                        index += 4
                        if (0xD800..<0xDC00).contains(unit), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u"),
                            let low = UInt16(String(decoding: bytes[index + 2..<index + 6], as: UTF8.self), radix: 16), (0xDC00..<0xE000).contains(low)
                        {
                            index += 6
                            let value = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
                            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                        } else {
                            scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")  // a lone surrogate
                        }
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{8}")
                    case UInt8(ascii: "f"): scalars.append("\u{C}")
                    default: scalars.append(Unicode.Scalar(escaped))
                    }
                default:
                    raw.append(byte)
                }
            }
            throw Malformed()
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        static func isDelimiter(_ byte: UInt8) -> Bool {
            [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(byte)
        }
    }
}
