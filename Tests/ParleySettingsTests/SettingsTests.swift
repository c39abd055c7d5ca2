import Foundation
import Testing

@testable import ParleySettings

/// The settings layers without a process: precedence, where each value came from, and the errors a mistyped
/// file, flag or variable gets.
@Suite("Settings: flags, environment, file, defaults")
struct SettingsTests {
    static let schema = [
        Setting("port", .int(0...65535), default: .int(5000), "The port."),
        Setting("flood-rate", .double(0.001...1000), default: .double(2), live: true, "Lines a second."),
        Setting("tls", .bool, default: .bool(false), "TLS."),
        Setting("log-level", .choice(["info", "debug"]), default: .string("info"), live: true, "Level."),
        Setting("exempt-ip", .strings, default: .strings([]), "Networks."),
        Setting("server-password", .string, secret: true, "A password."),
        Setting("motd", .string, "A file."),
    ]

    static func file(_ text: String) throws(SettingsError) -> SettingsFile {
        try SettingsFile(path: "parley.toml", text: text, settings: schema)
    }

    @Test("a flag beats the environment, which beats the file, which beats the default; each value says where it came from")
    func precedence() throws {
        let file = try Self.file("""
            # a comment
            port = 6000
            flood-rate = 5            # an integer where a number is wanted
            tls = true
            exempt-ip = "10.0.0.0/8"  # one string where a list is wanted
            log-level = "debug"
            """)
        let settings = try Settings(
            schema: Self.schema, flags: ["port": .int(7000)], environment: ["PARLEY_FLOOD_RATE": "9.5", "PARLEY_TLS": "", "PARLEY_OTHER": "x"], file: file
        )
        #expect(settings.int("port") == 7000)
        #expect(settings.source("port") == .flag)
        #expect(settings.double("flood-rate") == 9.5)
        #expect(settings.source("flood-rate") == .environment)
        #expect(settings.bool("tls"), "an empty variable counts as unset, so the file's value holds")
        #expect(settings.source("tls") == .file(path: "parley.toml", line: 4))
        #expect(settings.strings("exempt-ip") == ["10.0.0.0/8"])
        #expect(settings.string("log-level") == "debug")
        #expect(settings.string("motd") == nil)
        #expect(settings.source("motd") == nil)
        let defaults = try Settings(schema: Self.schema, flags: [:], environment: [:], file: nil)
        #expect(defaults.int("port") == 5000 && defaults.source("port") == .byDefault)
        #expect(!defaults.bool("tls"))
    }

    @Test("the environment: switches as true/false/1/0/yes/no, lists comma-separated, bad values named with their variable")
    func environment() throws {
        let settings = try Settings(
            schema: Self.schema, flags: [:], environment: ["PARLEY_TLS": "yes", "PARLEY_EXEMPT_IP": "10.0.0.0/8, 192.168.0.0/16,", "PARLEY_PORT": " 6001"], file: nil
        )
        #expect(settings.bool("tls"))
        #expect(settings.strings("exempt-ip") == ["10.0.0.0/8", "192.168.0.0/16"])
        #expect(settings.int("port") == 6001)
        #expect(throws: SettingsError("PARLEY_PORT=abc: port must be a whole number, 0 to 65535")) {
            try Settings(schema: Self.schema, flags: [:], environment: ["PARLEY_PORT": "abc"], file: nil)
        }
        #expect(throws: SettingsError("PARLEY_PORT=70000: must be 0 to 65535")) {
            try Settings(schema: Self.schema, flags: [:], environment: ["PARLEY_PORT": "70000"], file: nil)
        }
        #expect(throws: SettingsError("PARLEY_TLS=maybe: tls must be true or false")) {
            try Settings(schema: Self.schema, flags: [:], environment: ["PARLEY_TLS": "maybe"], file: nil)
        }
        #expect(throws: SettingsError("--flood-rate 0: must be 0.001 to 1000")) {
            try Settings(schema: Self.schema, flags: ["flood-rate": .double(0)], environment: [:], file: nil)
        }
    }

    @Test("a mistake in the file names the file, the line and what to write instead")
    func fileErrors() {
        let cases: [(String, String)] = [
            ("port = 5000\nprot = 5001\n", "parley.toml, line 2: unknown key \"prot\"; did you mean \"port\"?"),
            ("flood_rate = 3\n", "parley.toml, line 1: unknown key \"flood_rate\"; did you mean \"flood-rate\"?"),
            ("nickname = \"x\"\n", "parley.toml, line 1: unknown key \"nickname\"; every flag of `parley serve --help` is a key, without its dashes in front"),
            ("\n\nport = \"5000\"\n", "parley.toml, line 3: port must be a whole number, 0 to 65535"),
            ("port = 70000\n", "parley.toml, line 1: port = 70000: must be 0 to 65535"),
            ("log-level = \"loud\"\n", "parley.toml, line 1: log-level = \"loud\": must be one of: info, debug"),
            ("exempt-ip = [\"10.0.0.0/8\", 3]\n", "parley.toml, line 1: exempt-ip must be a list of strings, like [\"a\", \"b\"]"),
            ("tls = \"yes\"\n", "parley.toml, line 1: tls must be true or false"),
            ("port = 1\n[tls]\ncert = \"a\"\n", "parley.toml, line 2: tls: there are no sections or dotted keys; every key goes at the top of the file, named as its flag"),
        ]
        for (text, message) in cases {
            #expect(throws: SettingsError(message), "\(text)") { try Self.file(text) }
        }
        // toml++'s own message for what is not TOML at all, with its line.
        do {
            _ = try Self.file("port = 1\nport = \n")
            Issue.record("a broken file was taken")
        } catch {
            #expect(error.description.hasPrefix("parley.toml, line 2: "), "\(error)")
        }
    }

    @Test("the first mistake in the file is said, whatever order the parser keeps; text in multi-line strings is not a key; a NUL is refused")
    func fileOrder() {
        #expect(throws: SettingsError("parley.toml, line 1: unknown key \"zzz\"; every flag of `parley serve --help` is a key, without its dashes in front")) {
            try Self.file("zzz = 1\naaa = 2\n")
        }
        let multiline = "motd = \"\"\"\nport = 1\n\"\"\"\nport = \"x\"\n"
        #expect(throws: SettingsError("parley.toml, line 4: port must be a whole number, 0 to 65535")) { try Self.file(multiline) }
        #expect(throws: SettingsError("parley.toml, line 2: a NUL byte; a settings file is text")) { try Self.file("port = 1\n\u{0}\nport = 2\n") }
        #expect(throws: SettingsError("parley.toml, line 1: config is not a key: it names or shows the file (--config), so it goes on the command line")) {
            try Self.file("config = \"/etc/parley.toml\"\n")
        }
    }

    @Test("a secret's value is never in an error")
    func secretErrors() {
        let schema = [Setting("pin", .int(1000...9999), secret: true, "A PIN.")]
        #expect(throws: SettingsError("--pin ********: must be 1000 to 9999")) {
            try Settings(schema: schema, flags: ["pin": .int(12)], environment: [:], file: nil)
        }
        #expect(throws: SettingsError("PARLEY_PIN: must be 1000 to 9999")) {
            try Settings(schema: schema, flags: [:], environment: ["PARLEY_PIN": "12"], file: nil)
        }
        #expect(throws: SettingsError("parley.toml, line 1: pin = \"********\": must be 1000 to 9999")) {
            try SettingsFile(path: "parley.toml", text: "pin = 12\n", settings: schema)
        }
    }

    @Test("a reload tells which edits of the file a flag or the environment overrides")
    func overridden() throws {
        let environment = ["PARLEY_FLOOD_RATE": "9"]
        let before = try Settings(schema: Self.schema, flags: ["port": .int(1)], environment: environment, file: try Self.file("flood-rate = 2\nport = 5\n"))
        let after = try Settings(
            schema: Self.schema, flags: ["port": .int(1)], environment: environment, file: try Self.file("flood-rate = 3\nport = 6\nmotd = \"m\"\n")
        )
        #expect(after.changes(since: before).map(\.setting.key) == ["motd"])
        #expect(after.overriddenFileChanges(since: before).map { "\($0.setting.key) by \($0.by)" } == ["port by --port", "flood-rate by PARLEY_FLOOD_RATE"])
    }

    @Test("--print-config: a TOML file of every setting with its source; secrets masked; unset ones as comments")
    func printed() throws {
        let settings = try Settings(
            schema: Self.schema, flags: ["tls": .bool(true)], environment: ["PARLEY_SERVER_PASSWORD": "sesame"],
            file: try Self.file("port = 6000\nexempt-ip = [\"10.0.0.0/8\", \"fd00::/8\"]\n")
        )
        let text = settings.printed(command: "parley serve")
        #expect(!text.contains("sesame"))
        let lines = text.split(separator: "\n").map { $0.split(separator: "#", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) } }
        let table = Dictionary(lines.filter { $0.count == 2 && !$0[0].isEmpty }.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        #expect(table["port = 6000"] == "file parley.toml, line 1")
        #expect(table["tls = true"] == "flag --tls")
        #expect(table["server-password = \"********\""] == "environment PARLEY_SERVER_PASSWORD")
        #expect(table["flood-rate = 2.0"] == "default")
        #expect(table["exempt-ip = [\"10.0.0.0/8\", \"fd00::/8\"]"] == "file parley.toml, line 2")
        #expect(text.contains("# motd: not set"))
        // What it prints reads back as the same settings.
        let again = try Settings(
            schema: Self.schema, flags: [:], environment: ["PARLEY_SERVER_PASSWORD": "sesame"], file: try Self.file(text)
        )
        #expect(again.changes(since: settings).isEmpty)
    }

    @Test("a reload's changes: which settings differ, old and new, secrets masked")
    func changes() throws {
        let before = try Settings(schema: Self.schema, flags: [:], environment: [:], file: try Self.file("flood-rate = 2\nserver-password = \"a\"\n"))
        let after = try Settings(schema: Self.schema, flags: [:], environment: [:], file: try Self.file("flood-rate = 5\nport = 6000\nserver-password = \"b\"\n"))
        let changes = after.changes(since: before)
        #expect(changes.map(\.description) == ["port: 5000 -> 6000", "flood-rate: 2.0 -> 5.0", "server-password: ******** -> ********"])
        #expect(changes.map(\.setting.live) == [false, true, false])
    }

    @Test("--help text: the default and whether SIGHUP applies it")
    func help() {
        #expect(Self.schema[1].help == "Lines a second. (default: 2) [SIGHUP applies it]")
        #expect(Self.schema[2].help == "TLS.")
        #expect(Self.schema[0].environmentName == "PARLEY_PORT")
        #expect(Self.schema[5].environmentName == "PARLEY_SERVER_PASSWORD")
    }

    @Test("strings are quoted as TOML wants them")
    func quoting() {
        #expect(SettingValue.string("a \"b\" \\ c\n\u{1}").toml == #""a \"b\" \\ c\n\u0001""#)
    }
}
