import Foundation

/// Who moderates: a user (who must operate the room) or the operator at the server's console (who may do
/// anything anywhere).
public enum Moderator: Sendable, Equatable {
    case session(SessionID)
    case console

    /// How the console is named in announcements.
    public static let consoleName = "the server operator"
}

extension ChatState {
    /// The most bans, and the most mutes, one room holds (as IRC servers cap ban lists): bounded memory, and
    /// a list an operator can still read.
    public static var maximumRestrictions: Int { 100 }

    // MARK: - Permissions

    /// Server operators operate every room; account operators of a room whenever they are in it; others while
    /// they stay (the creator, and whoever was /op'd without an account).
    func isRoomOperator(_ id: SessionID, in key: String) -> Bool {
        guard let session = sessions[id] else { return false }
        if let account = session.account, serverOperators.contains(account) || policies[key]?.operators.contains(account) == true {
            return true
        }
        return rooms[key]?.operators.contains(id) == true
    }

    /// The ban or mute of `kind` in the room that applies to the session now, if any. Operators are never
    /// held by one.
    func activeRestriction(_ kind: Restriction.Kind, in key: String, on id: SessionID, now: Date) -> Restriction? {
        guard let policy = policies[key], !policy.restrictions.isEmpty, let session = sessions[id],
            !isRoomOperator(id, in: key)
        else { return nil }
        let matching = { (kind: Restriction.Kind) in
            policy.restrictions.first {
                $0.kind == kind && $0.isActive(at: now)
                    && $0.mask.matches(nick: session.nick.display, account: session.account, address: session.address)
            }
        }
        // A ban exception (+e) lets its matches in despite any ban.
        if kind == .ban, matching(.exception) != nil { return nil }
        return matching(kind)
    }

    /// A muted user keeps their nick (or a mute would be one /nick away from lifted), and nobody takes on a
    /// nick banned from a room they are in.
    func checkRestrictions(renaming session: Session, to nick: Nick, now: Date) throws(ChatError) {
        for room in session.rooms {
            if let mute = activeRestriction(.mute, in: room.key, on: session.id, now: now) {
                throw ChatError(.muted, "You cannot change your nickname while muted in \(room)" + Self.remaining(mute, now: now) + ".")
            }
            guard !isRoomOperator(session.id, in: room.key) else { continue }
            let matches = { (kind: Restriction.Kind) in
                policies[room.key]?.restrictions.contains {
                    $0.kind == kind && $0.isActive(at: now) && $0.mask.matches(nick: nick.display, account: session.account, address: session.address)
                } == true
            }
            if matches(.ban) && !matches(.exception) { throw ChatError(.banned, "\(nick) is banned from \(room), which you are in.") }
        }
    }

    func bannedError(_ room: String, _ ban: Restriction, now: Date) -> ChatError {
        ChatError(.banned, "You are banned from \(room)" + Self.remaining(ban, now: now) + (ban.reason.map { ": \($0)" } ?? "."))
    }

    func mutedError(_ room: String, _ mute: Restriction, now: Date) -> ChatError {
        ChatError(.muted, "You are muted in \(room)" + Self.remaining(mute, now: now) + (mute.reason.map { ": \($0)" } ?? "."))
    }

    /// " for 9 more minutes", or nothing when it lasts until lifted.
    private static func remaining(_ restriction: Restriction, now: Date) -> String {
        restriction.until.map { " for \(Durations.describe(seconds: Int($0.timeIntervalSince(now).rounded(.up)))) more" } ?? ""
    }

    // MARK: - Actions

    /// Carries out one moderation action on the room `raw` (which must exist, or have a policy, for the
    /// console). Returns what only the actor should see (the list of bans), if anything.
    public mutating func moderate(
        _ action: Moderation, in raw: String, by actor: Moderator, now: Date
    ) throws(ChatError) -> (reply: ChatEvent?, effects: [Effect<Peer>]) {
        let name = try RoomName(validating: raw)
        guard rooms[name.key] != nil || policies[name.key] != nil else { throw noSuchRoom(name.display) }
        var effects: [Effect<Peer>] = []
        let reply = try moderate(action, in: name, by: actor, now: now, into: &effects)
        return (reply, effects)
    }

    mutating func moderate(
        _ action: Moderation, in name: RoomName, by actor: Moderator, now: Date, into effects: inout [Effect<Peer>]
    ) throws(ChatError) -> ChatEvent? {
        let room = rooms[name.key]?.name.display ?? policies[name.key]?.name ?? name.display
        if case .restrictions = action {
            let active = policies[name.key]?.restrictions.filter { $0.isActive(at: now) } ?? []
            return .restrictions(room: room, active)
        }
        let by: Actor
        let actorPeer: Peer?
        switch actor {
        case .console:
            (by, actorPeer) = (.server, nil)
        case .session(let id):
            guard let session = sessions[id] else { return nil }
            guard isRoomOperator(id, in: name.key) else {
                throw ChatError(.notOperator, "Only operators of \(room) can do that.")
            }
            (by, actorPeer) = (.user(session.nick.display), session.peer)
        }
        let actorName = by.description
        let auditActor = if case .console = actor { "console" } else { actorName }
        var policy = policies[name.key] ?? RoomPolicy(name: room)
        // What the action changed of the room's policy: stored, and told to the other nodes with its notice.
        var persisted: [RoomChange] = []
        func persist(_ changes: [RoomChange], _ action: String, _ target: String, _ detail: String) {
            persisted = changes
            effects.append(.persist(changes, audit: AuditEntry(actor: auditActor, action: action, target: target, detail: "\(room) \(detail)"), actor: actorPeer))
        }
        /// `about`: the session it changes in the room alone (a voice, an operator without an account), which the
        /// other nodes change too.
        func announce(_ notice: ModerationNotice, about target: SessionID? = nil) {
            effects.append(.deliver(.moderation(notice), to: recipients(in: name)))
            replicate(moderation: notice, changes: persisted, in: name, about: target.flatMap { sessions[$0] }, into: &effects)
        }

        /// Imposes a ban, a mute or a ban exception on `raw` (a nick, aimed at its account when logged in, or a mask).
        func restrict(_ kind: Restriction.Kind, _ raw: String, seconds: Int?, reason: String?) throws(ChatError) {
            var mask = try Mask(validating: raw)
            if mask.isPlainNick, let id = nicks[mask.text], let target = sessions[id] {
                if kind != .exception {
                    try checkPower(over: target, actor: actor, room: name)
                    if isRoomOperator(id, in: name.key) {
                        throw ChatError(.notOperator, "\(target.nick) is an operator of \(room), whom bans and mutes do not hold; /deop them first.")
                    }
                }
                // A logged-in user is aimed at by their account, which no rename escapes.
                if let account = target.account, account != mask.text { mask = try Mask(validating: account) }
            }
            let stale = policy.restrictions.filter { $0.kind == kind && ($0.mask == mask || !$0.isActive(at: now)) }
            policy.restrictions.removeAll { $0.kind == kind && ($0.mask == mask || !$0.isActive(at: now)) }
            for old in stale where old.mask != mask {
                effects.append(.persist([.lift(room: room, kind, mask: old.mask)], audit: nil, actor: nil))
            }
            guard policy.restrictions.count(where: { $0.kind == kind }) < Self.maximumRestrictions else {
                throw ChatError(.usage, "\(room) has \(Self.maximumRestrictions) \(kind)s already; lift some first.")
            }
            let reason = cleanReason(reason)
            let restriction = Restriction(
                kind: kind, mask: mask, setBy: actorName, reason: reason, since: now, until: seconds.map { now.addingTimeInterval(Double($0)) }
            )
            policy.restrictions.append(restriction)
            policies[name.key] = policy
            let duration = seconds.map { "for \(Durations.describe(seconds: $0))" } ?? "until lifted"
            persist([.restrict(room: room, restriction)], kind.imposed.rawValue, mask.text, duration + (reason.map { ": \($0)" } ?? ""))
            announce(ModerationNotice(room: room, action: kind.imposed, target: mask.text, by: by, reason: reason, until: restriction.until))
            if kind == .ban, let members = rooms[name.key]?.members {
                // Another node's members are its to remove: it makes the same change (`applyModeration`).
                for id in members where sessions[id]?.peer != nil && activeRestriction(.ban, in: name.key, on: id, now: now) != nil {
                    leave(name, session: id, reason: .kicked(by: by, reason: "banned" + (reason.map { ": \($0)" } ?? "")), into: &effects)
                }
            }
        }

        switch action {
        case .restrictions:
            return nil

        case .kick(let nick, let reason):
            let target = try member(nick, of: name, anyNode: true)
            try checkPower(over: target, actor: actor, room: name)
            let reason = cleanReason(reason)
            persist([], "kick", target.nick.display, reason ?? "")
            if target.peer == nil {
                // Another node's user: their node removes them, and everyone hears it from there.
                replicate(kick: target, from: name, by: by, reason: reason, into: &effects)
            } else {
                leave(name, session: target.id, reason: .kicked(by: by, reason: reason), into: &effects)
            }

        case .ban(let raw, let seconds, let reason), .mute(let raw, let seconds, let reason):
            let kind: Restriction.Kind = if case .ban = action { .ban } else { .mute }
            try restrict(kind, raw, seconds: seconds, reason: reason)
        case .exempt(let raw):
            try restrict(.exception, raw, seconds: nil, reason: nil)

        case .unban(let raw), .unmute(let raw), .unexempt(let raw):
            let kind: Restriction.Kind =
                switch action {
                case .unban: .ban
                case .unmute: .mute
                default: .exception
                }
            let mask = try Mask(validating: raw)
            guard policy.restrictions.contains(where: { $0.kind == kind && $0.mask == mask && $0.isActive(at: now) }) else {
                let what = switch kind {
                case .ban: "banned from"
                case .mute: "muted in"
                case .exception: "exempt from the bans of"
                }
                throw ChatError(.noSuchRestriction, "\(mask) is not \(what) \(room). Type /bans to see the list.")
            }
            policy.restrictions.removeAll { $0.kind == kind && $0.mask == mask }
            policies[name.key] = policy
            persist([.lift(room: room, kind, mask: mask)], kind.lifted.rawValue, mask.text, "")
            announce(ModerationNotice(room: room, action: kind.lifted, target: mask.text, by: by))
            forgetPolicyIfUnused(name.key, into: &effects)

        case .op(let nick):
            let target = try Nick(validating: nick)
            if let id = nicks[target.key], let session = sessions[id], session.rooms.contains(name) {
                guard !isRoomOperator(id, in: name.key) else { throw ChatError(.usage, "\(session.nick) is an operator of \(room) already.") }
                if let account = session.account {
                    policy.operators.insert(account)
                    policies[name.key] = policy
                    persist([.addOperator(room: room, account: account)], "op", session.nick.display, "")
                } else {
                    rooms[name.key]!.operators.insert(id)
                    persist([], "op", session.nick.display, "while in the room")
                }
                announce(ModerationNotice(room: room, action: .op, target: session.nick.display, by: by), about: session.account == nil ? id : nil)
            } else if registered.contains(target.key) {
                // An account can be made an operator while away; it takes effect when they come.
                guard policy.operators.insert(target.key).inserted else { throw ChatError(.usage, "\(target) is an operator of \(room) already.") }
                policies[name.key] = policy
                persist([.addOperator(room: room, account: target.key)], "op", target.display, "")
                announce(ModerationNotice(room: room, action: .op, target: target.display, by: by))
            } else if let id = nicks[target.key], let session = sessions[id] {
                throw ChatError(.userNotInRoom, "\(session.nick) is not in \(room) and has no account.")
            } else {
                throw ChatError(.noSuchNick, "\(target) is not in \(room) and has no account.")
            }

        case .deop(let nick):
            let target = try Nick(validating: nick)
            let id = nicks[target.key]
            let account = id.flatMap { sessions[$0]?.account } ?? target.key
            let shown = id.flatMap { sessions[$0]?.nick.display } ?? target.display
            if serverOperators.contains(account) {
                throw ChatError(.notOperator, "\(shown) is a server operator; only `parley account deop` changes that.")
            }
            let wasSessionOperator = id.map { rooms[name.key]?.operators.remove($0) != nil } ?? false
            let wasAccountOperator = policy.operators.remove(account) != nil
            guard wasSessionOperator || wasAccountOperator else { throw ChatError(.usage, "\(shown) is not an operator of \(room).") }
            policies[name.key] = policy
            persist(wasAccountOperator ? [.removeOperator(room: room, account: account)] : [], "deop", shown, "")
            announce(ModerationNotice(room: room, action: .deop, target: shown, by: by), about: wasSessionOperator ? id : nil)
            forgetPolicyIfUnused(name.key, into: &effects)

        case .topicLock(let locked):
            guard policy.topicLocked != locked else {
                throw ChatError(.usage, "The topic of \(room) is \(locked ? "locked" : "unlocked") already.")
            }
            policy.topicLocked = locked
            policies[name.key] = policy
            persist([.topicLock(room: room, locked)], locked ? "topic_lock" : "topic_unlock", room, "")
            announce(ModerationNotice(room: room, action: locked ? .topicLock : .topicUnlock, target: "", by: by))
            forgetPolicyIfUnused(name.key, into: &effects)

        case .modes(let on, let off):
            let before = policy.modes.union(policy.topicLocked ? .topicLocked : [])
            let after = before.union(on).subtracting(off)
            // Setting what is set already is no change, and says nothing (IRC servers answer a no-op MODE so).
            guard after != before else { return nil }
            policy.topicLocked = after.contains(.topicLocked)
            policy.modes = after.subtracting(.topicLocked)
            policies[name.key] = policy
            var changes: [RoomChange] = []
            if before.contains(.topicLocked) != after.contains(.topicLocked) { changes.append(.topicLock(room: room, policy.topicLocked)) }
            if before.subtracting(.topicLocked) != policy.modes { changes.append(.modes(room: room, policy.modes)) }
            let added = after.subtracting(before).letters, removed = before.subtracting(after).letters
            let change = (added.isEmpty ? "" : "+" + added) + (removed.isEmpty ? "" : "-" + removed)
            persist(changes, "modes", room, change)
            announce(ModerationNotice(room: room, action: .modes, target: change, by: by))
            forgetPolicyIfUnused(name.key, into: &effects)

        case .limit(let limit):
            if let limit, !(1...Self.maximumRoomLimit).contains(limit) {
                throw ChatError(.usage, "A member limit is a number from 1 to \(Self.maximumRoomLimit).")
            }
            guard policy.limit != limit else { return nil }
            policy.limit = limit
            policies[name.key] = policy
            persist([.limit(room: room, limit)], limit == nil ? "unlimit" : "limit", room, limit.map(String.init) ?? "")
            announce(ModerationNotice(room: room, action: limit == nil ? .unlimit : .limit, target: limit.map(String.init) ?? "", by: by))
            forgetPolicyIfUnused(name.key, into: &effects)

        case .voice(let nick), .devoice(let nick):
            let target = try member(nick, of: name, anyNode: true)
            let voicing = if case .voice = action { true } else { false }
            guard rooms[name.key]?.voiced.contains(target.id) != voicing else {
                throw ChatError(.usage, "\(target.nick) \(voicing ? "has a voice" : "has no voice") in \(room) already.")
            }
            if voicing { rooms[name.key]?.voiced.insert(target.id) } else { rooms[name.key]?.voiced.remove(target.id) }
            persist([], voicing ? "voice" : "devoice", target.nick.display, "")
            announce(ModerationNotice(room: room, action: voicing ? .voice : .devoice, target: target.nick.display, by: by), about: target.id)

        case .key(let raw):
            let key = raw.map { String(Sanitizer.trimmed(Sanitizer.text($0))) }.flatMap { $0.isEmpty ? nil : $0 }
            if let key, key.count > Self.maximumKeyLength || key.contains(" ") || key.contains(",") {
                throw ChatError(.usage, "A key is one word of at most \(Self.maximumKeyLength) characters, without commas.")
            }
            guard policy.key != key else { throw ChatError(.usage, key == nil ? "\(room) has no key." : "\(room) has that key already.") }
            policy.key = key
            policies[name.key] = policy
            persist([.key(room: room, key)], key == nil ? "unkey" : "key", room, "")
            announce(ModerationNotice(room: room, action: key == nil ? .unkey : .key, target: key ?? "", by: by))
            forgetPolicyIfUnused(name.key, into: &effects)
        }
        return nil
    }

    /// Bans and mutes that have run out are lifted and announced (also when nobody is in the room: the store
    /// must forget them).
    public mutating func expireRestrictions(now: Date) -> [Effect<Peer>] {
        var effects: [Effect<Peer>] = []
        for (key, var policy) in policies where policy.restrictions.contains(where: { !$0.isActive(at: now) }) {
            let expired = policy.restrictions.filter { !$0.isActive(at: now) }
            policy.restrictions.removeAll { !$0.isActive(at: now) }
            policies[key] = policy
            let name = (try? RoomName(validating: policy.name)) ?? .general
            for restriction in expired {
                effects.append(.persist([.lift(room: policy.name, restriction.kind, mask: restriction.mask)], audit: nil, actor: nil))
                let action: ModerationNotice.Action = restriction.kind == .ban ? .unban : .unmute
                effects.append(.deliver(.moderation(ModerationNotice(room: policy.name, action: action, target: restriction.mask.text, by: nil)), to: recipients(in: name)))
            }
            forgetPolicyIfUnused(key, into: &effects)
        }
        return effects
    }

    /// What the store kept: room policies, loaded at start (before anyone connects).
    public mutating func setRoomPolicies(_ loaded: [RoomPolicy]) {
        for policy in loaded {
            guard let name = try? RoomName(validating: policy.name) else { continue }
            policies[name.key] = policy
        }
    }

    // MARK: - Building blocks

    /// A member of the room; of this node only, unless `anyNode`.
    private func member(_ raw: String, of room: RoomName, anyNode: Bool = false) throws(ChatError) -> Session {
        let target = try session(named: raw)
        guard target.rooms.contains(room) else { throw ChatError(.userNotInRoom, "\(target.nick) is not in \(room).") }
        guard anyNode || target.peer != nil else { throw onAnotherNode(target) }
        return target
    }

    /// Room operators can act on anyone but server operators; the console and server operators on anyone.
    private func checkPower(over target: Session, actor: Moderator, room: RoomName) throws(ChatError) {
        guard case .session(let id) = actor, let account = target.account, serverOperators.contains(account),
            !(sessions[id]?.account.map(serverOperators.contains) ?? false)
        else { return }
        throw ChatError(.notOperator, "\(target.nick) is a server operator.")
    }
}
