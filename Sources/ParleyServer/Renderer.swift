import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// How one connection's events become bytes: its wire format, and whatever of the connection changes the
/// rendering (the capabilities an IRC client negotiated, the nick its numerics name). Each door's session
/// gives its connection one (`ConnectionState.settle(on:)`); the fan-out asks it for every event, and shares
/// one encoding among all recipients whose renderers give the same `RenderKey`.
protocol Renderer: Sendable {
    /// The key under which `event` renders the same for every connection that gives it; nil when this
    /// connection's rendering is its own (an IRC numeric names its recipient).
    func sharingKey(for event: ChatEvent, focused: Bool) -> RenderKey?

    /// `event` as this connection gets it; nil when it gets nothing (an event its protocol has no form for).
    /// When `sharingKey` gave a key, the result depends only on the event and that key.
    func render(_ event: ChatEvent, focused: Bool) -> ByteBuffer?

    /// The fan-out is about to deliver `event` to this connection, in delivery order (IRC follows its own nick
    /// here, so that every later numeric names it right).
    func willDeliver(_ event: ChatEvent)

    /// A departure this connection is told of once already in the same event (someone who left every shared
    /// room at once) is skipped: IRC says it with one QUIT.
    var coalescesDepartures: Bool { get }

    /// What the connection gets last when the server closes it (IRC's `ERROR`), if anything.
    func farewell(_ reason: LeaveReason) -> ByteBuffer?
}

extension Renderer {
    func willDeliver(_ event: ChatEvent) {}
    var coalescesDepartures: Bool { false }
    func farewell(_ reason: LeaveReason) -> ByteBuffer? { nil }

    /// The frame for one recipient of a fan-out: from `cache` when another recipient already made it.
    func frame(for event: ChatEvent, focused: Bool, repeated: Bool, cache: inout RenderCache) -> ByteBuffer? {
        if repeated && coalescesDepartures { return nil }
        willDeliver(event)
        guard let key = sharingKey(for: event, focused: focused) else { return render(event, focused: focused) }
        return cache.frame(for: key) { render(event, focused: focused) }
    }
}

/// Which encoding of an event a renderer gives: its kind of renderer, and the variant within it (text: the
/// reader's current room or another; IRC: the capabilities that change rendering).
struct RenderKey: Equatable, Sendable {
    let renderer: ObjectIdentifier
    let variant: UInt64

    init(_ renderer: any Renderer.Type, variant: UInt64 = 0) {
        self.renderer = ObjectIdentifier(renderer)
        self.variant = variant
    }
}

/// The encodings of one event made so far in a fan-out. A room's recipients give a handful of distinct keys,
/// so a short list beats hashing.
struct RenderCache {
    private var made: [(key: RenderKey, frame: ByteBuffer?)] = []

    mutating func frame(for key: RenderKey, _ make: () -> ByteBuffer?) -> ByteBuffer? {
        if let found = made.first(where: { $0.key == key }) { return found.frame }
        let frame = make()
        made.append((key, frame))
        return frame
    }
}

/// Plain text for people on nc and telnet; a room message reads differently in the reader's current room.
struct TextRenderer: Renderer {
    private static let codec = TextCodec()

    func sharingKey(for event: ChatEvent, focused: Bool) -> RenderKey? {
        RenderKey(Self.self, variant: focused ? 1 : 0)
    }

    func render(_ event: ChatEvent, focused: Bool) -> ByteBuffer? {
        Self.codec.encode(event, focused: focused)
    }
}

/// JSON lines for programs; the same for everyone.
struct JSONRenderer: Renderer {
    private static let codec = JSONCodec()

    func sharingKey(for event: ChatEvent, focused: Bool) -> RenderKey? {
        RenderKey(Self.self)
    }

    func render(_ event: ChatEvent, focused: Bool) -> ByteBuffer? {
        // Tags alone (IRC's TAGMSG: typing indicators, reactions) have no JSON form yet.
        if case .message(let message) = event, message.kind == .tags { return nil }
        if case .ack(_, let message) = event, message.kind == .tags { return nil }
        return Self.codec.encode(event)
    }
}

/// What IRC rendering needs to know of one IRC client: the nick numerics are addressed to, and the
/// capabilities it negotiated. The session sets them; the renderer follows nick changes as they are delivered.
final class IRCPeer: Sendable {
    private let currentNick = Mutex("*")
    /// Read for every recipient of every event, so an atomic rather than a lock; only the session writes it.
    private let negotiated = Atomic<UInt16>(0)

    var nick: String {
        get { currentNick.withLock { $0 } }
        set { currentNick.withLock { $0 = newValue } }
    }

    var capabilities: IRCCapabilities {
        get { IRCCapabilities(rawValue: negotiated.load(ordering: .acquiring)) }
        set { negotiated.store(newValue.rawValue, ordering: .releasing) }
    }
}

/// IRC lines: an event everyone sees alike is shared among the clients with the same rendering capabilities;
/// a reply addressed to this client (numerics name it) is its own.
struct IRCRenderer: Renderer {
    let codec: IRCCodec
    let peer: IRCPeer

    func sharingKey(for event: ChatEvent, focused: Bool) -> RenderKey? {
        guard !IRCCodec.isPersonal(event) else { return nil }
        return RenderKey(Self.self, variant: UInt64(peer.capabilities.intersection(.rendering).rawValue))
    }

    func render(_ event: ChatEvent, focused: Bool) -> ByteBuffer? {
        let capabilities = peer.capabilities
        guard IRCCodec.isPersonal(event) else { return codec.encode(event, for: "*", capabilities: capabilities.intersection(.rendering)) }
        return codec.encode(event, for: peer.nick, capabilities: capabilities)
    }

    func willDeliver(_ event: ChatEvent) {
        switch event {
        case .nickChanged(let old, let new) where asciiLowercased(old) == asciiLowercased(peer.nick): peer.nick = new
        case .welcome(let nick, _, _, _, _): peer.nick = nick
        default: break
        }
    }

    var coalescesDepartures: Bool { true }

    /// IRC ends every connection the server closes with ERROR (RFC 2812 3.1.7).
    func farewell(_ reason: LeaveReason) -> ByteBuffer? {
        ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing link: \(reason.text)"]).serialized())
    }
}
