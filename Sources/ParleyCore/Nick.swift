/// A validated nickname: 1–24 ASCII letters, digits and `_ - [ ] { } \ | ^ `` ` ``, not starting with a
/// digit or `-`.
///
/// Nicks compare without regard to ASCII case (`Alice` and `alice` are the same user); the spelling the
/// user chose is kept for display. ASCII-only keeps nicks typeable everywhere, IRC-compatible, and free of
/// look-alike letters from other scripts.
public struct Nick: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 24

    /// The spelling the user chose.
    public let display: String
    /// The case-folded form used for comparison and lookup.
    public let key: String

    /// Sanitises `raw` (controls, escapes, bidi and zero-width characters are removed), then validates it.
    public init(validating raw: String) throws(ChatError) {
        let cleaned = Sanitizer.trimmed(Sanitizer.name(raw))
        guard !cleaned.isEmpty else {
            throw ChatError(.invalidNick, "A nickname cannot be empty.")
        }
        guard cleaned.unicodeScalars.count <= Self.maximumLength else {
            throw ChatError(.invalidNick, "A nickname has at most \(Self.maximumLength) characters.")
        }
        for scalar in cleaned.unicodeScalars where !Self.isAllowed(scalar) {
            throw ChatError(
                .invalidNick,
                "A nickname may use only letters A-Z, digits and _ - [ ] { } \\ | ^ ` (not \"\(scalar.escaped(asASCII: true))\")."
            )
        }
        let first = cleaned.unicodeScalars.first!
        if first == "-" || ("0"..."9").contains(first) {
            throw ChatError(.invalidNick, "A nickname cannot start with a digit or '-'.")
        }
        self.display = cleaned
        self.key = asciiLowercased(cleaned)
    }

    public var description: String { display }

    public static func == (lhs: Nick, rhs: Nick) -> Bool { lhs.key == rhs.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-", "[", "]", "{", "}", "\\", "|", "^", "`": true
        default: false
        }
    }
}

/// ASCII case folding, the one casemapping Parley uses for nicks and room names.
public func asciiLowercased(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { ("A"..."Z").contains($0) ? Unicode.Scalar($0.value + 32)! : $0 }))
}
