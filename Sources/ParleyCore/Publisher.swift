/// Carries out the hub's effects in order, one batch at a time: first every message of the batch is stored
/// in one write (group commit), then deliveries, replays and closes follow in hub order. A message whose
/// write failed is neither acknowledged nor delivered; its sender gets `not_stored` instead. Room changes
/// (topics, operators, bans) are stored in their place in the order, before what announces them.
public struct Publisher<Sink: EventSink>: Sendable {
    public let hub: ChatHub<Sink>
    public let store: any MessageStore
    public let rooms: any RoomStore
    /// Called when a write fails (for the log); the chat goes on.
    let onStoreFailure: @Sendable (any Error) -> Void

    public init(
        hub: ChatHub<Sink>, store: any MessageStore, rooms: any RoomStore = NoStore(),
        onStoreFailure: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        self.hub = hub
        self.store = store
        self.rooms = rooms
        self.onStoreFailure = onStoreFailure
    }

    /// Runs until the hub is finished and its queue drained.
    public func run() async {
        while let batch = await hub.nextEffects() {
            await publish(batch)
        }
    }

    /// Stores the batch's messages in one write, then carries out its effects in order.
    public func publish(_ batch: [Effect<Sink.Peer>]) async {
        var unstored: Set<Int64> = []
        let messages = batch.compactMap { effect -> ChatMessage? in
            if case .record(let message, _, _) = effect { return message }
            return nil
        }
        if !messages.isEmpty {
            do {
                try await store.append(messages)
            } catch {
                onStoreFailure(error)
                unstored = Set(messages.map(\.id))
            }
        }
        let sink = hub.sink
        for effect in batch {
            switch effect {
            case .record(let message, let sender?, let ref) where unstored.contains(message.id):
                let error = ChatError(.notStored, "The server could not store your message, so it was not sent. Try again later.")
                sink.deliver(.error(error, ref: ref), to: [Recipient(peer: sender, focused: true)])
            case .record:
                continue
            case .deliver(.message(let message), _) where unstored.contains(message.id),
                .deliver(.announcement(let message, _), _) where unstored.contains(message.id),
                .deliver(.ack(_, let message), _) where unstored.contains(message.id):
                continue
            case .deliver(_, let recipients) where recipients.isEmpty:
                continue
            case .deliver(let event, let recipients):
                sink.deliver(event, to: recipients)
            case .replay(let peer, let room, let query, let below, let ref):
                // Bounded by the id at the time it was asked for, so replayed and live messages never overlap;
                // read in queue order, so they leave no gap. A failed read is an error, never an empty history
                // (a resuming client would take that for "nothing missed").
                let recipient = [Recipient(peer: peer, focused: true)]
                sink.endOfBatch()
                do {
                    let messages = try await store.history(room: room, query, below: below)
                    sink.deliver(.history(room: room, messages: messages, ref: ref), to: recipient)
                } catch {
                    onStoreFailure(error)
                    let failure = ChatError(.historyUnavailable, "The history of \(room) cannot be read just now; ask again with /history.")
                    sink.deliver(.error(failure, ref: ref), to: recipient)
                }
            case .close(let peer, let reason):
                sink.close(peer, reason: reason)
            case .persist(let changes, let audit, let actor):
                sink.endOfBatch()
                do {
                    try await rooms.apply(changes, audit: audit)
                } catch {
                    // The change holds in the running server; only a restart would lose it, so say so.
                    onStoreFailure(error)
                    if let actor {
                        let failure = ChatError(.notStored, "The server could not store that change; it holds until the server restarts.")
                        sink.deliver(.error(failure, ref: nil), to: [Recipient(peer: actor, focused: true)])
                    }
                }
            }
        }
        sink.endOfBatch()
    }
}
