import Foundation
import ParleyTerminal
import Synchronization

/// The server's own terminal while the operator console runs on it: keys are read raw and edited by the same
/// `LineEditor` the client uses, and every line written to the terminal — a reply to a console command or a
/// log line — goes above the input line, which is then drawn again. So the log never breaks up what the
/// operator is typing, and what they typed is still there, cursor and all, after a burst of log lines.
///
/// Only when standard input and standard output are both terminals; otherwise the console reads plain lines.
/// Ctrl+C keeps its meaning (SIGINT: a graceful shutdown); the terminal is restored when the console ends.
public final class ConsoleTerminal: Sendable {
    private struct State {
        var editor = LineEditor(historyLimit: 200)
        var decoder = KeyDecoder()
        var original: termios?
    }

    public static let prompt = "> "
    private let state = Mutex(State())

    public init() {}

    /// Whether an interactive console can run here.
    public static var isAvailable: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    /// Raw keys, no echo (the editor draws the line); signals, output processing and CR→LF stay as they are.
    func takeOver() {
        state.withLock { state in
            var settings = termios()
            guard state.original == nil, tcgetattr(STDIN_FILENO, &settings) == 0 else { return }
            state.original = settings
            settings.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN)
            withUnsafeMutableBytes(of: &settings.c_cc) { characters in
                characters[Int(VMIN)] = 1  // a read returns after one byte, with no timer
                characters[Int(VTIME)] = 0
            }
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &settings)
            Self.write(STDOUT_FILENO, Self.inputLine(state.editor))
        }
    }

    /// Clears the input line and gives the terminal back as it was.
    func restore() {
        state.withLock { state in
            guard var original = state.original else { return }
            state.original = nil
            Self.write(STDOUT_FILENO, "\r\u{1B}[2K")
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
        }
    }

    /// Writes `lines` above the input line (to `descriptor`: the log goes to standard error), from any thread.
    public func print(_ lines: [String], to descriptor: Int32 = STDOUT_FILENO) {
        guard !lines.isEmpty else { return }
        state.withLock { state in
            let text = lines.map { $0 + "\n" }.joined()
            guard state.original != nil else { return Self.write(descriptor, text) }
            Self.write(STDOUT_FILENO, "\r\u{1B}[2K")
            Self.write(descriptor, text)
            Self.write(STDOUT_FILENO, Self.inputLine(state.editor))
        }
    }

    /// Feeds typed bytes to the editor and returns the lines the operator entered.
    func type(_ bytes: some Sequence<UInt8>) -> [String] {
        state.withLock { state in
            var entered: [String] = []
            for key in state.decoder.decode(bytes) {
                switch key {
                case .control("l"):
                    Self.write(STDOUT_FILENO, "\u{1B}[2J\u{1B}[H")
                case .control("d"):
                    continue  // not end of input: the console's end would not stop the server, only confuse
                default:
                    if case .submit(let line) = state.editor.apply(key) { entered.append(line) }
                }
            }
            Self.write(STDOUT_FILENO, Self.inputLine(state.editor))
            return entered
        }
    }

    /// The prompt and as much of the text as fits the width, scrolled so the cursor shows, with the cursor
    /// put in its place.
    private static func inputLine(_ editor: LineEditor) -> String {
        let width = max(10, terminalWidth - 1)
        let characters = Array(editor.text)
        var start = 0
        while start < editor.cursor, DisplayWidth.of(prompt) + DisplayWidth.of(String(characters[start..<editor.cursor])) > width {
            start += 1
        }
        var end = editor.cursor
        while end < characters.count, DisplayWidth.of(prompt) + DisplayWidth.of(String(characters[start...end])) <= width {
            end += 1
        }
        let column = DisplayWidth.of(prompt) + DisplayWidth.of(String(characters[start..<editor.cursor]))
        return "\r\u{1B}[2K" + prompt + String(characters[start..<end]) + "\r" + (column > 0 ? "\u{1B}[\(column)C" : "")
    }

    private static var terminalWidth: Int {
        var window = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0 else { return 80 }
        return Int(window.ws_col)
    }

    /// Writes all of `text`. The console's input shares the terminal's file description with the output, and
    /// NIO makes it non-blocking, so a full terminal can answer EAGAIN: then wait for it.
    static func write(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                guard errno == EINTR || errno == EAGAIN else { return }
                if errno == EAGAIN {
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, 100)
                }
                continue
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
