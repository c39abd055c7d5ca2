import Foundation

/// What other nodes of a shared database said, told to the users of this one (docs/ARCHITECTURE.md, "Several
/// nodes on one PostgreSQL").
extension ChatState {
    /// Where a session of another node lives.
    struct Origin: Equatable {
        let node: String
        /// Its `SessionID.raw` there.
        let session: UInt64
    }

    /// The deliveries of messages another node committed to the log: a room's message to the room's members
    /// here, a notice to everyone to everyone here, a private message to its recipient if they are here (nicks
    /// are unique across nodes: a user here of that name is the one it was sent to). Nobody here is the sender,
    /// so nobody is left out. A topic change is not here: it changes the room (`applyTopic`).
    public mutating func deliveries(ofOthers messages: [ChatMessage]) -> [Effect<Peer>] {
        var effects: [Effect<Peer>] = []
        for message in messages where message.kind != .topic {
            switch message.target {
            case .room(let raw):
                guard let name = try? RoomName(validating: raw), rooms[name.key] != nil else { continue }
                effects.append(.deliver(.message(message), to: recipients(in: name)))
            case .user(let raw):
                guard let nick = try? Nick(validating: raw), let id = nicks[nick.key], let peer = sessions[id]?.peer else { continue }
                effects.append(.deliver(.message(message), to: [Recipient(peer: peer, focused: true)]))
            case .everyone:
                var audiences: [[String]: [Recipient<Peer>]] = [:]
                for session in sessions.values {
                    guard let peer = session.peer else { continue }
                    audiences[session.rooms.map(\.display), default: []].append(Recipient(peer: peer, focused: true))
                }
                effects += audiences.map { .deliver(.announcement(message, rooms: $0.key), to: Recipients($0.value)) }
            }
        }
        return effects
    }

    /// A topic another node set: the room's topic here too, told to its members here.
    public mutating func applyTopic(_ change: ChatMessage) -> [Effect<Peer>] {
        guard change.kind == .topic, case .room(let raw) = change.target, let name = try? RoomName(validating: raw) else { return [] }
        let actor: Actor = change.from.map { .user($0) } ?? .server
        var policy = policies[name.key] ?? RoomPolicy(name: rooms[name.key]?.name.display ?? name.display)
        (policy.topic, policy.topicSetBy, policy.topicSetAt) = (change.text, actor.description, change.time)
        policies[name.key] = policy
        guard rooms[name.key] != nil else { return [] }
        let shown = rooms[name.key]!.name.display
        return [.deliver(.topicChanged(room: shown, text: change.text, by: actor, at: change.time, id: change.id), to: recipients(in: name))]
    }

    /// Applies a presence change another node committed (`entry.node`): its session comes, joins, parts, changes or
    /// goes here as a session without a connection, and this node's users who share a room with it are told as
    /// they would be of one of their own. Nothing is replicated back, but for a user of this node who lost a
    /// race for a nick (below).
    public mutating func apply(_ entry: PresenceEntry) -> [Effect<Peer>] {
        guard let node = entry.node else { return [] }
        var effects: [Effect<Peer>] = []
        let known = remote[node]?[entry.session]
        switch entry.kind {
        case .nodeGone:
            for id in (remote[node] ?? [:]).values.sorted(by: { $0.raw < $1.raw }) {
                remove(id, reason: entry.leaveReason, tellingSelf: false, into: &effects)
            }
            remote[node] = nil
        case .roster:
            let live = Set(entry.sessions ?? [])
            for (number, id) in (remote[node] ?? [:]).sorted(by: { $0.key < $1.key }) where !live.contains(number) {
                remove(id, reason: entry.leaveReason, tellingSelf: false, into: &effects)
            }
        case .online, .updated:
            guard let profile = entry.profile, let nick = try? Nick(validating: profile.nick) else { break }
            let id = known ?? admit(Origin(node: node, session: entry.session), as: nick, account: profile.account, into: &effects)
            update(id, to: profile, nick: nick, into: &effects)
            // The rooms it is in at this point of the log: from a snapshot (a node that started later, or one back
            // from losing its database) they are news; otherwise they are where it is already.
            let staying = Set(profile.rooms.compactMap { try? RoomName(validating: $0) })
            for room in sessions[id]!.rooms where !staying.contains(room) {
                var told: Set<SessionID> = []
                leave(room, session: id, reason: .parted(nil), alreadyTold: &told, into: &effects)
            }
            for room in profile.rooms { join(remote: id, room, into: &effects) }
        case .joined:
            guard let known, let room = entry.room else { break }
            join(remote: known, room, into: &effects)
        case .parted:
            guard let known, let room = entry.room.flatMap({ try? RoomName(validating: $0) }), sessions[known]?.rooms.contains(room) == true else { break }
            var told: Set<SessionID> = []
            leave(room, session: known, reason: entry.leaveReason, alreadyTold: &told, into: &effects)
        case .offline:
            guard let known else { break }
            remove(known, reason: entry.leaveReason, tellingSelf: false, into: &effects)
        case .room:
            guard let raw = entry.room, let name = try? RoomName(validating: raw) else { break }
            applyModeration(in: name, changes: (entry.changes ?? []).compactMap { $0.change(in: name.display) }, notice: entry.notice, into: &effects)
            // A voice, or an operator without an account: held by the session in the room, on every node.
            if let target = session(on: entry.targetNode, number: entry.session), rooms[name.key]?.members.contains(target) == true {
                switch entry.notice?.action {
                case ModerationNotice.Action.voice.rawValue: rooms[name.key]!.voiced.insert(target)
                case ModerationNotice.Action.devoice.rawValue: rooms[name.key]!.voiced.remove(target)
                case ModerationNotice.Action.op.rawValue: rooms[name.key]!.operators.insert(target)
                case ModerationNotice.Action.deop.rawValue: rooms[name.key]!.operators.remove(target)
                default: break
                }
            }
        case .relay:
            guard let message = entry.message?.message(id: entry.id) else { break }
            effects += deliveries(ofOthers: [message])
        case .invite:
            // Only the invited user's node tells them, and lets them past the room's locks if an operator asked.
            guard entry.targetNode == nodeName, nodeName != nil, let raw = entry.room, let room = try? RoomName(validating: raw) else { break }
            let id = SessionID(raw: entry.session)
            guard let session = sessions[id], let peer = session.peer, !session.rooms.contains(room) else { break }
            if entry.cause == "operator" {
                var invitations = session.invitations.filter { $0 != room.key } + [room.key]
                if invitations.count > Self.maximumInvitations { invitations.removeFirst() }
                sessions[id]!.invitations = invitations
            }
            let by = entry.notice?.by ?? Moderator.consoleName
            let invited = ChatEvent.invited(room: raw, nick: session.nick.display, by: by, account: entry.reason)
            effects.append(.deliver(invited, to: [Recipient(peer: peer, focused: true)]))
        case .kick:
            // Only the kicked user's node carries it out; everyone hears of it from that node's `parted`.
            guard entry.targetNode == nodeName, nodeName != nil, let raw = entry.room, let room = try? RoomName(validating: raw) else { break }
            let id = SessionID(raw: entry.session)
            guard let session = sessions[id], session.peer != nil, session.rooms.contains(room) else { break }
            let actor = entry.notice?.actor ?? .server
            leave(room, session: id, reason: .kicked(by: actor, reason: entry.notice?.reason), into: &effects)
        }
        return effects
    }

    /// Another node's moderation in a room: what it changed of the room's policy (in log order on every node, so
    /// two changes at once end the same everywhere), told to its members here; a ban removes the members of this
    /// node it now holds, as a ban given here does. (The other node stored the changes.)
    private mutating func applyModeration(in name: RoomName, changes: [RoomChange], notice: ReplicatedNotice?, into effects: inout [Effect<Peer>]) {
        for change in changes {
            if case .forget = change {
                if rooms[name.key] == nil, name != .general { policies[name.key] = nil }
                continue
            }
            var policy = policies[name.key] ?? RoomPolicy(name: rooms[name.key]?.name.display ?? name.display)
            policy.apply(change)
            policies[name.key] = policy
        }
        // A room nobody is in here keeps its policy only if it is worth keeping (nothing is stored: its node did).
        var ignored: [Effect<Peer>] = []
        forgetPolicyIfUnused(name.key, into: &ignored)
        let shown = rooms[name.key]?.name.display ?? policies[name.key]?.name ?? name.display
        if let told = notice?.notice(in: shown), rooms[name.key] != nil {
            effects.append(.deliver(.moderation(told), to: recipients(in: name)))
        }
        guard notice?.action == ModerationNotice.Action.ban.rawValue, let members = rooms[name.key]?.members else { return }
        let now = Date()
        let by = notice?.actor ?? .server
        for id in members where sessions[id]?.peer != nil && activeRestriction(.ban, in: name.key, on: id, now: now) != nil {
            leave(name, session: id, reason: .kicked(by: by, reason: "banned" + (notice?.reason.map { ": \($0)" } ?? "")), into: &effects)
        }
    }

    /// On a node, a moderation change in a room, for the others: what it changed of the room's policy, what is
    /// told, and the session it changes in the room alone (`about`), if any.
    mutating func replicate(
        moderation notice: ModerationNotice?, changes: [RoomChange], in name: RoomName, about target: Session?, into effects: inout [Effect<Peer>]
    ) {
        guard replicating else { return }
        var entry = PresenceEntry(id: nextMessageID, session: 0, kind: .room, room: name.display)
        entry.changes = changes.compactMap(ReplicatedChange.init)
        entry.notice = notice.map(ReplicatedNotice.init)
        if let target { (entry.targetNode, entry.session) = reference(to: target) }
        nextMessageID += 1
        effects.append(.replicate(entry))
    }

    /// On a node, an invitation of another node's user, for that node to tell them. `operator`: it lets them past
    /// the room's mode i, key and limit, once.
    mutating func replicate(
        invitationOf target: Session, to room: RoomName, by inviter: Session, operator: Bool, into effects: inout [Effect<Peer>]
    ) {
        guard replicating, let origin = target.origin else { return }
        var entry = PresenceEntry(id: nextMessageID, session: origin.session, kind: .invite, room: room.display)
        entry.targetNode = origin.node
        entry.cause = `operator` ? "operator" : nil
        entry.reason = inviter.shownAccount
        entry.notice = ReplicatedNotice("invite", by: .user(inviter.nick.display), reason: nil)
        nextMessageID += 1
        effects.append(.replicate(entry))
    }

    /// On a node, a message that is not kept (a typing indicator) for the other nodes' users it is for: in the log
    /// as news, under the message's own id (so it takes no other). Only when someone elsewhere is to get it.
    mutating func relay(_ message: ChatMessage, to room: RoomName? = nil, into effects: inout [Effect<Peer>]) {
        guard replicating else { return }
        if let room, let here = rooms[room.key], here.audienceIDs == nil {
            // Nobody of another node in the room (a built audience without `audienceIDs` says so at no cost).
            if here.audience != nil || here.members.allSatisfy({ sessions[$0]?.peer != nil }) { return }
        }
        var entry = PresenceEntry(id: message.id, session: 0, kind: .relay)
        entry.message = ReplicatedMessage(message)
        effects.append(.replicate(entry))
    }

    /// Brings the other nodes' sessions here into line with `present` (their `online` entries, from the database's
    /// present): each node's sessions missing from it end, the rest come or change. For a node back from so long
    /// away that entries it never read are gone.
    public mutating func resync(with present: [PresenceEntry]) -> [Effect<Peer>] {
        var effects: [Effect<Peer>] = []
        let byNode = Dictionary(grouping: present.filter { $0.node != nil }, by: { $0.node! })
        for node in Set(remote.keys).union(byNode.keys).sorted() {
            let roster = PresenceEntry(
                id: 0, node: node, session: 0, kind: .roster, cause: "lost", reason: LeaveReason.connectionLost.text,
                sessions: (byNode[node] ?? []).map(\.session)
            )
            effects += apply(roster)
            for entry in byNode[node] ?? [] { effects += apply(entry) }
        }
        return effects
    }

    /// How other nodes name a session: its node and its number there.
    func reference(to session: Session) -> (node: String?, session: UInt64) {
        session.origin.map { ($0.node, $0.session) } ?? (nodeName, session.id.raw)
    }

    /// The session a reference names, here: this node's own, or another's.
    func session(on node: String?, number: UInt64) -> SessionID? {
        guard let node else { return nil }
        if node == nodeName { return sessions[SessionID(raw: number)]?.peer != nil ? SessionID(raw: number) : nil }
        return remote[node]?[number]
    }

    /// On a node, a kick of another node's user, for that node to carry out.
    mutating func replicate(kick target: Session, from name: RoomName, by actor: Actor, reason: String?, into effects: inout [Effect<Peer>]) {
        guard replicating, let origin = target.origin else { return }
        var entry = PresenceEntry(id: nextMessageID, session: origin.session, kind: .kick, room: name.display)
        entry.targetNode = origin.node
        entry.notice = ReplicatedNotice("kick", by: actor, reason: reason)
        nextMessageID += 1
        effects.append(.replicate(entry))
    }

    /// A session of another node, new here under `nick`.
    private mutating func admit(_ origin: Origin, as nick: Nick, account: String?, into effects: inout [Effect<Peer>]) -> SessionID {
        let id = SessionID(raw: takeSessionNumber())
        var session = Session(id: id, nick: nick, peer: nil, rooms: [])
        session.origin = origin
        session.account = account
        sessions[id] = session
        remote[origin.node, default: [:]][origin.session] = id
        claim(nick, for: id, into: &effects)
        mostOnline = max(mostOnline, sessions.count)
        return id
    }

    /// Gives `nick` to a session of another node. Its node checked that nobody held it as far as it knew; only a
    /// race (two nodes admitting one nick within the moment an entry takes to travel) gets here with it held.
    /// Then both lose, as with IRC's nick collision but without the kill: a holder of this node is renamed to a
    /// guest nick (and says so to the others), and each node does the same with its own, so every node ends with
    /// the same nicks whatever the order of the two claims. A holder of a third node keeps the nick here until
    /// its own node renames it (the map points at the newer claim meanwhile).
    private mutating func claim(_ nick: Nick, for id: SessionID, into effects: inout [Effect<Peer>]) {
        guard let holder = nicks[nick.key], holder != id else {
            nicks[nick.key] = id
            return
        }
        guard let peer = sessions[holder]?.peer else {
            // Another node's holder, about to be renamed by its own node: the map follows the newest claim, and
            // the holder's rename, finding the key not its own, leaves it.
            nicks[nick.key] = id
            return
        }
        // The nick's owner logged in elsewhere: whoever holds it here without owning it is moved aside, as when
        // the owner logs in here (their node let them take it from a user of another node: `ownerMayTake`).
        if sessions[id]?.account == nick.key, sessions[holder]?.account != nick.key {
            if let guest = try? Nick(validating: guestNick(for: holder)) { rename(holder, to: guest, into: &effects) }
            let notice = ChatEvent.notice("\(nick) is a registered nickname and its owner logged in; you were renamed.")
            effects.append(.deliver(notice, to: [Recipient(peer: peer, focused: true)]))
            nicks[nick.key] = id
            return
        }
        if let guest = try? Nick(validating: guestNick(for: holder)) { rename(holder, to: guest, into: &effects) }
        let notice = ChatEvent.notice("Someone on another server of this chat took the nickname \(nick) at the same moment; you were renamed.")
        effects.append(.deliver(notice, to: [Recipient(peer: peer, focused: true)]))
        nicks[nick.key] = id
    }

    /// A session of another node as it now is: nick, away message, account, identity.
    private mutating func update(_ id: SessionID, to profile: PresenceProfile, nick: Nick, into effects: inout [Effect<Peer>]) {
        guard sessions[id] != nil else { return }
        // Who it is first: a nick it claims below may be its account's.
        sessions[id]!.account = profile.account
        sessions[id]!.accountName = profile.accountName
        var session = sessions[id]!
        if session.nick.display != nick.display {
            let old = session.nick
            session.nick = nick
            sessions[id] = session
            if nicks[old.key] == id { nicks[old.key] = nil }
            claim(nick, for: id, into: &effects)
            effects.append(.deliver(.nickChanged(from: old.display, to: nick.display), to: audience(of: session)))
        }
        if session.away != profile.away {
            sessions[id]!.away = profile.away
            effects.append(.deliver(.awayChanged(nick: nick.display, message: profile.away), to: audience(of: sessions[id]!)))
        }
        sessions[id]!.identity = Identity(username: profile.username, realName: profile.realName)
        sessions[id]!.invisible = profile.invisible
    }

    /// A session of another node enters a room here: its members here are told, as of a join of their own node.
    /// Its node checked bans, keys and limits; what only the joiner is told (topic, names, history) it told there.
    private mutating func join(remote id: SessionID, _ raw: String, into effects: inout [Effect<Peer>]) {
        guard let name = try? RoomName(validating: raw), let session = sessions[id], !session.rooms.contains(name) else { return }
        let spelling = policies[name.key].flatMap { try? RoomName(validating: $0.name) } ?? name
        var room = rooms[name.key] ?? Room(name: spelling)
        let policy = policies[name.key] ?? RoomPolicy(name: room.name.display)
        // A room new here is new there too (or close to it): its creator operates it while it stays, as there.
        if rooms[name.key] == nil && name != .general && policy.operators.isEmpty { room.operators.insert(id) }
        room.members.append(id)
        room.audience = nil
        rooms[name.key] = room
        policies[name.key] = policy
        sessions[id]!.rooms.append(room.name)
        forgetAudiences(of: id)
        let joined = ChatEvent.joined(room: room.name.display, nick: session.nick.display, account: session.shownAccount, realName: session.identity.realName)
        effects.append(.deliver(joined, to: recipients(in: name)))
        if let away = session.away {
            effects.append(.deliver(.awayChanged(nick: session.nick.display, message: away), to: recipients(in: name)))
        }
    }

    /// On a node, a presence change of a session of this node, for the others (`replicating`); its place in the
    /// log is an id of the batch, like a message's.
    mutating func replicate(
        _ kind: PresenceEntry.Kind, session id: SessionID, room: String? = nil, reason: LeaveReason? = nil, into effects: inout [Effect<Peer>]
    ) {
        guard replicating, let session = sessions[id], session.peer != nil else { return }
        // A part's or quit's own words (nil: none given), so that they are told as the same kind of leaving there;
        // any other reason as it reads.
        let words: String? = switch reason {
        case .parted(let words), .quit(let words): words
        case let reason?: reason.text
        case nil: nil
        }
        let entry = PresenceEntry(
            id: nextMessageID, session: id.raw, kind: kind, room: room, cause: reason?.cause, reason: words,
            profile: kind == .offline ? nil : presence(of: session)
        )
        nextMessageID += 1
        effects.append(.replicate(entry))
    }

    /// Every session of this node as it is now, for a node that lost its database for a while (what it
    /// changed meanwhile was not told): applied elsewhere, each brings the session up to date.
    public mutating func presenceSnapshot() -> [Effect<Peer>] {
        guard replicating else { return [] }
        let here = sessions.values.filter { $0.peer != nil }.map(\.id.raw).sorted()
        // First who is here, so that whoever went meanwhile goes there too; then each as it is.
        var effects: [Effect<Peer>] = [
            .replicate(PresenceEntry(id: nextMessageID, session: 0, kind: .roster, cause: "lost", reason: LeaveReason.connectionLost.text, sessions: here))
        ]
        nextMessageID += 1
        for raw in here { replicate(.updated, session: SessionID(raw: raw), into: &effects) }
        return effects
    }

    func presence(of session: Session) -> PresenceProfile {
        PresenceProfile(
            nick: session.nick.display, account: session.account, accountName: session.accountName, username: session.identity.username,
            realName: session.identity.realName, away: session.away, invisible: session.invisible, rooms: session.rooms.map(\.display)
        )
    }

    /// A nick's owner (`account`) may take it from a user of another node who does not own it: that node moves its
    /// user aside when it learns of the claim (`claim`), as this one would its own.
    func ownerMayTake(_ key: String, account: String?) -> Bool {
        guard account == key, let holder = nicks[key], let session = sessions[holder] else { return false }
        return session.peer == nil && session.account != key
    }

    func onAnotherNode(_ session: Session) -> ChatError {
        ChatError(.noSuchNick, "\(session.nick) is connected to another server of this chat; do that there.")
    }
}
