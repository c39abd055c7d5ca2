import Foundation

/// The controlling terminal in full-screen mode: raw input, the alternate screen, bracketed paste.
/// `restore()` puts everything back; the client calls it on every way out.
final class Terminal {
    private var original = termios()
    private var active = false

    /// Raw mode (no echo, no line editing, no signals from Ctrl+C: the client handles keys itself), then the
    /// alternate screen and bracketed paste.
    func takeOver() throws {
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { throw ClientError.refused("stdin is not a terminal") }
        var raw = original
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0 else { throw ClientError.refused("cannot set raw mode") }
        active = true
        // SGR mouse reports (1000, 1006) bring the wheel, which scrolls; hold Shift to select text with the mouse.
        write("\u{1B}[?1049h\u{1B}[?2004h\u{1B}[?1000h\u{1B}[?1006h\u{1B}[H\u{1B}[2J")
    }

    func restore() {
        guard active else { return }
        active = false
        write("\u{1B}[?1006l\u{1B}[?1000l\u{1B}[?2004l\u{1B}[?25h\u{1B}[0m\u{1B}[?1049l")
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
    }

    var size: (width: Int, height: Int) {
        var window = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0, window.ws_row > 0 else { return (80, 24) }
        return (Int(window.ws_col), Int(window.ws_row))
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Foundation.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
