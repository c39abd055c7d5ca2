import Foundation
import NIOCore
import ParleyTerminal
import Synchronization

/// The server's own terminal while the operator console runs on it: keys are read raw and edited by the same
/// `LineEditor` the client uses, and every line written to the terminal — a reply to a console command or a
/// log line — goes above the input line, which is then drawn again. So the log never breaks up what the
/// operator is typing, and what they typed is still there, cursor and all, after a burst of log lines.
///
/// Only when standard input and standard output are both terminals; otherwise the console reads plain lines.
/// Ctrl+C keeps its meaning (SIGINT: a graceful shutdown); Ctrl+\ and Ctrl+Z, which would leave a raw terminal
/// behind, do nothing; the terminal is restored when the console ends.
///
/// Writing never blocks a caller: output goes through a NIO pipe channel on standard output, and while the
/// terminal does not keep up (a stalled SSH session, a paused tmux pane) log lines are dropped and counted,
/// never waited for — every connection logs, and none may stall on the operator's terminal.
public final class ConsoleTerminal: Sendable {
    private struct State {
        var editor = LineEditor(historyLimit: 200)
        var decoder = KeyDecoder()
        var original: termios?
        var output: (any Channel)?
        var dropped = 0
    }

    public static let prompt = "> "
    private let state = Mutex(State())

    public init() {}

    /// Whether an interactive console can run here.
    public static var isAvailable: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    /// Raw keys, no echo (the editor draws the line), no flow control (Ctrl+S would stop all output); SIGINT
    /// stays, output processing and CR→LF stay. From now on output goes through `output`.
    func takeOver(output: any Channel) {
        state.withLock { state in
            var settings = termios()
            guard state.original == nil, tcgetattr(STDIN_FILENO, &settings) == 0 else { return }
            state.original = settings
            settings.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN)
            settings.c_iflag &= ~tcflag_t(IXON)
            withUnsafeMutableBytes(of: &settings.c_cc) { characters in
                characters[Int(VMIN)] = 1  // a read returns after one byte, with no timer
                characters[Int(VTIME)] = 0
                characters[Int(VQUIT)] = 0  // disabled: a core dump would leave the terminal raw
                characters[Int(VSUSP)] = 0  // disabled: a stopped server would leave it raw too
            }
            tcsetattr(STDIN_FILENO, TCSANOW, &settings)
            state.output = output
            Self.send(Self.inputLine(state.editor), state: &state)
        }
    }

    /// Clears the input line and gives the terminal back as it was.
    func restore() {
        state.withLock { state in
            guard var original = state.original else { return }
            Self.send("\r\u{1B}[2K", state: &state)
            state.original = nil
            state.output = nil
            // At once: TCSAFLUSH would first wait for the terminal to take all output, which a stalled one never does.
            tcsetattr(STDIN_FILENO, TCSANOW, &original)
        }
    }

    /// Writes `lines` above the input line, from any thread, without waiting.
    public func print(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        state.withLock { state in
            let text = lines.map { $0 + "\n" }.joined()
            guard state.original != nil else { return ConsoleTerminal.write(STDOUT_FILENO, text) }
            guard state.output?.isWritable == true else {
                state.dropped += lines.count
                return
            }
            var said = ""
            if state.dropped > 0 {
                said = "*** \(state.dropped) log lines were dropped while the terminal did not keep up.\n"
                state.dropped = 0
            }
            Self.send("\r\u{1B}[2K" + said + text + Self.inputLine(state.editor), state: &state)
        }
    }

    /// Feeds typed bytes to the editor and returns the lines the operator entered.
    func type(_ bytes: some Sequence<UInt8>) -> [String] {
        state.withLock { state in
            var entered: [String] = []
            for key in state.decoder.decode(bytes) {
                switch key {
                case .control("l"):
                    Self.send("\u{1B}[2J\u{1B}[H", state: &state)
                case .control("d"):
                    continue  // not end of input: the console's end would not stop the server, only confuse
                default:
                    if case .submit(let line) = state.editor.apply(key) { entered.append(line) }
                }
            }
            Self.send(Self.inputLine(state.editor), state: &state)
            return entered
        }
    }

    private static func send(_ text: String, state: inout State) {
        guard let output = state.output else { return }
        output.writeAndFlush(ByteBuffer(string: text), promise: nil)
    }

    /// The prompt and as much of the text as fits the width, scrolled so the cursor shows, with the cursor
    /// put in its place.
    private static func inputLine(_ editor: LineEditor) -> String {
        let width = max(10, terminalWidth - 1) - DisplayWidth.of(prompt)
        let characters = Array(editor.text)
        // Back from the cursor as far as fits, then on from it as far as still fits.
        var start = editor.cursor
        var used = 0
        while start > 0, used + DisplayWidth.of(characters[start - 1]) <= width {
            start -= 1
            used += DisplayWidth.of(characters[start])
        }
        let column = DisplayWidth.of(prompt) + used
        var end = editor.cursor
        while end < characters.count, used + DisplayWidth.of(characters[end]) <= width {
            used += DisplayWidth.of(characters[end])
            end += 1
        }
        return "\r\u{1B}[2K" + prompt + String(characters[start..<end]) + "\r" + (column > 0 ? "\u{1B}[\(column)C" : "")
    }

    private static var terminalWidth: Int {
        var window = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0 else { return 80 }
        return Int(window.ws_col)
    }

    /// Set when a write gave up: from then on a full terminal is not waited for at all, until one write
    /// goes through again.
    private static let stalled = Atomic<Bool>(false)

    /// Writes all of `text` to `descriptor` (the log when no console runs). NIO may have made the terminal's
    /// file description non-blocking; then a full terminal is waited for, briefly — a second at most, and not
    /// at all while it has been stalled — and what does not fit is dropped rather than stall the caller.
    static func write(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        let deadline = ContinuousClock.now + (stalled.load(ordering: .relaxed) ? .zero : .seconds(1))
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                guard errno == EINTR || errno == EAGAIN else { return }
                guard ContinuousClock.now < deadline else { return stalled.store(true, ordering: .relaxed) }
                if errno == EAGAIN {
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, 100)
                }
                continue
            }
            bytes = bytes.dropFirst(written)
        }
        stalled.store(false, ordering: .relaxed)
    }
}
