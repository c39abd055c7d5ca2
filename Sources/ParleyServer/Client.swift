import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// The wire formats a client can speak; events are encoded once per format (and text variant) per fan-out.
public enum WireFormat: String, Sendable {
    case text, json
}

/// A registered client as the chat core reaches it: its format, its outbox, and why it was closed.
public final class Client: Sendable {
    let format: WireFormat
    let outbox: Outbox
    private let closeReason = Mutex<LeaveReason?>(nil)

    init(format: WireFormat, outbox: Outbox) {
        self.format = format
        self.outbox = outbox
    }

    /// Ends the connection after its queue drains; the first reason given is kept.
    func close(reason: LeaveReason) {
        closeReason.withLock { $0 = $0 ?? reason }
        outbox.finish()
    }

    var reasonClosed: LeaveReason? { closeReason.withLock { $0 } }
}

/// Delivers the hub's events: each event is encoded at most once per wire format and text variant, and the
/// same bytes are offered to every recipient's outbox. Nothing here waits for a client.
public struct Fanout: EventSink {
    public typealias Peer = Client

    let text = TextCodec()
    let json = JSONCodec()

    public func deliver(_ event: ChatEvent, to recipients: [Recipient<Client>]) {
        var cache = FrameCache()
        for recipient in recipients {
            guard let frame = cache.frame(for: event, format: recipient.peer.format, focused: recipient.focused, using: self)
            else { continue }
            recipient.peer.outbox.offer(frame)
        }
    }

    public func close(_ peer: Client, reason: LeaveReason) {
        peer.close(reason: reason)
    }

    func encode(_ event: ChatEvent, format: WireFormat, focused: Bool = true) -> ByteBuffer? {
        switch format {
        case .text: text.encode(event, focused: focused)
        case .json: json.encode(event)
        }
    }

    /// The frames of one event, made on first use.
    private struct FrameCache {
        var json: ByteBuffer??
        var textFocused: ByteBuffer??
        var textUnfocused: ByteBuffer??

        mutating func frame(for event: ChatEvent, format: WireFormat, focused: Bool, using fanout: Fanout) -> ByteBuffer? {
            switch (format, focused) {
            case (.json, _): return memo(&json) { fanout.json.encode(event) }
            case (.text, true): return memo(&textFocused) { fanout.text.encode(event, focused: true) }
            case (.text, false): return memo(&textUnfocused) { fanout.text.encode(event, focused: false) }
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
