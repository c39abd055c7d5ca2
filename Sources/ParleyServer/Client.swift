import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// The wire formats a client can speak; events are encoded once per format (and text variant) per fan-out.
public enum WireFormat: String, Sendable {
    case text, json, irc
}

/// What IRC rendering needs to know of one IRC client: the nick numerics are addressed to, and the
/// capabilities it negotiated. The session sets them; the fan-out follows nick changes as it delivers them.
public final class IRCPeer: Sendable {
    private let currentNick = Mutex("*")
    /// Read for every recipient of every event, so an atomic rather than a lock; only the session writes it.
    private let negotiated = Atomic<UInt16>(0)

    init() {}

    var nick: String {
        get { currentNick.withLock { $0 } }
        set { currentNick.withLock { $0 = newValue } }
    }

    var capabilities: IRCCapabilities {
        get { IRCCapabilities(rawValue: negotiated.load(ordering: .acquiring)) }
        set { negotiated.store(newValue.rawValue, ordering: .releasing) }
    }

    var snapshot: (nick: String, capabilities: IRCCapabilities) { (nick, capabilities) }
}

/// A registered client as the chat core reaches it: its format, its outbox, and why it was closed. Equal only to
/// itself.
public final class Client: Sendable, Hashable {
    public static func == (lhs: Client, rhs: Client) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    let format: WireFormat
    let outbox: Outbox
    /// Set for IRC clients.
    let irc: IRCPeer?
    private let closeReason = Mutex<LeaveReason?>(nil)

    init(format: WireFormat, outbox: Outbox, irc: IRCPeer? = nil) {
        self.format = format
        self.outbox = outbox
        self.irc = irc
    }

    /// Ends the connection after its queue drains; the first reason given is kept.
    func close(reason: LeaveReason) {
        closeReason.withLock { $0 = $0 ?? reason }
        outbox.finish()
    }

    var reasonClosed: LeaveReason? { closeReason.withLock { $0 } }
}

/// Delivers the hub's events: each event is encoded at most once per wire format and text variant, and the
/// same bytes are offered to every recipient's outbox. At the end of the publisher's batch one task per event
/// loop drains the outboxes that live there, so each connection gets one write per batch. Nothing here waits
/// for a client.
public struct Fanout: EventSink {
    public typealias Peer = Client

    let text = TextCodec()
    let json = JSONCodec()
    let irc: IRCCodec
    private let drains: DrainRequests

    /// `flushInterval`: how often, at most, each event loop writes to its busy connections (see `LoopDrainer`).
    public init(serverName: String, flushInterval: Duration = .zero) {
        self.irc = IRCCodec(serverName: serverName)
        self.drains = DrainRequests(flushInterval: flushInterval.timeAmount)
    }

    public func endOfBatch() {
        drains.request()
    }

    public func deliver(_ event: ChatEvent, to recipients: [Recipient<Client>]) {
        drains.collect { drains in deliver(event, to: recipients, collecting: &drains) }
    }

    private func deliver(_ event: ChatEvent, to recipients: [Recipient<Client>], collecting drains: inout Drains) {
        var cache = FrameCache()
        let personal = IRCCodec.isPersonal(event)
        var largest = 0
        defer { drains.delivered(bytes: largest) }
        for recipient in recipients {
            let frame: ByteBuffer?
            if let peer = recipient.peer.irc {
                // One QUIT for someone who left every shared channel at once.
                if recipient.repeated { continue }
                frame = personal ? encode(event, for: peer) : cache.ircFrame(for: event, capabilities: peer.capabilities.intersection(.rendering), using: self)
                // In delivery order, so every later numeric carries the new nick.
                if case .nickChanged(let old, let new) = event, asciiLowercased(old) == asciiLowercased(peer.nick) { peer.nick = new }
                if case .welcome(let nick, _, _, _) = event { peer.nick = nick }
            } else {
                frame = cache.frame(for: event, format: recipient.peer.format, focused: recipient.focused, using: self)
            }
            guard let frame else { continue }
            largest = max(largest, frame.readableBytes)
            drains.offer(frame, to: recipient.peer.outbox)
        }
    }

    func encode(_ event: ChatEvent, for peer: IRCPeer) -> ByteBuffer? {
        let (nick, capabilities) = peer.snapshot
        return irc.encode(event, for: nick, capabilities: capabilities)
    }

    public func hold(_ peer: Client) -> (client: Client, place: UInt64) {
        (peer, peer.outbox.hold())
    }

    public func release(_ hold: (client: Client, place: UInt64), with event: ChatEvent) {
        let client = hold.client
        let frame = client.irc.map { encode(event, for: $0) } ?? encode(event, format: client.format)
        client.outbox.release(hold.place, with: frame)
    }

    public func isAbandoned(_ hold: (client: Client, place: UInt64)) -> Bool {
        let phase = hold.client.outbox.phase
        return phase == .done || phase == .overflowed
    }

    public func close(_ peer: Client, reason: LeaveReason) {
        // IRC ends every connection the server closes with ERROR (RFC 2812 3.1.7).
        if peer.irc != nil { peer.outbox.send(ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing link: \(reason.text)"]).serialized())) }
        peer.close(reason: reason)
    }

    func encode(_ event: ChatEvent, format: WireFormat, focused: Bool = true) -> ByteBuffer? {
        switch format {
        case .text: text.encode(event, focused: focused)
        case .json: json.encode(event)
        case .irc: irc.encode(event, for: "*", capabilities: [])
        }
    }

    /// The frames of one event, made on first use.
    private struct FrameCache {
        var json: ByteBuffer??
        var textFocused: ByteBuffer??
        var textUnfocused: ByteBuffer??
        /// Per set of rendering capabilities; a room has a few distinct sets, so a list beats hashing.
        var irc: [(capabilities: IRCCapabilities, frame: ByteBuffer?)] = []

        mutating func ircFrame(for event: ChatEvent, capabilities: IRCCapabilities, using fanout: Fanout) -> ByteBuffer? {
            if let made = irc.first(where: { $0.capabilities == capabilities }) { return made.frame }
            let made = fanout.irc.encode(event, for: "*", capabilities: capabilities)
            irc.append((capabilities, made))
            return made
        }

        mutating func frame(for event: ChatEvent, format: WireFormat, focused: Bool, using fanout: Fanout) -> ByteBuffer? {
            switch (format, focused) {
            case (.json, _): return memo(&json) { fanout.json.encode(event) }
            case (.text, true): return memo(&textFocused) { fanout.text.encode(event, focused: true) }
            case (.text, false): return memo(&textUnfocused) { fanout.text.encode(event, focused: false) }
            case (.irc, _): return fanout.irc.encode(event, for: "*", capabilities: [])
            }
        }

        private func memo(_ slot: inout ByteBuffer??, _ make: () -> ByteBuffer?) -> ByteBuffer? {
            if let made = slot { return made }
            let made = make()
            slot = .some(made)
            return made
        }
    }
}
