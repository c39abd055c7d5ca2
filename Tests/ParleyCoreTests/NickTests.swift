import ParleyCore
import Testing

@Suite("Nick")
struct NickTests {
    @Test(
        "valid nicknames are accepted as spelled",
        arguments: ["alice", "Bob", "x", "a1", "_under", "[bracket]", "{brace}", "back\\slash", "pipe|", "caret^", "`tick`",
            "with-dash", "Z_9-[]{}\\|^`", String(repeating: "n", count: 24)]
    )
    func valid(_ raw: String) throws {
        let nick = try Nick(validating: raw)
        #expect(nick.display == raw)
        #expect(nick.description == raw)
    }

    @Test(
        "invalid nicknames are refused with invalid_nick",
        arguments: ["", "   ", String(repeating: "n", count: 25), "1alice", "9", "-alice", "al ice", "#alice", "alice!",
            "José", "ali©e", "Ωmega", "al.ice", "al@ice", "\u{200B}", "\u{1B}[31m"]
    )
    func invalid(_ raw: String) {
        let error = #expect(throws: ChatError.self) { try Nick(validating: raw) }
        #expect(error?.code == .invalidNick)
        #expect(error?.message.isEmpty == false)
    }

    @Test("digits and '-' are fine after the first character")
    func digitsAndDashLater() throws {
        #expect(try Nick(validating: "a-1").display == "a-1")
        #expect(try Nick(validating: "_1").display == "_1")
    }

    @Test("the length limit counts after cleaning")
    func lengthAfterCleaning() throws {
        let nick = try Nick(validating: String(repeating: "a", count: 24) + "\u{200B}\u{200B}")
        #expect(nick.display.count == 24)
    }

    @Test("white space around a nickname is trimmed")
    func trimmed() throws {
        #expect(try Nick(validating: "  alice \t").display == "alice")
    }

    @Test("equality and hashing ignore ASCII case; display keeps the spelling")
    func caseInsensitive() throws {
        let upper = try Nick(validating: "Alice")
        let lower = try Nick(validating: "aLICE")
        #expect(upper == lower)
        #expect(upper.hashValue == lower.hashValue)
        #expect(Set([upper, lower]).count == 1)
        #expect(upper.display == "Alice")
        #expect(lower.display == "aLICE")
        #expect(upper.key == "alice")
        #expect(try Nick(validating: "alice") != Nick(validating: "alicia"))
    }

    @Test("case folding is ASCII only: brackets are not folded to braces")
    func asciiFoldingOnly() throws {
        #expect(try Nick(validating: "a[b]") != Nick(validating: "a{b}"))
        #expect(try Nick(validating: "a\\b") != Nick(validating: "a|b"))
    }

    @Test(
        "zero-width, bidi and escape characters are removed before validation",
        arguments: [
            ("al\u{200B}ice", "alice"),
            ("\u{202E}alice", "alice"),
            ("ali\u{202E}ce\u{202C}", "alice"),
            ("al\u{200D}ice\u{FEFF}", "alice"),
            ("\u{1B}[31malice\u{1B}[0m", "alice"),
            ("ali\u{00AD}ce", "alice"),
            ("al\u{2066}i\u{2069}ce", "alice"),
            ("\u{1B}]0;title\u{07}alice", "alice"),
            ("ali\u{7F}ce\u{0}", "alice"),
        ]
    )
    func cleaned(_ raw: String, _ expected: String) throws {
        let nick = try Nick(validating: raw)
        #expect(nick.display == expected)
        #expect(nick == (try Nick(validating: expected)))
    }
}
