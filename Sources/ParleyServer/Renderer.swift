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

    /// `frame`, just made for `event`, to offer to the outbox; nil when it was kept for an answer being
    /// collected instead (IRC's labeled-response gathers the replies to a labeled line).
    func collect(_ frame: ByteBuffer, for event: ChatEvent) -> ByteBuffer?

    /// A place inside the answer being collected, for a reply still being made (a history read); nil when no
    /// answer is being collected, and the reply takes a place in the outbox.
    func reservePlace() -> UInt64?

    /// Puts `event` in a place `reservePlace` gave; the outbox hold and the whole answer, once that completed it.
    func fill(_ place: UInt64, with event: ChatEvent) -> (hold: UInt64, frame: ByteBuffer)?
}

extension Renderer {
    func willDeliver(_ event: ChatEvent) {}
    var coalescesDepartures: Bool { false }
    func farewell(_ reason: LeaveReason) -> ByteBuffer? { nil }
    func collect(_ frame: ByteBuffer, for event: ChatEvent) -> ByteBuffer? { frame }
    func reservePlace() -> UInt64? { nil }
    func fill(_ place: UInt64, with event: ChatEvent) -> (hold: UInt64, frame: ByteBuffer)? { nil }

    /// The frame for one recipient of a fan-out: from `cache` when another recipient already made it.
    func frame(for event: ChatEvent, focused: Bool, repeated: Bool, cache: inout RenderCache) -> ByteBuffer? {
        if repeated && coalescesDepartures { return nil }
        willDeliver(event)
        let frame: ByteBuffer?
        if let key = sharingKey(for: event, focused: focused) {
            frame = cache.frame(for: key) { render(event, focused: focused) }
        } else {
            frame = render(event, focused: focused)
        }
        return frame.flatMap { collect($0, for: event) }
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
        // No message of the day is no event: programs see `motd` only when there is one.
        if case .motd(let lines) = event, lines.isEmpty { return nil }
        return Self.codec.encode(event)
    }
}

/// What IRC rendering needs to know of one IRC client: the nick numerics are addressed to, and the
/// capabilities it negotiated. The session sets them; the renderer follows nick changes as they are delivered.
final class IRCPeer: Sendable {
    private let currentNick = Mutex("*")
    /// Read for every recipient of every event, so an atomic rather than a lock; only the session writes it.
    private let negotiated = Atomic<UInt16>(0)
    /// Whether an answer to a labeled line is being collected: read for every event, so an atomic.
    private let labeling = Atomic<Bool>(false)
    private let labels = Mutex(Labels())

    private struct Labels {
        /// The answer being collected.
        var current: LabeledResponse?
        /// Answers whose line is carried out, waiting for a history read to fill its place.
        var waiting: [LabeledResponse] = []
        var nextPlace: UInt64 = 0
    }

    var nick: String {
        get { currentNick.withLock { $0 } }
        set { currentNick.withLock { $0 = newValue } }
    }

    var capabilities: IRCCapabilities {
        get { IRCCapabilities(rawValue: negotiated.load(ordering: .acquiring)) }
        set { negotiated.store(newValue.rawValue, ordering: .releasing) }
    }

    var isLabeling: Bool { labeling.load(ordering: .acquiring) }

    /// From now on the replies to this client are collected into `response` (until `endLabel`).
    func beginLabel(_ response: LabeledResponse) {
        labels.withLock { $0.current = response }
        labeling.store(true, ordering: .releasing)
    }

    /// The labeled line is carried out: the outbox hold and the answer, unless a history read in it is still
    /// being made (then `fill` gives them).
    func endLabel() -> (hold: UInt64, frame: ByteBuffer)? {
        labeling.store(false, ordering: .releasing)
        return labels.withLock { labels in
            guard let response = labels.current else { return nil }
            labels.current = nil
            guard let frame = response.end() else {
                labels.waiting.append(response)
                return nil
            }
            return (response.hold, frame)
        }
    }

    /// Keeps `frame` for the answer being collected; false when none is.
    func keep(_ frame: ByteBuffer) -> Bool {
        labels.withLock { labels in
            guard let current = labels.current else { return false }
            current.add(frame)
            return true
        }
    }

    func reservePlace() -> UInt64? {
        guard isLabeling else { return nil }
        return labels.withLock { labels in
            guard let current = labels.current else { return nil }
            defer { labels.nextPlace += 1 }
            current.reserve(labels.nextPlace)
            return labels.nextPlace
        }
    }

    func fill(_ place: UInt64, with frame: ByteBuffer?) -> (hold: UInt64, frame: ByteBuffer)? {
        labels.withLock { labels in
            for response in labels.waiting + [labels.current].compactMap({ $0 }) where response.holds(place) {
                guard let answer = response.fill(place, with: frame) else { return nil }
                labels.waiting.removeAll { $0 === response }
                return (response.hold, answer)
            }
            return nil
        }
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

    func collect(_ frame: ByteBuffer, for event: ChatEvent) -> ByteBuffer? {
        guard peer.isLabeling, Self.answers(event, me: peer.nick), peer.keep(frame) else { return frame }
        return nil
    }

    func reservePlace() -> UInt64? {
        peer.reservePlace()
    }

    func fill(_ place: UInt64, with event: ChatEvent) -> (hold: UInt64, frame: ByteBuffer)? {
        peer.fill(place, with: render(event, focused: true))
    }

    /// Whether `event` answers something the client itself did (and so belongs in a labeled response): replies
    /// and the echoes of its own actions, not what others did (their messages, joins, an invitation).
    static func answers(_ event: ChatEvent, me: String) -> Bool {
        let mine = { (nick: String) in asciiLowercased(nick) == asciiLowercased(me) }
        switch event {
        case .message, .announcement, .welcome, .invited, .shutdown: return false
        case .joined(_, let nick, _, _), .awayChanged(let nick, _): return mine(nick)
        case .left(_, let nick, let reason):
            if case .kicked(let by, _) = reason { return by.nick.map(mine) ?? false }
            return mine(nick)
        // Delivered after the renderer followed the change: the nick is the new one by then.
        case .nickChanged(let old, let new): return mine(old) || mine(new)
        case .moderation(let notice): return notice.by?.nick.map(mine) ?? false
        case .topicChanged(_, _, let by, _, _): return by.nick.map(mine) ?? false
        default: return true
        }
    }

    /// IRC ends every connection the server closes with ERROR (RFC 2812 3.1.7).
    func farewell(_ reason: LeaveReason) -> ByteBuffer? {
        ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing link: \(reason.text)"]).serialized())
    }
}
