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
        /// A moderation change in `room`: `policy` is the room's policy after it, `notice` what its members are told.
        case room
        /// A kick from `room` of the session `session` of the node `targetNode`, by `notice.by`: carried out by that
        /// node, whose user's leaving then comes as a `parted`.
        case kick
        /// An invitation to `room` of the session `session` of the node `targetNode`, by `notice.by` (account in
        /// `reason`; `cause` "operator" when it lets them past the room's locks): told by that node.
        case invite
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
    /// A `room` change's policy after it, and (`room`, `kick`) what is told.
    public var policy: ReplicatedPolicy?
    public var notice: ReplicatedNotice?
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

/// A room's policy as it crosses between nodes (`RoomPolicy`, whose parts are not `Codable`).
public struct ReplicatedPolicy: Sendable, Equatable, Codable {
    struct Restricted: Sendable, Equatable, Codable {
        var kind: String
        var mask: String
        var setBy: String
        var reason: String?
        var since: Date
        var until: Date?
    }

    var name: String
    var topic: String
    var topicSetBy: String?
    var topicSetAt: Date?
    var topicLocked: Bool
    var modes: UInt8
    var limit: Int?
    var key: String?
    var operators: [String]
    var restrictions: [Restricted]

    public init(_ policy: RoomPolicy) {
        (name, topic, topicSetBy, topicSetAt, topicLocked) = (policy.name, policy.topic, policy.topicSetBy, policy.topicSetAt, policy.topicLocked)
        (modes, limit, key, operators) = (policy.modes.rawValue, policy.limit, policy.key, policy.operators.sorted())
        restrictions = policy.restrictions.map {
            Restricted(kind: $0.kind.rawValue, mask: $0.mask.text, setBy: $0.setBy, reason: $0.reason, since: $0.since, until: $0.until)
        }
    }

    public var policy: RoomPolicy {
        var policy = RoomPolicy(name: name)
        (policy.topic, policy.topicSetBy, policy.topicSetAt, policy.topicLocked) = (topic, topicSetBy, topicSetAt, topicLocked)
        (policy.modes, policy.limit, policy.key, policy.operators) = (RoomModes(rawValue: modes), limit, key, Set(operators))
        policy.restrictions = restrictions.compactMap { restricted in
            guard let kind = Restriction.Kind(rawValue: restricted.kind), let mask = try? Mask(validating: restricted.mask) else { return nil }
            return Restriction(kind: kind, mask: mask, setBy: restricted.setBy, reason: restricted.reason, since: restricted.since, until: restricted.until)
        }
        return policy
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

    init(kickBy by: Actor, reason: String?) {
        (action, target, self.by, self.reason, until) = ("kick", "", by.nick, reason, nil)
    }

    var actor: Actor { by.map(Actor.user) ?? .server }

    func notice(in room: String) -> ModerationNotice? {
        ModerationNotice.Action(rawValue: action).map { ModerationNotice(room: room, action: $0, target: target, by: actor, reason: reason, until: until) }
    }
}
