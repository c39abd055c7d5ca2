/// One IRC protocol line (RFC 1459/2812 with IRCv3 message tags): `[@tags] [:source] COMMAND [params] [:trailing]`.
public struct IRCMessage: Equatable, Sendable {
    public var tags: [String: String]
    public var source: String?
    /// Upper-cased for commands; three digits for numerics.
    public var command: String
    public var params: [String]

    public init(tags: [String: String] = [:], source: String? = nil, command: String, params: [String] = []) {
        self.tags = tags
        self.source = source
        self.command = command
        self.params = params
    }

    /// The longest line without tags (RFC 1459), and the longest tag section (IRCv3 message-tags).
    public static let maximumBodyBytes = 512
    public static let maximumTagBytes = 8191
    /// What a client may send of tags, its `@` included (message-tags: 4094 bytes of tag data, plus the `@`;
    /// the server's own tags get the rest of the 8191).
    public static let maximumClientTagBytes = 4095

    /// Parses a line without its CR LF; nil when it holds no command.
    ///
    /// By bytes, as IRC is: a space is the byte 0x20 even when a combining mark follows it (to Swift, a space
    /// and the mark after it are one Character, which would hide the separator).
    public init?(parsing line: Substring) {
        let bytes = line.utf8
        let space = UInt8(ascii: " ")
        var rest = bytes[...]
        func token() -> Substring.UTF8View.SubSequence {
            let end = rest.firstIndex(of: space) ?? rest.endIndex
            defer { rest = rest[end...].drop { $0 == space } }
            return rest[..<end]
        }
        // Cuts fall on ASCII bytes (space, colon, '@'), which are always scalar boundaries in UTF-8.
        func text(_ part: Substring.UTF8View.SubSequence) -> Substring { Substring(part) }
        var tags: [String: String] = [:]
        if rest.first == UInt8(ascii: "@") {
            // By bytes too: U+037E (Greek question mark) is canonically equivalent to ";", so a Character
            // split would cut a tag value there (found by fuzzing).
            for tag in token().dropFirst().split(separator: UInt8(ascii: ";")) {
                let parts = tag.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                tags[String(text(parts[0]))] = parts.count == 2 ? Self.unescape(text(parts[1])) : ""
            }
        }
        var source: String?
        if rest.first == UInt8(ascii: ":") {
            source = String(text(token().dropFirst()))
        }
        let command = token()
        guard !command.isEmpty else { return nil }
        var params: [String] = []
        while !rest.isEmpty {
            if rest.first == UInt8(ascii: ":") {
                params.append(String(text(rest.dropFirst())))
                break
            }
            params.append(String(text(token())))
        }
        self.init(tags: tags, source: source, command: String(text(command)).uppercased(), params: params)
    }

    /// The line with CR LF. The last parameter is written as trailing (`:`) when it must be (empty, has a
    /// space, or starts with `:`), or when `trailing` asks for it.
    ///
    /// Whatever the parameters hold, the result is one valid line: CR, LF and NUL are dropped everywhere, a
    /// middle parameter (or command) that could not be one (empty, with a space, starting with `:` — say, a bad channel
    /// name echoed back in a numeric) is written `*`, and the part after the tags never passes 512 bytes with
    /// its CR LF (the trailing parameter is cut, between characters). Codecs split long text themselves; this
    /// is the last guard.
    public func serialized(trailing: Bool? = nil) -> String {
        // Numerics and the commands whose last parameter is text take it as trailing, as servers write them.
        let trailing = trailing ?? (Self.textLast.contains(command) || command.allSatisfy(\.isNumber))
        var prefix = ""
        if !tags.isEmpty {
            let written = tags.sorted { $0.key < $1.key }.compactMap { key, value -> String? in
                // A key is letters, digits and - / . + (and a vendor's +); anything else would break the line.
                let key = String(key.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "-/.+".unicodeScalars.contains($0)) })
                guard !key.isEmpty else { return nil }
                return value.isEmpty ? key : "\(key)=\(Self.escape(Self.lineSafe(value)))"
            }
            if !written.isEmpty { prefix += "@" + written.joined(separator: ";") + " " }
        }
        // Words (source, command, middle parameters) are short in every line Parley writes; capped, so that the
        // final cut can only ever shorten the text at the end, never lose the command.
        func word(_ text: String) -> String {
            Self.cut(String(decoding: Self.lineSafe(text).utf8.filter { $0 != UInt8(ascii: " ") }, as: UTF8.self), toBytes: 100)
        }
        var line = ""
        if let source { line += ":\(word(source)) " }
        let command = word(command)
        line += command.isEmpty || command.utf8.first == UInt8(ascii: ":") || command.utf8.first == UInt8(ascii: "@") ? "*" : command
        for (index, raw) in params.enumerated() {
            let param = Self.lineSafe(raw)
            // By bytes: a space followed by a combining mark is no " " Character, but it is still a space.
            let needsTrailing = param.isEmpty || param.utf8.contains(UInt8(ascii: " ")) || param.utf8.first == UInt8(ascii: ":")
            if index == params.count - 1 && (trailing || needsTrailing) {
                line += " :" + param
            } else if needsTrailing {
                line += " *"
            } else {
                line += " " + Self.cut(param, toBytes: 100)
            }
        }
        return prefix + Self.cut(line, toBytes: Self.maximumBodyBytes - 2) + "\r\n"
    }

    private static func lineSafe(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\0" && $0 != "\n" && $0 != "\r" }))
    }

    /// The longest prefix of `text` of at most `bytes` UTF-8 bytes that ends between Unicode scalars.
    private static func cut(_ text: String, toBytes bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var kept = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            count += scalar.utf8.count
            guard count <= bytes else { break }
            kept.append(scalar)
        }
        return String(kept)
    }

    static let textLast: Set<String> = ["PRIVMSG", "NOTICE", "PART", "QUIT", "KICK", "TOPIC", "ERROR", "PONG", "CAP", "AWAY"]

    // By scalars, not Characters: a space or backslash followed by a combining mark is one Character to Swift,
    // and would slip through unescaped.
    public static func escape(_ value: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case ";": out.append(contentsOf: "\\:".unicodeScalars)
            case " ": out.append(contentsOf: "\\s".unicodeScalars)
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    static func unescape(_ value: Substring) -> String {
        var out = String.UnicodeScalarView()
        var escaping = false
        for scalar in value.unicodeScalars {
            if escaping {
                switch scalar {
                case ":": out.append(";")
                case "s": out.append(" ")
                case "r": out.append("\r")
                case "n": out.append("\n")
                default: out.append(scalar)
                }
                escaping = false
            } else if scalar == "\\" {
                escaping = true
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }
}
