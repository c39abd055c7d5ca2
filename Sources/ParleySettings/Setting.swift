import Foundation

/// One setting of a command: its key (the flag's long name, also the key in the file), what values it takes,
/// and its default. The environment variable is `PARLEY_` and the key in capitals, dashes as underscores.
public struct Setting: Sendable {
    public let key: String
    public let kind: SettingKind
    /// Nil: unset unless given (an optional port, a certificate file).
    public let defaultValue: SettingValue?
    /// Shown masked by `--print-config` (a password, a database URL with one).
    public let secret: Bool
    /// Applied by SIGHUP while the server runs; anything else takes a restart.
    public let live: Bool
    /// What `--help` says, before the default.
    public let summary: String

    public init(_ key: String, _ kind: SettingKind, default defaultValue: SettingValue? = nil, secret: Bool = false, live: Bool = false, _ summary: String) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.secret = secret
        self.live = live
        self.summary = summary
    }

    public var flag: String { "--" + key }
    public var environmentName: String { "PARLEY_" + key.uppercased().replacingOccurrences(of: "-", with: "_") }

    /// The `--help` text: the summary, the default when it is worth saying, and whether SIGHUP applies it.
    public var help: String {
        var text = summary
        if let defaultValue, defaultValue != .bool(false), defaultValue != .strings([]) { text += " (default: \(defaultValue))" }
        if live { text += " [SIGHUP applies it]" }
        return text
    }
}

/// A setting's value, whichever layer it came from.
public enum SettingValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case strings([String])

    public var description: String {
        switch self {
        case .bool(let value): "\(value)"
        case .int(let value): "\(value)"
        case .double(let value): value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
        case .string(let value): value
        case .strings(let values): values.joined(separator: ",")
        }
    }

    /// The value as TOML would write it, so that `--print-config` prints a file that can be used as one.
    public var toml: String {
        switch self {
        case .bool, .int: description
        case .double(let value): "\(value)"
        case .string(let value): Self.quoted(value)
        case .strings(let values): "[" + values.map(Self.quoted).joined(separator: ", ") + "]"
        }
    }

    static func quoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}

/// What values a setting takes.
public enum SettingKind: Sendable {
    /// A switch: `--tls` on the command line, `tls = true` in the file, `PARLEY_TLS=true` (or 1, yes).
    case bool
    case int(ClosedRange<Int>)
    case double(ClosedRange<Double>)
    case string
    /// One of a few words.
    case choice([String])
    /// A repeatable flag; an array of strings in the file, comma-separated in the environment.
    case strings

    /// What is wrong with `value`, in words that follow the setting's name; nil when it is fine.
    func problem(with value: SettingValue) -> String? {
        switch (self, value) {
        case (.bool, .bool), (.string, .string), (.strings, .strings): nil
        case (.int(let range), .int(let number)): range.contains(number) ? nil : "must be \(range.lowerBound) to \(range.upperBound)"
        case (.double(let range), .double(let number)):
            range.contains(number) ? nil : "must be \(SettingValue.double(range.lowerBound)) to \(SettingValue.double(range.upperBound))"
        case (.choice(let words), .string(let word)): words.contains(word) ? nil : "must be one of: \(words.joined(separator: ", "))"
        default: "must be \(expectation)"
        }
    }

    /// The kind in words, for an error about a value of the wrong type.
    var expectation: String {
        switch self {
        case .bool: "true or false"
        case .int(let range): "a whole number, \(range.lowerBound) to \(range.upperBound)"
        case .double(let range): "a number, \(SettingValue.double(range.lowerBound)) to \(SettingValue.double(range.upperBound))"
        case .string: "a string in quotes"
        case .choice(let words): "one of: \(words.map { "\"\($0)\"" }.joined(separator: ", "))"
        case .strings: "a list of strings, like [\"a\", \"b\"]"
        }
    }

    /// Reads an environment variable's text.
    func value(fromText text: String) -> SettingValue? {
        switch self {
        case .bool:
            switch text.trimmingSpaces.lowercased() {
            case "true", "1", "yes", "on": .bool(true)
            case "false", "0", "no", "off": .bool(false)
            default: nil
            }
        case .int: Int(text.trimmingSpaces).map(SettingValue.int)
        case .double: Double(text.trimmingSpaces).flatMap { $0.isFinite ? .double($0) : nil }
        case .string: .string(text)
        case .choice: .string(text.trimmingSpaces)
        case .strings: .strings(text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty })
        }
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
