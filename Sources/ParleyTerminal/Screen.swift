import ParleyCore

/// Lays the chat out on a terminal of a given size and renders it: the current room's scrollback wrapped to
/// the width, a status line, and the input line at the bottom (scrolled sideways to keep the cursor in view).
public struct Screen: Sendable {
    public var width: Int
    public var height: Int
    /// False for `NO_COLOR` or `--no-color`: no colour codes (bold, dim and reverse remain).
    public var colour: Bool

    public init(width: Int, height: Int, colour: Bool) {
        self.width = max(10, width)
        self.height = max(3, height)
        self.colour = colour
    }

    /// What is on the screen: `height` rows of spans and the cursor's position (0-based).
    public struct Frame: Sendable, Equatable {
        public var rows: [[Span]]
        public var cursorRow: Int
        public var cursorColumn: Int
        /// How many of the window's lines are on screen (a page, for PgUp and PgDn).
        public var linesShown = 0
        /// The window's first line is on screen: scrolling further back asks the server for older history.
        public var atTop = false

        /// The rows as plain text, for tests.
        public var text: [String] { rows.map { $0.map(\.text).joined() } }
    }

    public func frame(_ view: ChatView, editor: LineEditor, prompt: String? = nil) -> Frame {
        let messageRows = height - 2
        var rows: [[Span]] = []
        // Scrolled back, the lines below the screen are left out.
        let lines = view.currentRoom.lines.dropLast(view.currentRoom.scrolledUp)
        var shown = 0
        for line in lines.reversed() {
            rows.insert(contentsOf: wrap(line), at: 0)
            shown += 1
            if rows.count >= messageRows { break }
        }
        let atTop = shown == lines.count && rows.count <= messageRows
        // Scrolled to the top, the oldest lines fill the screen from its first row, not just its last.
        if atTop, rows.count < messageRows, view.currentRoom.scrolledUp > 0 {
            for line in view.currentRoom.lines.dropFirst(lines.count) {
                let more = wrap(line)
                guard rows.count + more.count <= messageRows else { break }
                rows += more
                shown += 1
            }
        }
        rows = Array(rows.suffix(messageRows))
        rows.insert(contentsOf: Array(repeating: [], count: messageRows - rows.count), at: 0)
        rows.append([Span(fit(statusText(view), to: width), .bold)])
        let (input, column) = inputRow(editor, prompt: prompt ?? "[\(view.currentWindowName ?? "parley")] ")
        rows.append(input)
        var frame = Frame(rows: rows, cursorRow: height - 1, cursorColumn: column)
        (frame.linesShown, frame.atTop) = (shown, atTop)
        return frame
    }

    /// Escape sequences that draw `frame` in place: each row is positioned and cleared, so nothing is
    /// scrolled or left behind, and the cursor ends on the input line.
    public func render(_ frame: Frame) -> String {
        var out = "\u{1B}[?25l"
        for (index, row) in frame.rows.enumerated() {
            out += "\u{1B}[\(index + 1);1H\u{1B}[2K"
            let isStatus = index == frame.rows.count - 2
            if isStatus { out += "\u{1B}[7m" }
            for span in row {
                let sgr = sgr(for: span.style)
                out += sgr.isEmpty ? span.text : "\(sgr)\(span.text)\u{1B}[0m" + (isStatus ? "\u{1B}[7m" : "")
            }
            if isStatus { out += "\u{1B}[0m" }
        }
        out += "\u{1B}[\(frame.cursorRow + 1);\(frame.cursorColumn + 1)H\u{1B}[?25h"
        return out
    }

    /// Splits a line into rows of at most `width` cells, between words: a word moves down whole when it fits a
    /// row, and is broken only when it is longer than one (a wide character that does not fit moves down). The
    /// spaces where a row breaks are dropped; rows after the first start with the line's indent (at most half
    /// the width), so a message's text lines up under itself.
    public func wrap(_ line: StyledLine) -> [[Span]] {
        let indent = min(line.indent, width / 2)
        var rows: [[Span]] = [[]]
        var used = 0
        func newRow() {
            rows.append(indent > 0 ? [Span(String(repeating: " ", count: indent))] : [])
            used = indent
        }
        func put(_ text: String, _ style: Style) {
            guard !text.isEmpty else { return }
            if let last = rows[rows.count - 1].last, last.style == style, !(rows.count > 1 && rows[rows.count - 1].count == 1 && indent > 0) {
                rows[rows.count - 1][rows[rows.count - 1].count - 1] = Span(last.text + text, style)
            } else {
                rows[rows.count - 1].append(Span(text, style))
            }
        }
        for span in line.spans {
            for word in Self.words(span.text) {
                let cells = DisplayWidth.of(word)
                if word == " " {
                    // A space that ends a row is where it breaks; none starts a continuation row.
                    if used + 1 > width { newRow(); continue }
                    if used == indent && rows.count > 1 { continue }
                    put(word, span.style)
                    used += 1
                } else if used + cells <= width {
                    put(word, span.style)
                    used += cells
                } else if cells <= width - indent, used > indent || rows.count == 1 && used > 0 {
                    newRow()
                    put(word, span.style)
                    used += cells
                } else {
                    // Longer than a row: broken where the row ends.
                    var piece = ""
                    for character in word {
                        let width = DisplayWidth.of(character)
                        if used + width > self.width {
                            put(piece, span.style)
                            piece = ""
                            newRow()
                        }
                        piece.append(character)
                        used += width
                    }
                    put(piece, span.style)
                }
            }
        }
        return rows
    }

    /// `text` as words and single spaces, in order.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var word = ""
        for character in text {
            if character == " " {
                if !word.isEmpty { words.append(word) }
                words.append(" ")
                word = ""
            } else {
                word.append(character)
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }

    /// Most important first, so a narrow terminal cuts the least useful part: connection trouble (only when
    /// there is some), the current room, rooms with unread messages (`!` when you were mentioned), who and
    /// where you are, and the connection state.
    func statusText(_ view: ChatView) -> String {
        let state: String =
            switch view.connection {
            case .connecting: "connecting…"
            case .connected: "connected"
            case .disconnected(let retry?): "disconnected, retrying in \(Self.wholeSecondsUp(retry))s"
            case .disconnected(nil): "disconnected"
            }
        var activity: [String] = []
        for (index, room) in view.rooms.enumerated().dropFirst() where index != view.current && (room.unread > 0 || room.mentioned) {
            activity.append("\(index):\(room.name)(\(room.unread)\(room.mentioned ? "!" : ""))")
        }
        let room = view.currentWindowName.map { "\(view.current):\($0)" } ?? ChatView.statusName
        var parts = view.connection == .connected ? [] : [state]
        // Scrolled back: how much is below, first, where it is seen.
        if view.currentRoom.scrolledUp > 0 { parts.insert("more below (\(view.currentRoom.scrolledUp))", at: 0) }
        parts.append(room)
        if !activity.isEmpty { parts.append(activity.joined(separator: " ")) }
        parts.append(Sanitizer.text("\(view.nick) @ \(view.server)"))
        if view.connection == .connected { parts.append(state) }
        return " " + parts.joined(separator: " | ")
    }

    static func wholeSecondsUp(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }

    /// The prompt and the text, scrolled so the cursor stays visible; returns the row and the cursor column.
    func inputRow(_ editor: LineEditor, prompt fullPrompt: String) -> ([Span], Int) {
        // A prompt never takes more than half the row (a room name can be longer than a narrow terminal).
        let prompt = fit(fullPrompt, to: min(DisplayWidth.of(fullPrompt), width / 2), padded: false)
        let promptCells = DisplayWidth.of(prompt)
        let available = max(1, width - promptCells - 1)
        let characters = Array(editor.text)
        // Scroll in steps of half the field, so typing at the end does not shift the view on every key.
        var start = 0
        while DisplayWidth.of(characters[start..<editor.cursor].map(String.init).joined()) > available {
            start += max(1, available / 2)
        }
        var visible = ""
        var cells = 0
        for character in characters[start...] {
            let width = DisplayWidth.of(character)
            if cells + width > available { break }
            visible.append(character)
            cells += width
        }
        let column = promptCells + DisplayWidth.of(characters[start..<editor.cursor].map(String.init).joined())
        return ([Span(prompt, .bold), Span(visible)], column)
    }

    private func fit(_ text: String, to width: Int, padded: Bool = true) -> String {
        var out = ""
        var cells = 0
        for character in text {
            let w = DisplayWidth.of(character)
            if cells + w > width { break }
            out.append(character)
            cells += w
        }
        return padded ? out + String(repeating: " ", count: width - cells) : out
    }

    private func sgr(for style: Style) -> String {
        switch style {
        case .plain: ""
        case .dim: "\u{1B}[2m"
        case .bold, .own: "\u{1B}[1m"
        case .nick(let index): colour ? "\u{1B}[\(31 + index)m" : ""
        case .privateMessage: colour ? "\u{1B}[35m" : "\u{1B}[1m"
        case .error: colour ? "\u{1B}[31;1m" : "\u{1B}[1m"
        case .mention: colour ? "\u{1B}[33;1m" : "\u{1B}[1;4m"
        }
    }
}
