import NIOCore
import ParleyCore
import ParleyProtocols

/// One way into the chat: the text/JSON-lines port, IRC, the browser's HTTP port and the two WebSocket doors
/// behind it, later SSH. A door is everything that differs between them — how a connection's pipeline is built
/// (framing, and where the writer sits), which session turns its input into requests, how its events are
/// rendered (the session settles a `Renderer`), its keep-alive, and how it refuses a connection.
/// `ChatListener` and `Connection` are written once and know no door by name; TLS, when a port has it, is put
/// in front of whatever the door builds.
protocol FrontDoor: Sendable {
    /// Its name in logs.
    var name: String { get }

    /// Builds an accepted channel's pipeline after whatever is in it already (the TLS handler, on a TLS port),
    /// on the channel's event loop: whatever turns lines into the door's frames, then the outbox's writer, so
    /// that what it writes passes through them and TLS, then the framing, which hands `InboundFrame`s on. Once
    /// the channel is a chat connection — at once, or after an HTTP upgrade — it has `opener` start one, with
    /// the door that serves it.
    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits, opener: ConnectionOpener) throws

    /// The bounds of its framing: what its line-length errors quote.
    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits

    /// The session that serves one connection.
    func makeSession(_ context: SessionContext) -> any LineSession

    /// How it finds out a silent peer, if it does.
    func keepAlive(serverName: String, interval: Duration) -> KeepAlive?

    /// The one line a connection refused before it began (too many from its address) gets before the close.
    func refusal(_ reason: String, serverName: String) -> ByteBuffer

    /// The client's address when the door learned it from a proxy it trusts (`X-Forwarded-For`), rather than
    /// the socket's peer; nil: the peer.
    var forwardedFor: String? { get }

    /// Whether flood control says so when it starts to delay a client's lines. People on nc are told; IRC
    /// clients are not, as no IRC server tells of its fake lag (a notice among a command's replies misleads
    /// scripts that read them).
    var explainsDelays: Bool { get }
}

extension FrontDoor {
    var explainsDelays: Bool { true }
    var forwardedFor: String? { nil }
}

/// How a door hands its listener a channel: as a chat connection, with the outbox the door made and the door
/// that serves it (not always the listener's own: the HTTP port's WebSocket connections have doors of their
/// own), or as a plain channel (an HTTP request) that shutdown must still close.
struct ConnectionOpener: Sendable {
    let open: @Sendable (_ channel: any Channel, _ outbox: Outbox, _ door: any FrontDoor) throws -> Void
    let track: @Sendable (_ channel: any Channel) -> Void
}

/// A door's keep-alive: after `interval` of silence the peer is sent `ping`; silent for as long again, it gets
/// `goodbye` and is closed.
struct KeepAlive: Sendable {
    let interval: Duration
    let ping: ByteBuffer
    let goodbye: ByteBuffer
}

/// The shared text and JSON-lines port: a person on nc or telnet, or a program that opens with `{`, told apart
/// before anything is sent (docs/PROTOCOL.md, "Choosing the mode"); telnet negotiation is answered.
struct LinesDoor: FrontDoor {
    var name: String { "lines" }

    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits, opener: ConnectionOpener) throws {
        let outbox = try Outbox(channel: channel, limitBytes: limits.sendQueueBytes, linger: limits.linger)
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: lineLimits(limits), stripsTelnet: true, greetingWindow: limits.greetingWindow.timeAmount)
        )
        try opener.open(channel, outbox, self)
    }

    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits { limits.line }

    func makeSession(_ context: SessionContext) -> any LineSession {
        LinesSession(context)
    }

    func keepAlive(serverName: String, interval: Duration) -> KeepAlive? { nil }

    func refusal(_ reason: String, serverName: String) -> ByteBuffer {
        ByteBuffer(string: "!!! \(reason)\r\n")
    }
}

/// IRC: clients speak first and plainly, CR ends a line as LF does, and a silent client is pinged.
struct IRCDoor: FrontDoor {
    var name: String { "irc" }
    var explainsDelays: Bool { false }

    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits, opener: ConnectionOpener) throws {
        let outbox = try Outbox(channel: channel, limitBytes: limits.sendQueueBytes, linger: limits.linger)
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: lineLimits(limits), stripsTelnet: false, greetingWindow: nil, carriageReturnEndsLine: true)
        )
        try opener.open(channel, outbox, self)
    }

    /// A whole IRC line: 512 bytes of message plus up to 8191 of tags (the session holds each part to its own
    /// limit, and the message part to --max-line-bytes when that is lower).
    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits {
        LineFramer.Limits(maximumLineBytes: IRCMessage.maximumBodyBytes + IRCMessage.maximumTagBytes)
    }

    func makeSession(_ context: SessionContext) -> any LineSession {
        IRCSession(context)
    }

    func keepAlive(serverName: String, interval: Duration) -> KeepAlive? {
        KeepAlive(
            interval: interval,
            ping: ByteBuffer(string: IRCMessage(command: "PING", params: [serverName]).serialized()),
            goodbye: ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing link: ping timeout"]).serialized())
        )
    }

    func refusal(_ reason: String, serverName: String) -> ByteBuffer {
        ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing link: \(reason)"]).serialized())
    }
}
