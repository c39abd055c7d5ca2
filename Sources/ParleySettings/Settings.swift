/// Where a setting's value came from.
public enum SettingSource: Sendable, Equatable {
    case flag
    case environment
    case file(path: String, line: Int?)
    case byDefault
}

/// A command's settings merged from its layers: a flag beats the environment, which beats the file, which beats
/// the default. Each value keeps where it came from, for `--print-config` and for errors that point at it.
public struct Settings: Sendable {
    public let schema: [Setting]
    private let entries: [String: (value: SettingValue, source: SettingSource)]
    /// The file's own values, also those a flag or the environment overrides (for a reload to say so).
    private let fileValues: [String: SettingValue]

    /// Merges the layers, checking every value against its setting. `flags` holds only the flags given;
    /// `environment` is the process's (an empty variable counts as unset).
    public init(schema: [Setting], flags: [String: SettingValue], environment: [String: String], file: SettingsFile?) throws(SettingsError) {
        self.schema = schema
        var entries: [String: (SettingValue, SettingSource)] = [:]
        for setting in schema {
            if let value = flags[setting.key] {
                if let problem = setting.kind.problem(with: value) {
                    throw SettingsError("\(setting.flag) \(setting.secret ? "********" : value.description): \(problem)")
                }
                entries[setting.key] = (value, .flag)
            } else if let text = environment[setting.environmentName], !text.isEmpty {
                let shown = setting.secret ? "\(setting.environmentName)" : "\(setting.environmentName)=\(text)"
                guard let value = setting.kind.value(fromText: text) else {
                    throw SettingsError("\(shown): \(setting.key) must be \(setting.kind.expectation)")
                }
                if let problem = setting.kind.problem(with: value) { throw SettingsError("\(shown): \(problem)") }
                entries[setting.key] = (value, .environment)
            } else if let file, let (value, line) = file.values[setting.key] {
                entries[setting.key] = (value, .file(path: file.path, line: line))
            } else if let value = setting.defaultValue {
                entries[setting.key] = (value, .byDefault)
            }
        }
        self.entries = entries
        self.fileValues = file?.values.mapValues(\.value) ?? [:]
    }

    public subscript(key: String) -> SettingValue? {
        precondition(schema.contains { $0.key == key }, "no setting \(key)")
        return entries[key]?.value
    }

    public func bool(_ key: String) -> Bool {
        if case .bool(let value) = self[key] { return value }
        return false
    }

    public func int(_ key: String) -> Int? {
        if case .int(let value) = self[key] { return value }
        return nil
    }

    public func double(_ key: String) -> Double? {
        if case .double(let value) = self[key] { return value }
        return nil
    }

    public func string(_ key: String) -> String? {
        if case .string(let value) = self[key] { return value }
        return nil
    }

    public func strings(_ key: String) -> [String] {
        if case .strings(let values) = self[key] { return values }
        return []
    }

    public func source(_ key: String) -> SettingSource? { entries[key]?.source }

    /// How an error names the setting: the flag, the variable, or the key with the file's line.
    public func origin(_ key: String) -> String {
        let setting = schema.first { $0.key == key }!
        return switch source(key) {
        case .environment: setting.environmentName
        case .file(let path, let line): "\(key) (\(path)\(line.map { ", line \($0)" } ?? ""))"
        case .flag, .byDefault, nil: setting.flag
        }
    }

    /// The merged settings as a TOML file, each line saying where its value came from; secrets masked. Settings
    /// with no value are listed as comments, so the output is also a template.
    public func printed(command: String) -> String {
        var lines = [
            "# The settings `\(command)` runs with, and where each comes from: a flag beats the environment",
            "# (PARLEY_…), which beats the configuration file, which beats the default.",
        ]
        let width = schema.map { setting in
            entries[setting.key].map { setting.key.count + 3 + shown(setting, $0.value).count } ?? 0
        }.max() ?? 0
        for setting in schema {
            guard let (value, source) = entries[setting.key] else {
                lines.append("# \(setting.key): not set")
                continue
            }
            let assignment = "\(setting.key) = \(shown(setting, value))"
            let from = switch source {
            case .flag: "flag \(setting.flag)"
            case .environment: "environment \(setting.environmentName)"
            case .file(let path, let line): "file \(path)\(line.map { ", line \($0)" } ?? "")"
            case .byDefault: "default"
            }
            lines.append(assignment + String(repeating: " ", count: max(1, width - assignment.count + 2)) + "# " + from)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func shown(_ setting: Setting, _ value: SettingValue) -> String {
        setting.secret ? "\"********\"" : value.toml
    }

    /// One setting whose value differs between two mergings (a reload).
    public struct Change: Sendable {
        public let setting: Setting
        public let old: SettingValue?
        public let new: SettingValue?

        /// `flood-rate: 2 -> 5`, secrets masked.
        public var description: String {
            func show(_ value: SettingValue?) -> String {
                guard let value else { return "(not set)" }
                return setting.secret ? "********" : value.toml
            }
            return "\(setting.key): \(show(old)) -> \(show(new))"
        }
    }

    /// Settings whose value in the file differs from `old`'s file, but a flag or the environment sets them: the
    /// edit has no effect, which a reload must say rather than report "unchanged".
    public func overriddenFileChanges(since old: Settings) -> [(setting: Setting, by: String)] {
        schema.compactMap { setting in
            guard fileValues[setting.key] != old.fileValues[setting.key] else { return nil }
            return switch source(setting.key) {
            case .flag: (setting, setting.flag)
            case .environment: (setting, setting.environmentName)
            default: nil
            }
        }
    }

    /// What differs from `old`, in schema order.
    public func changes(since old: Settings) -> [Change] {
        schema.compactMap { setting in
            let (before, after) = (old.entries[setting.key]?.value, entries[setting.key]?.value)
            return before == after ? nil : Change(setting: setting, old: before, new: after)
        }
    }
}
