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

    /// Marks a place inside an answer being collected (`Renderer.reservePlace`) rather than in the outbox.
    private static let collected: UInt64 = 1 << 63

    public func hold(_ peer: Client) -> (client: Client, place: UInt64) {
        if let place = peer.renderer.reservePlace() { return (peer, place | Self.collected) }
        return (peer, peer.outbox.hold())
    }

    public func release(_ hold: (client: Client, place: UInt64), with event: ChatEvent) {
        guard hold.place & Self.collected != 0 else {
            return hold.client.outbox.release(hold.place, with: hold.client.renderer.render(event, focused: true))
        }
        if let answer = hold.client.renderer.fill(hold.place & ~Self.collected, with: event) {
            hold.client.outbox.release(answer.hold, with: answer.frame)
        }
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
