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

    /// Parses a line without its CR LF; nil when it holds no command.
    public init?(parsing line: Substring) {
        var rest = line[...]
        var tags: [String: String] = [:]
        if rest.hasPrefix("@") {
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            for tag in rest[rest.index(after: rest.startIndex)..<end].split(separator: ";") {
                let parts = tag.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                tags[String(parts[0])] = parts.count == 2 ? Self.unescape(parts[1]) : ""
            }
            rest = rest[end...].drop(while: { $0 == " " })
        }
        var source: String?
        if rest.hasPrefix(":") {
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            source = String(rest[rest.index(after: rest.startIndex)..<end])
            rest = rest[end...].drop(while: { $0 == " " })
        }
        let commandEnd = rest.firstIndex(of: " ") ?? rest.endIndex
        let command = rest[..<commandEnd]
        guard !command.isEmpty else { return nil }
        rest = rest[commandEnd...].drop(while: { $0 == " " })
        var params: [String] = []
        while !rest.isEmpty {
            if rest.hasPrefix(":") {
                params.append(String(rest.dropFirst()))
                break
            }
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            params.append(String(rest[..<end]))
            rest = rest[end...].drop(while: { $0 == " " })
        }
        self.init(tags: tags, source: source, command: command.uppercased(), params: params)
    }

    /// The line with CR LF. The last parameter is written as trailing (`:`) when it must be (empty, has a
    /// space, or starts with `:`), or when `trailing` asks for it.
    ///
    /// Whatever the parameters hold, the result is one valid line: CR, LF and NUL are dropped everywhere, a
    /// middle parameter that could not be one (empty, with a space, starting with `:` — say, a bad channel
    /// name echoed back in a numeric) is written `*`, and the part after the tags never passes 512 bytes with
    /// its CR LF (the trailing parameter is cut, between characters). Codecs split long text themselves; this
    /// is the last guard.
    public func serialized(trailing: Bool? = nil) -> String {
        // Numerics and the commands whose last parameter is text take it as trailing, as servers write them.
        let trailing = trailing ?? (Self.textLast.contains(command) || command.allSatisfy(\.isNumber))
        var prefix = ""
        if !tags.isEmpty {
            prefix += "@" + tags.sorted { $0.key < $1.key }.map { $0.value.isEmpty ? $0.key : "\($0.key)=\(Self.escape($0.value))" }.joined(separator: ";") + " "
        }
        var line = ""
        if let source { line += ":\(Self.lineSafe(source)) " }
        line += Self.lineSafe(command)
        for (index, raw) in params.enumerated() {
            let param = Self.lineSafe(raw)
            let last = index == params.count - 1
            if last && (trailing || param.isEmpty || param.contains(" ") || param.hasPrefix(":")) {
                line += " :" + param
            } else if param.isEmpty || param.contains(" ") || param.hasPrefix(":") {
                line += " *"
            } else {
                line += " " + param
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

    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case ";": out += "\\:"
            case " ": out += "\\s"
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func unescape(_ value: Substring) -> String {
        var out = ""
        var escaping = false
        for character in value {
            if escaping {
                switch character {
                case ":": out += ";"
                case "s": out += " "
                case "r": out += "\r"
                case "n": out += "\n"
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}
