/// A validated room name: `#` followed by 1–32 ASCII letters, digits, `-`, `_` or `.`.
///
/// Room names compare without regard to ASCII case; the spelling of the room's creator is kept for display.
public struct RoomName: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 32
    public static let general = try! RoomName(validating: "#general")

    public let display: String
    public let key: String

    public init(validating raw: String) throws(ChatError) {
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
