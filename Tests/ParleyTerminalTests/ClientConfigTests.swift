import ParleyTerminal
import Testing

@Suite("ClientConfig")
struct ClientConfigTests {
    @Test("Every key, with comments, blank lines and escapes")
    func everyKey() throws {
        let config = try ClientConfig.parse("""
            # parley connect
            server = "chat.lan:5000"   # the team's
            nick = "alice"

            rooms = ["#dev", "#ops"]
            colour = false
            timestamp = "%H:%M:%S"
            tls = true
            ignore = ["spam\\"mer", "bot"]
            """)
        var expected = ClientConfig()
        (expected.server, expected.nick, expected.rooms, expected.colour) = ("chat.lan:5000", "alice", ["#dev", "#ops"], false)
        (expected.timestamp, expected.tls, expected.ignore) = ("%H:%M:%S", true, ["spam\"mer", "bot"])
        #expect(config == expected)
        #expect(try ClientConfig.parse("") == ClientConfig())
        #expect(try ClientConfig.parse("color = true").colour == true)  // either spelling
        #expect(try ClientConfig.parse("\u{FEFF}nick = \"a\"\r\nrooms = [\"#b\"]\r\n").rooms == ["#b"])  // a BOM, CR LF
    }

    @Test("Mistakes name their line and what is wrong", arguments: [
        ("nick = \"a\"\nnicks = \"b\"", ClientConfig.Failure(line: 2, reason: "unknown key nicks (did you mean nick?)")),
        ("colour = \"yes\"", ClientConfig.Failure(line: 1, reason: "colour takes true or false")),
        ("rooms = \"#a\"", ClientConfig.Failure(line: 1, reason: "rooms takes a list of strings, like [\"a\", \"b\"]")),
        ("nick = \"alice", ClientConfig.Failure(line: 1, reason: "a string that does not end")),
        ("nick \"alice\"", ClientConfig.Failure(line: 1, reason: "expected key = value")),
        ("nick = \"a\" extra", ClientConfig.Failure(line: 1, reason: "unexpected text after the value of nick")),
        ("rooms = [\"#a\",", ClientConfig.Failure(line: 1, reason: "a list holds \"strings\" and ends with ] on the same line")),
    ])
    func mistakes(text: String, failure: ClientConfig.Failure) {
        #expect(throws: failure) { try ClientConfig.parse(text) }
    }

    @Test("/ignore rewrites the ignore line only, or adds one; the rest of the file stays as written")
    func settingIgnore() throws {
        let file = "# mine\nnick = \"alice\"\nignore = [\"old\"]  # noisy\n"
        let updated = ClientConfig.settingIgnore(["bob", "eve"], in: file)
        #expect(updated == "# mine\nnick = \"alice\"\nignore = [\"bob\", \"eve\"]\n")
        #expect(try ClientConfig.parse(updated).ignore == ["bob", "eve"])
        #expect(ClientConfig.settingIgnore(["x"], in: "nick = \"a\"\n") == "nick = \"a\"\nignore = [\"x\"]\n")
        #expect(ClientConfig.settingIgnore([], in: "") == "ignore = []\n")
    }
}
