/// What other nodes of a shared database said, told to the users of this one (docs/ARCHITECTURE.md, "Several
/// nodes on one PostgreSQL").
extension ChatState {
    /// The deliveries of messages another node committed to the log: a room's message to the room's members
    /// here, a notice to everyone to everyone here. The sender is elsewhere, so nobody here is left out. Not
    /// yet, until nodes share who is online: a private message (its sender and recipient are on the other node:
    /// nicks are not unique across nodes yet, so one here of the same name is someone else), and a topic change
    /// live (it is in the history; the room's topic itself is not replicated).
    public mutating func deliveries(ofOthers messages: [ChatMessage]) -> [Effect<Peer>] {
        var effects: [Effect<Peer>] = []
        for message in messages where message.kind != .topic {
            switch message.target {
            case .room(let raw):
                guard let name = try? RoomName(validating: raw), rooms[name.key] != nil else { continue }
                effects.append(.deliver(.message(message), to: recipients(in: name)))
            case .user:
                continue
            case .everyone:
                var audiences: [[String]: [Recipient<Peer>]] = [:]
                for session in sessions.values {
                    audiences[session.rooms.map(\.display), default: []].append(Recipient(peer: session.peer, focused: true))
                }
                effects += audiences.map { .deliver(.announcement(message, rooms: $0.key), to: Recipients($0.value)) }
            }
        }
        return effects
    }
}
