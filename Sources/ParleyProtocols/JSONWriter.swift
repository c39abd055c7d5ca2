import NIOCore

/// Writes one JSON object as a line, keys in the order written. Hand-rolled because every event is encoded on
/// the fan-out path, and a fixed key order keeps the wire format easy to read and to test.
struct JSONWriter {
    private(set) var buffer = ByteBuffer()
    private var needsComma = false

    init(type: String) {
        buffer.writeInteger(UInt8(ascii: "{"))
        field("type", type)
    }

    mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        writeKey(key)
        writeString(value)
    }

    mutating func field(_ key: String, _ value: Int64) {
        writeKey(key)
        buffer.writeString(String(value))
    }

    mutating func field(_ key: String, _ value: Int64?) {
        guard let value else { return }
        field(key, value)
    }

    mutating func field(_ key: String, _ value: Bool) {
        writeKey(key)
        buffer.writeString(value ? "true" : "false")
    }

    mutating func field(_ key: String, _ values: [String]) {
        writeKey(key)
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            writeString(value)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// An object of integers, e.g. `"resume":{"#general":41}`.
    mutating func field(_ key: String, integers: [(key: String, value: Int64)]) {
        writeKey(key)
        buffer.writeInteger(UInt8(ascii: "{"))
        for (index, pair) in integers.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            writeString(pair.key)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(String(pair.value))
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// An array of objects, each written by `body` into a nested writer.
    mutating func field<T>(_ key: String, objects: [T], _ body: (inout JSONWriter, T) -> Void) {
        writeKey(key)
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, object) in objects.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            var nested = JSONWriter(nested: ())
            body(&nested, object)
            var inner = nested.finishedObject()
            buffer.writeBuffer(&inner)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    private init(nested: Void) {
        buffer.writeInteger(UInt8(ascii: "{"))
    }


    private func finishedObject() -> ByteBuffer {
        var buffer = buffer
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// The object followed by a newline.
    func finished() -> ByteBuffer {
        var buffer = finishedObject()
        buffer.writeInteger(UInt8(ascii: "\n"))
        return buffer
    }

    private mutating func writeKey(_ key: String) {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
        needsComma = true
        writeString(key)
        buffer.writeInteger(UInt8(ascii: ":"))
    }

    private mutating func writeString(_ value: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var plainStart = value.utf8.startIndex
        for index in value.utf8.indices {
            let byte = value.utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            buffer.writeBytes(value.utf8[plainStart..<index])
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            default:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            }
            plainStart = value.utf8.index(after: index)
        }
        buffer.writeBytes(value.utf8[plainStart...])
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
