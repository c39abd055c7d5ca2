import NIOCore
import ParleyCore
import ParleyProtocols

/// One way into the chat: the text/JSON-lines port, IRC, later WebSocket or SSH. A door is everything that
/// differs between them — how a connection's pipeline is built (framing, and where the writer sits), which
/// session turns its input into requests, how its events are rendered (the session settles a `Renderer`),
/// its keep-alive, and how it refuses a connection. `ChatListener` and `Connection` are written once and
/// know no door by name; TLS, when a port has it, is put in front of whatever the door builds.
protocol FrontDoor: Sendable {
    /// Its name in logs.
    var name: String { get }

    /// Builds an accepted channel's pipeline after whatever is in it already (the TLS handler, on a TLS port),
    /// on the channel's event loop: the outbox's writer first, so that what it writes passes through TLS, then
    /// the framing, which hands `InboundFrame`s on.
    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits) throws -> Outbox

    /// The bounds of its framing: what its line-length errors quote.
    func lineLimits(_ limits: ServerConfiguration.Limits) -> LineFramer.Limits

    /// The session that serves one connection.
    func makeSession(_ context: SessionContext) -> any LineSession

    /// How it finds out a silent peer, if it does.
    func keepAlive(serverName: String, interval: Duration) -> KeepAlive?

    /// The one line a connection refused before it began (too many from its address) gets before the close.
    func refusal(_ reason: String, serverName: String) -> ByteBuffer

    /// Whether flood control says so when it starts to delay a client's lines. People on nc are told; IRC
    /// clients are not, as no IRC server tells of its fake lag (a notice among a command's replies misleads
    /// scripts that read them).
    var explainsDelays: Bool { get }
}

extension FrontDoor {
    var explainsDelays: Bool { true }
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

    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits) throws -> Outbox {
        let outbox = try Outbox(channel: channel, limitBytes: limits.sendQueueBytes, linger: limits.linger)
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: lineLimits(limits), stripsTelnet: true, greetingWindow: limits.greetingWindow.timeAmount)
        )
        return outbox
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

    func setUp(_ channel: any Channel, limits: ServerConfiguration.Limits) throws -> Outbox {
        let outbox = try Outbox(channel: channel, limitBytes: limits.sendQueueBytes, linger: limits.linger)
        try channel.pipeline.syncOperations.addHandler(
            FrameHandler(limits: lineLimits(limits), stripsTelnet: false, greetingWindow: nil, carriageReturnEndsLine: true)
        )
        return outbox
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
