import ParleyTerminal
import Testing

@Suite("LineEditor")
struct LineEditorTests {
    /// Types `text` one character at a time.
    private func type(_ text: String, into editor: inout LineEditor) {
        for character in text { #expect(editor.apply(.character(character)) == .none) }
    }

    private func makeEditor(_ text: String) -> LineEditor {
        var editor = LineEditor()
        type(text, into: &editor)
        return editor
    }

    private func press(_ keys: [Key], on editor: inout LineEditor, candidates: @escaping (String) -> [String] = { _ in [] }) {
        for key in keys { _ = editor.apply(key, candidates: candidates) }
    }

    // MARK: - Typing and the cursor

    @Test("Typing appends and moves the cursor")
    func typing() {
        let editor = makeEditor("hello")
        #expect(editor.text == "hello")
        #expect(editor.cursor == 5)
        #expect(editor.cursorColumn == 5)
    }

    @Test("Inserting in the middle")
    func insertInMiddle() {
        var editor = makeEditor("held")
        press([.left, .left], on: &editor)
        #expect(editor.cursor == 2)
        type("llo wor", into: &editor)
        #expect(editor.text == "hello world")
        #expect(editor.cursor == 9)
    }

    @Test("A combining mark typed after a letter joins it: one character, one cell")
    func combiningMark() {
        var editor = makeEditor("cafe")
        _ = editor.apply(.character("\u{301}"))
        #expect(editor.text == "cafe\u{301}")
        #expect(editor.text.count == 4)
        #expect(editor.cursor == 4)
        #expect(editor.cursorColumn == 4)
        _ = editor.apply(.backspace)
        #expect(editor.text == "caf")  // the whole cluster goes
    }

    @Test("A combining mark inserted in the middle joins the letter before the cursor")
    func combiningMarkInMiddle() {
        var editor = makeEditor("ab")
        _ = editor.apply(.left)
        _ = editor.apply(.character("\u{308}"))
        #expect(editor.text == "a\u{308}b")
        #expect(editor.cursor == 1)
        _ = editor.apply(.character("x"))
        #expect(editor.text == "a\u{308}xb")
        #expect(editor.cursor == 2)
    }

    @Test("An emoji typed one scalar at a time (ZWJ sequence) stays one character")
    func zwjTypedPiecewise() {
        var editor = LineEditor()
        for scalar in "\u{1F468}\u{200D}\u{1F469}".unicodeScalars { _ = editor.apply(.character(Character(scalar))) }
        #expect(editor.text == "\u{1F468}\u{200D}\u{1F469}")
        #expect(editor.cursor == 1)
        #expect(editor.cursorColumn == 2)
    }

    @Test("cursorColumn counts wide characters as two cells")
    func cursorColumnWide() {
        var editor = makeEditor("a漢字😀b")
        #expect(editor.cursor == 5)
        #expect(editor.cursorColumn == 1 + 2 + 2 + 2 + 1)
        press([.left], on: &editor)
        #expect(editor.cursorColumn == 7)
        press([.left], on: &editor)
        #expect(editor.cursorColumn == 5)
        press([.home], on: &editor)
        #expect(editor.cursorColumn == 0)
        press([.right, .right], on: &editor)
        #expect(editor.cursorColumn == 3)
    }

    @Test("Left and Right stop at the ends")
    func leftRightBounds() {
        var editor = makeEditor("ab")
        press([.right], on: &editor)
        #expect(editor.cursor == 2)
        press([.left, .left, .left, .left], on: &editor)
        #expect(editor.cursor == 0)
        press([.control("f")], on: &editor)
        #expect(editor.cursor == 1)
        press([.control("b")], on: &editor)
        #expect(editor.cursor == 0)
    }

    @Test("Home/End and Ctrl+A/Ctrl+E")
    func homeEnd() {
        var editor = makeEditor("hello")
        press([.home], on: &editor)
        #expect(editor.cursor == 0)
        press([.end], on: &editor)
        #expect(editor.cursor == 5)
        press([.control("a")], on: &editor)
        #expect(editor.cursor == 0)
        press([.control("e")], on: &editor)
        #expect(editor.cursor == 5)
        #expect(editor.text == "hello")
    }

    // MARK: - Deleting

    @Test("Backspace at the start does nothing; in the middle deletes before the cursor")
    func backspace() {
        var editor = makeEditor("abc")
        press([.home, .backspace], on: &editor)
        #expect(editor.text == "abc")
        #expect(editor.cursor == 0)
        press([.right, .right, .backspace], on: &editor)
        #expect(editor.text == "ac")
        #expect(editor.cursor == 1)
        press([.end, .backspace, .backspace, .backspace], on: &editor)
        #expect(editor.text == "")
        #expect(editor.cursor == 0)
    }

    @Test("Delete at the end does nothing; elsewhere deletes under the cursor (also Ctrl+D)")
    func delete() {
        var editor = makeEditor("abc")
        press([.delete], on: &editor)
        #expect(editor.text == "abc")
        #expect(editor.cursor == 3)
        press([.home, .delete], on: &editor)
        #expect(editor.text == "bc")
        #expect(editor.cursor == 0)
        press([.control("d")], on: &editor)
        #expect(editor.text == "c")
        #expect(editor.cursor == 0)
    }

    @Test("Backspace and Delete remove a wide character or an emoji whole")
    func deleteWide() {
        var editor = makeEditor("a漢👨‍👩‍👧b")
        press([.left, .backspace], on: &editor)
        #expect(editor.text == "a漢b")
        press([.home, .right, .delete], on: &editor)
        #expect(editor.text == "ab")
    }

    @Test("Ctrl+U deletes to the start, Ctrl+K to the end")
    func killLine() {
        var editor = makeEditor("hello world")
        press([.left, .left, .left, .left, .left, .control("u")], on: &editor)
        #expect(editor.text == "world")
        #expect(editor.cursor == 0)
        press([.right, .right, .control("k")], on: &editor)
        #expect(editor.text == "wo")
        #expect(editor.cursor == 2)
    }

    @Test("Ctrl+W deletes the word before the cursor and the spaces after it")
    func deleteWord() {
        var editor = makeEditor("say hello  world  ")
        press([.control("w")], on: &editor)
        #expect(editor.text == "say hello  ")
        press([.control("w")], on: &editor)
        #expect(editor.text == "say ")
        press([.control("w")], on: &editor)
        #expect(editor.text == "")
        press([.control("w")], on: &editor)
        #expect(editor.text == "")
        #expect(editor.cursor == 0)
    }

    @Test("Ctrl+W in the middle keeps what is after the cursor")
    func deleteWordMiddle() {
        var editor = makeEditor("one two three")
        press([.left, .left, .left, .left, .left], on: &editor)  // before "three"
        press([.control("w")], on: &editor)
        #expect(editor.text == "one three")
        #expect(editor.cursor == 4)
    }

    // MARK: - Enter and history

    @Test("Enter submits the line and clears it")
    func enter() {
        var editor = makeEditor("hi there")
        press([.home], on: &editor)
        #expect(editor.apply(.enter) == .submit("hi there"))
        #expect(editor.text == "")
        #expect(editor.cursor == 0)
        #expect(editor.apply(.enter) == .submit(""))
    }

    @Test("Up and Down walk the history and Down past the newest restores the draft")
    func history() {
        var editor = LineEditor()
        for line in ["first", "second", "third"] {
            type(line, into: &editor)
            _ = editor.apply(.enter)
        }
        type("draft", into: &editor)
        press([.up], on: &editor)
        #expect(editor.text == "third")
        #expect(editor.cursor == 5)
        press([.up], on: &editor)
        #expect(editor.text == "second")
        press([.up, .up, .up], on: &editor)
        #expect(editor.text == "first")  // stays at the oldest
        press([.down], on: &editor)
        #expect(editor.text == "second")
        press([.down, .down], on: &editor)
        #expect(editor.text == "draft")
        #expect(editor.cursor == 5)
        press([.down], on: &editor)
        #expect(editor.text == "draft")
    }

    @Test("Up with no history leaves the line alone")
    func historyEmpty() {
        var editor = makeEditor("typing")
        press([.up, .down], on: &editor)
        #expect(editor.text == "typing")
    }

    @Test("A recalled line can be edited and sent; the history is not changed by the edit")
    func historyEditAndSend() {
        var editor = LineEditor()
        type("hello", into: &editor)
        _ = editor.apply(.enter)
        press([.up], on: &editor)
        type("!", into: &editor)
        #expect(editor.apply(.enter) == .submit("hello!"))
        press([.up], on: &editor)
        #expect(editor.text == "hello!")
        press([.up], on: &editor)
        #expect(editor.text == "hello")
    }

    @Test("The same line sent twice in a row is stored once; empty lines not at all")
    func noDuplicateHistory() {
        var editor = LineEditor()
        for line in ["a", "b", "b", "", "b"] {
            type(line, into: &editor)
            _ = editor.apply(.enter)
        }
        press([.up], on: &editor)
        #expect(editor.text == "b")
        press([.up], on: &editor)
        #expect(editor.text == "a")
        press([.up], on: &editor)
        #expect(editor.text == "a")
    }

    @Test("The history keeps at most historyLimit lines")
    func historyLimit() {
        var editor = LineEditor(historyLimit: 2)
        #expect(editor.historyLimit == 2)
        for line in ["one", "two", "three"] {
            type(line, into: &editor)
            _ = editor.apply(.enter)
        }
        press([.up, .up, .up], on: &editor)
        #expect(editor.text == "two")
    }

    @Test("set replaces the line and puts the cursor at the end")
    func set() {
        var editor = makeEditor("old")
        editor.set("new 漢")
        #expect(editor.text == "new 漢")
        #expect(editor.cursor == 5)
        #expect(editor.cursorColumn == 6)
    }

    // MARK: - Tab completion

    private static let nicks = ["alice", "Bob", "bobby", "carol"]

    private func complete(_ editor: inout LineEditor, with candidates: [String]) {
        _ = editor.apply(.tab, candidates: { _ in candidates })
    }

    @Test("A nick at the start of the line is completed with \": \"")
    func completeNickAtStart() {
        var editor = makeEditor("al")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "alice: ")
        #expect(editor.cursor == 7)
    }

    @Test("A nick in the middle of the line is completed with a space")
    func completeNickMidLine() {
        var editor = makeEditor("hi car")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "hi carol ")
        #expect(editor.cursor == 9)
    }

    @Test("Completion is case-insensitive and keeps the candidate's spelling")
    func completeCaseInsensitive() {
        var editor = makeEditor("AL")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "alice: ")
    }

    @Test("Repeated Tab cycles through the matches (sorted) and wraps around")
    func completeCycles() {
        var editor = makeEditor("hey bo")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "hey Bob ")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "hey bobby ")
        #expect(editor.cursor == 10)
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "hey Bob ")
    }

    @Test("A key other than Tab ends the cycle: the next Tab completes the new word")
    func completeCycleEnds() {
        var editor = makeEditor("bo")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "Bob: ")
        type("a", into: &editor)
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "Bob: alice ")
    }

    @Test("The word before the cursor is what is passed to the candidate provider")
    func completeWordPassed() {
        var editor = makeEditor("well #ra")
        var asked: [String] = []
        _ = editor.apply(.tab, candidates: { word in
            asked.append(word)
            return []
        })
        #expect(asked == ["#ra"])
        #expect(editor.text == "well #ra")
    }

    @Test("/jo completes to the command /join")
    func completeCommand() {
        var editor = makeEditor("/jo")
        complete(&editor, with: ClientCommands.names)
        #expect(editor.text == "/join ")
    }

    @Test("#ra completes to a room, with a space even at the start of the line")
    func completeRoom() {
        var editor = makeEditor("#ra")
        complete(&editor, with: ["#general", "#random"])
        #expect(editor.text == "#random ")
        var other = makeEditor("/join #ge")
        complete(&other, with: ["#general", "#random"])
        #expect(other.text == "/join #general ")
    }

    @Test("Tab with no match, an empty word or after a space changes nothing")
    func completeNothing() {
        var editor = makeEditor("zed")
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "zed")
        var empty = LineEditor()
        complete(&empty, with: Self.nicks)
        #expect(empty.text == "")
        var afterSpace = makeEditor("hi ")
        complete(&afterSpace, with: Self.nicks)
        #expect(afterSpace.text == "hi ")
    }

    @Test("Completing in the middle keeps the text after the cursor")
    func completeMidText() {
        var editor = makeEditor("hi al, bye")
        press([.left, .left, .left, .left, .left], on: &editor)  // after "al"
        complete(&editor, with: Self.nicks)
        #expect(editor.text == "hi alice , bye")
        #expect(editor.cursor == 9)
    }

    // MARK: - Paste

    @Test("A paste without a newline is inserted at the cursor, never submitted")
    func pasteSingleLine() {
        var editor = makeEditor("ab")
        _ = editor.apply(.left)
        #expect(editor.apply(.paste("/quit now")) == .none)
        #expect(editor.text == "a/quit nowb")
        #expect(editor.cursor == 10)
    }

    @Test("A multi-line paste submits its ended lines as text; what follows the last line break stays in the input line")
    func pasteMultiLine() {
        var editor = LineEditor()
        #expect(editor.apply(.paste("/quit\nsecond line\n/nick evil")) == .submitPaste(["/quit", "second line"]))
        #expect(editor.text == "/nick evil")
        #expect(editor.cursor == 10)
        var ended = LineEditor()
        #expect(ended.apply(.paste("one\ntwo\n")) == .submitPaste(["one", "two"]))
        #expect(ended.text == "")
    }

    @Test("Text before the cursor joins the first pasted line, text after it the last")
    func pasteJoinsTypedText() {
        var editor = makeEditor("look: after")
        press([.left, .left, .left, .left, .left], on: &editor)  // between "look: " and "after"
        #expect(editor.apply(.paste("one\ntwo")) == .submitPaste(["look: one"]))
        #expect(editor.text == "twoafter")
        #expect(editor.cursor == 3)
    }

    @Test("CRLF line ends are split like LF, and empty lines are dropped")
    func pasteCRLF() {
        var editor = LineEditor()
        #expect(editor.apply(.paste("a\r\nb\r\n\r\nc\n")) == .submitPaste(["a", "b", "c"]))
    }

    @Test("Lines that carry a password (/login, /identify, /register, /passwd) are not kept in the history")
    func passwordLinesNotKept() {
        var editor = LineEditor()
        for line in ["/login alice secret", " /REGISTER hunter22", "/passwd old new", "/identify bob pw", "hello"] {
            editor.set(line)
            _ = editor.apply(.enter)
        }
        press([.up], on: &editor)
        #expect(editor.text == "hello")
        press([.up], on: &editor)
        #expect(editor.text == "hello")  // nothing older
    }

    @Test("A multi-line paste is not added to the history")
    func pasteNoHistory() {
        var editor = LineEditor()
        _ = editor.apply(.paste("one\ntwo\n"))
        press([.up], on: &editor)
        #expect(editor.text == "")
    }

    @Test("A paste decoded from a terminal goes through the editor as text")
    func pasteFromDecoder() {
        var decoder = KeyDecoder()
        var editor = LineEditor()
        let keys = decoder.decode(Array("\u{1B}[200~/join #evil\nhi\u{1B}[201~".utf8))
        #expect(keys.map { editor.apply($0) } == [.submitPaste(["/join #evil"])])
        #expect(editor.text == "hi")
    }

    @Test("A paste whose lines end in CR (VTE, xterm and iTerm2 send pasted newlines as CR) is split into lines")
    func pasteCarriageReturns() {
        // GNOME Terminal and other VTE terminals, xterm and iTerm2 send the newlines of a paste, bracketed or not,
        // as a bare CR: the editor splits on CR as well as on LF and CRLF.
        var editor = LineEditor()
        #expect(editor.apply(.paste("first\rsecond\r")) == .submitPaste(["first", "second"]))
        #expect(editor.text == "")
    }
}
