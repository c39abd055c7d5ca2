import Foundation

/// A change of who is online, or where, as a node tells the other nodes of its database through the log
/// (docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"). Each entry carries the session as it is after the
/// change (`profile`), so applying one never depends on having seen every earlier one: a node that starts late
/// begins from the database's present (`PresenceEntry.online` for each session), and an entry that finds the
/// session already so changes nothing.
///
/// Flat and `Codable`: a store keeps it as one JSON document beside its place in the log.
public struct PresenceEntry: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// The session came online (its rooms come as `joined` entries, or in `profile` from a snapshot).
        case online
        case joined
        case parted
        /// Nick, away message, account or mode +i changed: `profile` says to what.
        case updated
        case offline
        /// Every session of the node the entry is filed under is gone: its lease ran out (or it started again).
        case nodeGone
        /// The node's sessions are those of `sessions`, and no others: any other one the reader holds went while
        /// its going was not told (the node had lost the database). Followed by an `updated` for each.
        case roster
        /// A moderation change in `room`: `changes` what it changed of the room's policy, `notice` what its members
        /// are told.
        case room
        /// A kick from `room` of the session `session` of the node `targetNode`, by `notice.by`: carried out by that
        /// node, whose user's leaving then comes as a `parted`.
        case kick
        /// An invitation to `room` of the session `session` of the node `targetNode`, by `notice.by` (account in
        /// `reason`; `cause` "operator" when it lets them past the room's locks): told by that node.
        case invite
        /// A message that is not kept (a typing indicator): delivered by the other nodes to their users it is for.
        case relay
    }

    /// Its place in the log: provisional (the hub's) until committed, like a message's id.
    public var id: Int64
    /// The node that wrote it, as the store read it back (nil while it is this node's own).
    public var node: String?
    /// The session on its own node (`SessionID.raw` there).
    public var session: UInt64
    public var kind: Kind
    /// The room joined or parted.
    public var room: String?
    /// Why it parted or went offline: `LeaveReason.cause`, and the user's own words for a part or quit (nil: none),
    /// or the reason as it reads for anything else.
    public var cause: String?
    public var reason: String?
    /// The session after the change; nil for `offline`, `nodeGone` and `roster`.
    public var profile: PresenceProfile?
    /// A `roster`'s sessions.
    public var sessions: [UInt64]?
    /// What a `room` change changed of the room's policy, and (`room`, `kick`, `invite`) what is told.
    public var changes: [ReplicatedChange]?
    public var notice: ReplicatedNotice?
    /// A `relay`'s message (its id is the entry's).
    public var message: ReplicatedMessage?
    /// Whose session a `kick` removes, an `invite` invites, or a `room` change (a voice, an operator without an
    /// account) is about, with `session`.
    public var targetNode: String?

    public init(
        id: Int64, node: String? = nil, session: UInt64, kind: Kind, room: String? = nil, cause: String? = nil, reason: String? = nil,
        profile: PresenceProfile? = nil, sessions: [UInt64]? = nil
    ) {
        (self.node, self.sessions) = (node, sessions)
        (self.id, self.session, self.kind, self.room, self.cause, self.reason, self.profile) = (id, session, kind, room, cause, reason, profile)
    }

    /// The reason as the leaving is told here: a part as a part and a quit as a quit (IRC says PART for one room,
    /// QUIT once for all), a kick from a room as a part with the kick's words (who kicked is in them); anything
    /// else as a departure in the words it was given.
    var leaveReason: LeaveReason {
        switch cause {
        case "part": .parted(reason)
        case "quit": .quit(reason)
        case "kicked": .parted(reason)
        default: .received(cause: cause ?? "lost", text: reason ?? LeaveReason.connectionLost.text)
        }
    }
}

/// What other nodes know of a session: what `NAMES`, `WHO` and `WHOIS` show.
public struct PresenceProfile: Sendable, Equatable, Codable {
    public var nick: String
    /// The account's key, and its name as registered.
    public var account: String?
    public var accountName: String?
    public var username: String?
    public var realName: String?
    public var away: String?
    public var invisible: Bool
    /// In the order joined.
    public var rooms: [String]

    public init(
        nick: String, account: String? = nil, accountName: String? = nil, username: String? = nil, realName: String? = nil, away: String? = nil,
        invisible: Bool = false, rooms: [String] = []
    ) {
        (self.nick, self.account, self.accountName, self.username, self.realName) = (nick, account, accountName, username, realName)
        (self.away, self.invisible, self.rooms) = (away, invisible, rooms)
    }
}

/// A change to a room's policy as it crosses between nodes (`RoomChange`, whose parts are not `Codable`); the
/// room is the entry's. A topic travels as a message of the log instead.
public struct ReplicatedChange: Sendable, Equatable, Codable {
    var kind: String
    var flag: Bool?
    var word: String?
    var number: Int?
    var restriction: String?
    var mask: String?
    var setBy: String?
    var reason: String?
    var since: Date?
    var until: Date?

    init(kind: String) { self.kind = kind }

    public init?(_ change: RoomChange) {
        switch change {
        case .topic: return nil
        case .topicLock(_, let locked): self.init(kind: "topic_lock"); flag = locked
        case .key(_, let key): self.init(kind: "key"); word = key
        case .modes(_, let modes): self.init(kind: "modes"); number = Int(modes.rawValue)
        case .limit(_, let limit): self.init(kind: "limit"); number = limit
        case .addOperator(_, let account): self.init(kind: "add_operator"); word = account
        case .removeOperator(_, let account): self.init(kind: "remove_operator"); word = account
        case .restrict(_, let restriction):
            self.init(kind: "restrict")
            (self.restriction, mask, setBy, reason, since, until) = (
                restriction.kind.rawValue, restriction.mask.text, restriction.setBy, restriction.reason, restriction.since, restriction.until
            )
        case .lift(_, let kind, let mask): self.init(kind: "lift"); (restriction, self.mask) = (kind.rawValue, mask.text)
        case .forget: self.init(kind: "forget")
        }
    }

    /// The change, in `room`; nil for one this version does not know.
    public func change(in room: String) -> RoomChange? {
        switch kind {
        case "topic_lock": return flag.map { .topicLock(room: room, $0) }
        case "key": return .key(room: room, word)
        case "modes": return number.flatMap { UInt8(exactly: $0) }.map { .modes(room: room, RoomModes(rawValue: $0)) }
        case "limit": return .limit(room: room, number)
        case "add_operator": return word.map { .addOperator(room: room, account: $0) }
        case "remove_operator": return word.map { .removeOperator(room: room, account: $0) }
        case "restrict":
            guard let kind = restriction.flatMap(Restriction.Kind.init), let mask = mask.flatMap({ try? Mask(validating: $0) }), let since else { return nil }
            return .restrict(room: room, Restriction(kind: kind, mask: mask, setBy: setBy ?? "", reason: reason, since: since, until: until))
        case "lift":
            guard let kind = restriction.flatMap(Restriction.Kind.init), let mask = mask.flatMap({ try? Mask(validating: $0) }) else { return nil }
            return .lift(room: room, kind, mask: mask)
        case "forget": return .forget(room: room)
        default: return nil
        }
    }
}

/// A moderation notice as it crosses between nodes (`ModerationNotice`); `by` is a nick, nil for the console.
public struct ReplicatedNotice: Sendable, Equatable, Codable {
    var action: String
    var target: String
    var by: String?
    var reason: String?
    var until: Date?

    init(_ notice: ModerationNotice) {
        (action, target, by, reason, until) = (notice.action.rawValue, notice.target, notice.by?.nick, notice.reason, notice.until)
    }

    /// Who did what to a single user (`kick`, `invite`): told by that user's node in its own words.
    init(_ action: String, by: Actor, reason: String?) {
        (self.action, target, self.by, self.reason, until) = (action, "", by.nick, reason, nil)
    }

    var actor: Actor { by.map(Actor.user) ?? .server }

    func notice(in room: String) -> ModerationNotice? {
        ModerationNotice.Action(rawValue: action).map { ModerationNotice(room: room, action: $0, target: target, by: actor, reason: reason, until: until) }
    }
}

/// A message as it crosses between nodes without being kept (`ChatMessage`, whose target is not `Codable`).
public struct ReplicatedMessage: Sendable, Equatable, Codable {
    var time: Date
    var from: String?
    var account: String?
    var room: String?
    var user: String?
    var kind: String
    var text: String
    var tags: [String: String]

    init(_ message: ChatMessage) {
        (time, from, account, kind, text, tags) = (message.time, message.from, message.account, message.kind.rawValue, message.text, message.tags)
        switch message.target {
        case .room(let name): room = name
        case .user(let nick): user = nick
        case .everyone: break
        }
    }

    func message(id: Int64) -> ChatMessage? {
        guard let kind = ChatMessage.Kind(rawValue: kind) else { return nil }
        let target: ChatMessage.Target = if let room { .room(room) } else if let user { .user(user) } else { .everyone }
        return ChatMessage(id: id, time: time, from: from, account: account, target: target, kind: kind, text: text, tags: tags)
    }
}
