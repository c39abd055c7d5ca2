/// `parley connect`'s settings file, `$XDG_CONFIG_HOME/parley/config.toml` (or `~/.config/parley/config.toml`);
/// flags given on the command line win over it.
///
/// ```toml
/// server = "chat.lan:5000"
/// nick = "alice"
/// rooms = ["#dev", "#ops"]     # joined after connecting; the last is current
/// colour = true
/// timestamp = "%H:%M:%S"       # strftime
/// tls = false
/// ignore = ["spammer"]         # /ignore and /unignore keep this line up to date
/// ```
///
/// The file is TOML, of which these keys need only strings, booleans and arrays of strings: that subset is read
/// here (comments, basic-string escapes), and anything else is an error with its line, rather than a parser
/// library the client would carry for seven keys.
public struct ClientConfig: Sendable, Equatable {
    public var server: String?
    public var nick: String?
    public var rooms: [String] = []
    public var colour: Bool?
    public var timestamp: String?
    public var tls: Bool?
    public var ignore: [String] = []

    public init() {}

    public static let keys = ["server", "nick", "rooms", "colour", "timestamp", "tls", "ignore"]

    /// A mistake in the file, with its line (1-based).
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }

        public init(line: Int, reason: String) {
            (self.line, self.reason) = (line, reason)
        }
    }

    private enum Value {
        case string(String)
        case bool(Bool)
        case strings([String])
    }

    public static func parse(_ text: String) throws(Failure) -> ClientConfig {
        var config = ClientConfig()
        // Any line break (a file written on Windows ends its lines in CR LF); a byte order mark is no key.
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for (offset, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            let line = raw.trimmingPrefix(while: \.isWhitespace)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let equals = line.firstIndex(of: "=") else { throw Failure(line: number, reason: "expected key = value") }
            let key = String(line[..<equals]).trimmingSuffix(while: \.isWhitespace)
            var rest = line[line.index(after: equals)...].trimmingPrefix(while: \.isWhitespace)
            let value = try readValue(&rest, line: number)
            rest = rest.trimmingPrefix(while: \.isWhitespace)
            guard rest.isEmpty || rest.hasPrefix("#") else { throw Failure(line: number, reason: "unexpected text after the value of \(key)") }
            switch (key, value) {
            case ("server", .string(let text)): config.server = text
            case ("nick", .string(let text)): config.nick = text
            case ("timestamp", .string(let text)): config.timestamp = text
            case ("rooms", .strings(let list)): config.rooms = list
            case ("ignore", .strings(let list)): config.ignore = list
            case ("colour", .bool(let flag)), ("color", .bool(let flag)): config.colour = flag
            case ("tls", .bool(let flag)): config.tls = flag
            case ("server", _), ("nick", _), ("timestamp", _): throw Failure(line: number, reason: "\(key) takes a string in quotes")
            case ("rooms", _), ("ignore", _): throw Failure(line: number, reason: "\(key) takes a list of strings, like [\"a\", \"b\"]")
            case ("colour", _), ("color", _), ("tls", _): throw Failure(line: number, reason: "\(key) takes true or false")
            default:
                let close = keys.first { $0.hasPrefix(String(key.prefix(2))) }
                throw Failure(line: number, reason: "unknown key \(key)" + (close.map { " (did you mean \($0)?)" } ?? "; known: \(keys.joined(separator: ", "))"))
            }
        }
        return config
    }

    private static func readValue(_ text: inout Substring, line: Int) throws(Failure) -> Value {
        if text.hasPrefix("\"") { return .string(try readString(&text, line: line)) }
        if text.hasPrefix("true") {
            text = text.dropFirst(4)
            return .bool(true)
        }
        if text.hasPrefix("false") {
            text = text.dropFirst(5)
            return .bool(false)
        }
        guard text.hasPrefix("[") else { throw Failure(line: line, reason: "a value is a \"string\", true, false or a [list]") }
        text = text.dropFirst()
        var list: [String] = []
        while true {
            text = text.trimmingPrefix(while: \.isWhitespace)
            if text.hasPrefix("]") {
                text = text.dropFirst()
                return .strings(list)
            }
            guard text.hasPrefix("\"") else { throw Failure(line: line, reason: "a list holds \"strings\" and ends with ] on the same line") }
            list.append(try readString(&text, line: line))
            text = text.trimmingPrefix(while: \.isWhitespace)
            if text.hasPrefix(",") { text = text.dropFirst() }
        }
    }

    /// A TOML basic string: `"…"` with `\"`, `\\`, `\t`, `\n` escapes.
    private static func readString(_ text: inout Substring, line: Int) throws(Failure) -> String {
        text = text.dropFirst()
        var value = ""
        while let character = text.first {
            text = text.dropFirst()
            switch character {
            case "\"": return value
            case "\\":
                guard let escaped = text.first else { break }
                text = text.dropFirst()
                switch escaped {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "\"", "\\": value.append(escaped)
                default: throw Failure(line: line, reason: "unknown escape \\\(escaped)")
                }
            default: value.append(character)
            }
        }
        throw Failure(line: line, reason: "a string that does not end")
    }

    /// `text` (the file as it is) with its `ignore` line set to `list`: the rest of the file, comments and all,
    /// stays as the user wrote it.
    public static func settingIgnore(_ list: [String], in text: String) -> String {
        let line = "ignore = [" + list.map { "\"" + $0.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\"" }.joined(separator: ", ") + "]"
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }  // the file's final line break
        if let index = lines.firstIndex(where: { $0.trimmingPrefix(while: \.isWhitespace).hasPrefix("ignore") && $0.contains("=") }) {
            lines[index] = line
        } else {
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension StringProtocol {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = String(self)
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
