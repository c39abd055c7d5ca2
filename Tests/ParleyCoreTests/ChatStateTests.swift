import Foundation
import ParleyCore
import Testing

/// An effect reduced to what tests compare: the event and the peers, in order. Storage bookkeeping
/// (`.record`, `.persist`) is left out here and checked on its own with `records` and `changes`.
enum Step: Equatable {
    case deliver(ChatEvent, to: [Int])
    case replay(Int, room: String, HistoryQuery)
    case lookUp(Int, HistoryLookup)
    case close(Int, LeaveReason)
}

extension Array where Element == Effect<Int> {
    var steps: [Step] {
        compactMap { effect in
            switch effect {
            case .record, .persist, .replicate: nil
            case .deliver(let event, let recipients): .deliver(event, to: recipients.map(\.peer))
            case .replay(let peer, let room, let query, _, _, _, _): .replay(peer, room: room, query)
            case .lookUp(let peer, let lookup, _): .lookUp(peer, lookup)
            case .close(let peer, let reason): .close(peer, reason)
            }
        }
    }

    /// The messages to be stored, with who sent them.
    var records: [(ChatMessage, Int?)] {
        compactMap { effect in
            if case .record(let message, let sender, _) = effect { return (message, sender) }
            return nil
        }
    }

    /// The room changes to be stored, in order.
    var changes: [RoomChange] {
        flatMap { effect -> [RoomChange] in
            if case .persist(let changes, _, _) = effect { return changes }
            return []
        }
    }

    /// The audit entries to be written, in order.
    var audits: [AuditEntry] {
        compactMap { effect in
            if case .persist(_, let audit?, _) = effect { return audit }
            return nil
        }
    }

    /// The recipients of the only delivery of `event`.
    func recipients(of event: ChatEvent) -> [Recipient<Int>] {
        var found: [Recipient<Int>] = []
        for case .deliver(event, let recipients) in self { found += recipients }
        return found
    }

    /// The error delivered to the sender, when the request was refused.
    var error: ChatError? {
        for case .deliver(.error(let error, _), _) in self { return error }
        return nil
    }

    /// The first message (not ack) delivered.
    var message: ChatMessage? {
        for case .deliver(let event, _) in self {
            switch event {
            case .message(let message), .announcement(let message, _): return message
            default: continue
            }
        }
        return nil
    }

    /// Every peer that receives anything.
    var allPeers: Set<Int> {
        var peers: Set<Int> = []
        for case .deliver(_, let recipients) in self { peers.formUnion(recipients.map(\.peer)) }
        return peers
    }
}

/// A chat with peers named by number: alice 1, bob 2, carol 3, dave 4.
struct Chat {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)
    var state: ChatState<Int>
    var ids: [Int: SessionID] = [:]

    init(firstMessageID: Int64 = 1, historyOnJoin: Int = 0, users: [String] = []) throws {
        state = ChatState(serverName: "test.parley", firstMessageID: firstMessageID, historyOnJoin: historyOnJoin)
        for (index, nick) in users.enumerated() { try register(nick, index + 1) }
    }

    @discardableResult
    mutating func register(_ nick: String, _ peer: Int) throws -> [Effect<Int>] {
        let (id, effects) = try state.register(nick: nick, peer: peer)
        ids[peer] = id
        return effects
    }

    @discardableResult
    mutating func handle(_ peer: Int, _ request: Request, ref: String? = nil) -> [Effect<Int>] {
        state.handle(request, ref: ref, from: ids[peer]!, now: Self.now)
    }
}

@Suite("ChatState")
struct ChatStateTests {
    // MARK: Registration

    @Test("registering welcomes the user, announces the join to #general and lists its members")
    func register() throws {
        var chat = try Chat()
        let first = try chat.register("Alice", 1)
        #expect(
            first.steps == [
                .deliver(.welcome(nick: "Alice", server: "test.parley"), to: [1]),
                .deliver(.motd(lines: []), to: [1]),
                .deliver(.joined(room: "#general", nick: "Alice"), to: [1]),
                .deliver(.members(room: "#general", nicks: ["Alice"]), to: [1]),
            ]
        )
        let second = try chat.register("bob", 2)
        #expect(
            second.steps == [
                .deliver(.welcome(nick: "bob", server: "test.parley", online: 2, rooms: 1, mostOnline: 2), to: [2]),
                .deliver(.motd(lines: []), to: [2]),
                .deliver(.joined(room: "#general", nick: "bob"), to: [1, 2]),
                .deliver(.members(room: "#general", nicks: ["Alice", "bob"]), to: [2]),
            ]
        )
        #expect(chat.state.sessionCount == 2)
        #expect(chat.ids[1] != chat.ids[2])
        #expect(try chat.state.nicks(in: "#general") == ["Alice", "bob"])
    }

    @Test("a nickname taken in any case is refused, and nothing changes")
    func nickTaken() throws {
        var chat = try Chat(users: ["alice"])
        let error = #expect(throws: ChatError.self) { try chat.register("ALICE", 2) }
        #expect(error?.code == .nickTaken)
        #expect(chat.state.sessionCount == 1)
    }

    @Test("an invalid nickname is refused at registration")
    func invalidNickAtRegistration() throws {
        var chat = try Chat()
        let error = #expect(throws: ChatError.self) { try chat.register("1abc", 1) }
        #expect(error?.code == .invalidNick)
        #expect(chat.state.sessionCount == 0)
    }

    @Test("a nickname is free again once its user has gone")
    func nickFreedOnQuit() throws {
        var chat = try Chat(users: ["alice"])
        chat.handle(1, .quit(reason: nil))
        #expect(chat.state.sessionCount == 0)
        try chat.register("Alice", 2)
        #expect(chat.state.sessionCount == 1)
    }

    // MARK: Messages

    @Test("a room message goes to every other member; the sender gets an ack with the same message")
    func say() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        let effects = chat.handle(1, .say(room: nil, text: "hello everyone", kind: .normal), ref: "r1")
        let message = ChatMessage(
            id: 1, time: Chat.now, from: "alice", target: .room("#general"), kind: .normal, text: "hello everyone"
        )
        #expect(effects.steps == [.deliver(.message(message), to: [2, 3]), .deliver(.ack(ref: "r1", message: message), to: [1])])
    }

    @Test("a message to a named room, and /me as an action")
    func sayToNamedRoom() throws {
        var chat = try Chat(users: ["alice"])
        chat.handle(1, .join("#rust"))
        let effects = chat.handle(1, .say(room: "#general", text: "waves", kind: .action))
        let message = ChatMessage(id: 1, time: Chat.now, from: "alice", target: .room("#general"), kind: .action, text: "waves")
        // Alone in the room: the message has no recipients, the ack still comes.
        #expect(effects.steps == [.deliver(.message(message), to: []), .deliver(.ack(ref: nil, message: message), to: [1])])
    }

    @Test("room messages carry the room's own spelling, whatever the sender typed")
    func messageUsesRoomSpelling() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#rust"))
        // Bob joins with other capitals: the join notice already uses the room's spelling...
        #expect(chat.handle(2, .join("#RUST")).recipients(of: .joined(room: "#rust", nick: "bob")).count == 2)
        let fromAlice = chat.handle(1, .say(room: nil, text: "hi", kind: .normal))
        #expect(fromAlice.message?.target == .room("#rust"))
        let typed = chat.handle(1, .say(room: "#Rust", text: "typed", kind: .normal))
        let fromBob = chat.handle(2, .say(room: nil, text: "hello", kind: .normal))
        chat.handle(1, .join("#GENERAL"))
        let rejoined = chat.handle(1, .say(room: nil, text: "back", kind: .normal))
        // Messages carry the room's own spelling, never the one the sender typed.
        #expect(typed.message?.target == .room("#rust"))
        #expect(fromBob.message?.target == .room("#rust"))
        #expect(rejoined.message?.target == .room("#general"))
    }

    @Test("message ids strictly increase across rooms, private messages and notices")
    func idsIncrease() throws {
        var chat = try Chat(firstMessageID: 100, users: ["alice", "bob"])
        var ids: [Int64] = []
        ids.append(try #require(chat.handle(1, .say(room: nil, text: "one", kind: .normal)).message?.id))
        ids.append(try #require(chat.handle(2, .whisper(to: "alice", text: "two", kind: .normal)).message?.id))
        ids.append(try #require(chat.state.announce("three", now: Chat.now).message?.id))
        ids.append(try #require(try chat.state.announce("four", in: "#general", now: Chat.now).message?.id))
        ids.append(try #require(chat.handle(2, .say(room: nil, text: "five", kind: .normal)).message?.id))
        #expect(ids == [100, 101, 102, 103, 104])
        #expect(chat.state.nextMessageID == 105)
    }

    @Test("a private message reaches only its target; the sender gets an ack")
    func whisper() throws {
        var chat = try Chat(users: ["alice", "Bob", "carol"])
        let effects = chat.handle(1, .whisper(to: "bob", text: "psst", kind: .normal), ref: "w1")
        let message = ChatMessage(id: 1, time: Chat.now, from: "alice", target: .user("Bob"), kind: .normal, text: "psst")
        #expect(effects.steps == [.deliver(.message(message), to: [2]), .deliver(.ack(ref: "w1", message: message), to: [1])])
        #expect(!effects.allPeers.contains(3))
    }

    @Test("a private message to nobody is refused with no_such_nick, carrying the ref")
    func whisperNoSuchNick() throws {
        var chat = try Chat(users: ["alice", "bob"])
        let effects = chat.handle(1, .whisper(to: "zed", text: "hello?", kind: .normal), ref: "w2")
        #expect(effects.count == 1)
        guard case .deliver(.error(let error, let ref), let recipients) = try #require(effects.first) else {
            Issue.record("expected an error, got \(effects.steps)")
            return
        }
        #expect(error.code == .noSuchNick)
        #expect(error.message.contains("zed"))
        #expect(ref == "w2")
        #expect(recipients.map(\.peer) == [1])
        #expect(chat.handle(1, .whisper(to: "no way", text: "x", kind: .normal)).error?.code == .invalidNick)
    }

    @Test("messages are sanitised before anyone sees them")
    func sanitised() throws {
        var chat = try Chat(users: ["alice", "bob"])
        let say = chat.handle(1, .say(room: nil, text: "hi \u{1B}[2J\u{1B}[31mthere\u{7}\u{1B}]0;pwned\u{7}", kind: .normal))
        #expect(say.message?.text == "hi there")
        let whisper = chat.handle(1, .whisper(to: "bob", text: "a\u{9B}31mb\tc", kind: .normal))
        #expect(whisper.message?.text == "ab c")
    }

    @Test(
        "blank messages, also after sanitising, produce nothing",
        arguments: ["", "   ", "\t", "\u{1B}[31m\u{1B}[0m", "\u{7}\u{7}"]
    )
    func blankMessages(_ text: String) throws {
        var chat = try Chat(users: ["alice", "bob"])
        #expect(chat.handle(1, .say(room: nil, text: text, kind: .normal)).isEmpty)
        #expect(chat.handle(1, .whisper(to: "bob", text: text, kind: .normal)).isEmpty)
        #expect(chat.state.announce(text, now: Chat.now).isEmpty)
        #expect(try chat.state.announce(text, in: "#general", now: Chat.now).isEmpty)
        #expect(chat.state.nextMessageID == 1)
    }

    @Test("saying something in a room one is not in is refused")
    func sayNotInRoom() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(2, .join("#rust"))
        let effects = chat.handle(1, .say(room: "#rust", text: "hi", kind: .normal), ref: "s")
        #expect(effects.error?.code == .notInRoom)
        #expect(effects.allPeers == [1])
        // A room that does not exist is no room at all; one that does, but without the sender, is not theirs.
        #expect(chat.handle(1, .say(room: "#nowhere", text: "hi", kind: .normal)).error?.code == .noSuchRoom)
        #expect(chat.handle(1, .say(room: "nowhere", text: "hi", kind: .normal)).error?.code == .invalidRoom)
        // Out of every room, plain text has nowhere to go.
        chat.handle(1, .part(room: nil, reason: nil))
        let homeless = chat.handle(1, .say(room: nil, text: "anyone?", kind: .normal))
        #expect(homeless.error?.code == .notInRoom)
        #expect(homeless.error?.message.contains("/join") == true)
    }

    // MARK: Rooms

    @Test("join and part notices go to every member, the leaver included")
    func joinAndPart() throws {
        var chat = try Chat(users: ["alice", "bob"])
        let aliceJoins = chat.handle(1, .join("#rust"))
        #expect(
            aliceJoins.steps == [
                .deliver(.joined(room: "#rust", nick: "alice"), to: [1]),
                .deliver(.members(room: "#rust", nicks: ["alice"], operators: ["alice"]), to: [1]),
            ]
        )
        // The room keeps its creator's spelling.
        let bobJoins = chat.handle(2, .join("#RUST"))
        #expect(
            bobJoins.steps == [
                .deliver(.joined(room: "#rust", nick: "bob"), to: [1, 2]),
                .deliver(.members(room: "#rust", nicks: ["alice", "bob"], operators: ["alice"]), to: [2]),
            ]
        )
        // Leaving the current room says which room is current now.
        let alicePart = chat.handle(1, .part(room: "#rust", reason: "bye"))
        #expect(alicePart.steps == [.deliver(.left(room: "#rust", nick: "alice", reason: .parted("bye")), to: [1, 2]), .deliver(.currentRoom("#general"), to: [1])])
        let bobPart = chat.handle(2, .part(room: nil, reason: nil))
        #expect(bobPart.steps == [.deliver(.left(room: "#rust", nick: "bob", reason: .parted(nil)), to: [2]), .deliver(.currentRoom("#general"), to: [2])])
        // Leaving another room does not; leaving the last one says there is none.
        chat.handle(1, .join("#side"))
        chat.handle(1, .join("#general"))
        #expect(chat.handle(1, .part(room: "#side", reason: nil)).steps == [.deliver(.left(room: "#side", nick: "alice", reason: .parted(nil)), to: [1])])
        #expect(chat.handle(1, .part(room: nil, reason: nil)).steps.last == .deliver(.currentRoom(nil), to: [1]))
    }

    @Test("after parting, a user receives nothing from that room")
    func nothingAfterPart() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#rust"))
        chat.handle(2, .join("#rust"))
        chat.handle(1, .part(room: "#rust", reason: nil))
        let said = chat.handle(2, .say(room: "#rust", text: "still here?", kind: .normal))
        #expect(!said.allPeers.contains(1))
        let carolJoins = try chat.register("carol", 3)
        #expect(!chat.handle(3, .join("#rust")).allPeers.contains(1))
        #expect(carolJoins.recipients(of: .joined(room: "#general", nick: "carol")).map(\.peer) == [1, 2, 3])
        let topic = chat.handle(2, .topic(room: "#rust", text: "new"))
        #expect(!topic.allPeers.contains(1))
        #expect(try chat.state.nicks(in: "#rust") == ["bob", "carol"])
    }

    @Test("parting a room one is not in, or an invalid one, is refused")
    func partErrors() throws {
        var chat = try Chat(users: ["alice", "bob"])
        #expect(chat.handle(1, .part(room: "#rust", reason: nil)).error?.code == .noSuchRoom)
        chat.handle(2, .join("#rust"))
        #expect(chat.handle(1, .part(room: "#rust", reason: nil)).error?.code == .notInRoom)
        #expect(chat.handle(1, .part(room: "rust", reason: nil)).error?.code == .invalidRoom)
        #expect(chat.handle(1, .join("no spaces")).error?.code == .invalidRoom)
    }

    @Test("joining a room one is already in makes it current again")
    func rejoin() throws {
        var chat = try Chat(users: ["alice"])
        chat.handle(1, .join("#rust"))
        let effects = chat.handle(1, .join("#general"))
        #expect(effects.steps == [.deliver(.currentRoom("#general"), to: [1])])
        // Plain text now goes to #general.
        let ack = try #require(ackMessage(chat.handle(1, .say(room: nil, text: "back", kind: .normal))))
        #expect(ack.target == .room("#general"))
        #expect(chat.state.roomSummaries().first { $0.name == "#general" }?.members == 1)
    }

    @Test("an empty room other than #general disappears")
    func emptyRoomsDisappear() throws {
        var chat = try Chat(users: ["alice"])
        chat.handle(1, .join("#rust"))
        #expect(
            chat.state.roomSummaries() == [
                RoomSummary(name: "#general", members: 1, topic: ""), RoomSummary(name: "#rust", members: 1, topic: ""),
            ]
        )
        chat.handle(1, .topic(room: "#rust", text: "old topic"))
        chat.handle(1, .part(room: "#rust", reason: nil))
        #expect(chat.state.roomSummaries() == [RoomSummary(name: "#general", members: 1, topic: "")])
        // A room made again starts afresh.
        let rejoined = chat.handle(1, .join("#Rust"))
        #expect(
            rejoined.steps == [
                .deliver(.joined(room: "#Rust", nick: "alice"), to: [1]),
                .deliver(.members(room: "#Rust", nicks: ["alice"], operators: ["alice"]), to: [1]),
            ]
        )
        chat.handle(1, .quit(reason: nil))
        #expect(chat.state.roomSummaries() == [RoomSummary(name: "#general", members: 0, topic: "")])
    }

    @Test("rooms lists every room, sorted, with member counts and topics")
    func rooms() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(2, .join("#zoo"))
        chat.handle(2, .join("#Apple"))
        chat.handle(2, .topic(room: nil, text: "fruit"))
        let effects = chat.handle(1, .rooms(matching: []))
        let expected: [RoomSummary] = [
            .init(name: "#Apple", members: 1, topic: "fruit"),
            .init(name: "#general", members: 2, topic: ""),
            .init(name: "#zoo", members: 1, topic: ""),
        ]
        #expect(effects.steps == [.deliver(.rooms(expected), to: [1])])
    }

    // MARK: Nicknames

    @Test("a nick change is announced once to each user sharing any room, and to the user")
    func nickChange() throws {
        var chat = try Chat(users: ["alice", "bob", "carol", "dave"])
        chat.handle(1, .join("#rust"))
        chat.handle(2, .join("#rust"))
        chat.handle(4, .join("#other"))
        chat.handle(4, .part(room: "#general", reason: nil))
        let effects = chat.handle(1, .nick("Alicia"))
        #expect(effects.count == 1)
        let recipients = effects.recipients(of: .nickChanged(from: "alice", to: "Alicia")).map(\.peer)
        #expect(recipients.sorted() == [1, 2, 3])
        #expect(try chat.state.nicks(in: "#rust") == ["Alicia", "bob"])
        // The old nickname is free, the new one taken.
        #expect(chat.handle(4, .nick("alicia")).error?.code == .nickTaken)
        #expect(chat.handle(4, .nick("ALICE")).recipients(of: .nickChanged(from: "dave", to: "ALICE")).map(\.peer) == [4])
    }

    @Test("a user in no room hears their own nick change")
    func nickChangeAlone() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .part(room: nil, reason: nil))
        #expect(chat.handle(1, .nick("al")).steps == [.deliver(.nickChanged(from: "alice", to: "al"), to: [1])])
    }

    @Test("changing only the case of one's nick is allowed; the same spelling is a no-op")
    func nickCaseChange() throws {
        var chat = try Chat(users: ["alice", "bob"])
        #expect(chat.handle(1, .nick("alice")).isEmpty)
        let effects = chat.handle(1, .nick("ALICE"))
        #expect(effects.recipients(of: .nickChanged(from: "alice", to: "ALICE")).map(\.peer).sorted() == [1, 2])
        #expect(try chat.state.nicks(in: nil) == ["ALICE", "bob"])
    }

    @Test("nick changes are refused when taken or invalid")
    func nickChangeErrors() throws {
        var chat = try Chat(users: ["alice", "bob"])
        let taken = chat.handle(1, .nick("Bob"), ref: "n")
        #expect(taken.error?.code == .nickTaken)
        #expect(taken.allPeers == [1])
        #expect(chat.handle(1, .nick("-bad")).error?.code == .invalidNick)
        #expect(try chat.state.nicks(in: nil) == ["alice", "bob"])
    }

    // MARK: Leaving

    @Test("quit tells every room, the quitter included, and closes the connection")
    func quit() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        chat.handle(1, .join("#rust"))
        chat.handle(3, .join("#rust"))
        let effects = chat.handle(1, .quit(reason: "gotta \u{1B}[5mgo"))
        #expect(
            effects.steps == [
                .deliver(.left(room: "#general", nick: "alice", reason: .quit("gotta go")), to: [1, 2, 3]),
                .deliver(.left(room: "#rust", nick: "alice", reason: .quit("gotta go")), to: [1, 3]),
                .close(1, .quit("gotta go")),
            ]
        )
        #expect(chat.state.sessionCount == 2)
        // The session is gone: further requests do nothing.
        #expect(chat.handle(1, .say(room: nil, text: "ghost", kind: .normal)).isEmpty)
    }

    @Test("a quit without a reason")
    func quitWithoutReason() throws {
        var chat = try Chat(users: ["alice"])
        #expect(
            chat.handle(1, .quit(reason: nil)).steps == [
                .deliver(.left(room: "#general", nick: "alice", reason: .quit(nil)), to: [1]), .close(1, .quit(nil)),
            ]
        )
    }

    @Test("a lost connection is told to the remaining members only")
    func connectionLost() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        chat.handle(1, .join("#rust"))
        chat.handle(2, .join("#rust"))
        let effects = chat.state.disconnect(chat.ids[1]!, reason: .connectionLost)
        #expect(
            effects.steps == [
                .deliver(.left(room: "#general", nick: "alice", reason: .connectionLost), to: [2, 3]),
                .deliver(.left(room: "#rust", nick: "alice", reason: .connectionLost), to: [2]),
            ]
        )
        #expect(chat.state.sessionCount == 2)
        #expect(chat.state.disconnect(chat.ids[1]!, reason: .connectionLost).isEmpty)
        #expect(try chat.state.nicks(in: nil) == ["bob", "carol"])
    }

    // MARK: Topics

    @Test("the topic is shown to the asker and set for the whole room")
    func topic() throws {
        var chat = try Chat(users: ["alice", "bob"])
        #expect(chat.handle(1, .topic(room: nil, text: nil)).steps == [.deliver(.topic(room: "#general", text: "", setBy: nil), to: [1])])
        let set = chat.handle(1, .topic(room: nil, text: "Welcome!"))
        #expect(set.steps == [.deliver(.topicChanged(room: "#general", text: "Welcome!", by: .user("alice"), at: Chat.now, id: 1), to: [1, 2])])
        // The change is also a message of the room's history, with the id the event carries; no sender is told if
        // storing it fails (the topic itself is persisted apart).
        #expect(set.records.map(\.0) == [ChatMessage(id: 1, time: Chat.now, from: "alice", target: .room("#general"), kind: .topic, text: "Welcome!")])
        #expect(set.records.map(\.1) == [nil])
        let shown = chat.handle(2, .topic(room: "#General", text: nil))
        #expect(shown.steps == [.deliver(.topic(room: "#general", text: "Welcome!", setBy: "alice", setAt: Chat.now), to: [2])])
        #expect(chat.state.roomSummaries().first?.topic == "Welcome!")
    }

    @Test("setting a topic needs membership; showing one does not")
    func topicNeedsMembership() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#rust"))
        chat.handle(1, .topic(room: "#rust", text: "Rust talk"))
        let refused = chat.handle(2, .topic(room: "#rust", text: "hijacked"), ref: "t")
        #expect(refused.error?.code == .notInRoom)
        #expect(refused.allPeers == [2])
        #expect(chat.handle(2, .topic(room: "#rust", text: nil)).steps == [.deliver(.topic(room: "#rust", text: "Rust talk", setBy: "alice", setAt: Chat.now), to: [2])])
        #expect(chat.handle(2, .topic(room: "#nowhere", text: nil)).error?.code == .noSuchRoom)
        #expect(chat.handle(2, .topic(room: "nowhere", text: nil)).error?.code == .invalidRoom)
    }

    @Test("topics are sanitised, trimmed and capped at 300 characters")
    func topicSanitised() throws {
        var chat = try Chat(users: ["alice"])
        let set = chat.handle(1, .topic(room: nil, text: "  \u{1B}[1mBold\u{1B}[0m\ttopic\u{7}  "))
        #expect(set.steps == [.deliver(.topicChanged(room: "#general", text: "Bold topic", by: .user("alice"), at: Chat.now, id: 1), to: [1])])
        chat.handle(1, .topic(room: nil, text: String(repeating: "x", count: 400)))
        #expect(chat.state.roomSummaries().first?.topic == String(repeating: "x", count: 300))
        #expect(ChatState<Int>.maximumTopicLength == 300)
    }

    @Test("a joiner is shown the topic before the member list")
    func topicOnJoin() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#rust"))
        chat.handle(1, .topic(room: nil, text: "Rust talk"))
        #expect(
            chat.handle(2, .join("#rust")).steps == [
                .deliver(.joined(room: "#rust", nick: "bob"), to: [1, 2]),
                .deliver(.topic(room: "#rust", text: "Rust talk", setBy: "alice", setAt: Chat.now), to: [2]),
                .deliver(.members(room: "#rust", nicks: ["alice", "bob"], operators: ["alice"]), to: [2]),
            ]
        )
    }

    // MARK: Queries

    @Test("who lists a room's members or everyone online, sorted without regard to case")
    func who() throws {
        var chat = try Chat(users: ["carol", "Bob", "alice", "dave"])
        chat.handle(4, .join("#rust"))
        chat.handle(4, .part(room: "#general", reason: nil))
        #expect(chat.handle(1, .who(room: "#general")).steps == [.deliver(.members(room: "#general", nicks: ["alice", "Bob", "carol"]), to: [1])])
        // The creator operates the room.
        #expect(chat.handle(1, .who(room: "#RUST")).steps == [.deliver(.members(room: "#rust", nicks: ["dave"], operators: ["dave"]), to: [1])])
        #expect(chat.handle(1, .who(room: nil)).steps == [.deliver(.members(room: nil, nicks: ["alice", "Bob", "carol", "dave"]), to: [1])])
        #expect(chat.handle(1, .who(room: "#nowhere")).error?.code == .noSuchRoom)
        #expect(try chat.state.nicks(in: "#general") == ["alice", "Bob", "carol"])
        #expect(throws: ChatError(.noSuchRoom, "There is no room #nowhere. Type /rooms to see them, or /join #nowhere to create it.")) {
            try chat.state.nicks(in: "#nowhere")
        }
    }

    @Test("ping answers pong with the ref; help lists the text commands")
    func pingAndHelp() throws {
        var chat = try Chat(users: ["alice", "bob"])
        #expect(chat.handle(1, .ping, ref: "p1").steps == [.deliver(.pong(ref: "p1"), to: [1])])
        #expect(chat.handle(1, .help).steps == [.deliver(.help(TextCommands.table.map(\.help)), to: [1])])
    }

    @Test("requests from an unknown session do nothing")
    func unknownSession() throws {
        var chat = try Chat(users: ["alice"])
        let id = chat.ids[1]!
        chat.handle(1, .quit(reason: nil))
        #expect(chat.state.handle(.ping, ref: nil, from: id, now: Chat.now).isEmpty)
    }

    // MARK: Focus

    @Test("focused is false for recipients whose current room is another one")
    func focus() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(2, .join("#rust"))  // bob's current room is now #rust
        let toGeneral = chat.handle(1, .say(room: nil, text: "hi", kind: .normal))
        let message = try #require(toGeneral.message)
        let bob = try #require(toGeneral.recipients(of: .message(message)).first)
        #expect(bob.peer == 2)
        #expect(bob.focused == false)
        // The sender's own ack and private messages are always focused.
        #expect(toGeneral.recipients(of: .ack(ref: nil, message: message)).map(\.focused) == [true])
        let whisper = chat.handle(1, .whisper(to: "bob", text: "psst", kind: .normal))
        #expect(whisper.recipients(of: .message(try #require(whisper.message))).map(\.focused) == [true])
        // Joins into #general are unfocused for bob too.
        let carol = try chat.register("carol", 3)
        #expect(carol.recipients(of: .joined(room: "#general", nick: "carol")).map(\.focused) == [true, false, true])
        // Bob's plain text goes to #rust; alice is not there.
        let fromBob = chat.handle(2, .say(room: nil, text: "rusty", kind: .normal))
        #expect(fromBob.message?.target == .room("#rust"))
        #expect(!fromBob.allPeers.contains(1))
        // Back in #general, bob is focused again.
        chat.handle(2, .join("#general"))
        let again = chat.handle(1, .say(room: nil, text: "welcome back", kind: .normal))
        #expect(again.recipients(of: .message(try #require(again.message))).map(\.focused) == [true, true])
    }

    @Test("a room's audience, built once and shared by its messages, follows every change of who is in it and where they look")
    func audienceFollowsChanges() throws {
        var chat = try Chat(users: ["alice", "bob"])
        // Who hears alice in #general, and whether it is their current room.
        func heard(_ text: String) throws -> [String] {
            let effects = chat.handle(1, .say(room: "#general", text: text, kind: .normal))
            return effects.recipients(of: .message(try #require(effects.message))).map { "\($0.peer)\($0.focused ? "" : " (elsewhere)")" }
        }
        #expect(try heard("one") == ["2"])
        try chat.register("carol", 3)
        #expect(try heard("carol came") == ["2", "3"])
        chat.handle(2, .join("#rust"))
        #expect(try heard("bob looks elsewhere") == ["2 (elsewhere)", "3"])
        chat.handle(2, .join("#general"))
        #expect(try heard("bob looks back") == ["2", "3"])
        chat.handle(2, .join("#rust"))
        chat.handle(2, .part(room: "#rust", reason: nil))
        #expect(try heard("bob left #rust: #general is current again") == ["2", "3"])
        chat.handle(3, .part(room: "#general", reason: nil))
        #expect(try heard("carol left") == ["2"])
        chat.handle(3, .join("#general"))
        chat.handle(2, .quit(reason: nil))
        #expect(try heard("bob quit") == ["3"])
        // Carol speaks: alice hears, carol (the sender) does not.
        let fromCarol = chat.handle(3, .say(room: "#general", text: "hi", kind: .normal))
        #expect(fromCarol.recipients(of: .message(try #require(fromCarol.message))).map(\.peer) == [1])
    }

    @Test("recipients leave out one entry by position without copying the list: first, middle, last, none")
    func recipientsSkipping() {
        let all = (1...4).map { Recipient(peer: $0, focused: true) }
        #expect(Recipients(all).map(\.peer) == [1, 2, 3, 4])
        #expect(Recipients(all, skipping: 0).map(\.peer) == [2, 3, 4])
        #expect(Recipients(all, skipping: 2).map(\.peer) == [1, 2, 4])
        #expect(Recipients(all, skipping: 3).map(\.peer) == [1, 2, 3])
        #expect(Recipients(all, skipping: 9).map(\.peer) == [1, 2, 3, 4])
        #expect(Recipients(all, skipping: -1).map(\.peer) == [1, 2, 3, 4])
        #expect(Recipients(Array(all.prefix(1)), skipping: 0).isEmpty)
        #expect(Recipients<Int>([]).isEmpty)
    }

    @Test("a room's notices are unfocused for members whose current room is another one")
    func focusOnLeave() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#rust"))
        chat.handle(2, .join("#rust"))
        chat.handle(2, .join("#general"))
        let effects = chat.handle(1, .part(room: "#rust", reason: nil))
        let recipients = effects.recipients(of: .left(room: "#rust", nick: "alice", reason: .parted(nil)))
        #expect(recipients.map(\.peer) == [1, 2])
        #expect(recipients.map(\.focused) == [true, false])
    }

    // MARK: Operator actions

    @Test("kick tells the victim why, tells their rooms, and closes the connection")
    func kick() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        chat.handle(2, .join("#rust"))
        chat.handle(3, .join("#rust"))
        let effects = try chat.state.kick("BOB", reason: "spam\u{1B}[2J", by: .server)
        let reason = LeaveReason.kicked(by: .server, reason: "spam")
        #expect(
            effects.steps == [
                .deliver(.error(ChatError(.kicked, "You were disconnected by the server operator: spam"), ref: nil), to: [2]),
                .deliver(.left(room: "#general", nick: "bob", reason: reason), to: [1, 3]),
                .deliver(.left(room: "#rust", nick: "bob", reason: reason), to: [3]),
                .close(2, reason),
            ]
        )
        #expect(chat.state.sessionCount == 2)
        #expect(try chat.state.nicks(in: nil) == ["alice", "carol"])
    }

    @Test("kick without a reason, and kick of nobody")
    func kickWithoutReason() throws {
        var chat = try Chat(users: ["alice"])
        let error = #expect(throws: ChatError.self) { try chat.state.kick("zed", reason: nil, by: .server) }
        #expect(error?.code == .noSuchNick)
        let effects = try chat.state.kick("alice", reason: nil, by: .server)
        #expect(
            effects.steps == [
                .deliver(.error(ChatError(.kicked, "You were disconnected by the server operator."), ref: nil), to: [1]),
                .deliver(.left(room: "#general", nick: "alice", reason: .kicked(by: .server, reason: nil)), to: []),
                .close(1, .kicked(by: .server, reason: nil)),
            ]
        )
    }

    @Test("a logged-in user who joins again is replayed what came since they last left in order; a lost connection moves no mark")
    func replaySinceLastSeen() throws {
        var chat = try Chat(historyOnJoin: 50)
        try chat.register("bob", 2)
        func replays(_ effects: [Effect<Int>]) -> [HistoryQuery] {
            effects.steps.compactMap { if case .replay(_, "#general", let query) = $0 { query } else { nil } }
        }
        func since(_ id: Int64) -> HistoryQuery { .range(after: .id(id), before: .id(.max), count: 50, newest: true) }
        // Never seen: the latest messages.
        var (alice, effects) = try chat.state.register(nick: "alice", peer: 1, account: "alice")
        #expect(replays(effects) == [.latest(50)])
        chat.handle(2, .say(room: nil, text: "one", kind: .normal))  // id 1
        chat.state.handle(.quit(reason: nil), ref: nil, from: alice, now: Chat.now)
        chat.handle(2, .say(room: nil, text: "two", kind: .normal))  // id 2
        (alice, effects) = try chat.state.register(nick: "alice", peer: 1, account: "alice")
        #expect(replays(effects) == [since(1)])
        // A part and a join in one connection count too.
        chat.state.handle(.part(room: "#general", reason: nil), ref: nil, from: alice, now: Chat.now)
        chat.handle(2, .join("#general"))
        chat.handle(2, .say(room: "#general", text: "three", kind: .normal))  // id 3
        #expect(replays(chat.state.handle(.join("#general"), ref: nil, from: alice, now: Chat.now)) == [since(2)])
        // Lost: what was on its way may not have arrived, so the mark stays at the part.
        chat.handle(2, .say(room: "#general", text: "four", kind: .normal))  // id 4
        _ = chat.state.disconnect(alice, reason: .connectionLost)
        (_, effects) = try chat.state.register(nick: "alice", peer: 1, account: "alice")
        #expect(replays(effects) == [since(2)])
        // Someone not logged in always gets the latest.
        #expect(replays(try chat.register("guest", 3)) == [.latest(50)])
    }

    @Test("service nicks and the server's name are nobody's: not at registration, not by /nick, not by logging in")
    func reservedNicks() throws {
        var chat = try Chat(users: ["alice"])
        for nick in ["NickServ", "chanserv", "Global", "Parley", "HistServ"] {
            #expect(#expect(throws: ChatError.self) { try chat.register(nick, 9) }?.code == .nickReserved)
            #expect(chat.handle(1, .nick(nick)).error?.code == .nickReserved)
        }
        var named = ChatState<Int>(serverName: "chathost")
        #expect(#expect(throws: ChatError.self) { try named.register(nick: "ChatHost", peer: 1) }?.code == .nickReserved)
    }

    @Test("room space: an account owns at most so many rooms, an address creates at most so many a minute")
    func roomSquatting() throws {
        var limits = ChatState<Int>.RoomLimits()
        limits.ownedPerAccount = 3
        limits.createdPerMinute = 5
        var state = ChatState<Int>(serverName: "t", historyOnJoin: 0, roomLimits: limits)
        let (owner, _) = try state.register(nick: "owner", peer: 1, account: "owner", address: "192.0.2.1")
        var notices: [String] = []
        for index in 1...5 {
            for case .deliver(.notice(let text), _) in state.handle(.join("#r\(index)", key: nil), ref: nil, from: owner, now: Chat.now) { notices.append(text) }
        }
        #expect(state.ownedRooms(of: "owner") == 3)
        #expect(notices == ["You own 3 rooms already: you operate #r4 only while you stay in it.", "You own 3 rooms already: you operate #r5 only while you stay in it."])
        // The sixth new room in a minute from that address is refused; an existing room is not new.
        #expect(state.handle(.join("#r6", key: nil), ref: nil, from: owner, now: Chat.now).error?.code == .tooManyRoomsCreated)
        let (other, _) = try state.register(nick: "other", peer: 2, address: "192.0.2.1")
        #expect(state.handle(.join("#r1", key: nil), ref: nil, from: other, now: Chat.now).error == nil)
        // A minute later it may create again.
        #expect(state.handle(.join("#r6", key: nil), ref: nil, from: owner, now: Chat.now + 61).error == nil)
    }

    @Test("when the server stops, nobody is told of anyone else leaving")
    func shutdownDepartures() throws {
        var chat = try Chat(users: ["alice", "bob"])
        let effects = chat.state.disconnect(chat.ids[1]!, reason: .serverShutdown, closing: true)
        #expect(effects.allPeers.isEmpty)
        #expect(effects.steps.last == .close(1, .serverShutdown))
        #expect(try chat.state.nicks(in: "#general") == ["bob"])
    }

    @Test("the console shows and sets topics past any lock, as the server")
    func consoleTopic() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(1, .join("#dev"))
        _ = try chat.state.moderate(.topicLock(true), in: "#dev", by: .console, now: Chat.now)
        let set = try chat.state.topic("release\u{1B}[2J Friday", in: "#DEV", now: Chat.now)
        #expect(set.reply == nil)
        #expect(set.effects.changes == [.topic(room: "#dev", text: "release Friday", setBy: "the server operator", setAt: Chat.now)])
        #expect(set.effects.steps == [.deliver(.topicChanged(room: "#dev", text: "release Friday", by: .server, at: Chat.now, id: 1), to: [1])])
        let shown = try chat.state.topic(nil, in: "#dev", now: Chat.now)
        #expect(shown.reply == .topic(room: "#dev", text: "release Friday", setBy: "the server operator", setAt: Chat.now))
        #expect(#expect(throws: ChatError.self) { try chat.state.topic("x", in: "#nowhere", now: Chat.now) }?.code == .noSuchRoom)
    }

    @Test("an announcement is stored once and reaches everyone online, each told the rooms they are in")
    func announce() throws {
        var chat = try Chat(users: ["alice", "bob", "carol"])
        chat.handle(3, .part(room: nil, reason: nil))
        chat.handle(2, .join("#rust"))
        let effects = chat.state.announce("restart at \u{1B}[1mnoon", now: Chat.now)
        let message = ChatMessage(id: 1, time: Chat.now, from: nil, target: .everyone, kind: .notice, text: "restart at noon")
        #expect(effects.records.map(\.0) == [message])
        #expect(effects.steps.count == 3)
        #expect(effects.recipients(of: .announcement(message, rooms: ["#general"])).map(\.peer) == [1])
        #expect(effects.recipients(of: .announcement(message, rooms: ["#general", "#rust"])).map(\.peer) == [2])
        #expect(effects.recipients(of: .announcement(message, rooms: [])).map(\.peer) == [3])
        // Short: IRC users see it once in each of their channels.
        let long = chat.state.announce(String(repeating: "x", count: 1000), now: Chat.now)
        #expect(long.records.first?.0.text.count == ChatState<Int>.maximumAnnouncementLength)
    }

    @Test("an announcement to a room reaches its members only")
    func announceToRoom() throws {
        var chat = try Chat(users: ["alice", "bob"])
        chat.handle(2, .join("#rust"))
        let effects = try chat.state.announce("rust night", in: "#Rust", now: Chat.now)
        let message = ChatMessage(id: 1, time: Chat.now, from: nil, target: .room("#rust"), kind: .notice, text: "rust night")
        #expect(effects.steps == [.deliver(.message(message), to: [2])])
        let error = #expect(throws: ChatError.self) { try chat.state.announce("hello", in: "#nowhere", now: Chat.now) }
        #expect(error?.code == .noSuchRoom)
    }

    @Test("an account is shown as registered (Alice) and compared by its key (alice)")
    func accountDisplayName() throws {
        var chat = try Chat()
        chat.state.setAccounts([Account(name: "Alice", credential: Credential(hash: [], salt: [], parameters: ""))])
        let (id, _) = try chat.state.register(nick: "bob", peer: 1, account: "Alice", now: Chat.now)
        chat.ids[1] = id
        #expect(chat.state.account(of: id) == "alice")
        #expect(chat.state.accountName(of: id) == "Alice")
        let message = ackMessage(chat.handle(1, .say(room: "#general", text: "hi", kind: .normal)))
        #expect(message?.account == "Alice")
        #expect(chat.state.profile(of: "bob")?.account == "Alice")
        // The nick the account owns is held by the key, whatever the spelling.
        #expect(throws: ChatError.self) { try chat.state.register(nick: "alice", peer: 2, now: Chat.now) }
    }
}

/// The message of the first ack among `effects`.
func ackMessage(_ effects: [Effect<Int>]) -> ChatMessage? {
    for case .deliver(.ack(_, let message), _) in effects { return message }
    return nil
}
