import NIOCore

/// What the framing layer hands the connection: lines, and the few things about lines it must know.
public enum InboundFrame: Sendable, Equatable {
    /// One line without its terminator (LF or CRLF). Its bytes are not yet known to be UTF-8.
    case line(ByteBuffer)
    /// A line longer than the limit arrived and was dropped (its length in bytes). The connection goes on.
    case overlong(Int)
    /// Bytes kept coming with no newline far past the limit; nothing more will be framed and the connection
    /// must close.
    case overflow
    /// The client did not open with `{`, or sent nothing within the greeting window: it is a person on
    /// nc or telnet, so greet it in plain text. Comes at most once, before any line.
    case greet
    /// Answers to the client's telnet negotiation (`TelnetNegotiation`): send them back as they are.
    case telnet(ByteBuffer)
    /// The client's first byte was `{`: it speaks JSON lines. Comes at most once, before any line.
    case json
}
