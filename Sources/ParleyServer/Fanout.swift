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
    private let metrics: ServerMetrics

    /// `flushInterval`: how often, at most, each event loop writes to its busy connections (see `LoopDrainer`).
    public init(flushInterval: Duration = .zero, metrics: ServerMetrics = ServerMetrics()) {
        self.drains = DrainRequests(flushInterval: flushInterval.timeAmount)
        self.metrics = metrics
    }

    public func endOfBatch() {
        drains.request()
    }

    public func deliver(_ event: ChatEvent, to recipients: Recipients<Client>) {
        var (delivered, dropped) = (0, 0)
        drains.collect { drains in
            var cache = RenderCache()
            var largest = 0
            for recipient in recipients {
                let client = recipient.peer
                guard let frame = client.renderer.frame(for: event, focused: recipient.focused, repeated: recipient.repeated, cache: &cache) else {
                    continue
                }
                largest = max(largest, frame.readableBytes)
                if drains.offer(frame, to: client.outbox) { delivered += 1 } else { dropped += 1 }
            }
            drains.delivered(bytes: largest)
        }
        // Once per event, not per recipient: each is an atomic add on a counter every loop shares.
        metrics.delivered(delivered, dropped: dropped)
    }

    /// Where a reply still being made (a history read) will go.
    public enum Place: Sendable {
        /// A hold in the connection's outbox.
        case outbox(UInt64)
        /// A place inside an answer its renderer is collecting (`Renderer.reservePlace`: IRC's labeled response).
        case answer(UInt64)
    }

    public func hold(_ peer: Client) -> (client: Client, place: Place) {
        if let place = peer.renderer.reservePlace() { return (peer, .answer(place)) }
        return (peer, .outbox(peer.outbox.hold()))
    }

    public func release(_ hold: (client: Client, place: Place), with event: ChatEvent) {
        switch hold.place {
        case .outbox(let place):
            hold.client.outbox.release(place, with: hold.client.renderer.render(event, focused: true))
        case .answer(let place):
            // The answer is released into its own outbox hold once this completed it.
            if let answer = hold.client.renderer.fill(place, with: event) { hold.client.outbox.release(answer.hold, with: answer.frame) }
        }
    }

    public func isAbandoned(_ hold: (client: Client, place: Place)) -> Bool {
        let phase = hold.client.outbox.phase
        return phase == .done || phase == .overflowed
    }

    public func close(_ peer: Client, reason: LeaveReason) {
        if let farewell = peer.renderer.farewell(reason) { peer.outbox.send(farewell) }
        peer.close(reason: reason)
    }
}
