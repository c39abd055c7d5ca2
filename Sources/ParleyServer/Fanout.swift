import NIOCore
import ParleyCore

/// Delivers the hub's events: each event is encoded at most once per `RenderKey` its recipients' renderers
/// give (once for all JSON clients, once per text variant, once per set of IRC rendering capabilities; a reply
/// addressed to one client is its own), and the same bytes are offered to every recipient's outbox. At the end
/// of the publisher's batch one task per event loop drains the outboxes that live there, so each connection
/// gets one write per batch. Nothing here waits for a client, and nothing here knows a wire format.
public struct Fanout: EventSink {
    public typealias Peer = Client

    private let drains: DrainRequests

    /// `flushInterval`: how often, at most, each event loop writes to its busy connections (see `LoopDrainer`).
    public init(flushInterval: Duration = .zero) {
        self.drains = DrainRequests(flushInterval: flushInterval.timeAmount)
    }

    public func endOfBatch() {
        drains.request()
    }

    public func deliver(_ event: ChatEvent, to recipients: [Recipient<Client>]) {
        drains.collect { drains in
            var cache = RenderCache()
            var largest = 0
            for recipient in recipients {
                let client = recipient.peer
                guard let frame = client.renderer.frame(for: event, focused: recipient.focused, repeated: recipient.repeated, cache: &cache) else {
                    continue
                }
                largest = max(largest, frame.readableBytes)
                drains.offer(frame, to: client.outbox)
            }
            drains.delivered(bytes: largest)
        }
    }

    public func hold(_ peer: Client) -> (client: Client, place: UInt64) {
        (peer, peer.outbox.hold())
    }

    public func release(_ hold: (client: Client, place: UInt64), with event: ChatEvent) {
        hold.client.outbox.release(hold.place, with: hold.client.renderer.render(event, focused: true))
    }

    public func isAbandoned(_ hold: (client: Client, place: UInt64)) -> Bool {
        let phase = hold.client.outbox.phase
        return phase == .done || phase == .overflowed
    }

    public func close(_ peer: Client, reason: LeaveReason) {
        if let farewell = peer.renderer.farewell(reason) { peer.outbox.send(farewell) }
        peer.close(reason: reason)
    }
}
