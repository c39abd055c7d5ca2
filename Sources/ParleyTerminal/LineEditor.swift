import ParleyCore

/// The input line: UTF-8 text edited by grapheme cluster, with history and Tab completion (irssi/WeeChat
/// style keys). Pure state: keys in, text and cursor out.
public struct LineEditor: Sendable {
    /// What a key asks the client to do besides editing.
    public enum Action: Sendable, Equatable {
        case none
        /// Enter: send this line.
        case submit(String)
        /// A multi-line paste: send these lines as text, never as commands.
        case submitPaste([String])
    }

    public private(set) var text = ""
    /// The cursor, in characters (grapheme clusters) from the start.
    public private(set) var cursor = 0
    private var history: [String] = []
    private var historyIndex: Int?
    private var draft = ""
    private var completion: Completion?
    public let historyLimit: Int

    private struct Completion: Sendable {
        var start: Int
        var candidates: [String]
        var index: Int
        var suffix: String
    }

    /// The line is a secret (a password): Enter does not keep it in the history.
    public var isSecret = false

    public init(historyLimit: Int = 500) {
        self.historyLimit = historyLimit
    }

    /// The width of the text before the cursor, in terminal cells.
    public var cursorColumn: Int { DisplayWidth.of(text.prefix(cursor)) }

    /// Applies one key. `candidates` supplies completions for Tab: the word being completed, in full.
    public mutating func apply(_ key: Key, candidates: (String) -> [String] = { _ in [] }) -> Action {
        if key != .tab { completion = nil }
        switch key {
        case .character(let character): insert(String(character))
        case .paste(let pasted):
            // Terminals send pasted line breaks as CR (some as LF or CRLF). Control characters are not kept:
            // they would move the cursor on the screen (a tab becomes a space).
            let lines = pasted.replacing("\r\n", with: "\n").replacing("\r", with: "\n")
                .split(separator: "\n", omittingEmptySubsequences: false).map { Sanitizer.text(String($0)) }
            guard lines.count > 1 else {
                insert(lines[0])
                return .none
            }
            // The paste lands at the cursor: what was typed before it joins the first line. What follows the last
            // line break was not ended by the paste, so it is not sent: it stays in the input line, before what was
            // after the cursor, for the user to finish or send (as irssi and WeeChat do).
            var all = lines
            all[0] = String(text.prefix(cursor)) + all[0]
            let unfinished = all.removeLast()
            let after = String(text.dropFirst(cursor))
            reset()
            text = unfinished + after
            cursor = unfinished.count
            return .submitPaste(all.filter { !$0.isEmpty })
        case .enter:
            let line = text
            if !isSecret && !line.isEmpty && history.last != line && !Self.carriesPassword(line) {
                history.append(line)
                if history.count > historyLimit { history.removeFirst() }
            }
            reset()
            return .submit(line)
        case .backspace:
            guard cursor > 0 else { break }
            replace(cursor - 1..<cursor, with: "")
            cursor -= 1
        case .delete, .control("d"):
            guard cursor < text.count else { break }
            replace(cursor..<cursor + 1, with: "")
        case .left, .control("b"): cursor = max(0, cursor - 1)
        case .right, .control("f"): cursor = min(text.count, cursor + 1)
        case .home, .control("a"): cursor = 0
        case .end, .control("e"): cursor = text.count
        case .control("u"):
            replace(0..<cursor, with: "")
            cursor = 0
        case .control("k"):
            replace(cursor..<text.count, with: "")
        case .control("w"):
            let characters = Array(text)
            var start = cursor
            while start > 0, characters[start - 1] == " " { start -= 1 }
            while start > 0, characters[start - 1] != " " { start -= 1 }
            replace(start..<cursor, with: "")
            cursor = start
        case .up: recall(older: true)
        case .down: recall(older: false)
        case .tab: complete(candidates)
        default: break
        }
        return .none
    }

    /// Replaces the whole line (used to keep what the user typed across a reconnect, or to prefill).
    /// The commands whose line carries a password (`/login NICK PASSWORD`, …): never kept in the history, where
    /// Up would show it to whoever looks at the screen next.
    static let passwordCommands: Set<String> = ["/login", "/identify", "/register", "/passwd"]

    static func carriesPassword(_ line: String) -> Bool {
        let word = line.drop { $0 == " " }.prefix { $0 != " " }.lowercased()
        return passwordCommands.contains(word)
    }

    public mutating func set(_ newText: String) {
        text = newText
        cursor = newText.count
    }

    private mutating func reset() {
        text = ""
        cursor = 0
        historyIndex = nil
        draft = ""
    }

    private mutating func insert(_ inserted: String) {
        let before = String(text.prefix(cursor)) + inserted
        text = before + text.dropFirst(cursor)
        // A combining mark merges with the character before it, so count rather than add.
        cursor = before.count
    }

    private mutating func replace(_ range: Range<Int>, with replacement: String) {
        text = String(text.prefix(range.lowerBound)) + replacement + text.dropFirst(range.upperBound)
    }

    private mutating func recall(older: Bool) {
        guard !history.isEmpty else { return }
        let current = historyIndex ?? history.count
        let next = older ? max(0, current - 1) : current + 1
        if historyIndex == nil { draft = text }
        if next >= history.count {
            historyIndex = nil
            set(draft)
        } else {
            historyIndex = next
            set(history[next])
        }
    }

    /// Completes the word before the cursor; repeated Tab cycles through the candidates.
    private mutating func complete(_ candidates: (String) -> [String]) {
        if var state = completion {
            state.index = (state.index + 1) % state.candidates.count
            apply(state)
            completion = state
            return
        }
        let characters = Array(text)
        var start = cursor
        while start > 0, characters[start - 1] != " " { start -= 1 }
        let word = String(characters[start..<cursor])
        guard !word.isEmpty else { return }
        let lower = word.lowercased()
        let matches = candidates(word).filter { $0.lowercased().hasPrefix(lower) }
            .sorted { $0.lowercased() < $1.lowercased() }
        guard !matches.isEmpty else { return }
        // A nick at the start of the line is addressed: "bob: ".
        let suffix = start == 0 && !word.hasPrefix("/") && !word.hasPrefix("#") ? ": " : " "
        let state = Completion(start: start, candidates: matches, index: 0, suffix: suffix)
        apply(state)
        completion = state
    }

    private mutating func apply(_ state: Completion) {
        let replacement = state.candidates[state.index] + state.suffix
        replace(state.start..<cursor, with: replacement)
        cursor = state.start + replacement.count
    }
}
