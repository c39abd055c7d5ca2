import Foundation

/// Identifies one registered session for its whole life; never reused.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt64
    public var description: String { "s\(raw)" }
}

/// One recipient of an event. `focused` is true when the event belongs to the recipient's current room (or
/// to no room at all), so a text client can leave out the room name it already knows.
public struct Recipient<Peer: Sendable>: Sendable {
    public let peer: Peer
    public let focused: Bool
    /// The recipient was told the same departure for another room just before (someone who quit shared
    /// several rooms with it): IRC says `QUIT` once, text and JSON say it per room.
    public var repeated = false

    public init(peer: Peer, focused: Bool, repeated: Bool = false) {
        (self.peer, self.focused, self.repeated) = (peer, focused, repeated)
    }
}

/// What the state asks of the outside world after a change, in order.
public enum Effect<Peer: Sendable>: Sendable {
    /// Store this message; if that fails, tell `sender` (with `ref`) and deliver nothing of it.
    case record(ChatMessage, sender: Peer?, ref: String?)
    case deliver(ChatEvent, to: Recipients<Peer>)
    /// Send `peer` the stored messages of `room` that `query` selects, below id `below`, as one `history`
    /// event; `asked` when the client asked for it, rather than joined a room or resumed.
    case replay(Peer, room: String, HistoryQuery, below: Int64, ref: String?, asked: Bool = false, withTags: Bool = false)
    /// Send `peer` the result of a history read it asked for (a private conversation, CHATHISTORY TARGETS).
    case lookUp(Peer, HistoryLookup, ref: String?)
    /// End this client's connection once what is queued for it has been sent.
    case close(Peer, LeaveReason)
    /// Store these room changes (and the audit entry) before anything after it is delivered; if that fails,
    /// tell `actor`.
    case persist([RoomChange], audit: AuditEntry?, actor: Peer?)
    /// Tell the other nodes of a shared database (`ChatState.replicating`): written to the log with the batch's
    /// messages; a single server has none.
    case replicate(PresenceEntry)
}

/// The whole chat as a value: sessions, nicknames, rooms and membership. Every operation validates its input,
/// changes the state and returns the events to deliver, so the rules are tested without sockets or clocks.
/// `Peer` is whatever the server uses to reach a client; the state only hands it back inside effects. Sendable: a
/// copy goes to the publisher with each batch (`EffectBatch`); its one class is a copy-on-write box
/// (`Session.Details`).
public struct ChatState<Peer: Sendable>: Sendable {
    struct Session {
        let id: SessionID
        var nick: Nick
        /// Nil for a session of another node (`origin`): a member here, holding its nick, reached there.
        let peer: Peer?
        /// Rooms in the order joined; the last is the current room of a text-mode user.
        var rooms: [RoomName]
        /// What delivery does not need, in one copy-on-write box: a session is copied wherever it is read (the
        /// state is generic, so reads go through value witnesses), and each field here would cost a retain and a
        /// release there. (A room's audience, `Room.audience`, spares messages that copy altogether.)
        private var details = Details()
        var currentRoom: RoomName? { rooms.last }

        init(id: SessionID, nick: Nick, peer: Peer?, rooms: [RoomName]) {
            (self.id, self.nick, self.peer, self.rooms) = (id, nick, peer, rooms)
        }

        /// Unchecked, and safe as `Array`'s buffer is: a box is written only while nothing else holds it (`writable`
        /// copies it first whenever it is shared, `isKnownUniquelyReferenced`), so the copy of the state handed to the
        /// publisher (`EffectBatch`) and the hub's own only ever read a box they share.
        final class Details: @unchecked Sendable {
            var resume: [String: Int64] = [:]
            var account: String?
            var accountName: String?
            var address = ""
            var away: String?
            var identity = Identity()
            var invisible = false
            var invitations: [String] = []
            var origin: Origin?

            func copy() -> Details {
                let copy = Details()
                (copy.resume, copy.account, copy.accountName, copy.address) = (resume, account, accountName, address)
                (copy.away, copy.identity, copy.invisible, copy.invitations) = (away, identity, invisible, invitations)
                copy.origin = origin
                return copy
            }
        }

        /// The box, unshared before it is written.
        private var writable: Details {
            mutating get {
                if !isKnownUniquelyReferenced(&details) { details = details.copy() }
                return details
            }
        }

        /// The last message id the client saw per room key, from a resuming `hello`: joining such a room
        /// replays exactly what came after it.
        var resume: [String: Int64] {
            get { details.resume }
            set { writable.resume = newValue }
        }
        /// The account this session proved it owns (its key), if any.
        var account: String? {
            get { details.account }
            set { writable.account = newValue }
        }
        /// That account's name as registered (`Alice` for the key `alice`): what others are shown.
        var accountName: String? {
            get { details.accountName }
            set { writable.accountName = newValue }
        }
        var shownAccount: String? { details.accountName ?? details.account }
        /// IRC's username and real name, or the nick for users of other doors.
        var username: String { details.identity.username ?? nick.display }
        var realName: String { details.identity.realName ?? nick.display }
        /// Where the client connects from, for bans by address.
        var address: String {
            get { details.address }
            set { writable.address = newValue }
        }
        /// Why the user is away, while they are.
        var away: String? {
            get { details.away }
            set { writable.away = newValue }
        }
        /// IRC's USER username and real name (others leave them unset; they are shown as the nick).
        var identity: Identity {
            get { details.identity }
            set { writable.identity = newValue }
        }
        /// User mode +i: WHO with a mask does not list them to those who share no room with them.
        var invisible: Bool {
            get { details.invisible }
            set { writable.invisible = newValue }
        }
        /// Where a session of another node lives: that node, and the session's number there.
        var origin: Origin? {
            get { details.origin }
            set { writable.origin = newValue }
        }
        /// Those to tell when only the session itself is told: nobody for a session of another node.
        var me: Recipients<Peer> { peer.map { [Recipient(peer: $0, focused: true)] } ?? [] }
        /// Keys of the invite-only rooms an operator invited this user to, until they join (at most
        /// `maximumInvitations`: the oldest go).
        var invitations: [String] {
            get { details.invitations }
            set { writable.invitations = newValue }
        }
    }

    public static var maximumInvitations: Int { 20 }
    public static var maximumRoomLimit: Int { 100_000 }
    /// The most users one WHO by mask lists.
    public static var maximumLookup: Int { 200 }

    /// Users who left the server lately, oldest first, at most `maximumRemembered` (IRC's WHOWAS).
    var gone: [Profile] = []
    public static var maximumRemembered: Int { 100 }

    /// A room while it has members. What outlives them (topic, operators, bans) is its `RoomPolicy`.
    struct Room {
        let name: RoomName
        var members: [SessionID] = []
        /// Members made operators for as long as they stay (the creator, and users /op'd without an account).
        var operators: Set<SessionID> = []
        /// Members who may speak while the room is moderated (IRC's +v), for as long as they stay.
        var voiced: Set<SessionID> = []
        /// When the room last came to life (IRC's 329).
        var created = Date()
        /// Everyone in the room as its messages are delivered, in `members`' order: built on first use after a
        /// member came or went or changed their current room, then shared by every message until the next such
        /// change. Building it per message copied each member's whole session (a dozen retains and releases per
        /// recipient, the server's largest cost at its fan-out ceiling).
        var audience: [Recipient<Peer>]?
        /// Whose each entry of `audience` is, when some members are other nodes' (who are not in it); nil when it
        /// is `members` itself.
        var audienceIDs: [SessionID]?
    }

    public static var maximumTopicLength: Int { 300 }
    public static var maximumKeyLength: Int { 23 }
    /// Part, quit, kick, ban and mute reasons: they are stored and shown to whole rooms.
    public static var maximumReasonLength: Int { 200 }
    /// Rooms that keep a policy (an owner, bans, a lock) while nobody is in them: bounded, since anyone can
    /// register and create rooms. Past it, creators operate their new rooms only while they stay.
    public static var maximumKeptRooms: Int { 10_000 }
    /// Rooms one user may be in at once (as IRC servers limit channels per client).
    public static var maximumRoomsPerUser: Int { 50 }

    public let serverName: String
    /// How many messages are replayed on join (0: none).
    public let historyOnJoin: Int
    public internal(set) var nextMessageID: Int64
    private var nextSessionID: UInt64 = 1
    /// On a node of a shared database: changes of presence become `replicate` effects (`PresenceEntry`), and
    /// other nodes' sessions are kept here (`remote`).
    public var replicating = false
    /// This node's name (`--node-name`): what another node's `kick` of one of its users names.
    public var nodeName: String?
    /// Other nodes' sessions: by node, by their number there.
    var remote: [String: [UInt64: SessionID]] = [:]
    var sessions: [SessionID: Session] = [:]
    var nicks: [String: SessionID] = [:]
    var rooms: [String: Room] = [:]
    /// By room key: what rooms keep beyond their members, live or empty.
    var policies: [String: RoomPolicy] = [:]
    /// Keys of registered nicks: only their owners may use them.
    var registered: Set<String> = []
    /// Keys of the accounts that are server operators: operators of every room.
    var serverOperators: Set<String> = []
    /// Per account key, per room key: the newest message id its user is known to have received in that room
    /// when they last left it. Joining again replays only what came after (in memory only).
    var seen: [String: [String: Int64]] = [:]
    /// Rooms remembered per account in `seen`; past it, the oldest mark goes.
    public static var maximumSeenRooms: Int { 100 }
    /// New rooms created lately, per address: when the count started and how many since.
    var roomsCreated: [String: (since: Date, count: Int)] = [:]
    /// What one user, address or account may claim of the room space.
    public struct RoomLimits: Sendable {
        /// Rooms one account may own; past it, a room it creates is operated by its creator only while they stay.
        public var ownedPerAccount = 20
        /// New rooms one address may create a minute (rooms are cheap to make, and an owned one is kept for good).
        public var createdPerMinute = 20

        public init() {}
    }

    public let roomLimits: RoomLimits
    /// Nicks kept for the server and its services, so nobody can pose as one (an IRC client set up to identify
    /// itself would send its password to whoever held NickServ).
    public static var reservedNicks: Set<String> {
        ["nickserv", "chanserv", "memoserv", "operserv", "botserv", "hostserv", "helpserv", "histserv", "saslserv", "global", "parley"]
    }

    /// The most a resuming client is sent per room; past it, it can page with `history`.
    public static var maximumResume: Int { 1000 }

    public init(serverName: String, firstMessageID: Int64 = 1, historyOnJoin: Int = 50, roomLimits: RoomLimits = .init()) {
        self.serverName = serverName
        self.roomLimits = roomLimits
        self.historyOnJoin = max(0, historyOnJoin)
        self.nextMessageID = firstMessageID
        rooms[RoomName.general.key] = Room(name: .general)
        policies[RoomName.general.key] = RoomPolicy(name: RoomName.general.display)
    }

    public var sessionCount: Int { sessions.count }

    /// A new session's number: never given twice.
    mutating func takeSessionNumber() -> UInt64 {
        defer { nextSessionID += 1 }
        return nextSessionID
    }
    /// The most sessions at once since `resetPeak` (the memory trimmer's measure of a crowd come and gone).
    public private(set) var peakSessionCount = 0

    public mutating func resetPeak() { peakSessionCount = sessions.count }
    /// The most users online at once since the server started (LUSERS), never reset.
    public internal(set) var mostOnline = 0
    /// The message of the day, given to everyone right after the welcome (empty: none).
    public var motd: [String] = []
    public var roomCount: Int { rooms.count }

    // MARK: - Registration

    /// Admits a new user under `nick`, welcomes them and puts them in #general. `resume` maps room names to
    /// the last message id the client saw there (a reconnecting client), so it is sent exactly what it missed.
    /// `account` is the name of an account the caller has verified the password of (its key is the name
    /// lower-cased); `address` is where the
    /// client connects from (for bans by address). Without `joiningGeneral` the user starts in no room (IRC
    /// clients join the channels they are configured for).
    public mutating func register(
        nick raw: String, peer: Peer, resume: [String: Int64] = [:], account: String? = nil, address: String = "",
        joiningGeneral: Bool = true, identity: Identity = Identity(), now: Date = Date()
    ) throws(ChatError) -> (SessionID, [Effect<Peer>]) {
        let nick = try Nick(validating: raw)
        try checkNotReserved(nick)
        var effects: [Effect<Peer>] = []
        let accountName = account
        let account = account.map { $0.lowercased() }
        if account == nick.key { effects += moveAside(holderOf: nick.key, for: nick.display) }
        guard nicks[nick.key] == nil || ownerMayTake(nick.key, account: account) else {
            throw nickTaken(nick)
        }
        try checkOwnership(of: nick, account: account)
        let id = SessionID(raw: takeSessionNumber())
        var session = Session(id: id, nick: nick, peer: peer, rooms: [])
        session.account = account
        session.accountName = accountName
        session.address = address
        session.identity = identity
        for (room, last) in resume {
            if let name = try? RoomName(validating: room) { session.resume[name.key] = last }
        }
        sessions[id] = session
        nicks[nick.key] = id
        replicate(.online, session: id, into: &effects)
        peakSessionCount = max(peakSessionCount, sessions.count)
        mostOnline = max(mostOnline, sessions.count)
        let welcome = ChatEvent.welcome(
            nick: nick.display, server: serverName, online: sessions.count, rooms: max(1, rooms.count), mostOnline: mostOnline
        )
        effects.append(.deliver(welcome, to: [.init(peer: peer, focused: true)]))
        effects.append(.deliver(.motd(lines: motd), to: [.init(peer: peer, focused: true)]))
        if joiningGeneral {
            if let ban = activeRestriction(.ban, in: RoomName.general.key, on: id, now: now) {
                effects.append(.deliver(.error(bannedError(RoomName.general.display, ban, now: now), ref: nil), to: [.init(peer: peer, focused: true)]))
            } else {
                join(.general, session: id, now: now, into: &effects)
            }
        }
        return (id, effects)
    }

    /// Removes a session that went away without /quit (lost connection, slow consumer, shutdown). With
    /// `closing`, its connection is closed after everything already queued for it (its input ended, but the
    /// replies to what it sent are still on their way).
    public mutating func disconnect(_ id: SessionID, reason: LeaveReason, closing: Bool = false) -> [Effect<Peer>] {
        guard let peer = sessions[id]?.peer else { return [] }
        var effects: [Effect<Peer>] = []
        remove(id, reason: reason, tellingSelf: false, into: &effects)
        if closing { effects.append(.close(peer, reason)) }
        return effects
    }

    // MARK: - Requests

    /// Carries out one request of a registered user. Refusals come back as an `error` event to the sender,
    /// carrying `ref` so a JSON client can match it to its request.
    public mutating func handle(_ request: Request, ref: String?, from id: SessionID, now: Date) -> [Effect<Peer>] {
        guard let session = sessions[id], let peer = session.peer else { return [] }
        var effects: [Effect<Peer>] = []
        do throws(ChatError) {
            try perform(request, ref: ref, session: session, peer: peer, now: now, into: &effects)
        } catch {
            effects.append(.deliver(.error(error, ref: ref), to: [.init(peer: peer, focused: true)]))
        }
        return effects
    }

    private mutating func perform(
        _ request: Request, ref: String?, session: Session, peer: Peer, now: Date, into effects: inout [Effect<Peer>]
    ) throws(ChatError) {
        let me: Recipients<Peer> = [Recipient(peer: peer, focused: true)]
        switch request {
        case .say(let room, let text, let kind, let tags):
            let text = kind == .tags ? "" : Sanitizer.text(text)
            guard kind == .tags ? !tags.isEmpty : !Sanitizer.isBlank(text) else { return }
            let room = try speakingRoom(room, of: session, now: now)
            let message = newMessage(from: session, to: .room(room.display), kind: kind, text: text, tags: tags, now: now)
            if message.isKept { effects.append(.record(message, sender: peer, ref: ref)) } else { relay(message, to: room, into: &effects) }
            effects.append(.deliver(.message(message), to: recipients(in: room, except: session.id)))
            effects.append(.deliver(.ack(ref: ref, message: message), to: me))

        case .whisper(let target, let text, let kind, let tags):
            let text = kind == .tags ? "" : Sanitizer.text(text)
            guard kind == .tags ? !tags.isEmpty : !Sanitizer.isBlank(text) else { return }
            let other = try self.session(named: target)
            let message = newMessage(
                from: session, to: .user(other.nick.display), kind: kind, text: text, tags: tags, recipientAccount: other.account, now: now
            )
            // To a user of another node, through the log: a kept message as a message, one that is not (a typing
            // indicator) as news.
            if message.isKept {
                effects.append(.record(message, sender: peer, ref: ref))
            } else if other.peer == nil {
                relay(message, into: &effects)
            }
            effects.append(.deliver(.message(message), to: other.me))
            effects.append(.deliver(.ack(ref: ref, message: message), to: me))
            if let away = other.away, kind != .notice, kind != .tags {
                effects.append(.deliver(.isAway(nick: other.nick.display, message: away), to: me))
            }

        case .join(let raw, let key):
            let room = try RoomName(validating: raw)
            if session.rooms.contains(room) {
                // Joining a room one is in makes it current again, which is what a text user means by it.
                sessions[session.id]!.rooms.removeAll { $0 == room }
                sessions[session.id]!.rooms.append(rooms[room.key]!.name)
                forgetAudiences(of: session.id)
                effects.append(.deliver(.currentRoom(rooms[room.key]!.name.display), to: me))
            } else {
                guard session.rooms.count < Self.maximumRoomsPerUser else {
                    throw ChatError(.tooManyRooms, "You are in \(Self.maximumRoomsPerUser) rooms already; /part one first.")
                }
                if let ban = activeRestriction(.ban, in: room.key, on: session.id, now: now) {
                    throw bannedError(rooms[room.key]?.name.display ?? room.display, ban, now: now)
                }
                let invited = session.invitations.contains(room.key)
                if policies[room.key]?.modes.contains(.inviteOnly) == true, !invited, !isRoomOperator(session.id, in: room.key) {
                    let shown = rooms[room.key]?.name.display ?? room.display
                    throw ChatError(.inviteOnly, "\(shown) is invite only: ask one of its operators to /invite you.")
                }
                if let needed = policies[room.key]?.key, key != needed, !invited, !isRoomOperator(session.id, in: room.key) {
                    let shown = rooms[room.key]?.name.display ?? room.display
                    throw ChatError(.wrongKey, "\(shown) needs a key: /join \(shown) KEY")
                }
                if let limit = policies[room.key]?.limit, let members = rooms[room.key]?.members.count, members >= limit, !invited,
                    !isRoomOperator(session.id, in: room.key)
                {
                    let shown = rooms[room.key]?.name.display ?? room.display
                    throw ChatError(.roomFull, "\(shown) is full (\(limit) members); an operator may /invite you.")
                }
                sessions[session.id]!.invitations.removeAll { $0 == room.key }
                // New: neither live nor kept (an owned room that empties and comes back is not created again).
                if rooms[room.key] == nil && policies[room.key] == nil { try countRoomCreation(by: session, now: now) }
                join(room, session: session.id, now: now, into: &effects)
            }

        case .part(let raw, let reason):
            let room = try memberRoom(raw, of: session)
            leave(room, session: session.id, reason: .parted(cleanReason(reason)), into: &effects)

        case .nick(let raw):
            let nick = try Nick(validating: raw)
            try checkNotReserved(nick)
            if let owner = nicks[nick.key], owner != session.id {
                throw nickTaken(nick)
            }
            try checkOwnership(of: nick, account: session.account)
            guard nick.display != session.nick.display else { return }
            try checkRestrictions(renaming: session, to: nick, now: now)
            rename(session.id, to: nick, into: &effects)

        case .who(let raw):
            if let raw {
                let room = try existingRoom(raw)
                // A secret room is no room to those outside it.
                guard !isSecret(room.name.key) || session.rooms.contains(room.name) else { throw noSuchRoom(room.name.display) }
                effects.append(.deliver(members(of: room, ref: ref), to: me))
            } else {
                effects.append(.deliver(.members(room: nil, nicks: sortedNames(sessions.values.map(\.nick)), ref: ref), to: me))
            }

        case .rooms(let terms):
            let filter = RoomFilter(terms)
            effects.append(.deliver(.rooms(roomSummaries(visibleTo: session).filter(filter.admits)), to: me))

        case .topic(let raw, let text):
            let name = if let raw { try RoomName(validating: raw) } else { try currentRoom(of: session) }
            guard let room = rooms[name.key], let policy = policies[name.key] else { throw noSuchRoom(name.display) }
            // A secret room is no room to those outside it.
            guard !isSecret(name.key) || session.rooms.contains(name) else { throw noSuchRoom(name.display) }
            guard let text else {
                effects.append(.deliver(.topic(room: room.name.display, text: policy.topic, setBy: policy.topicSetBy, setAt: policy.topicSetAt), to: me))
                return
            }
            guard session.rooms.contains(name) else { throw notInRoom(room.name.display) }
            // A topic reaches everyone in the room: for the muted it would be a way around the mute.
            if let mute = activeRestriction(.mute, in: name.key, on: session.id, now: now) { throw mutedError(room.name.display, mute, now: now) }
            guard !policy.topicLocked || isRoomOperator(session.id, in: name.key) else {
                throw ChatError(.notOperator, "The topic of \(room.name) is locked: only its operators can change it.")
            }
            setTopic(text, of: room.name, by: .user(session.nick.display), actor: peer, now: now, into: &effects)

        case .ping:
            effects.append(.deliver(.pong(ref: ref), to: me))

        case .quit(let reason):
            let reason = LeaveReason.quit(cleanReason(reason))
            remove(session.id, reason: reason, tellingSelf: true, into: &effects)
            effects.append(.close(peer, reason))

        case .help:
            effects.append(.deliver(.help(TextCommands.table.map(\.help)), to: me))

        case .away(let raw):
            // An away message is shown to others like a reason, and cleaned and capped like one.
            let message = cleanReason(raw)
            sessions[session.id]!.away = message
            effects.append(.deliver(.awayChanged(nick: session.nick.display, message: message), to: audience(of: session)))
            replicate(.updated, session: session.id, into: &effects)

        case .history(let raw?, let query, let withTags) where !raw.hasPrefix("#"):
            // A private conversation, as the asker's account kept it: without an account nothing was kept.
            let nick = try Nick(validating: raw).display
            guard let account = session.account else {
                effects.append(.deliver(.history(room: nick, messages: [], ref: ref), to: me))
                return
            }
            let lookup = HistoryLookup.conversation(account: account, with: nick, query, below: nextMessageID, withTags: withTags)
            effects.append(.lookUp(peer, lookup, ref: ref))

        case .historyTargets(let after, let before, let count, let newest):
            let rooms = session.rooms.map(\.display)
            let lookup = HistoryLookup.targets(rooms: rooms, account: session.account, after: after, before: before, count: count, newest: newest)
            effects.append(.lookUp(peer, lookup, ref: ref))

        case .history(let raw, let query, let withTags):
            let room = try memberRoom(raw, of: session)
            effects.append(.replay(peer, room: room.display, query, below: nextMessageID, ref: ref, asked: true, withTags: withTags))

        case .moderate(let raw, let action):
            let room = try memberRoom(raw, of: session)
            var reply = try moderate(action, in: room, by: .session(session.id), now: now, into: &effects)
            // The list goes back with the request's ref (IRC tells bans from exceptions by it).
            if case .restrictions(let room, let list, _)? = reply { reply = .restrictions(room: room, list, ref: ref) }
            if let reply { effects.append(.deliver(reply, to: me)) }

        case .partAll(let reason):
            for room in session.rooms.reversed() { leave(room, session: session.id, reason: .parted(cleanReason(reason)), into: &effects) }

        case .whois(let raw):
            let found = (try? self.session(named: raw)).map { profile(of: $0, seenBy: session) }
            effects.append(.deliver(.whois(query: raw, found), to: me))

        case .modes(let raw):
            let room = try existingRoom(raw)
            guard !isSecret(room.name.key) || session.rooms.contains(room.name) else { throw noSuchRoom(room.name.display) }
            let policy = policies[room.name.key] ?? RoomPolicy(name: room.name.display)
            let modes = policy.modes.union(policy.topicLocked ? .topicLocked : [])
            // The key is for those in the room: others must be told it.
            let key = session.rooms.contains(room.name) ? policy.key : policy.key.map { _ in "*" }
            effects.append(.deliver(.modes(room: room.name.display, modes, key: key, limit: policy.limit, created: room.created), to: me))

        case .whowas(let mask, let count):
            let pattern = Array(asciiLowercased(mask).utf8)
            var found = gone.reversed().filter { Self.glob(pattern, matches: Array(asciiLowercased($0.nick).utf8)) }
            if let count, count > 0 { found = Array(found.prefix(count)) }
            effects.append(.deliver(.whowas(query: mask, found), to: me))

        case .lookup(let mask):
            effects.append(.deliver(.whoList(query: mask, lookup(mask, by: session), ref: ref), to: me))

        case .invite(let nick, let raw):
            let room = try memberRoom(raw, of: session)
            let other = try self.session(named: nick)
            guard !other.rooms.contains(room) else {
                throw ChatError(.alreadyInRoom, "\(other.nick) is in \(room) already.")
            }
            if policies[room.key]?.modes.contains(.inviteOnly) == true, !isRoomOperator(session.id, in: room.key) {
                throw ChatError(.notOperator, "\(room) is invite only: only its operators invite.")
            }
            // An operator's invitation lets them past the room's mode i, key and limit, once.
            if isRoomOperator(session.id, in: room.key) {
                var invitations = other.invitations.filter { $0 != room.key } + [room.key]
                if invitations.count > Self.maximumInvitations { invitations.removeFirst() }
                sessions[other.id]!.invitations = invitations
            }
            effects.append(.deliver(.invited(room: room.display, nick: other.nick.display, by: session.nick.display, account: session.shownAccount), to: other.me))
            // Another node's user is told by their node, which also keeps the invitation.
            if other.peer == nil {
                replicate(invitationOf: other, to: room, by: session, operator: isRoomOperator(session.id, in: room.key), into: &effects)
            }
            effects.append(.deliver(.inviting(room: room.display, nick: other.nick.display), to: me))

        case .invisible(let on):
            guard session.invisible != on else { return }
            sessions[session.id]!.invisible = on
            replicate(.updated, session: session.id, into: &effects)
            effects.append(.deliver(.invisible(on), to: me))

        case .register, .login, .changePassword:
            throw ChatError(.badRequest, "Account requests are handled by the connection.")
        }
    }

    // MARK: - Accounts

    /// Replaces what the state knows of accounts (at start, and when another process changed them).
    public mutating func setAccounts(_ accounts: [Account]) {
        // Accounts in use stay registered: a snapshot read just before a /register committed must not undo it.
        registered = Set(accounts.map(\.key)).union(sessions.values.compactMap(\.account))
        seen = seen.filter { registered.contains($0.key) }
        serverOperators = Set(accounts.filter(\.isOperator).map(\.key))
    }

    public func isRegistered(_ nick: String) -> Bool { registered.contains(nick.lowercased()) }
    public func isOperator(_ id: SessionID) -> Bool { sessions[id]?.account.map(serverOperators.contains) ?? false }
    public func account(of id: SessionID) -> String? { sessions[id]?.account }
    public func accountName(of id: SessionID) -> String? { sessions[id]?.shownAccount }
    public func nick(of id: SessionID) -> String? { sessions[id]?.nick.display }
    public func peer(of id: SessionID) -> Peer? { sessions[id]?.peer }
    /// The rooms the session is in, in the order joined.
    public func rooms(of id: SessionID) -> [String] { sessions[id]?.rooms.map(\.display) ?? [] }

    /// The session has proved it owns `account` (by /register or /login): it is marked so, and renamed to
    /// the account's nick when it goes by another.
    ///
    /// Never fails once it has changed anything: a forced rename is not a user's /nick, so neither mutes nor
    /// bans stop it; bans that name the account take effect at once (a guest who logs in inside a room that
    /// bans the account is removed from it).
    ///
    /// `takingNick` false (IRC, where a client logs in under whatever nick it has, and learns it from 900): the
    /// nick stays, and nothing is said.
    public mutating func authenticate(_ id: SessionID, as account: Account, takingNick: Bool = true, now: Date = Date()) -> [Effect<Peer>] {
        guard var session = sessions[id] else { return [] }
        let me = session.me
        registered.insert(account.key)
        if account.isOperator { serverOperators.insert(account.key) }
        session.account = account.key
        session.accountName = account.name
        sessions[id] = session
        var effects = takingNick ? moveAside(holderOf: account.key, for: account.name, except: id) : []
        replicate(.updated, session: id, into: &effects)
        if takingNick, session.nick.key != account.key, let nick = try? Nick(validating: account.name), !Self.reservedNicks.contains(nick.key) {
            if nicks[nick.key] == nil || ownerMayTake(nick.key, account: account.key) {
                rename(id, to: nick, into: &effects)
            } else {
                // Only another connection logged in to the same account can hold it now.
                effects.append(.deliver(.notice("\(account.name) is in use by your other connection; you keep the nickname \(session.nick)."), to: me))
            }
        }
        for room in sessions[id]?.rooms ?? [] where activeRestriction(.ban, in: room.key, on: id, now: now) != nil {
            leave(room, session: id, reason: .kicked(by: .server, reason: "banned"), into: &effects)
        }
        if takingNick { effects.append(.deliver(.notice("You are logged in as \(account.name)."), to: me)) }
        return effects
    }

    /// Gives the session a new nick (already checked to be free) and tells everyone who shares a room with it.
    mutating func rename(_ id: SessionID, to nick: Nick, into effects: inout [Effect<Peer>]) {
        guard let session = sessions[id] else { return }
        // Only its own claim: after a race between nodes, another session may hold the old nick (`apply`).
        if nicks[session.nick.key] == id { nicks[session.nick.key] = nil }
        nicks[nick.key] = id
        sessions[id]!.nick = nick
        effects.append(.deliver(.nickChanged(from: session.nick.display, to: nick.display), to: audience(of: session)))
        replicate(.updated, session: id, into: &effects)
    }

    /// The session and everyone who shares a room with it, each once: who hears of its nick or away changes.
    func audience(of session: Session) -> Recipients<Peer> {
        let ids = session.rooms.reduce(into: Set([session.id])) { $0.formUnion(rooms[$1.key]!.members) }
        return Recipients(ids.compactMap { id in sessions[id]!.peer.map { Recipient(peer: $0, focused: true) } })
    }

    /// Someone not logged in may hold a nick that has since been registered: when its owner logs in, they
    /// are renamed to a guest nick and told why.
    private mutating func moveAside(holderOf key: String, for name: String, except owner: SessionID? = nil) -> [Effect<Peer>] {
        // A holder on another node is moved aside there, not here: the nick stays taken meanwhile.
        guard let holder = nicks[key], holder != owner, sessions[holder]?.account != key, sessions[holder]?.peer != nil else { return [] }
        var effects: [Effect<Peer>] = []
        if let guest = try? Nick(validating: guestNick(for: holder)) { rename(holder, to: guest, into: &effects) }
        if let peer = sessions[holder]?.peer {
            let notice = ChatEvent.notice("\(name) is a registered nickname and its owner logged in; you were renamed.")
            effects.append(.deliver(notice, to: [.init(peer: peer, focused: true)]))
        }
        return effects
    }

    func guestNick(for id: SessionID) -> String {
        var number = id.raw % 100_000
        while nicks["guest\(number)"] != nil { number += 1 }
        return "Guest\(number)"
    }

    private func checkOwnership(of nick: Nick, account: String?) throws(ChatError) {
        guard registered.contains(nick.key), account != nick.key else { return }
        throw ChatError(
            .nickRegistered,
            "The nickname \(nick) is registered. Log in with /login \(nick) PASSWORD, or choose another nickname."
        )
    }

    // MARK: - Operator actions (the server console)

    /// A server notice to everyone online, stored once and told to each user with the rooms they are in: one
    /// delivery per distinct set of rooms, so those who share rooms share its encoding. Short (IRC shows it once
    /// in each of a user's channels).
    public mutating func announce(_ text: String, now: Date) -> [Effect<Peer>] {
        let text = String(Sanitizer.trimmed(Sanitizer.text(text)).prefix(Self.maximumAnnouncementLength))
        guard !Sanitizer.isBlank(text) else { return [] }
        let message = newMessage(from: nil, to: .everyone, kind: .notice, text: text, now: now)
        var audiences: [[String]: [Recipient<Peer>]] = [:]
        for session in sessions.values {
            guard let peer = session.peer else { continue }
            audiences[session.rooms.map(\.display), default: []].append(Recipient(peer: peer, focused: true))
        }
        return [.record(message, sender: nil, ref: nil)] + audiences.map { .deliver(.announcement(message, rooms: $0.key), to: Recipients($0.value)) }
    }

    /// The longest announcement to everyone, in characters.
    public static var maximumAnnouncementLength: Int { 400 }

    /// A server notice to one room.
    public mutating func announce(_ text: String, in raw: String, now: Date) throws(ChatError) -> [Effect<Peer>] {
        let room = try existingRoom(raw)
        let text = Sanitizer.text(text)
        guard !Sanitizer.isBlank(text) else { return [] }
        let message = newMessage(from: nil, to: .room(room.name.display), kind: .notice, text: text, now: now)
        return [.record(message, sender: nil, ref: nil), .deliver(.message(message), to: recipients(in: room.name))]
    }

    /// Shows (`text` nil) or sets a room's topic from the console, which no lock or mute holds. Returns what only
    /// the console should see.
    public mutating func topic(_ text: String?, in raw: String, now: Date) throws(ChatError) -> (reply: ChatEvent?, effects: [Effect<Peer>]) {
        let name = try RoomName(validating: raw)
        guard let policy = policies[name.key] else { throw noSuchRoom(name.display) }
        let room = rooms[name.key]?.name ?? (try? RoomName(validating: policy.name)) ?? name
        guard let text else {
            return (.topic(room: room.display, text: policy.topic, setBy: policy.topicSetBy, setAt: policy.topicSetAt), [])
        }
        var effects: [Effect<Peer>] = []
        setTopic(text, of: room, by: .server, actor: nil, now: now, into: &effects)
        return (nil, effects)
    }

    /// Sets a room's topic (already allowed), stores it and tells the room.
    private mutating func setTopic(_ text: String, of room: RoomName, by actor: Actor, actor peer: Peer?, now: Date, into effects: inout [Effect<Peer>]) {
        var policy = policies[room.key] ?? RoomPolicy(name: room.display)
        policy.topic = String(Sanitizer.trimmed(Sanitizer.text(text)).prefix(Self.maximumTopicLength))
        policy.topicSetBy = actor.description
        policy.topicSetAt = Self.wholeMilliseconds(now)
        policies[room.key] = policy
        effects.append(.persist([.topic(room: room.display, text: policy.topic, setBy: policy.topicSetBy, setAt: policy.topicSetAt)], audit: nil, actor: peer))
        // Also a message of the room's history, with an id of its own; nobody is told if storing it fails (the
        // topic itself was persisted above, which says so).
        let change = ChatMessage(id: nextMessageID, time: Self.wholeMilliseconds(now), from: actor.nick, target: .room(room.display), kind: .topic, text: policy.topic)
        nextMessageID += 1
        effects.append(.record(change, sender: nil, ref: nil))
        effects.append(.deliver(.topicChanged(room: room.display, text: policy.topic, by: actor, at: change.time, id: change.id), to: recipients(in: room)))
    }

    /// Disconnects a user, telling them why and telling their rooms.
    public mutating func kick(_ raw: String, reason: String?, by operator: Actor) throws(ChatError) -> [Effect<Peer>] {
        let victim = try session(named: raw)
        guard let peer = victim.peer else { throw onAnotherNode(victim) }
        let reason = cleanReason(reason)
        var effects: [Effect<Peer>] = []
        let text = "You were disconnected by \(`operator`)" + (reason.map { ": \($0)" } ?? ".")
        effects.append(.deliver(.error(ChatError(.kicked, text), ref: nil), to: [.init(peer: peer, focused: true)]))
        let leaveReason = LeaveReason.kicked(by: `operator`, reason: reason)
        remove(victim.id, reason: leaveReason, tellingSelf: false, into: &effects)
        effects.append(.close(peer, leaveReason))
        return effects
    }

    // MARK: - Queries

    public func roomSummaries() -> [RoomSummary] {
        rooms.values.sorted { $0.name.key < $1.name.key }.map {
            RoomSummary(name: $0.name.display, members: $0.members.count, topic: policies[$0.name.key]?.topic ?? "")
        }
    }

    /// The rooms a user may see listed: secret ones only when they are in them.
    func roomSummaries(visibleTo session: Session) -> [RoomSummary] {
        roomSummaries().filter { summary in
            guard let name = try? RoomName(validating: summary.name), isSecret(name.key) else { return true }
            return session.rooms.contains(name)
        }
    }

    func isSecret(_ key: String) -> Bool { policies[key]?.modes.contains(.secret) == true }

    /// Whether joining the room takes a key (false for a room that does not exist).
    public func roomNeedsKey(_ raw: String) -> Bool {
        guard let name = try? RoomName(validating: raw) else { return false }
        return policies[name.key]?.key != nil
    }

    /// What anyone may know of an online user (IRC's WHO and WHOIS), or nil when nobody goes by `nick`.
    public func profile(of raw: String) -> Profile? {
        guard let nick = try? Nick(validating: raw), let id = nicks[nick.key], let session = sessions[id] else { return nil }
        return profile(of: session)
    }

    /// What `asker` may see of `session`: its secret rooms only when they share them (nil: everything).
    func profile(of session: Session, seenBy asker: Session? = nil) -> Profile {
        let shown = session.rooms.filter { room in asker.map { !isSecret(room.key) || $0.rooms.contains(room) } ?? true }
        let rooms = shown.map { room in
            Profile.Room(
                name: room.display, isOperator: isRoomOperator(session.id, in: room.key),
                isVoiced: self.rooms[room.key]?.voiced.contains(session.id) == true
            )
        }
        return Profile(
            nick: session.nick.display, username: session.username, realName: session.realName, account: session.shownAccount,
            away: session.away, rooms: rooms, isServerOperator: isOperator(session.id), isInvisible: session.invisible
        )
    }

    /// WHO: a room's members (those marked invisible only to fellow members), one nick exactly, or the users
    /// whose nick matches a mask with `*` and `?` who are not invisible or who share a room with the asker.
    func lookup(_ mask: String, by asker: Session) -> [Profile] {
        let sharesRoom: (Session) -> Bool = { other in other.id == asker.id || !Set(other.rooms).isDisjoint(with: asker.rooms) }
        if let name = try? RoomName(validating: mask) {
            guard let room = rooms[name.key] else { return [] }
            let member = asker.rooms.contains(name)
            guard member || !isSecret(name.key) else { return [] }
            return room.members.compactMap { sessions[$0] }.filter { member || !$0.invisible }.sorted { $0.nick.key < $1.nick.key }
                .map { profile(of: $0, seenBy: asker) }
        }
        guard mask.contains("*") || mask.contains("?") else {
            return (try? session(named: mask)).map { [profile(of: $0, seenBy: asker)] } ?? []
        }
        let pattern = Array(asciiLowercased(mask).utf8)
        // A mask may match everyone: the answer is bounded, like a LIST page, so one line cannot cost the server.
        return sessions.values.filter { (!$0.invisible || sharesRoom($0)) && Self.glob(pattern, matches: Array($0.nick.key.utf8)) }
            .sorted { $0.nick.key < $1.nick.key }.prefix(Self.maximumLookup).map { profile(of: $0, seenBy: asker) }
    }

    /// IRC's mask matching: `*` any run of characters, `?` one, case already folded.
    static func glob(_ pattern: [UInt8], matches text: [UInt8]) -> Bool {
        var (p, t, star, mark) = (0, 0, -1, 0)
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                (p, t) = (p + 1, t + 1)
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                (star, mark, p) = (p, t, p + 1)
            } else if star >= 0 {
                (p, mark) = (star + 1, mark + 1)
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// Nicks in `room`, or everyone online when nil.
    public func nicks(in raw: String?) throws(ChatError) -> [String] {
        guard let raw else { return sortedNames(sessions.values.map(\.nick)) }
        return sortedNames(try existingRoom(raw).members.map { sessions[$0]!.nick })
    }

    // MARK: - Building blocks

    private mutating func join(_ name: RoomName, session id: SessionID, now: Date, into effects: inout [Effect<Peer>]) {
        let isNew = rooms[name.key] == nil
        // A room that comes back keeps the spelling it had (its policy's), not the joiner's.
        let spelling = policies[name.key].flatMap { try? RoomName(validating: $0.name) } ?? name
        var room = rooms[name.key] ?? Room(name: spelling)
        var policy = policies[name.key] ?? RoomPolicy(name: room.name.display)
        room.members.append(id)
        sessions[id]!.rooms.append(room.name)
        room.audience = nil
        forgetAudiences(of: id)
        let session = sessions[id]!
        if isNew && name != .general && !policy.isWorthKeeping {
            // The creator operates the room: for good when logged in (the room is theirs across reconnects and
            // restarts), otherwise while they stay. A room that kept owners, a lock, bans or mutes is not new,
            // whoever comes first: its first joiner (maybe the one it muted) gets nothing.
            if let account = session.account, policies.count < Self.maximumKeptRooms, ownedRooms(of: account) < roomLimits.ownedPerAccount {
                policy.operators.insert(account)
                effects.append(.persist([.addOperator(room: room.name.display, account: account)], audit: nil, actor: session.peer))
                // The other nodes learn the room is owned (nothing is announced: a creator's ownership is not news).
                replicate(moderation: nil, changes: [.addOperator(room: room.name.display, account: account)], in: name, about: nil, into: &effects)
            } else {
                room.operators.insert(id)
                if session.account != nil {
                    let notice = "You own \(roomLimits.ownedPerAccount) rooms already: you operate \(room.name) only while you stay in it."
                    effects.append(.deliver(.notice(notice), to: session.me))
                }
            }
        }
        rooms[name.key] = room
        policies[name.key] = policy
        replicate(.joined, session: id, room: room.name.display, into: &effects)
        effects.append(
            .deliver(
                .joined(room: room.name.display, nick: session.nick.display, account: session.shownAccount, realName: session.identity.realName),
                to: recipients(in: name)
            )
        )
        // Who comes in away is shown so (away-notify clients learn it with the join).
        if let away = session.away {
            effects.append(.deliver(.awayChanged(nick: session.nick.display, message: away), to: recipients(in: name, except: id)))
        }
        // What follows is for the joiner only: a session of another node got it there.
        guard let peer = session.peer else { return }
        let me: Recipients<Peer> = [Recipient(peer: peer, focused: true)]
        if !policy.topic.isEmpty {
            effects.append(.deliver(.topic(room: room.name.display, text: policy.topic, setBy: policy.topicSetBy, setAt: policy.topicSetAt), to: me))
        }
        effects.append(.deliver(members(of: room), to: me))
        // A resuming client gets exactly what it missed here; a logged-in user what came since they last left
        // (at most the usual count); anyone else the latest messages.
        if let last = session.resume[name.key] {
            sessions[id]!.resume[name.key] = nil
            effects.append(.replay(peer, room: room.name.display, .after(last, count: Self.maximumResume), below: nextMessageID, ref: nil))
        } else if historyOnJoin > 0, let account = session.account, let last = seen[account]?[name.key] {
            let missed = HistoryQuery.range(after: .id(last), before: .id(.max), count: historyOnJoin, newest: true)
            effects.append(.replay(peer, room: room.name.display, missed, below: nextMessageID, ref: nil))
        } else if historyOnJoin > 0 {
            effects.append(.replay(peer, room: room.name.display, .latest(historyOnJoin), below: nextMessageID, ref: nil))
        }
    }

    /// Tells the room (the leaver included) and removes the membership; empty rooms other than #general go.
    mutating func leave(
        _ name: RoomName, session id: SessionID, reason: LeaveReason, tellingSelf: Bool = true,
        alreadyTold: inout Set<SessionID>, into effects: inout [Effect<Peer>]
    ) {
        guard var room = rooms[name.key], let session = sessions[id] else { return }
        let event = ChatEvent.left(room: room.name.display, nick: session.nick.display, reason: reason)
        var recipients: [Recipient<Peer>] = []
        recipients.reserveCapacity(room.members.count)
        // When the server stops, everyone is leaving: nobody is told of anyone else.
        let telling = reason == .serverShutdown ? [] : room.members
        for member in telling where tellingSelf || member != id {
            let other = sessions[member]!
            guard let peer = other.peer else { continue }
            // A part or kick is said per room on IRC too; only a departure from the server is said once.
            let repeated = !alreadyTold.insert(member).inserted && reason.isDeparture
            recipients.append(Recipient(peer: peer, focused: other.currentRoom == name, repeated: repeated))
        }
        effects.append(.deliver(event, to: Recipients(recipients)))
        // Only a leaving in order proves everything before it was sent: a connection that was lost, timed out or
        // fell behind may not have received what was on its way, so the mark stays where it was.
        if let account = session.account, reason.isOrderly {
            remember(nextMessageID - 1, in: name.key, for: account)
        }
        room.members.removeAll { $0 == id }
        room.operators.remove(id)
        room.voiced.remove(id)
        sessions[id]!.rooms.removeAll { $0 == name }
        // Leaving the server is one `offline` for all its rooms (`remove`).
        if !reason.isDeparture { replicate(.parted, session: id, room: room.name.display, reason: reason, into: &effects) }
        room.audience = nil
        forgetAudiences(of: id)
        if room.members.isEmpty && name != .general {
            rooms[name.key] = nil
            forgetPolicyIfUnused(name.key, into: &effects)
        } else {
            rooms[name.key] = room
        }
    }

    /// Leaves one room (a part, a kick): nobody has been told anything yet. A user who stays online and left
    /// their current room is told which room is current now.
    mutating func leave(
        _ name: RoomName, session id: SessionID, reason: LeaveReason, into effects: inout [Effect<Peer>]
    ) {
        let wasCurrent = sessions[id]?.currentRoom == name
        var told: Set<SessionID> = []
        leave(name, session: id, reason: reason, alreadyTold: &told, into: &effects)
        if wasCurrent, let session = sessions[id] {
            effects.append(.deliver(.currentRoom(session.currentRoom?.display), to: session.me))
        }
    }

    /// A nick someone holds: on another node of the chat, said so (a client reconnecting after its node died waits
    /// for the nick to be freed, `--node-timeout`, rather than asking for another at once).
    func nickTaken(_ nick: Nick) -> ChatError {
        if let holder = nicks[nick.key], sessions[holder]?.peer == nil {
            return ChatError(.nickTaken, "The nickname \(nick) is taken by a user of another server of this chat; choose another.")
        }
        return ChatError(.nickTaken, "The nickname \(nick) is taken; choose another.")
    }

    /// Refuses a reserved nick: the server's and its services' names.
    func checkNotReserved(_ nick: Nick) throws(ChatError) {
        guard Self.reservedNicks.contains(nick.key) || nick.key == asciiLowercased(serverName) else { return }
        throw ChatError(.nickReserved, "\(nick) is reserved for the server and its services; choose another nickname.")
    }

    /// The rooms an account owns (is an operator of for good).
    public func ownedRooms(of account: String) -> Int {
        policies.values.count { $0.operators.contains(account) }
    }

    /// Counts a new room against its creator's address; past the limit a minute, refuses it.
    private mutating func countRoomCreation(by session: Session, now: Date) throws(ChatError) {
        // The table stays small: past a thousand addresses, those whose minute is over go.
        if roomsCreated.count > 1000 { roomsCreated = roomsCreated.filter { now.timeIntervalSince($0.value.since) < 60 } }
        let place = addressKey(session.address)
        var entry = roomsCreated[place] ?? (now, 0)
        if now.timeIntervalSince(entry.since) >= 60 { entry = (now, 0) }
        guard entry.count < roomLimits.createdPerMinute else {
            let wait = Int(60 - now.timeIntervalSince(entry.since)) + 1
            throw ChatError(.tooManyRoomsCreated, "You are creating rooms too fast; try again in \(wait) seconds, or join one that exists.")
        }
        entry.count += 1
        roomsCreated[place] = entry
    }

    /// Notes what an account's user has received in a room, forgetting the room it left longest ago past the
    /// bound (never the one just noted).
    private mutating func remember(_ last: Int64, in room: String, for account: String) {
        seen[account, default: [:]][room] = last
        if seen[account]!.count > Self.maximumSeenRooms,
            let oldest = seen[account]!.filter({ $0.key != room }).min(by: { $0.value < $1.value })?.key
        {
            seen[account]![oldest] = nil
        }
    }

    /// An empty room's policy goes unless it holds something for whoever comes next (bounded memory: anyone
    /// can create rooms).
    mutating func forgetPolicyIfUnused(_ key: String, into effects: inout [Effect<Peer>]) {
        guard rooms[key] == nil, let policy = policies[key], !policy.isWorthKeeping, key != RoomName.general.key else { return }
        policies[key] = nil
        if policy != RoomPolicy(name: policy.name) { effects.append(.persist([.forget(room: policy.name)], audit: nil, actor: nil)) }
    }

    mutating func remove(_ id: SessionID, reason: LeaveReason, tellingSelf: Bool, into effects: inout [Effect<Peer>]) {
        guard let session = sessions[id] else { return }
        var told: Set<SessionID> = []
        for room in session.rooms {
            leave(room, session: id, reason: reason, tellingSelf: tellingSelf, alreadyTold: &told, into: &effects)
        }
        if nicks[session.nick.key] == id { nicks[session.nick.key] = nil }
        replicate(.offline, session: id, reason: reason, into: &effects)
        sessions[id] = nil
        if let origin = session.origin { remote[origin.node]?[origin.session] = nil }
        gone.append(Profile(
            nick: session.nick.display, username: session.username, realName: session.realName, account: session.shownAccount,
            away: nil, rooms: [], isServerOperator: false
        ))
        if gone.count > Self.maximumRemembered { gone.removeFirst(gone.count - Self.maximumRemembered) }
    }

    /// Ids given out from now on are above `head` (the log's, as far as the publisher has carried it out).
    public mutating func skipMessageIDs(through head: Int64) {
        nextMessageID = max(nextMessageID, head + 1)
    }

    mutating func newMessage(
        from sender: Session?, to target: ChatMessage.Target, kind: ChatMessage.Kind, text: String, tags: [String: String] = [:],
        recipientAccount: String? = nil, now: Date
    ) -> ChatMessage {
        defer { nextMessageID += 1 }
        // Whole milliseconds, as stored: a message shows the same time live and in history.
        let now = Self.wholeMilliseconds(now)
        return ChatMessage(
            id: nextMessageID, time: now, from: sender?.nick.display, account: sender?.shownAccount, target: target, kind: kind, text: text,
            tags: tags, recipientAccount: recipientAccount
        )
    }

    /// Times are stored in whole milliseconds: rounded down so, they read back as they were shown live.
    static func wholeMilliseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// A room's members, its operators marked.
    func members(of room: Room, ref: String? = nil) -> ChatEvent {
        let operators = room.members.filter { isRoomOperator($0, in: room.name.key) }.map { sessions[$0]!.nick }
        let voiced = room.members.filter { room.voiced.contains($0) }.map { sessions[$0]!.nick }
        return .members(
            room: room.name.display, nicks: sortedNames(room.members.map { sessions[$0]!.nick }), operators: sortedNames(operators),
            voiced: sortedNames(voiced), secret: isSecret(room.name.key), ref: ref
        )
    }

    /// The room a message from `session` goes to: one it is in, or (when the room lets outsiders send, mode -n)
    /// any room that exists; never one it is banned from or muted in, nor a moderated one unless it may speak.
    func speakingRoom(_ raw: String?, of session: Session, now: Date) throws(ChatError) -> RoomName {
        let room: RoomName
        // The name is read once: this runs for every message.
        let name = try raw.map { (raw) throws(ChatError) in try RoomName(validating: raw) }
        if let name, !session.rooms.contains(name), let existing = rooms[name.key], policies[name.key]?.modes.contains(.membersOnly) == false {
            if activeRestriction(.ban, in: name.key, on: session.id, now: now) != nil { throw notInRoom(existing.name.display) }
            room = existing.name
        } else {
            room = try memberRoom(named: name, of: session)
        }
        if let mute = activeRestriction(.mute, in: room.key, on: session.id, now: now) {
            throw mutedError(room.display, mute, now: now)
        }
        if policies[room.key]?.modes.contains(.moderated) == true, rooms[room.key]?.voiced.contains(session.id) != true,
            !isRoomOperator(session.id, in: room.key)
        {
            throw ChatError(.muted, "\(room) is moderated: only its operators and those they give a voice speak.")
        }
        return room
    }

    /// Everyone in the room but `excluded`: the room's audience, built once per change of who is in it or where
    /// their attention is (`Room.audience`), so a message costs no lookup and no copy of anyone's session.
    mutating func recipients(in name: RoomName, except excluded: SessionID? = nil) -> Recipients<Peer> {
        guard let room = rooms[name.key] else { return [] }
        let audience: [Recipient<Peer>]
        let owners: [SessionID]?
        if let built = room.audience {
            (audience, owners) = (built, room.audienceIDs)
        } else {
            var built: [Recipient<Peer>] = []
            var ids: [SessionID]?
            built.reserveCapacity(room.members.count)
            for (index, member) in room.members.enumerated() {
                let session = sessions[member]!
                guard let peer = session.peer else {
                    // Another node's member: left out, so positions in the audience are no longer the members'.
                    if ids == nil { ids = Array(room.members[..<index]) }
                    continue
                }
                ids?.append(member)
                built.append(Recipient(peer: peer, focused: session.rooms.last == name))
            }
            rooms[name.key]!.audience = built
            rooms[name.key]!.audienceIDs = ids
            (audience, owners) = (built, ids)
        }
        return Recipients(audience, skipping: excluded.flatMap { (owners ?? room.members).firstIndex(of: $0) })
    }

    /// A member joined, left or switched rooms, so its current room may have changed: the focus that each of its
    /// rooms' audiences records for it is stale.
    mutating func forgetAudiences(of id: SessionID) {
        for name in sessions[id]?.rooms ?? [] { rooms[name.key]?.audience = nil }
    }

    func session(named raw: String) throws(ChatError) -> Session {
        let nick = try Nick(validating: raw)
        guard let id = nicks[nick.key], let session = sessions[id] else {
            throw ChatError(.noSuchNick, "Nobody called \(nick) is online.")
        }
        return session
    }

    func existingRoom(_ raw: String) throws(ChatError) -> Room {
        let name = try RoomName(validating: raw)
        guard let room = rooms[name.key] else { throw noSuchRoom(name.display) }
        return room
    }

    /// The named room, which the session must be in, or the session's current room when nil. The result is
    /// spelled as the room is, not as the user typed it.
    func memberRoom(_ raw: String?, of session: Session) throws(ChatError) -> RoomName {
        try memberRoom(named: raw.map { (raw) throws(ChatError) in try RoomName(validating: raw) }, of: session)
    }

    func memberRoom(named name: RoomName?, of session: Session) throws(ChatError) -> RoomName {
        guard let name else { return try currentRoom(of: session) }
        // A secret room is no room to those outside it.
        guard let room = rooms[name.key], !isSecret(name.key) || session.rooms.contains(name) else { throw noSuchRoom(name.display) }
        guard session.rooms.contains(name) else { throw notInRoom(room.name.display) }
        return room.name
    }

    func currentRoom(of session: Session) throws(ChatError) -> RoomName {
        guard let room = session.currentRoom else {
            throw ChatError(.notInRoom, "You are not in any room. Type /join #room to enter one.")
        }
        return room
    }

    func noSuchRoom(_ name: String) -> ChatError {
        ChatError(.noSuchRoom, "There is no room \(name). Type /rooms to see them, or /join \(name) to create it.")
    }

    func notInRoom(_ name: String) -> ChatError {
        ChatError(.notInRoom, "You are not in \(name). Type /join \(name) first.")
    }

    /// A user's reason, sanitised; nil when nothing is left of it.
    func cleanReason(_ raw: String?) -> String? {
        guard let raw else { return nil }
        let cleaned = String(Sanitizer.trimmed(Sanitizer.text(raw)).prefix(Self.maximumReasonLength))
        return cleaned.isEmpty ? nil : cleaned
    }

    func sortedNames(_ nicks: [Nick]) -> [String] {
        nicks.sorted { $0.key < $1.key }.map(\.display)
    }
}

/// Which rooms a listing shows (`Request.rooms(matching:)`): names or masks (any), masks to leave out, and
/// bounds on the member count.
struct RoomFilter {
    var masks: [[UInt8]] = []
    var excluded: [[UInt8]] = []
    var moreThan: Int?
    var fewerThan: Int?

    init(_ terms: [String]) {
        for term in terms {
            if term.hasPrefix(">"), let count = Int(term.dropFirst()) {
                moreThan = count
            } else if term.hasPrefix("<"), let count = Int(term.dropFirst()) {
                fewerThan = count
            } else if term.hasPrefix("!") {
                excluded.append(Array(asciiLowercased(String(term.dropFirst())).utf8))
            } else if !term.isEmpty {
                masks.append(Array(asciiLowercased(term).utf8))
            }
        }
    }

    func admits(_ room: RoomSummary) -> Bool {
        let name = Array(asciiLowercased(room.name).utf8)
        if !masks.isEmpty && !masks.contains(where: { ChatState<Int>.glob($0, matches: name) }) { return false }
        if excluded.contains(where: { ChatState<Int>.glob($0, matches: name) }) { return false }
        if let moreThan, room.members <= moreThan { return false }
        if let fewerThan, room.members >= fewerThan { return false }
        return true
    }
}

/// An online user as others may see them (WHO, WHOIS).
public struct Profile: Sendable, Equatable {
    public struct Room: Sendable, Equatable {
        public let name: String
        public let isOperator: Bool
        public let isVoiced: Bool
        public init(name: String, isOperator: Bool, isVoiced: Bool = false) {
            self.name = name
            self.isOperator = isOperator
            self.isVoiced = isVoiced
        }
    }
    public let nick: String
    /// IRC's username and real name; the nick for users of other doors.
    public let username: String
    public let realName: String
    /// The account they are logged in to, if any.
    public let account: String?
    public let away: String?
    public let rooms: [Room]
    public let isServerOperator: Bool
    public let isInvisible: Bool

    public init(
        nick: String, username: String, realName: String, account: String?, away: String?, rooms: [Room], isServerOperator: Bool,
        isInvisible: Bool = false
    ) {
        (self.nick, self.username, self.realName, self.account, self.away) = (nick, username, realName, account, away)
        (self.rooms, self.isServerOperator, self.isInvisible) = (rooms, isServerOperator, isInvisible)
    }
}

extension Profile {
    /// WHOIS for people: who, where, and why away.
    public var summary: [String] {
        var lines = [nick + (realName != nick ? " (\(realName))" : "")]
        if let account { lines.append("  logged in as \(account)" + (isServerOperator ? ", a server operator" : "")) }
        if !rooms.isEmpty { lines.append("  in " + rooms.map { ($0.isOperator ? "@" : "") + $0.name }.joined(separator: " ")) }
        if let away { lines.append("  away: \(away)") }
        return lines
    }
}

/// How a user describes themselves on connecting: IRC's USER username and real name, shown by WHO and WHOIS.
public struct Identity: Sendable, Equatable {
    public var username: String?
    public var realName: String?
    public init(username: String? = nil, realName: String? = nil) {
        self.username = username
        self.realName = realName
    }
}
