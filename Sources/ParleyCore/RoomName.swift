/// A validated room name: `#` followed by 1–32 ASCII letters, digits, `-`, `_` or `.`.
///
/// Room names compare without regard to ASCII case; the spelling of the room's creator is kept for display.
public struct RoomName: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 32
    public static let general = try! RoomName(validating: "#general")

    public let display: String
    public let key: String

    public init(validating raw: String) throws(ChatError) {
        if let plain = Self.plain(raw) {
            self = plain
            return
        }
        let cleaned = Sanitizer.trimmed(Sanitizer.name(raw))
        let body = cleaned.unicodeScalars.dropFirst()
        guard cleaned.unicodeScalars.first == "#", !body.isEmpty, body.count <= Self.maximumLength,
            body.allSatisfy(Self.isAllowed)
        else {
            throw ChatError(
                .invalidRoom,
                "A room name is # followed by 1-\(Self.maximumLength) letters, digits, '-', '_' or '.' (e.g. #general)."
            )
        }
        self.display = cleaned
        self.key = asciiLowercased(cleaned)
    }

    private init(display: String, key: String) {
        (self.display, self.key) = (display, key)
    }

    /// `raw` as it is when it is already a valid name, which is what clients send nearly every time: checked
    /// byte by byte, with no sanitising (it changes nothing in such a name) and no lowercased copy when there is
    /// no capital in it. Every message names its room, so this runs for each one.
    private static func plain(_ raw: String) -> RoomName? {
        let bytes = raw.utf8
        guard bytes.count >= 2, bytes.count <= maximumLength + 1, bytes.first == UInt8(ascii: "#") else { return nil }
        var capitals = false
        for byte in bytes.dropFirst() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                capitals = true
            default:
                return nil
            }
        }
        return RoomName(display: raw, key: capitals ? asciiLowercased(raw) : raw)
    }

    public var description: String { display }

    public static func == (lhs: RoomName, rhs: RoomName) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".": true
        default: false
        }
    }
}
