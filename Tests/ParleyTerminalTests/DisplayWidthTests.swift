import ParleyTerminal
import Testing

@Suite("DisplayWidth")
struct DisplayWidthTests {
    @Test("ASCII takes one cell per character")
    func ascii() {
        #expect(DisplayWidth.of("") == 0)
        #expect(DisplayWidth.of("a") == 1)
        #expect(DisplayWidth.of("hello, world!") == 13)
        #expect(DisplayWidth.of(" ") == 1)
    }

    @Test("East Asian wide and fullwidth characters take two cells")
    func cjk() {
        #expect(DisplayWidth.of("漢字") == 4)
        #expect(DisplayWidth.of("漢") == 2)
        #expect(DisplayWidth.of("ひらがな") == 8)
        #expect(DisplayWidth.of("カタカナ") == 8)
        #expect(DisplayWidth.of("한국어") == 6)
        #expect(DisplayWidth.of("Ａ") == 2)  // fullwidth Latin
        #expect(DisplayWidth.of("、") == 2)  // ideographic comma
        #expect(DisplayWidth.of("a漢b") == 4)
    }

    @Test("Halfwidth forms and other scripts take one cell")
    func narrowNonASCII() {
        #expect(DisplayWidth.of("ｱ") == 1)  // U+FF71 halfwidth katakana
        #expect(DisplayWidth.of("é") == 1)  // precomposed
        #expect(DisplayWidth.of("Привет") == 6)
        #expect(DisplayWidth.of("αβγ") == 3)
    }

    @Test("Emoji take two cells")
    func emoji() {
        #expect(DisplayWidth.of("😀") == 2)
        #expect(DisplayWidth.of("🚀") == 2)
        #expect(DisplayWidth.of("🦀") == 2)
        #expect(DisplayWidth.of("⌚") == 2)  // U+231A, emoji presentation by default
        #expect(DisplayWidth.of("hi 😀") == 5)
    }

    @Test("A ZWJ family is one cluster of two cells")
    func zwjFamily() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}"
        #expect(family.count == 1)
        #expect(DisplayWidth.of(family) == 2)
        let rainbowFlag = "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}"
        #expect(DisplayWidth.of(rainbowFlag) == 2)
    }

    @Test("A flag (pair of regional indicators) takes two cells")
    func flags() {
        #expect(DisplayWidth.of("🇺🇸") == 2)
        #expect(DisplayWidth.of("🇯🇵🇫🇷") == 4)
    }

    @Test("A skin-tone modifier does not add width")
    func skinTone() {
        #expect(DisplayWidth.of("👍🏽") == 2)
    }

    @Test("VS16 asks for emoji presentation: two cells; without it the text symbol is one")
    func variationSelectors() {
        #expect(DisplayWidth.of("\u{2764}") == 1)
        #expect(DisplayWidth.of("\u{2764}\u{FE0F}") == 2)
        #expect(DisplayWidth.of("\u{263A}\u{FE0F}") == 2)
        #expect(DisplayWidth.of("\u{263A}\u{FE0E}") == 1)  // VS15: text presentation
    }

    @Test("Combining sequences are one cell")
    func combining() {
        #expect(DisplayWidth.of("e\u{301}") == 1)
        #expect(DisplayWidth.of("e\u{301}\u{323}") == 1)
        #expect(DisplayWidth.of("cafe\u{301}") == 4)
        #expect(DisplayWidth.of("\u{20DD}") == 0)  // enclosing mark on its own
    }

    @Test("A wide base with a combining mark stays two cells")
    func wideWithCombining() {
        #expect(DisplayWidth.of("漢\u{301}") == 2)
    }

    @Test("Zero-width and control characters take no cells")
    func zeroWidth() {
        #expect(DisplayWidth.of("\u{200B}") == 0)  // zero-width space
        #expect(DisplayWidth.of("\u{200D}") == 0)  // ZWJ alone
        #expect(DisplayWidth.of("\u{2060}") == 0)  // word joiner
        #expect(DisplayWidth.of("\u{FEFF}") == 0)  // BOM
        #expect(DisplayWidth.of("\u{0}") == 0)
        #expect(DisplayWidth.of("\u{7}") == 0)
        #expect(DisplayWidth.of("\u{1B}") == 0)
        #expect(DisplayWidth.of("a\u{200B}b") == 2)
    }

    @Test("Character and string overloads agree")
    func characterOverload() {
        let character: Character = "漢"
        #expect(DisplayWidth.of(character) == 2)
        #expect(DisplayWidth.of(Character("a")) == 1)
        #expect(DisplayWidth.of("ab漢字"[...].dropFirst()) == 5)  // a Substring
    }

    @Test("A lone regional indicator is one cell")
    func loneRegionalIndicator() {
        // A single regional indicator is East_Asian_Width = N and drawn narrow, although it has
        // Emoji_Presentation = Yes: the regional-indicator check comes before the emoji-presentation one
        // (a pair, a flag, is two cells: see "A flag … takes two cells").
        #expect(DisplayWidth.of("\u{1F1FA}") == 1)
        #expect(DisplayWidth.of(Character("\u{1F1FA}")) == 1)
    }
}
