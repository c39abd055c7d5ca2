import Foundation
import ParleyCore
import Testing

extension Chat {
    /// Registers a user with an account and an address (the plain `register` has neither).
    mutating func register(_ nick: String, _ peer: Int, account: String?, address: String = "") throws {
        let (id, _) = try state.register(nick: nick, peer: peer, account: account, address: address, now: Self.now)
        ids[peer] = id
    }

    mutating func moderate(_ peer: Int, _ action: Moderation, in room: String? = nil, at time: Date = Chat.now) -> [Effect<Int>] {
        state.handle(.moderate(room: room, action), ref: nil, from: ids[peer]!, now: time)
    }

    /// Every moderation notice delivered, with its recipients.
    func notices(_ effects: [Effect<Int>]) -> [(ModerationNotice, [Int])] {
        effects.compactMap { effect in
            if case .deliver(.moderation(let notice), let recipients) = effect { return (notice, recipients.map(\.peer)) }
            return nil
        }
    }
}

@Suite("Moderation")
struct ModerationTests {
    /// alice creates #dev (so operates it), bob and carol join it.
    func devRoom(aliceAccount: String? = nil) throws -> Chat {
        var chat = try Chat()
        try chat.register("alice", 1, account: aliceAccount, address: "10.0.0.1")
        try chat.register("bob", 2, account: nil, address: "10.0.0.2")
        try chat.register("carol", 3, account: nil, address: "10.0.0.3")
        for peer in 1...3 { chat.handle(peer, .join("#dev")) }
        return chat
    }

    @Test("the creator of a room operates it; others are refused with not_operator")
    func creatorIsOperator() throws {
        var chat = try devRoom()
        #expect(chat.moderate(2, .kick(nick: "carol", reason: nil)).error?.code == .notOperator)
        let kick = chat.moderate(1, .kick(nick: "carol", reason: "off topic"))
        #expect(kick.error == nil)
        #expect(kick.steps.contains(.deliver(.left(room: "#dev", nick: "carol", reason: .kicked(by: .user("alice"), reason: "off topic")), to: [1, 2, 3])))
        #expect(kick.audits == [AuditEntry(actor: "alice", action: "kick", target: "carol", detail: "#dev off topic")])
        #expect(try chat.state.nicks(in: "#dev") == ["alice", "bob"])
        // A kick is not a ban: carol may come back.
        #expect(chat.handle(3, .join("#dev")).error == nil)
    }

    @Test("a logged-in creator owns the room for good: the operator is stored with the account")
    func loggedInCreator() throws {
        var chat = try Chat()
        try chat.register("alice", 1, account: "alice")
        let join = chat.handle(1, .join("#dev"))
        #expect(join.changes == [.addOperator(room: "#dev", account: "alice")])
        // Leaving and coming back (a reconnect) keeps it; the room's policy outlives its members.
        chat.handle(1, .part(room: "#dev", reason: nil))
        try chat.register("bob", 2, account: nil)
        chat.handle(2, .join("#dev"))
        #expect(chat.moderate(2, .topicLock(true), in: "#dev").error?.code == .notOperator)
        chat.handle(1, .join("#dev"))
        #expect(chat.moderate(1, .topicLock(true), in: "#dev").error == nil)
    }

    @Test("a ban removes matching members, keeps them out, is stored and audited, and runs out")
    func banAndExpiry() throws {
        var chat = try devRoom()
        let ban = chat.moderate(1, .ban(mask: "bob", seconds: 600, reason: "spam"), in: "#dev")
        #expect(ban.error == nil)
        let until = Chat.now.addingTimeInterval(600)
        let notice = ModerationNotice(room: "#dev", action: .ban, target: "bob", by: .user("alice"), reason: "spam", until: until)
        #expect(chat.notices(ban).map(\.0) == [notice])
        #expect(ban.steps.contains(.deliver(.left(room: "#dev", nick: "bob", reason: .kicked(by: .user("alice"), reason: "banned: spam")), to: [1, 2, 3])))
        guard case .restrict(room: "#dev", let stored)? = ban.changes.first else {
            Issue.record("the ban was not stored")
            return
        }
        #expect(stored.mask.text == "bob" && stored.until == until && stored.setBy == "alice")
        #expect(ban.audits.first?.action == "ban")

        let refused = chat.state.handle(.join("#dev"), ref: nil, from: chat.ids[2]!, now: Chat.now.addingTimeInterval(60))
        #expect(refused.error?.code == .banned)
        #expect(refused.error?.message == "You are banned from #dev for 9 minutes more: spam")

        // Running out: announced, lifted in the store, and bob can join again.
        #expect(chat.state.expireRestrictions(now: Chat.now.addingTimeInterval(599)).isEmpty)
        let expiry = chat.state.expireRestrictions(now: until)
        #expect(expiry.changes == [.lift(room: "#dev", .ban, mask: try Mask(validating: "bob"))])
        #expect(chat.notices(expiry).map(\.0) == [ModerationNotice(room: "#dev", action: .unban, target: "bob", by: nil)])
        #expect(chat.state.handle(.join("#dev"), ref: nil, from: chat.ids[2]!, now: until).error == nil)
    }

    @Test("a ban exception lets its matches in despite a ban, keeps them in when the ban comes, lets them rename; lifting it bans them again")
    func banExceptions() throws {
        var chat = try devRoom()
        #expect(chat.moderate(2, .exempt(mask: "bob"), in: "#dev").error?.code == .notOperator)
        let exempt = chat.moderate(1, .exempt(mask: "b*"), in: "#dev")
        #expect(chat.notices(exempt).map(\.0) == [ModerationNotice(room: "#dev", action: .exempt, target: "b*", by: .user("alice"))])
        #expect(exempt.audits.map(\.action) == ["exempt"])
        // A ban on everyone: bob stays, carol goes.
        chat.moderate(1, .ban(mask: "*", seconds: nil, reason: nil), in: "#dev")
        #expect(try chat.state.nicks(in: "#dev") == ["alice", "bob"])
        #expect(chat.handle(3, .join("#dev")).error?.code == .banned)
        // Renaming to a banned nick is refused only where no exception holds.
        #expect(chat.handle(2, .nick("bobby")).error == nil)
        let listed = chat.moderate(1, .restrictions, in: "#dev")
        guard case .deliver(.restrictions(_, let entries, _), _)? = listed.last else {
            Issue.record("no list")
            return
        }
        #expect(entries.map(\.kind) == [.exception, .ban])
        #expect(chat.moderate(1, .unexempt(mask: "x*"), in: "#dev").error?.code == .noSuchRestriction)
        let lifted = chat.moderate(1, .unexempt(mask: "b*"), in: "#dev")
        #expect(chat.notices(lifted).map(\.0.action) == [.unexempt])
        chat.handle(2, .part(room: "#dev", reason: nil))
        #expect(chat.handle(2, .join("#dev")).error?.code == .banned)
    }

    @Test("masks: wildcards, addresses, and accounts that changed nick")
    func masks() throws {
        var chat = try devRoom()
        try chat.register("guest7", 4, account: nil, address: "10.9.9.9")
        try chat.register("dave", 5, account: "dave", address: "10.0.0.5")
        #expect(chat.moderate(1, .ban(mask: "guest*", seconds: nil, reason: nil), in: "#dev").error == nil)
        #expect(chat.handle(4, .join("#dev")).error?.code == .banned)
        #expect(chat.moderate(1, .ban(mask: "*@10.0.0.3", seconds: nil, reason: nil), in: "#dev").error == nil)
        #expect(try chat.state.nicks(in: "#dev") == ["alice", "bob"], "carol's address is banned")
        // A logged-in user who renamed is still matched by the account's name.
        chat.handle(5, .nick("dave_away"))
        #expect(chat.moderate(1, .ban(mask: "dave", seconds: nil, reason: nil), in: "#dev").error == nil)
        #expect(chat.handle(5, .join("#dev")).error?.code == .banned)
        // Nobody in the room takes a banned nick.
        #expect(chat.handle(2, .nick("guest1")).error?.code == .banned)

        let list = chat.moderate(2, .restrictions, in: "#dev")
        guard case .deliver(.restrictions(room: "#dev", let entries, _), to: _)? = list.last else {
            Issue.record("no list")
            return
        }
        #expect(entries.map(\.mask.text) == ["guest*", "*@10.0.0.3", "dave"])

        #expect(chat.moderate(1, .unban(mask: "GUEST*"), in: "#dev").error == nil)
        #expect(chat.handle(4, .join("#dev")).error == nil)
        #expect(chat.moderate(1, .unban(mask: "nobody"), in: "#dev").error?.code == .noSuchRestriction)
        #expect(chat.moderate(1, .ban(mask: "bad mask!", seconds: nil, reason: nil), in: "#dev").error?.code == .usage)
    }

    @Test("a muted member stays and reads but cannot speak or rename there; unmute lifts it")
    func mute() throws {
        var chat = try devRoom()
        #expect(chat.moderate(1, .mute(mask: "bob", seconds: 120, reason: nil), in: "#dev").error == nil)
        let said = chat.handle(2, .say(room: "#dev", text: "hello?", kind: .normal))
        #expect(said.error?.code == .muted)
        #expect(said.records.isEmpty)
        #expect(chat.handle(2, .say(room: "#general", text: "still fine here", kind: .normal)).error == nil)
        #expect(chat.handle(2, .nick("bobby")).error?.code == .muted)
        #expect(chat.handle(3, .say(room: "#dev", text: "carol is not muted", kind: .normal)).error == nil)
        #expect(chat.moderate(1, .unmute(mask: "bob"), in: "#dev").error == nil)
        #expect(chat.handle(2, .say(room: "#dev", text: "thanks", kind: .normal)).error == nil)
    }

    @Test("/op and /deop: for the session without an account, stored with one; operators are not banned or muted")
    func opAndDeop() throws {
        var chat = try devRoom()
        let op = chat.moderate(1, .op(nick: "bob"), in: "#dev")
        #expect(chat.notices(op).map(\.0) == [ModerationNotice(room: "#dev", action: .op, target: "bob", by: .user("alice"))])
        #expect(op.changes.isEmpty, "bob has no account: operator while he stays")
        #expect(chat.moderate(2, .topicLock(true), in: "#dev").error == nil)
        #expect(chat.moderate(1, .mute(mask: "bob", seconds: nil, reason: nil), in: "#dev").error?.code == .notOperator)
        #expect(chat.moderate(1, .deop(nick: "bob"), in: "#dev").error == nil)
        #expect(chat.moderate(2, .topicLock(false), in: "#dev").error?.code == .notOperator)
        #expect(chat.moderate(1, .deop(nick: "bob"), in: "#dev").error?.code == .usage)

        try chat.register("dave", 4, account: "dave")
        chat.state.setAccounts([Account(name: "dave", credential: Credential(hash: [], salt: [], parameters: ""))])
        chat.handle(4, .join("#dev"))
        #expect(chat.moderate(1, .op(nick: "dave"), in: "#dev").changes == [.addOperator(room: "#dev", account: "dave")])
        #expect(chat.moderate(1, .deop(nick: "dave"), in: "#dev").changes == [.removeOperator(room: "#dev", account: "dave")])
    }

    @Test("server operators operate every room and cannot be kicked or deopped by room operators")
    func serverOperators() throws {
        var chat = try devRoom()
        try chat.register("root", 4, account: "root")
        chat.state.setAccounts([Account(name: "root", credential: Credential(hash: [], salt: [], parameters: ""), isOperator: true)])
        chat.handle(4, .join("#dev"))
        #expect(chat.moderate(4, .kick(nick: "alice", reason: nil), in: "#dev").error == nil)
        chat.handle(1, .join("#dev"))
        #expect(chat.moderate(4, .op(nick: "alice"), in: "#dev").error == nil)
        #expect(chat.moderate(1, .kick(nick: "root", reason: nil), in: "#dev").error?.code == .notOperator)
        #expect(chat.moderate(1, .deop(nick: "root"), in: "#dev").error?.code == .notOperator)
        // #general has no creator: only server operators (and the console) moderate it at first.
        #expect(chat.moderate(4, .topicLock(true), in: "#general").error == nil)
        #expect(chat.moderate(1, .topicLock(false), in: "#general").error?.code == .notOperator)
    }

    @Test("a locked topic can be changed by operators only")
    func topicLock() throws {
        var chat = try devRoom()
        #expect(chat.moderate(1, .topicLock(true), in: "#dev").changes == [.topicLock(room: "#dev", true)])
        #expect(chat.handle(2, .topic(room: "#dev", text: "mine now")).error?.code == .notOperator)
        let set = chat.handle(1, .topic(room: "#dev", text: "release on Friday"))
        #expect(set.error == nil)
        #expect(set.changes == [.topic(room: "#dev", text: "release on Friday", setBy: "alice", setAt: Chat.now)])
    }

    @Test("the console moderates any room, even one nobody is in, and its bans hold from the start")
    func console() throws {
        var chat = try Chat(users: ["alice"])
        #expect(throws: ChatError.self) { try chat.state.moderate(.topicLock(true), in: "#nowhere", by: .console, now: Chat.now) }
        let (_, effects) = try chat.state.moderate(.ban(mask: "alice", seconds: nil, reason: nil), in: "#general", by: .console, now: Chat.now)
        #expect(effects.audits.first?.actor == "console")
        #expect(try chat.state.nicks(in: "#general") == [])
        let (reply, _) = try chat.state.moderate(.restrictions, in: "#general", by: .console, now: Chat.now)
        guard case .restrictions(_, let list, _)? = reply else {
            Issue.record("no list")
            return
        }
        #expect(list.map(\.setBy) == [Moderator.consoleName])
    }

    @Test("stored policies load at start: bans keep people out of rooms that do not exist yet")
    func loadedPolicies() throws {
        var chat = try Chat()
        var policy = RoomPolicy(name: "#Dev")
        policy.restrictions = [Restriction(kind: .ban, mask: try Mask(validating: "bob"), setBy: "alice", reason: nil, since: Chat.now, until: nil)]
        policy.topic = "kept"
        chat.state.setRoomPolicies([policy])
        try chat.register("bob", 2)
        try chat.register("carol", 3)
        #expect(chat.handle(2, .join("#dev")).error?.code == .banned)
        let join = chat.handle(3, .join("#dev"))
        #expect(join.steps.contains(.deliver(.joined(room: "#Dev", nick: "carol"), to: [3])), "the stored spelling")
        #expect(join.steps.contains(.deliver(.topic(room: "#Dev", text: "kept", setBy: nil), to: [3])))
    }

    @Test("an empty room keeps nothing unless it has an owner, a lock, bans or mutes")
    func forgetting() throws {
        var chat = try Chat(users: ["alice"])
        chat.handle(1, .join("#tmp"))
        chat.handle(1, .topic(room: "#tmp", text: "scratch"))
        let part = chat.handle(1, .part(room: "#tmp", reason: nil))
        #expect(part.changes == [.forget(room: "#tmp")])
        let again = chat.handle(1, .join("#tmp"))
        let topicDelivered = again.steps.contains { if case .deliver(.topic, _) = $0 { true } else { false } }
        #expect(!topicDelivered)
    }

    @Test("glob matching and durations")
    func globAndDurations() throws {
        let mask = try Mask(validating: "Gu?st*@10.0.*")
        #expect(mask.text == "gu?st*@10.0.*")
        #expect(mask.matches(nick: "Guest42", account: nil, address: "10.0.3.4"))
        #expect(!mask.matches(nick: "Guest42", account: nil, address: "10.1.3.4"))
        #expect(!mask.matches(nick: "gust", account: nil, address: "10.0.3.4"))
        #expect(try Mask(validating: "*a*a*a*a*b").matches(nick: String(repeating: "a", count: 24), account: nil, address: "") == false)
        #expect(try Mask(validating: "bob").isPlainNick)
        #expect(throws: ChatError.self) { try Mask(validating: "@host") }
        #expect(throws: ChatError.self) { try Mask(validating: "bob@") }
        #expect(Durations.seconds(parsing: "90s") == 90)
        #expect(Durations.seconds(parsing: "10m") == 600)
        #expect(Durations.seconds(parsing: "10") == 600)
        #expect(Durations.seconds(parsing: "2h") == 7200)
        #expect(Durations.seconds(parsing: "7d") == 604_800)
        #expect(Durations.seconds(parsing: "0m") == nil)
        #expect(Durations.seconds(parsing: "spam") == nil)
        #expect(Durations.seconds(parsing: "99999d") == nil)
        #expect(Durations.describe(seconds: 7200) == "2 hours")
        #expect(Durations.describe(seconds: 61) == "1 minute")
    }

    @Test("text commands: an optional #room first, a duration second when it reads as one")
    func textCommands() throws {
        #expect(try TextCommands.request(forLine: "/ban bob 10m spamming links") == .moderate(room: nil, .ban(mask: "bob", seconds: 600, reason: "spamming links")))
        #expect(try TextCommands.request(forLine: "/ban #dev bob spamming") == .moderate(room: "#dev", .ban(mask: "bob", seconds: nil, reason: "spamming")))
        #expect(try TextCommands.request(forLine: "/kick bob") == .moderate(room: nil, .kick(nick: "bob", reason: nil)))
        #expect(try TextCommands.request(forLine: "/topiclock on") == .moderate(room: nil, .topicLock(true)))
        #expect(try TextCommands.request(forLine: "/bans") == .moderate(room: nil, .restrictions))
        #expect(throws: ChatError.self) { try TextCommands.request(forLine: "/op") }
        #expect(throws: ChatError.self) { try TextCommands.request(forLine: "/topiclock maybe") }
    }

    // MARK: Holes a review found

    static let credential = Credential(hash: [], salt: [], parameters: "")

    @Test("a room nobody owns forgets everything when it empties, so rooms cannot pile up in memory or on disk")
    func unownedRoomsAreFleeting() throws {
        var chat = try Chat()
        try chat.register("mallory", 1, account: nil)
        for index in 0..<3 {
            chat.handle(1, .join("#r\(index)"))
            _ = chat.moderate(1, .topicLock(true), in: "#r\(index)")
            #expect(chat.handle(1, .part(room: "#r\(index)", reason: nil)).changes == [.forget(room: "#r\(index)")])
        }
        try chat.register("bob", 2, account: nil)
        chat.handle(2, .join("#r0"))
        #expect(chat.moderate(2, .topicLock(true), in: "#r0").error == nil, "a fresh room: its creator operates it")
    }

    @Test("the muted cannot speak through the topic")
    func mutedTopic() throws {
        var chat = try devRoom()
        _ = chat.moderate(1, .mute(mask: "bob", seconds: nil, reason: nil), in: "#dev")
        #expect(chat.handle(2, .topic(room: "#dev", text: "SPAM")).error?.code == .muted)
    }

    @Test("logging in renames past mutes, tells everyone about the squatter's rename, and applies the account's bans")
    func loginIsNotANickChange() throws {
        var chat = try Chat()
        try chat.register("alice", 1, account: nil)
        chat.state.setAccounts([Account(name: "alice", credential: Self.credential), Account(name: "eve", credential: Self.credential)])
        try chat.register("x", 2, account: nil)
        try chat.register("op", 3, account: nil)
        chat.handle(3, .join("#m"))
        chat.handle(2, .join("#m"))
        chat.handle(1, .join("#m"))
        _ = chat.moderate(3, .mute(mask: "x", seconds: 60, reason: nil), in: "#m")
        _ = chat.moderate(3, .mute(mask: "alice", seconds: 60, reason: nil), in: "#m")
        let login = chat.state.authenticate(chat.ids[2]!, as: Account(name: "alice", credential: Self.credential), now: Chat.now)
        #expect(chat.state.nick(of: chat.ids[2]!) == "alice")
        let guest = try #require(chat.state.nick(of: chat.ids[1]!))
        #expect(guest.hasPrefix("Guest"))
        #expect(Set(login.recipients(of: .nickChanged(from: "alice", to: guest)).map(\.peer)) == [1, 2, 3])

        _ = chat.moderate(3, .ban(mask: "eve", seconds: nil, reason: nil), in: "#m")
        try chat.register("e2", 4, account: nil)
        chat.handle(4, .join("#m"))
        let eve = chat.state.authenticate(chat.ids[4]!, as: Account(name: "eve", credential: Self.credential), now: Chat.now)
        #expect(eve.steps.contains { if case .deliver(.left(room: "#m", nick: "eve", reason: _), to: _) = $0 { true } else { false } })
        #expect(chat.state.rooms(of: chat.ids[4]!) == ["#general"])
    }

    @Test("banning the nick of a logged-in user bans their account, which no rename escapes")
    func banByAccount() throws {
        var chat = try devRoom()
        chat.state.setAccounts([Account(name: "eve", credential: Self.credential)])
        try chat.register("eve", 4, account: "eve")
        chat.handle(4, .join("#dev"))
        chat.handle(4, .nick("ev"))
        let ban = chat.moderate(1, .ban(mask: "ev", seconds: nil, reason: nil), in: "#dev")
        #expect(chat.notices(ban).first?.0.target == "eve")
        chat.handle(4, .nick("eve"))
        #expect(chat.handle(4, .join("#dev")).error?.code == .banned)
    }

    @Test("a new ban that clears run-out ones lifts them in the store too")
    func staleBansLifted() throws {
        var chat = try devRoom()
        _ = chat.moderate(1, .ban(mask: "old", seconds: 1, reason: nil), in: "#dev")
        let later = chat.moderate(1, .ban(mask: "new", seconds: nil, reason: nil), in: "#dev", at: Chat.now.addingTimeInterval(5))
        #expect(later.changes.contains(.lift(room: "#dev", .ban, mask: try Mask(validating: "old"))))
    }
}
