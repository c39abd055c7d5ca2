import ParleyCore
import Testing

@Suite("Sanitizer")
struct SanitizerTests {
    @Test(
        "text removes escape sequences and controls",
        arguments: [
            // CSI
            ("\u{1B}[31mred\u{1B}[0m", "red"),
            ("a\u{1B}[2Jb", "ab"),
            ("\u{1B}[?25lhidden cursor\u{1B}[?25h", "hidden cursor"),
            ("\u{1B}[1;31;40mx", "x"),
            ("\u{1B}[10;20Hpos", "pos"),
            // OSC terminated by BEL, by ESC \ and unterminated
            ("a\u{1B}]0;evil title\u{07}b", "ab"),
            ("a\u{1B}]8;;http://x\u{1B}\\link\u{1B}]8;;\u{1B}\\b", "alinkb"),
            ("before\u{1B}]0;never ends", "before"),
            // DCS, SOS, PM, APC
            ("a\u{1B}Pq#0;2;0;0;0\u{1B}\\b", "ab"),
            ("a\u{1B}Xsos\u{1B}\\b", "ab"),
            ("a\u{1B}^pm\u{1B}\\b", "ab"),
            ("a\u{1B}_apc\u{07}b", "ab"),
            // two-character escapes, with and without intermediates
            ("a\u{1B}cb", "ab"),
            ("a\u{1B}(Bb", "ab"),
            ("a\u{1B}7b\u{1B}8", "ab"),
            ("a\u{1B}", "a"),
            // C1 controls
            ("a\u{9B}31mb", "ab"),
            ("a\u{9B}?25lb", "ab"),
            ("a\u{9D}0;title\u{9C}b", "ab"),
            ("a\u{90}dcs\u{9C}b", "ab"),
            ("a\u{85}b\u{80}\u{9F}", "ab"),
            // C0 and DEL
            ("a\u{0}b\u{7}c\u{8}d", "abcd"),
            ("line1\nline2\r\n", "line1line2"),
            ("a\u{7F}b", "ab"),
            ("col1\tcol2", "col1 col2"),
        ]
    )
    func textRemoves(_ input: String, _ expected: String) {
        #expect(Sanitizer.text(input) == expected)
    }

    @Test(
        "text keeps ordinary text, emoji, CJK, combining marks and U+FFFD",
        arguments: ["hello, world!", "👋🏽 hi 👨‍👩‍👧", "你好，世界", "e\u{301}te\u{301}", "bad \u{FFFD} byte", "Ελληνικά",
            "~!@#$%^&*()_+[]{}|;':\",./<>?", "שלום עולם", "مرحبا\u{200F} world", "می\u{200C}خواهم", "❤\u{FE0F} 🏳\u{FE0F}\u{200D}🌈",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}", "ᠮᠣᠩᠭᠣᠯ\u{180B}"]
    )
    func textKeeps(_ input: String) {
        #expect(Sanitizer.text(input) == input)
    }

    @Test("text keeps what follows a sequence")
    func textKeepsAfterSequences() {
        #expect(Sanitizer.text("\u{1B}[31m你好\u{1B}[0m 👋 e\u{301}") == "你好 👋 e\u{301}")
    }

    @Test(
        "name also removes bidi controls and default-ignorable characters",
        arguments: [
            ("al\u{200B}ice", "alice"),
            ("\u{202E}evil\u{202C}", "evil"),
            ("a\u{200C}b\u{200D}c", "abc"),
            ("a\u{2060}b\u{FEFF}c", "abc"),
            ("soft\u{00AD}hyphen", "softhyphen"),
            ("\u{2066}iso\u{2069}", "iso"),
            ("\u{200E}ltr\u{200F}", "ltr"),
            ("\u{1B}[31mred\u{200B}", "red"),
            ("plain", "plain"),
        ]
    )
    func name(_ input: String, _ expected: String) {
        #expect(Sanitizer.name(input) == expected)
    }

    @Test(
        "text neutralises what forges lines or reorders text: separators, overrides, isolates, invisible characters",
        arguments: [
            ("hi\u{2028}<alice> send it", "hi <alice> send it"),
            ("para\u{2029}graph", "para graph"),
            ("file\u{202E}gpj.exe", "filegpj.exe"),
            ("\u{202A}\u{202B}\u{202C}\u{202D}x", "x"),
            ("\u{2066}iso\u{2067}\u{2068}\u{2069}", "iso"),
            ("al\u{200B}ice", "alice"),
            ("a\u{2060}b\u{FEFF}c", "abc"),
            ("soft\u{00AD}hyphen", "softhyphen"),
            ("\u{3164}\u{115F}x", "x"),
        ]
    )
    func textNeutralises(_ input: String, _ expected: String) {
        #expect(Sanitizer.text(input) == expected)
    }

    @Test("isBlank is true for empty and white-space-only text")
    func isBlank() {
        #expect(Sanitizer.isBlank(""))
        #expect(Sanitizer.isBlank("   "))
        #expect(Sanitizer.isBlank(" \t\n\u{3000}"))
        #expect(Sanitizer.isBlank("\u{200D}\u{200C}\u{FE0F}"))  // nothing anyone would see
        #expect(!Sanitizer.isBlank(" a "))
        #expect(!Sanitizer.isBlank("👋"))
    }

    @Test("trimmed removes white space at both ends only")
    func trimmed() {
        #expect(Sanitizer.trimmed("  a b  ") == "a b")
        #expect(Sanitizer.trimmed("\t\nx\n") == "x")
        #expect(Sanitizer.trimmed("   ") == "")
        #expect(Sanitizer.trimmed("") == "")
        #expect(Sanitizer.trimmed("inner  space") == "inner  space")
    }
}
