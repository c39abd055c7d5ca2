/// A batch of the hub's effects as the publisher takes it: the effects in hub order, and the message ids the hub
/// gave out while they were queued.
///
/// Those ids are provisional. Where the batch lands in the one order every node of a shared database agrees on
/// (its log) decides what they become (`LogCommit`): each moves by the same offset, so their order and spacing
/// stay. On a single server the offset is always 0 and nothing is rewritten.
public struct EffectBatch<Peer: Sendable>: Sendable {
    public var effects: [Effect<Peer>]
    /// Every id the hub gave out for this batch, those of messages that are not kept (live-only tags) included:
    /// they hold their places in the log too, so that ids never repeat.
    public var ids: Range<Int64>
    /// Another node said it committed entries (`ChatHub.wake()`): the publisher reads them even if this batch
    /// writes nothing.
    public var woken: Bool
    /// The highest id of the log carried out before this batch (`ChatHub.logReached`).
    public var logHead: Int64
    /// On a node, the chat as it was before this batch's changes: who other nodes' messages, which come before
    /// the batch in the log, reach (`ChatHub(sharedLog:)`). Nil on a single server.
    public var stateBefore: ChatState<Peer>?

    public init(effects: [Effect<Peer>], ids: Range<Int64>, woken: Bool = false, logHead: Int64 = 0, stateBefore: ChatState<Peer>? = nil) {
        (self.effects, self.ids, self.woken, self.logHead, self.stateBefore) = (effects, ids, woken, logHead, stateBefore)
    }
}

/// What storing a batch gave back.
public struct LogCommit: Sendable, Equatable {
    /// What turns a provisional id of the batch into its place in the log: added to each.
    public var offset: Int64
    /// The messages other nodes committed after what this node last read and before this batch, in log order.
    /// They are delivered before the batch, so every client receives ids in increasing order.
    public var others: [ChatMessage]
    /// The presence changes other nodes committed in the same span (their `node` set), in log order.
    public var presence: [PresenceEntry]

    public init(offset: Int64 = 0, others: [ChatMessage] = [], presence: [PresenceEntry] = []) {
        (self.offset, self.others, self.presence) = (offset, others, presence)
    }

    /// The highest id it read of other nodes' entries.
    public var lastRead: Int64? {
        switch (others.last?.id, presence.last?.id) {
        case (let message?, let entry?): max(message, entry)
        case (let message, let entry): message ?? entry
        }
    }

    /// A store that is the only writer: the hub's ids are the log's.
    public static var asNumbered: LogCommit { LogCommit() }
}

extension ChatMessage {
    /// The same message with another id.
    public func numbered(_ id: Int64) -> ChatMessage {
        ChatMessage(
            id: id, time: time, from: from, account: account, target: target, kind: kind, text: text, tags: tags, recipientAccount: recipientAccount
        )
    }

    func shifted(by offset: Int64) -> ChatMessage { numbered(id + offset) }
}

extension Effect {
    /// The effect with every message id and id bound in it moved by `offset` (the batch's place in the log). A
    /// bound is also raised to `floor`: everything of the log below it was carried out before this effect (other
    /// nodes' messages included, which reached only those who were members then), so a replay asked for now
    /// must hold it.
    func shiftingIDs(by offset: Int64, floor: Int64) -> Effect {
        switch self {
        case .record(let message, let sender, let ref):
            .record(message.shifted(by: offset), sender: sender, ref: ref)
        case .deliver(let event, let recipients):
            .deliver(event.shiftingIDs(by: offset), to: recipients)
        case .replay(let peer, let room, let query, let below, let ref, let asked, let withTags):
            .replay(peer, room: room, query, below: max(below + offset, floor), ref: ref, asked: asked, withTags: withTags)
        case .lookUp(let peer, .conversation(let account, let nick, let query, let below, let withTags), let ref):
            .lookUp(peer, .conversation(account: account, with: nick, query, below: max(below + offset, floor), withTags: withTags), ref: ref)
        case .lookUp(let peer, .room(let room, let query, let below, let withTags), let ref):
            .lookUp(peer, .room(room, query, below: max(below + offset, floor), withTags: withTags), ref: ref)
        case .replicate(var entry):
            { entry.id += offset; return .replicate(entry) }()
        case .lookUp, .close, .persist:
            self
        }
    }
}

extension ChatEvent {
    /// The event with the ids of the batch's messages in it moved by `offset`. Ids a client sent (history bounds)
    /// and stored messages (history) are the log's already.
    func shiftingIDs(by offset: Int64) -> ChatEvent {
        switch self {
        case .message(let message): .message(message.shifted(by: offset))
        case .announcement(let message, let rooms): .announcement(message.shifted(by: offset), rooms: rooms)
        case .ack(let ref, let message): .ack(ref: ref, message: message.shifted(by: offset))
        case .topicChanged(let room, let text, let by, let at, let id): .topicChanged(room: room, text: text, by: by, at: at, id: id + offset)
        // No other event carries an id the hub gave out.
        default: self
        }
    }
}
