import Foundation
import Logging
import ParleyProtocols
import Synchronization

/// Parley's log handler: swift-log's `StreamLogHandler` layout (`time level label: key=value … [source]
/// message`), one line per event, with two differences.
///
/// - **Escaped.** A log line carries what strangers chose — login names, nicks, reasons, error texts. A line
///   feed in one would forge a log line of its own, and escape or OSC bytes would drive the terminal reading
///   the log. So every control character, line separator and bidirectional or invisible formatting character
///   in the whole line is written as `\n`, `\u{1B}`, `\u{202E}`: readable, and never more than one line.
/// - **Its own writer.** Lines go to standard error, or, while the operator console runs on the same
///   terminal, above its input line (`ConsoleTerminal`), so the log never breaks up what the operator types.
///
/// With `format: .json` each line is one JSON object instead (`time`, `level`, `label`, `source`, `message`, and
/// every metadata key as a string), for journald, Loki or Elastic; JSON's own escaping keeps it one line.
public struct ParleyLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text
        case json
    }

    /// The level every handler made with the same dial follows, until a logger sets its own.
    public var logLevel: Logger.Level {
        get { ownLevel ?? dial.level }
        set { ownLevel = newValue }
    }
    private let dial: LogLevelDial
    private var ownLevel: Logger.Level?
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Format
    private let write: @Sendable (String) -> Void

    public init(
        label: String, level: Logger.Level, format: Format = .text, write: @escaping @Sendable (String) -> Void = ParleyLogHandler.standardError
    ) {
        self.init(label: label, dial: LogLevelDial(level), format: format, write: write)
    }

    /// A handler whose level is the dial's, so that turning it (SIGHUP) changes every logger at once.
    public init(label: String, dial: LogLevelDial, format: Format = .text, write: @escaping @Sendable (String) -> Void = ParleyLogHandler.standardError) {
        self.label = label
        self.dial = dial
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            write(Self.escaped("\(Self.timestamp()) \(event.level) \(label):\(fields) [\(event.source)] \(event.message)"))
        case .json:
            var fields = [("time", Timestamps.iso8601(Date())), ("level", "\(event.level)"), ("label", label), ("source", event.source), ("message", "\(event.message)")]
            // Metadata never replaces the five above.
            fields += merged.sorted { $0.key < $1.key }.filter { !["time", "level", "label", "source", "message"].contains($0.key) }.map { ($0.key, "\($0.value)") }
            write("{" + fields.map { #""\#(Self.jsonEscaped($0.0))":"\#(Self.jsonEscaped($0.1))""# }.joined(separator: ",") + "}")
        }
    }

    /// A JSON string's contents: quotes, backslashes and every control or line-breaking character escaped,
    /// and the formatting characters a terminal would act on too (bidi overrides), as `\uXXXX`. Also what the
    /// few JSON bodies written by hand use (`/healthz`).
    static func jsonEscaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar):
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Writes a line to standard error, whole.
    public static let standardError: @Sendable (String) -> Void = { line in ConsoleTerminal.write(STDERR_FILENO, line + "\n") }

    /// `text` with every character that could break the line or the terminal written as an escape.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0) || $0 == "\\" }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"  // so that `\n` in a line is always an escape, never a user's two characters
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar): out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// C0 and C1 controls and DEL, line and paragraph separators, and format characters (bidi overrides,
    /// zero-width ones), which reorder or hide text in a terminal.
    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The log level of every logger of the process, changed while it runs (`log-level` reloaded by SIGHUP). Read on
/// every log call, so an atomic rather than a lock.
public final class LogLevelDial: Sendable {
    private let index: Atomic<Int>

    public init(_ level: Logger.Level) {
        index = Atomic(Logger.Level.allCases.firstIndex(of: level)!)
    }

    public var level: Logger.Level {
        get { Logger.Level.allCases[index.load(ordering: .relaxed)] }
        set { index.store(Logger.Level.allCases.firstIndex(of: newValue)!, ordering: .relaxed) }
    }
}
