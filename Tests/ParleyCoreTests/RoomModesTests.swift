import Foundation
@testable import ParleyCore
import Testing

extension Chat {
    /// Registers a user who starts in no room (as an IRC client does), so that they share none with anyone.
    mutating func registerInNoRoom(_ nick: String, _ peer: Int) throws {
        let (id, _) = try state.register(nick: nick, peer: peer, joiningGeneral: false, now: Self.now)
        ids[peer] = id
    }
}

extension Array where Element == Effect<Int> {
    /// The rooms of the only `rooms` event delivered, by name.
    var listedRooms: [String]? {
        for case .deliver(.rooms(let rooms), _) in self { return rooms.map(\.name) }
        return nil
    }

    /// The profile of the only `whois` answer delivered.
    var whoisProfile: Profile? {
        for case .deliver(.whois(_, let profile), _) in self { return profile }
        return nil
    }

    /// The nicks of the only `whoList` answer delivered.
    var whoNicks: [String]? {
        for case .deliver(.whoList(_, let profiles, _), _) in self { return profiles.map(\.nick) }
        return nil
    }
}

/// Room modes i, m, n, s (t is the topic lock), invitations and voice, WHO masks and invisibility, and
/// client-only tags, as the chat state applies them.
@Suite("Room modes")
struct RoomModesTests {
    /// alice (1) creates #dev and so operates it; the users after her join it too.
    func devRoom(_ members: [String] = ["alice", "carol"], others: [String] = ["bob"]) throws -> Chat {
        var chat = try Chat()
        for (index, nick) in (members + others).enumerated() { try chat.register(nick, index + 1) }
        for peer in 1...members.count { #expect(chat.handle(peer, .join("#dev")).error == nil) }
        return chat
    }

    static func modes(on: RoomModes = [], off: RoomModes = []) -> Moderation { .modes(on: on, off: off) }

    @Test("+i: a join is refused (invite_only) until an operator invites; a member who is no operator cannot; the invitation is used up")
    func inviteOnly() throws {
        var chat = try devRoom()  // alice 1 (operator), carol 2 (member), bob 3 (outside)
        let set = chat.moderate(1, Self.modes(on: .inviteOnly), in: "#dev")
        #expect(set.error == nil)
        #expect(chat.notices(set).map(\.0) == [ModerationNotice(room: "#dev", action: .modes, target: "+i", by: .user("alice"))])
        #expect(set.changes == [.modes(room: "#dev", [.inviteOnly, .membersOnly])])

        #expect(chat.handle(3, .join("#dev")).error?.code == .inviteOnly)
        #expect(chat.handle(2, .invite(nick: "bob", room: "#dev")).error?.code == .notOperator)
        #expect(chat.handle(3, .join("#dev")).error?.code == .inviteOnly)

        let invite = chat.handle(1, .invite(nick: "bob", room: "#dev"))
        #expect(
            invite.steps == [
                .deliver(.invited(room: "#dev", nick: "bob", by: "alice"), to: [3]),
                .deliver(.inviting(room: "#dev", nick: "bob"), to: [1]),
            ]
        )
        #expect(chat.handle(3, .join("#dev")).error == nil)
        #expect(try chat.state.nicks(in: "#dev") == ["alice", "bob", "carol"])
        // Inviting someone who is in already: already_in_room.
        #expect(chat.handle(1, .invite(nick: "bob", room: "#dev")).error?.code == .alreadyInRoom)

        // Used up: once out, bob needs another invitation.
        chat.handle(3, .part(room: "#dev", reason: nil))
        #expect(chat.handle(3, .join("#dev")).error?.code == .inviteOnly)
        // -i opens the room again.
        #expect(chat.moderate(1, Self.modes(off: .inviteOnly), in: "#dev").error == nil)
        #expect(chat.handle(3, .join("#dev")).error == nil)
    }

    @Test("an invitation to a room without +i is only a message: anyone in the room may send it")
    func inviteToOpenRoom() throws {
        var chat = try devRoom()
        let invite = chat.handle(2, .invite(nick: "bob", room: "#dev"))
        #expect(invite.error == nil)
        #expect(invite.steps.first == .deliver(.invited(room: "#dev", nick: "bob", by: "carol"), to: [3]))
        // One must be in the room to invite to it.
        #expect(chat.handle(3, .invite(nick: "carol", room: "#dev")).error?.code == .notInRoom)
        #expect(chat.handle(1, .invite(nick: "nobody", room: "#dev")).error?.code == .noSuchNick)
    }

    @Test("+m: a member without a voice is refused (muted); operators speak; +v lets them, -v stops them again")
    func moderated() throws {
        var chat = try devRoom()
        #expect(chat.moderate(1, Self.modes(on: .moderated), in: "#dev").error == nil)
        let refused = chat.handle(2, .say(room: "#dev", text: "hello?", kind: .normal))
        #expect(refused.error?.code == .muted)
        #expect(refused.records.isEmpty)
        #expect(chat.handle(1, .say(room: "#dev", text: "operators speak", kind: .normal)).error == nil)

        let voice = chat.moderate(1, .voice(nick: "carol"), in: "#dev")
        #expect(chat.notices(voice).map(\.0) == [ModerationNotice(room: "#dev", action: .voice, target: "carol", by: .user("alice"))])
        let spoken = chat.handle(2, .say(room: "#dev", text: "thanks", kind: .normal))
        #expect(spoken.error == nil)
        #expect(spoken.message?.text == "thanks")
        // The voice shows in the member list and in WHOIS.
        #expect(chat.handle(1, .who(room: "#dev")).steps.first == .deliver(.members(room: "#dev", nicks: ["alice", "carol"], operators: ["alice"], voiced: ["carol"]), to: [1]))
        #expect(chat.handle(1, .whois("carol")).whoisProfile?.rooms.first { $0.name == "#dev" }?.isVoiced == true)
        // Voicing twice is a usage error; a non-operator cannot voice.
        #expect(chat.moderate(1, .voice(nick: "carol"), in: "#dev").error?.code == .usage)
        #expect(chat.moderate(2, .voice(nick: "carol"), in: "#dev").error?.code == .notOperator)

        #expect(chat.moderate(1, .devoice(nick: "carol"), in: "#dev").error == nil)
        #expect(chat.handle(2, .say(room: "#dev", text: "again?", kind: .normal)).error?.code == .muted)
        // A voice lasts while one stays: leaving and coming back loses it.
        _ = chat.moderate(1, .voice(nick: "carol"), in: "#dev")
        chat.handle(2, .part(room: "#dev", reason: nil))
        chat.handle(2, .join("#dev"))
        #expect(chat.handle(2, .say(room: "#dev", text: "still?", kind: .normal)).error?.code == .muted)
    }

    @Test("-n: someone outside the room may send to it; with n (the default) they may not")
    func membersOnly() throws {
        var chat = try devRoom()  // bob (3) is outside #dev
        #expect(chat.handle(3, .say(room: "#dev", text: "knock knock", kind: .normal)).error?.code == .notInRoom)
        #expect(chat.moderate(1, Self.modes(off: .membersOnly), in: "#dev").error == nil)
        let outside = chat.handle(3, .say(room: "#dev", text: "from outside", kind: .normal))
        #expect(outside.error == nil)
        let message = try #require(outside.message)
        #expect(message.target == .room("#dev") && message.from == "bob")
        #expect(outside.recipients(of: .message(message)).map(\.peer) == [1, 2])
        #expect(outside.records.count == 1)
        // Still not in a room that does not exist, nor from someone banned.
        #expect(chat.handle(3, .say(room: "#nowhere", text: "x", kind: .normal)).error?.code == .noSuchRoom)
        #expect(chat.moderate(1, .ban(mask: "bob", seconds: nil, reason: nil), in: "#dev").error == nil)
        #expect(chat.handle(3, .say(room: "#dev", text: "banned", kind: .normal)).error?.code == .notInRoom)
    }

    @Test("+s: the room is hidden from the room list and WHOIS of those outside it, shown to those in it")
    func secret() throws {
        var chat = try devRoom()  // alice 1 and carol 2 in #dev, bob 3 outside
        #expect(chat.handle(3, .rooms(matching: [])).listedRooms?.contains("#dev") == true)
        #expect(chat.moderate(1, Self.modes(on: .secret), in: "#dev").error == nil)

        #expect(chat.handle(3, .rooms(matching: [])).listedRooms == ["#general"])
        #expect(chat.handle(3, .rooms(matching: ["#dev"])).listedRooms == [])
        #expect(chat.handle(2, .rooms(matching: [])).listedRooms == ["#dev", "#general"])

        let outsider = try #require(chat.handle(3, .whois("alice")).whoisProfile)
        #expect(outsider.rooms.map(\.name) == ["#general"])
        let insider = try #require(chat.handle(2, .whois("alice")).whoisProfile)
        #expect(insider.rooms.map(\.name) == ["#general", "#dev"])
        // WHO of the room: nobody, for those outside; the member list marks it secret.
        #expect(chat.handle(3, .lookup("#dev")).whoNicks == [])
        #expect(chat.handle(2, .lookup("#dev")).whoNicks == ["alice", "carol"])
        #expect(chat.handle(2, .who(room: "#dev")).steps.first == .deliver(.members(room: "#dev", nicks: ["alice", "carol"], operators: ["alice"], secret: true), to: [2]))
        // Joining makes it visible.
        chat.handle(3, .join("#dev"))
        #expect(chat.handle(3, .rooms(matching: [])).listedRooms == ["#dev", "#general"])
    }

    @Test("+s: the member list (NAMES) of a secret room is not shown to those outside it, as WHO is not")
    func secretNames() throws {
        var chat = try devRoom()  // bob (3) is outside #dev
        _ = chat.moderate(1, Self.modes(on: .secret), in: "#dev")
        let names = chat.handle(3, .who(room: "#dev"))
        let shown = names.steps.contains { step in
            if case .deliver(.members(_, let nicks, _, _, _, _), _) = step { nicks.contains("alice") } else { false }
        }
        // As `.lookup` (WHO), `.rooms` (LIST) and `.whois` do, `.who(room:)` hides the room from outsiders.
        #expect(!shown)
        #expect(names.error?.code == .noSuchRoom)
    }

    @Test("a MODE that changes nothing (setting what is set) has no effects at all: nothing said, nothing stored")
    func noOpChange() throws {
        var chat = try devRoom()
        #expect(chat.moderate(1, Self.modes(on: .membersOnly), in: "#dev").isEmpty)
        #expect(chat.moderate(1, Self.modes(off: [.inviteOnly, .secret]), in: "#dev").isEmpty)
        #expect(chat.moderate(1, Self.modes(on: .moderated), in: "#dev").isEmpty == false)
        #expect(chat.moderate(1, Self.modes(on: .moderated), in: "#dev").isEmpty)
        // A change in part announces only the part that changed.
        let partly = chat.moderate(1, Self.modes(on: [.moderated, .topicLocked]), in: "#dev")
        #expect(chat.notices(partly).map(\.0.target) == ["+t"])
        #expect(partly.changes == [.topicLock(room: "#dev", true)])
    }

    @Test("the room's modes as asked: the letters on, the key for members only, when it came to life")
    func modesQuery() throws {
        var chat = try devRoom()
        _ = chat.moderate(1, Self.modes(on: [.inviteOnly, .topicLocked], off: .membersOnly), in: "#dev")
        _ = chat.moderate(1, .key("sesame"), in: "#dev")
        guard case .deliver(.modes(let room, let modes, let key, _, _), let to)? = chat.handle(2, .modes(room: "#dev")).first else {
            Issue.record("no modes reply")
            return
        }
        #expect(room == "#dev" && modes == [.inviteOnly, .topicLocked] && key == "sesame" && to.map(\.peer) == [2])
        guard case .deliver(.modes(_, _, let hidden, _, _), _)? = chat.handle(3, .modes(room: "#dev")).first else {
            Issue.record("no modes reply")
            return
        }
        #expect(hidden == "*")
        #expect(chat.handle(3, .modes(room: "#nowhere")).error?.code == .noSuchRoom)
    }

    @Test("RoomModes.change reads +i-n; anything else is nil")
    func change() throws {
        let change = try #require(RoomModes.change("+i-n"))
        #expect(change.on == [.inviteOnly] && change.off == [.membersOnly])
        let mixed = try #require(RoomModes.change("-t+sm"))
        #expect(mixed.on == [.secret, .moderated] && mixed.off == [.topicLocked])
        let last = try #require(RoomModes.change("+i-i"))
        #expect(last.on == [] && last.off == [.inviteOnly])
        #expect(RoomModes.change("+x") == nil)
        #expect(RoomModes.change("+ik") == nil)
        #expect(RoomModes.change("+") == nil)
        #expect(RoomModes.change("") == nil)
        #expect(RoomModes(letters: "tn") == [.topicLocked, .membersOnly])
        #expect(RoomModes([.secret, .inviteOnly, .topicLocked]).letters == "ist")
        #expect(RoomPolicy(name: "#new").modes == .membersOnly)
    }

    @Test("WHO masks: * any run, ? one character, a*b both ends")
    func glob() {
        func matches(_ pattern: String, _ text: String) -> Bool {
            ChatState<Int>.glob(Array(pattern.utf8), matches: Array(text.utf8))
        }
        #expect(matches("*", ""))
        #expect(matches("*", "anyone"))
        #expect(matches("?", "a"))
        #expect(!matches("?", ""))
        #expect(!matches("?", "ab"))
        #expect(matches("b?b", "bob"))
        #expect(!matches("b?b", "bobb"))
        #expect(matches("a*b", "ab"))
        #expect(matches("a*b", "axxxb"))
        #expect(matches("a*b", "abab"))
        #expect(!matches("a*b", "axxxbc"))
        #expect(!matches("a*b", "xab"))
        #expect(matches("*a*a*", "banana"))
        #expect(!matches("bob", "bo"))
    }

    @Test("WHO with a mask: invisible users show only to those who share a room with them; a nick asked for exactly always shows")
    func lookupInvisible() throws {
        var chat = try Chat()
        try chat.registerInNoRoom("alice", 1)
        try chat.registerInNoRoom("bob", 2)
        try chat.registerInNoRoom("bobby", 3)
        #expect(chat.handle(1, .lookup("bob*")).whoNicks == ["bob", "bobby"])
        #expect(chat.handle(1, .lookup("B?B")).whoNicks == ["bob"])
        #expect(chat.handle(2, .invisible(true)).steps == [.deliver(.invisible(true), to: [2])])
        #expect(chat.handle(1, .lookup("bob*")).whoNicks == ["bobby"])
        #expect(chat.handle(1, .lookup("*")).whoNicks == ["alice", "bobby"])
        // Themselves, and a nick asked for by name, always.
        #expect(chat.handle(2, .lookup("bob*")).whoNicks == ["bob", "bobby"])
        #expect(chat.handle(1, .lookup("bob")).whoNicks == ["bob"])
        // Sharing a room shows them, by mask and in the room's list; outsiders do not see them in the room.
        chat.handle(1, .join("#x"))
        chat.handle(2, .join("#x"))
        #expect(chat.handle(1, .lookup("bob*")).whoNicks == ["bob", "bobby"])
        #expect(chat.handle(3, .lookup("#x")).whoNicks == ["alice"])
        #expect(chat.handle(1, .lookup("#x")).whoNicks == ["alice", "bob"])
        // -i: seen by all again.
        chat.handle(2, .invisible(false))
        #expect(chat.handle(3, .lookup("#x")).whoNicks == ["alice", "bob"])
    }

    @Test("a tags-only message (TAGMSG) is delivered with its tags and acknowledged, never recorded; without tags it is nothing")
    func tagsOnly() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        let typing = chat.handle(1, .say(room: "#general", text: "ignored", kind: .tags, tags: ["+typing": "active"]), ref: "t1")
        #expect(typing.records.isEmpty)
        let message = try #require(typing.message)
        #expect(message.kind == .tags && message.text == "" && message.tags == ["+typing": "active"])
        #expect(typing.steps == [.deliver(.message(message), to: [2, 3]), .deliver(.ack(ref: "t1", message: message), to: [1])])
        #expect(chat.handle(1, .say(room: "#general", text: "", kind: .tags, tags: [:])).isEmpty)

        // Privately too; and an away recipient's away message is not sent back for a typing notice.
        chat.handle(2, .away("lunch"))
        let whisper = chat.handle(1, .whisper(to: "bob", text: "", kind: .tags, tags: ["+typing": "paused"]))
        #expect(whisper.records.isEmpty)
        #expect(whisper.message?.tags == ["+typing": "paused"])
        let awayMessageSent = whisper.steps.contains { if case .deliver(.isAway, _) = $0 { true } else { false } }
        #expect(!awayMessageSent)

        // A normal message keeps its client-only tags and is recorded.
        let reply = chat.handle(2, .say(room: "#general", text: "sure", kind: .normal, tags: ["+draft/reply": "1"]))
        #expect(reply.records.count == 1)
        #expect(reply.message?.tags == ["+draft/reply": "1"])
    }

    @Test("+s: an outsider cannot read the topic or the modes, nor learn the room exists by PART")
    func secretTopicAndModes() throws {
        var chat = try devRoom()  // bob (3) is outside #dev
        chat.handle(1, .topic(room: "#dev", text: "plans"))
        _ = chat.moderate(1, Self.modes(on: .secret), in: "#dev")
        #expect(chat.handle(3, .topic(room: "#dev", text: nil)).error?.code == .noSuchRoom)
        #expect(chat.handle(3, .modes(room: "#dev")).error?.code == .noSuchRoom)
        #expect(chat.handle(3, .part(room: "#dev", reason: nil)).error?.code == .noSuchRoom)
        #expect(chat.handle(2, .topic(room: "#dev", text: nil)).error == nil)
    }

    @Test("+i holds for a room its owner keeps while it is empty: nobody walks in before the owner")
    func inviteOnlyWhileEmpty() throws {
        var chat = try Chat()
        _ = try chat.register("owner", 1)
        _ = chat.state.authenticate(chat.ids[1]!, as: Account(name: "owner", credential: Credential(hash: [], salt: [], parameters: "")), now: Chat.now)
        _ = try chat.register("bob", 2)
        #expect(chat.handle(1, .join("#club")).error == nil)
        #expect(chat.moderate(1, Self.modes(on: .inviteOnly), in: "#club").error == nil)
        chat.handle(1, .part(room: "#club", reason: nil))
        #expect(chat.handle(2, .join("#club")).error?.code == .inviteOnly)
        #expect(chat.handle(1, .join("#club")).error == nil)
    }

    @Test("a listing takes names and masks (any of them), !masks to leave out, and >N / <N members (IRC's ELIST)")
    func listingTerms() throws {
        var chat = try devRoom()  // #dev: alice and carol; #general: alice, carol, bob
        chat.handle(3, .join("#devops"))
        #expect(chat.handle(3, .rooms(matching: [])).listedRooms == ["#dev", "#devops", "#general"])
        #expect(chat.handle(3, .rooms(matching: ["#dev*"])).listedRooms == ["#dev", "#devops"])
        #expect(chat.handle(3, .rooms(matching: ["#dev", "#general"])).listedRooms == ["#dev", "#general"])
        #expect(chat.handle(3, .rooms(matching: ["!#dev*"])).listedRooms == ["#general"])
        #expect(chat.handle(3, .rooms(matching: [">1"])).listedRooms == ["#dev", "#general"])
        #expect(chat.handle(3, .rooms(matching: ["<2"])).listedRooms == ["#devops"])
        #expect(chat.handle(3, .rooms(matching: ["#dev*", ">1"])).listedRooms == ["#dev"])
        #expect(chat.handle(3, .rooms(matching: ["*ops"])).listedRooms == ["#devops"])
    }
}
