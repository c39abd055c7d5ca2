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

    public init(_ spans: [Span]) {
        self.spans = spans
    }

    public var plainText: String { spans.map(\.text).joined() }
}
