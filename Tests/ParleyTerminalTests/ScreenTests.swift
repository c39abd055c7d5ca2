import ParleyCore
import ParleyTerminal
import Testing

@Suite("Screen")
struct ScreenTests {
    typealias F = Fixture

    private func editor(_ text: String) -> LineEditor {
        var editor = LineEditor()
        for character in text { _ = editor.apply(.character(character)) }
        return editor
    }

    /// A view in #a whose scrollback holds only the given system lines ("*** …").
    private func view(lines: [String]) -> ChatView {
        var view = F.view(rooms: ["#a"])
        view.clearCurrent()
        for line in lines { view.system(line) }
        return view
    }

    // MARK: - Size

    @Test("The size has a floor of 10 columns and 3 rows")
    func minimumSize() {
        let screen = Screen(width: 2, height: 1, colour: true)
        #expect(screen.width == 10)
        #expect(screen.height == 3)
        #expect(screen.frame(F.view(), editor: LineEditor()).rows.count == 3)
    }

    @Test("A frame has exactly `height` rows", arguments: [3, 4, 10, 24, 50])
    func rowCount(height: Int) {
        let screen = Screen(width: 40, height: height, colour: true)
        #expect(screen.frame(F.view(), editor: LineEditor()).rows.count == height)
        let busy = view(lines: (1...100).map { "line \($0) " + String(repeating: "x", count: $0 % 90) })
        let frame = screen.frame(busy, editor: editor("typing"))
        #expect(frame.rows.count == height)
        #expect(frame.text.count == height)
    }

    // MARK: - Status line

    @Test("The status line shows the current room, nick and server, then \"connected\", padded to the width")
    func statusLine() {
        let screen = Screen(width: 60, height: 10, colour: true)
        let frame = screen.frame(F.view(rooms: ["#a", "#rust"]), editor: LineEditor())
        let status = frame.text[8]
        #expect(status == " 2:#rust | bob @ srv | connected".padding(60))
        #expect(frame.rows[8].map(\.style) == [.bold])
        #expect(DisplayWidth.of(status) == 60)
    }

    @Test("The status line in the status buffer, and the connection states: trouble first, \"connected\" last", arguments: [
        (ChatView.ConnectionState.connecting, " connecting… | (status) | bob @ localhost:7000"),
        (.connected, " (status) | bob @ localhost:7000 | connected"),
        (.disconnected(retryingIn: nil), " disconnected | (status) | bob @ localhost:7000"),
        (.disconnected(retryingIn: .seconds(4)), " disconnected, retrying in 4s | (status) | bob @ localhost:7000"),
    ])
    func statusStates(state: ChatView.ConnectionState, shown: String) {
        var view = ChatView(nick: "bob", server: "localhost:7000")
        view.connection = state
        let frame = Screen(width: 80, height: 5, colour: false).frame(view, editor: LineEditor())
        #expect(frame.text[3] == shown.padding(80))
    }

    @Test("A fractional retry delay is rounded up, never shown as 0s")
    func statusRetryRoundsUp() {
        // Any fraction of a second counts as a whole one: 500 ms (the first reconnect delay, 250–500 ms after
        // jitter) shows as "retrying in 1s", 1.5 s as "2s"; a whole number of seconds is shown as it is.
        var view = F.view()
        let screen = Screen(width: 80, height: 5, colour: false)
        view.connection = .disconnected(retryingIn: .milliseconds(500))
        #expect(screen.frame(view, editor: LineEditor()).text[3] == " disconnected, retrying in 1s | (status) | bob @ srv".padding(80))
        view.connection = .disconnected(retryingIn: .milliseconds(1500))
        #expect(screen.frame(view, editor: LineEditor()).text[3] == " disconnected, retrying in 2s | (status) | bob @ srv".padding(80))
        view.connection = .disconnected(retryingIn: .seconds(2))
        #expect(screen.frame(view, editor: LineEditor()).text[3] == " disconnected, retrying in 2s | (status) | bob @ srv".padding(80))
    }

    @Test("Other rooms with unread messages show their count, and ! for a mention")
    func statusUnread() {
        var view = F.view(rooms: ["#a", "#b", "#c"])
        view.switchTo("#b")
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "one")))
        view.apply(.message(F.message(from: "alice", to: .room("#a"), "two")))
        view.apply(.message(F.message(from: "alice", to: .room("#c"), "hey bob")))
        view.apply(.message(F.message(from: "alice", to: .room("#b"), "current room: not listed")))
        let status = Screen(width: 80, height: 5, colour: true).frame(view, editor: LineEditor()).text[3]
        #expect(status == " 2:#b | 1:#a(2) 3:#c(1!) | bob @ srv | connected".padding(80))

        view.switchTo("#a")
        let after = Screen(width: 80, height: 5, colour: true).frame(view, editor: LineEditor()).text[3]
        #expect(after == " 1:#a | 3:#c(1!) | bob @ srv | connected".padding(80))
    }

    @Test("A status line longer than the width is cut to the width, keeping its most important start")
    func statusTruncated() {
        let view = F.view(rooms: ["#a-very-long-room-name-indeed"])
        let frame = Screen(width: 20, height: 5, colour: true).frame(view, editor: LineEditor())
        #expect(frame.text[3] == " 1:#a-very-long-room")

        var disconnected = view
        disconnected.connection = .disconnected(retryingIn: .seconds(3))
        let trouble = Screen(width: 20, height: 5, colour: true).frame(disconnected, editor: LineEditor())
        #expect(trouble.text[3] == " disconnected, retry")
    }

    // MARK: - Input line

    @Test("The input row is the prompt and the text; the cursor is on it")
    func inputRow() {
        let screen = Screen(width: 40, height: 6, colour: true)
        var editor = editor("hello")
        let frame = screen.frame(F.view(rooms: ["#a"]), editor: editor)
        #expect(frame.text[5] == "[#a] hello")
        #expect(frame.rows[5] == [Span("[#a] ", .bold), Span("hello")])
        #expect(frame.cursorRow == 5)
        #expect(frame.cursorColumn == 10)

        _ = editor.apply(.home)
        #expect(screen.frame(F.view(rooms: ["#a"]), editor: editor).cursorColumn == 5)
    }

    @Test("In the status buffer the prompt is [parley]; a prompt can be given")
    func prompts() {
        let screen = Screen(width: 40, height: 6, colour: true)
        #expect(screen.frame(F.view(), editor: LineEditor()).text[5] == "[parley] ")
        let frame = screen.frame(F.view(rooms: ["#a"]), editor: editor("x"), prompt: "Nickname: ")
        #expect(frame.text[5] == "Nickname: x")
        #expect(frame.cursorColumn == 11)
    }

    @Test("The cursor column counts wide characters as two cells")
    func inputCursorWide() {
        let screen = Screen(width: 40, height: 6, colour: true)
        var editor = editor("漢字😀ab")
        #expect(screen.frame(F.view(rooms: ["#a"]), editor: editor).cursorColumn == 5 + 8)
        _ = editor.apply(.left)
        _ = editor.apply(.left)
        #expect(screen.frame(F.view(rooms: ["#a"]), editor: editor).cursorColumn == 5 + 6)
    }

    @Test("A long input scrolls sideways so the cursor stays visible")
    func inputScroll() {
        let screen = Screen(width: 20, height: 5, colour: true)
        let view = F.view(rooms: ["#a"])
        var editor = editor("abcdefghijklmnopqrstuvwxyz0123")
        var frame = screen.frame(view, editor: editor)
        #expect(frame.cursorColumn < 20)
        #expect(frame.text[4] == "[#a] vwxyz0123")
        #expect(frame.cursorColumn == 14)

        _ = editor.apply(.home)
        frame = screen.frame(view, editor: editor)
        #expect(frame.cursorColumn == 5)
        #expect(frame.text[4] == "[#a] abcdefghijklmn")  // as much as fits, leaving the last column free

        for _ in 0..<16 { _ = editor.apply(.right) }  // the cursor on "q"
        frame = screen.frame(view, editor: editor)
        let visible = String(frame.text[4].dropFirst(5))
        let before = String(visible.prefix(frame.cursorColumn - 5))
        #expect(before.hasSuffix("p"))
        #expect(visible.dropFirst(before.count).hasPrefix("q"))
        #expect(frame.cursorColumn < 20)
    }

    @Test("The cursor stays visible at every position of a long line of wide characters")
    func inputScrollWide() {
        let screen = Screen(width: 16, height: 5, colour: true)
        let view = F.view(rooms: ["#a"])
        var editor = editor(String(repeating: "漢字😀a", count: 10))
        for _ in 0...editor.text.count {
            let frame = screen.frame(view, editor: editor)
            #expect(frame.cursorColumn >= 5 && frame.cursorColumn < 16)
            #expect(DisplayWidth.of(frame.text[4]) < 16)
            // The text left of the cursor on screen is the text just before the cursor in the editor.
            let shownBefore = String(frame.text[4].dropFirst(5)).prefixCells(frame.cursorColumn - 5)
            #expect(editor.text.prefix(editor.cursor).hasSuffix(shownBefore))
            _ = editor.apply(.left)
        }
    }

    @Test("A prompt wider than the screen does not push the input row or the cursor past the last column")
    func inputLongPrompt() {
        // Room names go up to 33 characters and the width down to 10, so a prompt can be wider than the screen:
        // it is cut to at most half the width, and the text and the cursor stay on the row.
        let screen = Screen(width: 20, height: 5, colour: true)
        let view = F.view(rooms: ["#abcdefghijklmnopqrstuvwxyz"])
        let frame = screen.frame(view, editor: editor("hi"))
        #expect(frame.cursorColumn < 20)
        #expect(DisplayWidth.of(frame.text[4]) < 20)
        #expect(frame.rows[4] == [Span("[#abcdefgh", .bold), Span("hi")])
        #expect(frame.cursorColumn == 12)

        // At the narrowest screen the prompt takes five cells and the text still has room.
        let narrow = Screen(width: 10, height: 5, colour: true).frame(view, editor: editor("hi"))
        #expect(narrow.rows[4] == [Span("[#abc", .bold), Span("hi")])
        #expect(narrow.cursorColumn == 7)
    }

    @Test("Control characters pasted into the input line are not written to the terminal raw")
    func inputPastedControls() {
        // A raw TAB (VTE passes HT through) would move the terminal's cursor to a tab stop while cursorColumn
        // counts it as 0 cells: the editor turns a pasted tab into a space and drops other control characters.
        var editor = LineEditor()
        _ = editor.apply(.paste("a\tb\u{7}\u{1B}[2Jc"))
        let frame = Screen(width: 40, height: 5, colour: true).frame(F.view(rooms: ["#a"]), editor: editor)
        let hasControlCharacter = frame.text[4].unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        #expect(!hasControlCharacter)
        #expect(frame.text[4] == "[#a] a bc")
        #expect(frame.cursorColumn == 9)
    }

    // MARK: - Messages and wrapping

    @Test("Fewer lines than rows: blank rows on top, the lines at the bottom")
    func fewLines() {
        let frame = Screen(width: 30, height: 6, colour: true).frame(view(lines: ["one", "two"]), editor: LineEditor())
        #expect(Array(frame.text[0..<4]) == ["", "", "*** one", "*** two"])
        #expect(frame.rows[0].isEmpty)
    }

    @Test("Only the last lines that fit are shown")
    func lastLinesShown() {
        let frame = Screen(width: 30, height: 5, colour: true).frame(view(lines: (1...10).map { "line \($0)" }), editor: LineEditor())
        #expect(Array(frame.text[0..<3]) == ["*** line 8", "*** line 9", "*** line 10"])
    }

    @Test("A line longer than the width wraps onto several rows, keeping its styles")
    func wrap() {
        let screen = Screen(width: 10, height: 5, colour: true)
        let rows = screen.wrap(StyledLine([Span("abcdefgh", .dim), Span("ijklmnopqrstuvw", .bold)]))
        #expect(rows == [
            [Span("abcdefgh", .dim), Span("ij", .bold)],
            [Span("klmnopqrst", .bold)],
            [Span("uvw", .bold)],
        ])
    }

    @Test("Words move down whole; a word longer than a row is broken; continuation rows start at the line's indent")
    func wrapWords() {
        let wide = Screen(width: 30, height: 5, colour: true)
        let line = StyledLine([Span("12:00 ", .dim), Span("<alice> ", .own), Span("the quick brown fox jumps over")], indent: 14)
        #expect(wide.wrap(line).map { $0.map(\.text).joined() } == ["12:00 <alice> the quick brown ", "              fox jumps over"])
        let screen = Screen(width: 20, height: 5, colour: true)
        let long = StyledLine([Span("ab "), Span("cdefghijklmnopqrstuvwxyz")])
        #expect(screen.wrap(long).map { $0.map(\.text).joined() } == ["ab cdefghijklmnopqrs", "tuvwxyz"])
        // An indent wider than half the row is held to half.
        let deep = StyledLine([Span(String(repeating: "x", count: 15)), Span(" aaaa bbbb")], indent: 15)
        #expect(screen.wrap(deep).map { $0.map(\.text).joined() } == [String(repeating: "x", count: 15) + " aaaa", "          bbbb"])
    }

    @Test("A line exactly as wide as the screen is one row; an empty line is one empty row")
    func wrapEdges() {
        let screen = Screen(width: 10, height: 5, colour: true)
        #expect(screen.wrap(StyledLine([Span("0123456789")])) == [[Span("0123456789")]])
        #expect(screen.wrap(StyledLine([])) == [[]])
        #expect(screen.wrap(StyledLine([Span("")])) == [[]])
    }

    @Test("A wide character that does not fit at the end of a row moves to the next")
    func wrapWideAtBoundary() {
        let screen = Screen(width: 10, height: 5, colour: true)
        #expect(screen.wrap(StyledLine([Span("123456789漢字")])) == [[Span("123456789")], [Span("漢字")]])
        #expect(screen.wrap(StyledLine([Span("12345678漢字")])) == [[Span("12345678漢")], [Span("字")]])
        let emoji = screen.wrap(StyledLine([Span("😀😀😀😀😀😀")]))
        #expect(emoji.map { DisplayWidth.of($0.map(\.text).joined()) } == [10, 2])
    }

    @Test("Every wrapped row fits the width and the rows add up to the line", arguments: [10, 13, 37, 80])
    func wrapFits(width: Int) {
        let screen = Screen(width: width, height: 5, colour: true)
        let text = String(repeating: "ab漢 😀e\u{301}👨‍👩‍👧🇺🇸", count: 12)
        let rows = screen.wrap(StyledLine([Span(text)]))
        #expect(rows.allSatisfy { DisplayWidth.of($0.map(\.text).joined()) <= width })
        // The spaces where rows break are dropped.
        #expect(rows.map { $0.map(\.text).joined() }.joined().filter { $0 != " " } == text.filter { $0 != " " })
    }

    @Test("A combining mark stays with its letter across a row boundary")
    func wrapCombining() {
        let screen = Screen(width: 10, height: 5, colour: true)
        #expect(screen.wrap(StyledLine([Span("0123456789e\u{301}")])) == [[Span("0123456789")], [Span("e\u{301}")]])
    }

    @Test("Scrolled back, the frame shows older lines, says how much is below, and knows when the top is on screen")
    func scrolledFrame() {
        var shown = view(lines: (1...10).map { "line \($0)" })
        let screen = Screen(width: 40, height: 5, colour: true)
        var frame = screen.frame(shown, editor: LineEditor())
        #expect(frame.linesShown == 3 && !frame.atTop)
        shown.scroll(by: 4)
        frame = screen.frame(shown, editor: LineEditor())
        #expect(Array(frame.text[0..<3]) == ["*** line 4", "*** line 5", "*** line 6"])
        #expect(frame.text[3].hasPrefix(" more below (4) | "))
        shown.scrollToTop()
        frame = screen.frame(shown, editor: LineEditor())
        // The top of the window fills the screen from its first row.
        #expect(frame.atTop && Array(frame.text[0..<3]) == ["*** line 1", "*** line 2", "*** line 3"])
    }

    @Test("Long lines in the frame wrap at the width; the newest rows are at the bottom")
    func frameWraps() {
        let long = String(repeating: "x", count: 25)  // "*** " + 25 = 29 cells: 3 rows at width 10
        let frame = Screen(width: 10, height: 6, colour: true).frame(view(lines: ["first", long]), editor: LineEditor())
        #expect(Array(frame.text[0..<4]) == ["*** first", "*** xxxxxx", "xxxxxxxxxx", "xxxxxxxxx"])
    }

    @Test("Resizing changes the wrapping and the number of rows")
    func resize() {
        let view = view(lines: [String(repeating: "word ", count: 12)])  // 64 cells
        var screen = Screen(width: 80, height: 6, colour: true)
        var frame = screen.frame(view, editor: LineEditor())
        #expect(frame.text[3] == "*** " + String(repeating: "word ", count: 12))

        screen.width = 20
        frame = screen.frame(view, editor: LineEditor())
        // Between words: a row keeps the space it ends with, the next starts with a word.
        #expect(Array(frame.text[0..<4]) == ["*** word word word ", "word word word word ", "word word word word ", "word "])
        #expect(DisplayWidth.of(frame.text[4]) == 20)  // the status line follows the width

        screen.height = 4
        frame = screen.frame(view, editor: LineEditor())
        #expect(frame.rows.count == 4)
        #expect(Array(frame.text[0..<2]) == ["word word word word ", "word "])
        #expect(frame.cursorRow == 3)
    }

    // MARK: - Rendering

    /// A frame with every style in it: nick colours, own, private, mention, error, dim.
    private func colourfulFrame(_ screen: Screen) -> Screen.Frame {
        var view = F.view(rooms: ["#a", "#b"])
        for nick in ["alice", "carol", "dave", "erin", "frank", "grace", "heidi"] {
            view.apply(.message(F.message(from: nick, to: .room("#b"), "hello")))
        }
        view.apply(.message(F.message(from: "alice", to: .room("#b"), "hey bob")))
        view.apply(.message(F.message(from: "alice", to: .user("bob"), "psst")))
        view.sent(F.message(from: "bob", to: .room("#b"), "mine"))
        view.apply(.error(ChatError(.usage, "oops"), ref: nil))
        return screen.frame(view, editor: editor("draft"))
    }

    private static let colourCodes = (30...37).flatMap { ["\u{1B}[\($0)m", "\u{1B}[\($0);"] }

    @Test("With colour off (NO_COLOR, --no-color) no colour SGR codes are written")
    func noColour() {
        let screen = Screen(width: 60, height: 20, colour: false)
        let output = screen.render(colourfulFrame(screen))
        for code in Self.colourCodes {
            #expect(!output.contains(code), "\(code.debugDescription)")
        }
        #expect(output.contains("\u{1B}[2m"))  // dim stays
        #expect(output.contains("\u{1B}[7m"))  // so does the reversed status line
        #expect(output.contains("\u{1B}[1;4m"))  // a mention is bold and underlined instead of yellow
        #expect(output.contains("hey bob"))
    }

    @Test("With colour on, nicks, mentions, private messages and errors are coloured")
    func colour() {
        let screen = Screen(width: 60, height: 20, colour: true)
        let output = screen.render(colourfulFrame(screen))
        for nick in ["alice", "carol", "dave", "erin", "frank", "grace", "heidi"] {
            #expect(output.contains("\u{1B}[\(31 + ChatView.colour(of: nick))m<\(nick)> "))
        }
        #expect(output.contains("\u{1B}[33;1m"))  // mention
        #expect(output.contains("\u{1B}[31;1m!!! oops"))
        // A private message, in its conversation's window.
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "alice", to: .user("bob"), "psst")))
        view.switchTo("alice")
        #expect(screen.render(screen.frame(view, editor: editor(""))).contains("\u{1B}[35m-> (private) "))
    }

    @Test("render positions and clears every row, and leaves the cursor on the input line")
    func renderLayout() {
        let screen = Screen(width: 30, height: 5, colour: true)
        let frame = screen.frame(view(lines: ["one"]), editor: editor("abc"))
        let output = screen.render(frame)
        #expect(output.hasPrefix("\u{1B}[?25l"))
        for row in 1...5 { #expect(output.contains("\u{1B}[\(row);1H\u{1B}[2K")) }
        #expect(output.hasSuffix("\u{1B}[5;9H\u{1B}[?25h"))
        #expect(output.contains("\u{1B}[7m"))
        #expect(!output.contains("\n"))  // nothing scrolls the terminal
    }

    @Test("Relayed escape sequences never reach the terminal")
    func renderSanitised() {
        var view = F.view(rooms: ["#a"])
        view.apply(.message(F.message(from: "mallory", to: .room("#a"), "\u{1B}[2Jboom\u{1B}]0;title\u{7}")))
        view.apply(.topic(room: "#a", text: "\u{1B}[?1049h", setBy: "\u{1B}[8mx"))
        let screen = Screen(width: 60, height: 10, colour: true)
        let frame = screen.frame(view, editor: LineEditor())
        #expect(frame.text.contains { $0.hasSuffix("<mallory> boom") })
        let output = screen.render(frame)
        #expect(!output.contains("\u{1B}[2J"))
        #expect(!output.contains("\u{1B}]"))
        #expect(!output.contains("\u{7}"))
        #expect(!output.contains("\u{1B}[?1049h"))
        #expect(!output.contains("\u{1B}[8m"))
    }

    @Test("The status line does not pass escape sequences from the server's welcome to the terminal")
    func statusSanitised() {
        // ChatView cleans the welcome's nick and server, and the status line cleans them again (see ChatViewTests).
        var view = ChatView(nick: "bob", server: "srv")
        view.apply(.welcome(nick: "bob", server: "srv\u{1B}]0;pwned\u{7}"))
        let frame = Screen(width: 60, height: 5, colour: true).frame(view, editor: LineEditor())
        #expect(!frame.text[3].contains("\u{1B}"))
        #expect(frame.text[3] == " (status) | bob @ srv | connected".padding(60))

        // Even a nick and server set directly, without a welcome, are cleaned on the way to the terminal.
        view.nick = "b\u{1B}[8mob"
        view.server = "srv\u{7}\u{9B}2J"
        let raw = Screen(width: 60, height: 5, colour: true).frame(view, editor: LineEditor())
        #expect(raw.text[3] == " (status) | bob @ srv | connected".padding(60))
    }
}

extension String {
    /// Pads with spaces to `width` cells.
    func padding(_ width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - DisplayWidth.of(self)))
    }

    /// The longest prefix of at most `cells` cells.
    func prefixCells(_ cells: Int) -> String {
        var out = ""
        var used = 0
        for character in self {
            let width = DisplayWidth.of(character)
            if used + width > cells { break }
            out.append(character)
            used += width
        }
        return out
    }
}
