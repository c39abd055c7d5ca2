import NIOCore

/// The telnet side of the plain-text port (RFC 854, 855): takes negotiation out of the byte stream and answers
/// it, so a telnet user's client and the server agree on how they talk.
///
/// The server never starts a negotiation — an `nc` user would see the bytes as garbage — it only answers one.
/// It agrees to suppress go-ahead (RFC 858: what every telnet client wants for a line-by-line chat) and to
/// timing marks (RFC 860), and refuses every other option (`WONT`/`DONT`), echo included: the client echoes
/// what its user types and sends whole lines, which is how `nc` users are served too. Timing marks matter
/// most: on Ctrl+C a telnet client sends `IP`, then `DO TIMING-MARK`, and throws away everything the server
/// sends until the mark is answered; a server that never answers leaves that user deaf for good.
///
/// Answers are only sent when they change something (or for a timing mark, which is a request, not a
/// state), as RFC 854 requires, so two parties can never loop. A flood is answered sparingly: one timing mark
/// and one are-you-there a read (many of either mean no more than one), at most 1 KiB a read in all, and the
/// caller sends the answers through the connection's bounded queue, where a client that does not read them
/// overflows like any other.
public struct TelnetNegotiation: Sendable {
    public static let IAC: UInt8 = 0xFF
    public static let DONT: UInt8 = 0xFE
    public static let DO: UInt8 = 0xFD
    public static let WONT: UInt8 = 0xFC
    public static let WILL: UInt8 = 0xFB
    public static let SB: UInt8 = 0xFA
    public static let SE: UInt8 = 0xF0
    public static let AYT: UInt8 = 0xF6

    /// Options (RFC 857, 858, 860).
    public static let echo: UInt8 = 1
    public static let suppressGoAhead: UInt8 = 3
    public static let timingMark: UInt8 = 6

    private enum State: Sendable {
        case data, command
        /// After WILL, WONT, DO or DONT: the option byte comes next.
        case option(verb: UInt8)
        /// Inside SB … IAC SE, which is skipped whole.
        case subnegotiation, subnegotiationCommand
    }

    private var state = State.data
    /// Options the server performs (only suppress-go-ahead can be).
    private var localSGA = false
    /// Options the client performs that the server agreed to (only suppress-go-ahead).
    private var remoteSGA = false
    /// What to send back, in order, not yet taken.
    private var replies: [UInt8] = []
    /// Answers beyond this many bytes between two takes are dropped.
    public static let maximumPendingReplyBytes = 1024
    /// A timing mark or an are-you-there already answered since the last take: more of them ask nothing new.
    private var answeredMark = false
    private var answeredPresence = false

    public init() {}

    /// True while a command is only partly read: the next bytes cannot be passed through unexamined.
    public var isInsideCommand: Bool {
        if case .data = state { return false }
        return true
    }

    /// The answers gathered since the last call.
    public mutating func takeReplies() -> ByteBuffer? {
        guard !replies.isEmpty else { return nil }
        defer {
            replies.removeAll(keepingCapacity: false)
            (answeredMark, answeredPresence) = (false, false)
        }
        return ByteBuffer(bytes: replies)
    }

    /// Appends `input` to `output` without its telnet commands, and gathers the answers to them.
    public mutating func filter(_ input: ByteBuffer, into output: inout ByteBuffer) {
        for byte in input.readableBytesView {
            switch (state, byte) {
            case (.data, Self.IAC): state = .command
            case (.data, _): output.writeInteger(byte)
            case (.command, Self.IAC):
                output.writeInteger(byte)  // IAC IAC is a literal 255
                state = .data
            case (.command, Self.WILL...Self.DONT): state = .option(verb: byte)
            case (.command, Self.SB): state = .subnegotiation
            case (.command, Self.AYT):
                if !answeredPresence { answeredPresence = queue(Array("*** Parley is here.\n".utf8)) }
                state = .data
            case (.command, Self.SE..<Self.SB):
                // The other two-byte commands (NOP, IP, AO, EC, EL, GA, …) ask nothing of a line-by-line chat:
                // the client edits its own line and the server keeps no partial one to interrupt.
                state = .data
            case (.command, _):
                // Not a telnet command: a stray 0xFF in invalid UTF-8. Keep both bytes; they decode to U+FFFD.
                output.writeInteger(Self.IAC)
                output.writeInteger(byte)
                state = .data
            case (.option(let verb), _):
                answer(verb, byte)
                state = .data
            case (.subnegotiation, Self.IAC): state = .subnegotiationCommand
            case (.subnegotiation, _): continue
            case (.subnegotiationCommand, Self.SE): state = .data
            case (.subnegotiationCommand, _): state = .subnegotiation
            }
        }
    }

    private mutating func answer(_ verb: UInt8, _ option: UInt8) {
        switch (verb, option) {
        case (Self.DO, Self.timingMark):
            // Everything before the mark has been read: the client may show output again.
            if !answeredMark { answeredMark = reply(Self.WILL, option) }
        case (Self.DO, Self.suppressGoAhead):
            // A state changes only with the answer that says so.
            if !localSGA { localSGA = reply(Self.WILL, option) }
        case (Self.DO, _):
            reply(Self.WONT, option)
        case (Self.DONT, Self.suppressGoAhead):
            if localSGA { localSGA = !reply(Self.WONT, option) }
        case (Self.DONT, _):
            break  // already off
        case (Self.WILL, Self.suppressGoAhead):
            if !remoteSGA { remoteSGA = reply(Self.DO, option) }
        case (Self.WILL, _):
            reply(Self.DONT, option)
        case (Self.WONT, Self.suppressGoAhead):
            if remoteSGA { remoteSGA = !reply(Self.DONT, option) }
        default:
            break  // WONT of an option that was never on
        }
    }

    @discardableResult
    private mutating func reply(_ verb: UInt8, _ option: UInt8) -> Bool {
        queue([Self.IAC, verb, option])
    }

    /// False when the answer did not fit and was dropped.
    private mutating func queue(_ bytes: [UInt8]) -> Bool {
        guard replies.count + bytes.count <= Self.maximumPendingReplyBytes else { return false }
        replies += bytes
        return true
    }
}
