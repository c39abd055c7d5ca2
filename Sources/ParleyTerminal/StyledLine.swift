/// How a piece of text looks. The screen maps styles to SGR codes, or to nothing for `NO_COLOR`.
public enum Style: Sendable, Equatable {
    case plain
    case dim
    case bold
    /// A nick's stable colour, 0..<Style.nickColours.
    case nick(Int)
    case own
    case privateMessage
    case error
    case mention

    public static let nickColours = 6
}

public struct Span: Sendable, Equatable {
    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style = .plain) {
        self.text = text
        self.style = style
    }
}

/// One line of a room's scrollback, before wrapping.
public struct StyledLine: Sendable, Equatable {
    public var spans: [Span]
    /// Cells the rows after the first start with when the line wraps: a message's continuation rows line up
    /// under its text, after the time and the nick (as irssi does).
    public var indent = 0
    /// Shown by `/find`: a later search leaves it out.
    public var isFindResult = false

    public init(_ spans: [Span], indent: Int = 0) {
        self.spans = spans
        self.indent = indent
    }

    public var plainText: String { spans.map(\.text).joined() }
}
