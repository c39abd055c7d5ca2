import ParleyTerminal
import Testing

@Suite("KeyDecoder")
struct KeyDecoderTests {
    private func decodeAll(_ text: String) -> [Key] {
        var decoder = KeyDecoder()
        return decoder.decode(Array(text.utf8))
    }

    /// Feeds `bytes` one at a time and collects every key.
    private func decodeByteByByte(_ bytes: [UInt8], into decoder: inout KeyDecoder) -> [Key] {
        bytes.flatMap { decoder.decode([$0]) }
    }

    private func decodeByteByByte(_ text: String) -> [Key] {
        var decoder = KeyDecoder()
        return decodeByteByByte(Array(text.utf8), into: &decoder)
    }

    // MARK: - Plain keys

    @Test("Printable ASCII becomes characters")
    func printable() {
        #expect(decodeAll("hi!") == [.character("h"), .character("i"), .character("!")])
        #expect(decodeAll(" ") == [.character(" ")])
    }

    @Test("Enter, Tab and Backspace", arguments: [
        ([UInt8(0x0D)], Key.enter),
        ([0x0A], .enter),
        ([0x09], .tab),
        ([0x7F], .backspace),
        ([0x08], .backspace),
    ])
    func simpleControls(bytes: [UInt8], key: Key) {
        var decoder = KeyDecoder()
        #expect(decoder.decode(bytes) == [key])
    }

    @Test("Ctrl plus a letter becomes .control with the lowercase letter")
    func controlLetters() {
        var decoder = KeyDecoder()
        for (letter, byte) in zip("abcdefgklnopqrstuvwxyz", [UInt8(1), 2, 3, 4, 5, 6, 7, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]) {
            #expect(decoder.decode([byte]) == [.control(letter)], "byte \(byte)")
        }
    }

    @Test("The Ctrl letters the editor uses")
    func editorControls() {
        #expect(decodeAll("\u{01}\u{05}\u{15}\u{0B}\u{17}\u{0E}\u{10}")
            == [.control("a"), .control("e"), .control("u"), .control("k"), .control("w"), .control("n"), .control("p")])
    }

    @Test("NUL and the other unbound C0 bytes are dropped")
    func unboundControls() {
        var decoder = KeyDecoder()
        #expect(decoder.decode([0x00, 0x1C, 0x1D, 0x1E, 0x1F]) == [])
        #expect(decoder.decode([0x00, UInt8(ascii: "x"), 0x1F]) == [.character("x")])
    }

    // MARK: - Escape sequences

    @Test("Every CSI and SS3 key the decoder knows", arguments: [
        ("\u{1B}[A", Key.up), ("\u{1B}[B", .down), ("\u{1B}[C", .right), ("\u{1B}[D", .left),
        ("\u{1B}OA", .up), ("\u{1B}OB", .down), ("\u{1B}OC", .right), ("\u{1B}OD", .left),
        ("\u{1B}[H", .home), ("\u{1B}[F", .end), ("\u{1B}OH", .home), ("\u{1B}OF", .end),
        ("\u{1B}[1~", .home), ("\u{1B}[7~", .home), ("\u{1B}[4~", .end), ("\u{1B}[8~", .end),
        ("\u{1B}[3~", .delete),
        ("\u{1B}[1;5C", .right), ("\u{1B}[1;2D", .left),  // with modifiers
        ("\u{1B}[5~", .pageUp), ("\u{1B}[6~", .pageDown), ("\u{1B}[5;2~", .scrollTop), ("\u{1B}[6;2~", .scrollBottom),
        ("\u{1B}[1;5H", .scrollTop), ("\u{1B}[1;5F", .scrollBottom),  // Shift+PgUp/PgDn, Ctrl+Home/End
        ("\u{1B}[<64;10;5M", .wheelUp), ("\u{1B}[<65;1;1M", .wheelDown),  // SGR mouse reports
    ])
    func escapeKeys(sequence: String, key: Key) {
        #expect(decodeAll(sequence) == [key])
        #expect(decodeByteByByte(sequence) == [key])
    }

    @Test("Unbound CSI sequences are consumed without a key")
    func unboundCSI() {
        #expect(decodeAll("\u{1B}[2~x") == [.character("x")])  // Insert
        #expect(decodeAll("\u{1B}[3;5~y") == [.character("y")])
        #expect(decodeAll("\u{1B}[<0;3;4Mw\u{1B}[<0;3;4mv") == [.character("w"), .character("v")])  // a click, pressed and released
        // X10 reports (terminals without SGR mouse mode): the wheel, and a click whose raw bytes are not typed.
        #expect(decodeAll("\u{1B}[M`!!\u{1B}[Ma!!") == [.wheelUp, .wheelDown])
        #expect(decodeAll("\u{1B}[M !!x") == [.character("x")])
        #expect(decodeByteByByte("\u{1B}[M`!!") == [.wheelUp])
        #expect(decodeAll("\u{1B}OPz") == [.character("z")])  // F1
    }

    @Test("Alt plus a digit", arguments: 0...9)
    func altDigit(digit: Int) {
        let sequence = "\u{1B}\(digit)"
        #expect(decodeAll(sequence) == [.altDigit(digit)])
        #expect(decodeByteByByte(sequence) == [.altDigit(digit)])
    }

    @Test("Alt plus a letter is not bound and swallows nothing else")
    func altLetter() {
        #expect(decodeAll("\u{1B}xa") == [.character("a")])
    }

    @Test("An escape sequence split across calls waits for its end")
    func splitEscape() {
        var decoder = KeyDecoder()
        #expect(decoder.decode([0x1B]) == [])
        #expect(decoder.decode(Array("[".utf8)) == [])
        #expect(decoder.decode(Array("A".utf8)) == [.up])

        #expect(decoder.decode(Array("x\u{1B}[".utf8)) == [.character("x")])
        #expect(decoder.decode(Array("3".utf8)) == [])
        #expect(decoder.decode(Array("~y".utf8)) == [.delete, .character("y")])
    }

    @Test("A mix of keys fed byte by byte decodes the same as all at once")
    func byteByByteMix() {
        let input = "a\u{1B}[D\u{1B}OH\u{1B}3漢\u{1B}[3~é😀\r\u{1B}[1;5C\u{7F}\t\u{01}"
        let expected: [Key] = [
            .character("a"), .left, .home, .altDigit(3), .character("漢"), .delete, .character("é"),
            .character("😀"), .enter, .right, .backspace, .tab, .control("a"),
        ]
        #expect(decodeAll(input) == expected)
        #expect(decodeByteByByte(input) == expected)
    }

    @Test("An overlong unterminated CSI is discarded rather than held forever")
    func overlongCSI() {
        var decoder = KeyDecoder()
        let junk = [UInt8(0x1B), UInt8(ascii: "[")] + Array(repeating: UInt8(ascii: "1"), count: 20)
        #expect(decoder.decode(junk) == [])
        #expect(decoder.decode(Array("q".utf8)) == [.character("q")])
    }

    // MARK: - UTF-8

    @Test("Multi-byte UTF-8 characters", arguments: ["é", "漢", "😀", "€", "ñ"])
    func utf8(character: String) {
        #expect(decodeAll(character) == [.character(Character(character))])
    }

    @Test("UTF-8 split across calls is kept until complete", arguments: ["é", "漢", "😀"])
    func utf8Split(character: String) {
        var decoder = KeyDecoder()
        let bytes = Array(character.utf8)
        for byte in bytes.dropLast() {
            #expect(decoder.decode([byte]) == [])
        }
        #expect(decoder.decode([bytes.last!]) == [.character(Character(character))])
    }

    @Test("A 4-byte character split 2 + 2 between reads, with keys around it")
    func utf8SplitInTheMiddle() {
        var decoder = KeyDecoder()
        let bytes = Array("a😀b".utf8)  // a, F0 9F 98 80, b
        #expect(decoder.decode(bytes[0..<3]) == [.character("a")])
        #expect(decoder.decode(bytes[3...]) == [.character("😀"), .character("b")])
    }

    @Test("A combining mark typed after a letter arrives as its own key (the editor joins them)")
    func combiningMarkKey() {
        #expect(decodeAll("e\u{301}") == [.character("e"), .character("\u{301}")])
    }

    // MARK: - Bracketed paste

    @Test("A bracketed paste is one .paste key, newlines, slashes and escapes included")
    func paste() {
        #expect(decodeAll("\u{1B}[200~hello\u{1B}[201~") == [.paste("hello")])
        #expect(decodeAll("\u{1B}[200~/quit\nline two\r\n\u{1B}[A\t\u{1B}[201~")
            == [.paste("/quit\nline two\r\n\u{1B}[A\t")])
        #expect(decodeAll("\u{1B}[200~\u{1B}[201~") == [.paste("")])
    }

    @Test("Keys before and after a paste in the same read")
    func pasteBetweenKeys() {
        #expect(decodeAll("a\u{1B}[200~pasted\u{1B}[201~b\r")
            == [.character("a"), .paste("pasted"), .character("b"), .enter])
    }

    @Test("A paste fed byte by byte")
    func pasteByteByByte() {
        let keys = decodeByteByByte("x\u{1B}[200~漢字 😀\nsecond\u{1B}[201~\u{1B}[B")
        #expect(keys == [.character("x"), .paste("漢字 😀\nsecond"), .down])
    }

    @Test("A paste whose end marker is split across reads")
    func pasteEndMarkerSplit() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("\u{1B}[200~one\ntwo\u{1B}[2".utf8)) == [])
        #expect(decoder.decode(Array("01".utf8)) == [])
        #expect(decoder.decode(Array("~z".utf8)) == [.paste("one\ntwo"), .character("z")])
    }

    @Test("A paste whose start marker is split across reads")
    func pasteStartMarkerSplit() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("\u{1B}[2".utf8)) == [])
        #expect(decoder.decode(Array("00".utf8)) == [])
        #expect(decoder.decode(Array("~/join #x\r".utf8)) == [])
        #expect(decoder.decode(Array("\u{1B}[201~".utf8)) == [.paste("/join #x\r")])
    }

    @Test("A paste with UTF-8 split across reads, and a long paste in many chunks")
    func pasteUTF8Split() {
        var decoder = KeyDecoder()
        let body = String(repeating: "漢字😀 abc\n", count: 50)
        let bytes = Array("\u{1B}[200~\(body)\u{1B}[201~".utf8)
        var keys: [Key] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + 7)  // 7 splits multi-byte characters and the markers
            keys += decoder.decode(bytes[start..<end])
            start = end
        }
        #expect(keys == [.paste(body)])
    }

    @Test("Something that only looks like the start of an end marker stays in the paste")
    func pasteWithEscapeInside() {
        var decoder = KeyDecoder()
        #expect(decoder.decode(Array("\u{1B}[200~a\u{1B}[20".utf8)) == [])
        #expect(decoder.decode(Array("0~b\u{1B}[201~".utf8)) == [.paste("a\u{1B}[200~b")])
    }

    @Test("Consecutive pastes")
    func consecutivePastes() {
        #expect(decodeAll("\u{1B}[200~one\u{1B}[201~\u{1B}[200~two\u{1B}[201~") == [.paste("one"), .paste("two")])
    }
}
