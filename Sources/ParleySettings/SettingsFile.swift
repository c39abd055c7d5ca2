import Foundation
import TOMLKit

/// A settings file in TOML: every key at the top level, named as the flag is (`irc-port = 6667`). TOMLKit
/// (toml++) parses it; this reads the parsed table against the command's settings, and finds a key's line in
/// the text for errors, since a parsed table does not keep where its keys were.
public struct SettingsFile: Sendable {
    public let path: String
    /// Each key the file sets, with its value and line.
    public let values: [String: (value: SettingValue, line: Int?)]

    /// A file larger than this is refused before it is parsed: settings fit in a few kilobytes.
    static let maximumBytes = 1 << 20

    public init(path: String, text: String, settings: [Setting]) throws(SettingsError) {
        self.path = path
        // toml++ reads a C string: whatever follows a NUL would be dropped without a word.
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            throw SettingsError("\(path), line \(line): a NUL byte; a settings file is text")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw SettingsError("\(path), line \(error.source.begin.line): \(error.description)")
        } catch {
            throw SettingsError("\(path): \(error)")
        }
        let known = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        let lines = Self.keyLines(in: text)
        var values: [String: (SettingValue, Int?)] = [:]
        // Every mistake is found, and the first in the file is said (the table's order is not the file's).
        var mistakes: [(line: Int, message: String)] = []
        for (key, raw) in table {
            let line = lines[key]
            let place = line.map { "\(path), line \($0)" } ?? path
            func mistake(_ text: String) { mistakes.append((line ?? .max, "\(place): \(text)")) }
            if raw.type == .table {
                mistake("\(key): there are no sections or dotted keys; every key goes at the top of the file, named as its flag")
                continue
            }
            guard let setting = known[key] else {
                mistake(["config", "print-config"].contains(key)
                    ? "\(key) is not a key: it names or shows the file (--\(key)), so it goes on the command line"
                    : "unknown key \"\(key)\"; \(Self.suggestion(for: key, among: settings))")
                continue
            }
            guard let value = Self.value(raw, for: setting.kind) else {
                mistake("\(key) must be \(setting.kind.expectation)")
                continue
            }
            if let problem = setting.kind.problem(with: value) {
                mistake("\(key) = \(setting.secret ? "\"********\"" : value.toml): \(problem)")
                continue
            }
            values[key] = (value, line)
        }
        if let first = mistakes.min(by: { $0.line < $1.line }) { throw SettingsError(first.message) }
        self.values = values
    }

    /// Reads and parses the file at `path`.
    public static func read(_ path: String, settings: [Setting]) throws(SettingsError) -> SettingsFile {
        func refuse(_ reason: String) -> SettingsError { SettingsError("cannot read the configuration file \(path): \(reason)") }
        guard let file = FileHandle(forReadingAtPath: path) else { throw refuse("no such file, or not readable") }
        defer { try? file.close() }
        let data: Data
        do {
            data = try file.read(upToCount: maximumBytes + 1) ?? Data()
        } catch {
            throw refuse("\(error.localizedDescription)")
        }
        guard data.count <= maximumBytes else { throw refuse("larger than 1 MiB") }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("not UTF-8 text") }
        return try SettingsFile(path: path, text: text, settings: settings)
    }

    /// The parsed value as the setting's kind wants it; nil when it is of another type. An integer is taken where
    /// a number is wanted, and a single string where a list is.
    static func value(_ raw: any TOMLValueConvertible, for kind: SettingKind) -> SettingValue? {
        switch kind {
        case .bool: raw.bool.map(SettingValue.bool)
        case .int: raw.int.map(SettingValue.int)
        case .double: raw.double.map(SettingValue.double) ?? raw.int.map { .double(Double($0)) }
        case .string, .choice: raw.string.map(SettingValue.string)
        case .strings:
            if let single = raw.string {
                .strings([single])
            } else if let array = raw.array {
                array.allSatisfy({ $0.string != nil }) ? .strings(array.compactMap(\.string)) : nil
            } else {
                nil
            }
        }
    }

    /// The line (from 1) where each top-level key is set or opens a section, the first time; lines inside
    /// multi-line strings are not read as keys. A key set inside an inline table has none.
    static func keyLines(in text: String) -> [String: Int] {
        var lines: [String: Int] = [:]
        var inMultiline: Substring?  // the delimiter of the multi-line string still open
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let startsInString = inMultiline != nil
            for delimiter: Substring in [#"""""#, "'''"] where inMultiline == nil || inMultiline == delimiter {
                if line.ranges(of: delimiter).count % 2 == 1 { inMultiline = inMultiline == nil ? delimiter : nil }
            }
            guard !startsInString else { continue }
            var rest = Substring(line).drop(while: { $0 == " " || $0 == "\t" })
            if rest.first == "[" { rest = rest.dropFirst().drop(while: { $0 == "[" || $0 == " " || $0 == "\t" }) }
            let key: Substring
            if let quote = rest.first, quote == "\"" || quote == "'" {
                key = rest.dropFirst().prefix(while: { $0 != quote })
            } else {
                key = rest.prefix(while: { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            }
            if !key.isEmpty && lines[String(key)] == nil { lines[String(key)] = index + 1 }
        }
        return lines
    }

    /// "did you mean …" for a key that is close to a known one (a typo, or `_` for `-`), else where the keys are.
    static func suggestion(for key: String, among settings: [Setting]) -> String {
        let normalized = key.lowercased().replacingOccurrences(of: "_", with: "-")
        let scored = settings.map { ($0.key, editDistance(normalized, $0.key)) }.min { $0.1 < $1.1 }
        if let (closest, distance) = scored, distance <= max(2, closest.count / 4) { return "did you mean \"\(closest)\"?" }
        return "every flag of `parley serve --help` is a key, without its dashes in front"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Why the settings cannot be used, in a sentence that names where the bad value came from.
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
