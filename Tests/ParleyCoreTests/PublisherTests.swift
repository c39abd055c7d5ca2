import Foundation
import ParleyCore
import Synchronization
import Testing

/// A store in memory that can be told to fail, and counts its writes.
final class MemoryStore: MessageStore {
    private let state = Mutex<(messages: [ChatMessage], writes: Int, failing: Bool)>(([], 0, false))

    var writes: Int { state.withLock { $0.writes } }
    var messages: [ChatMessage] { state.withLock { $0.messages } }
    func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func append(_ messages: [ChatMessage]) async throws {
        try state.withLock { state in
            if state.failing { throw CocoaError(.fileWriteOutOfSpace) }
            state.messages += messages
            state.writes += 1
        }
    }

    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        let inRoom = messages.filter { $0.target == .room(room) && $0.id < below }
        switch query {
        case .latest(let count): return Array(inRoom.suffix(count))
        case .before(let id, let count): return Array(inRoom.filter { $0.id < id }.suffix(count))
        case .after(let id, let count): return Array(inRoom.filter { $0.id > id }.prefix(count))
        case .range, .around: return []  // IRC's CHATHISTORY; the SQLite store's implementation is tested over IRC
        }
    }

    func lastMessageID() async throws -> Int64 { messages.last?.id ?? 0 }
}

/// A gate a test opens when it likes: whoever comes to it before then waits; it counts who came.
final class Gate: Sendable {
    /// Moves at every arrival.
    let changes = Changes()
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>], arrivals: Int)>((false, [], 0))

    var arrivals: Int { state.withLock { $0.arrivals } }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    func pass() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                state.arrivals += 1
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            changes.changed()
            if ready { continuation.resume() }
        }
    }
}

/// A store whose history reads wait until the test opens the gate: a read that takes as long as it likes.
final class SlowHistoryStore: MessageStore {
    private let gate = Gate()
    let inner = MemoryStore()

    var reads: Int { gate.arrivals }
    var changes: Changes { gate.changes }
    func open() { gate.open() }

    func append(_ messages: [ChatMessage]) async throws { try await inner.append(messages) }
    func lastMessageID() async throws -> Int64 { try await inner.lastMessageID() }

    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        await gate.pass()
        return try await inner.history(room: room, query, below: below)
    }
}

/// A store whose writes wait until the test opens the gate: a publisher busy for as long as the test likes.
final class GatedStore: MessageStore {
    private let gate = Gate()

    var writesStarted: Int { gate.arrivals }
    var changes: Changes { gate.changes }
    func open() { gate.open() }

    func append(_ messages: [ChatMessage]) async throws { await gate.pass() }
    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] { [] }
    func lastMessageID() async throws -> Int64 { 0 }
}

/// Counts room-change writes.
final class CountingRoomStore: RoomStore {
    private let state = Mutex<[(changes: [RoomChange], audits: [AuditEntry])]>([])
    var writes: [(changes: [RoomChange], audits: [AuditEntry])] { state.withLock { $0 } }
    func apply(_ changes: [RoomChange], audits: [AuditEntry]) async throws { state.withLock { $0.append((changes, audits)) } }
    func roomPolicies() async throws -> [RoomPolicy] { [] }
}

@Suite("Publisher")
struct PublisherTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test("a batch's messages are stored in one write, before anyone hears of them")
    func groupCommit() async throws {
        let sink = RecordingSink()
        let store = MemoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        _ = try hub.register(nick: "bob", peer: 2)
        for index in 1...10 { hub.handle(.say(room: nil, text: "m\(index)", kind: .normal), ref: "r\(index)", from: alice) }
        await Publisher(hub: hub, store: store).publish(hub.takeEffects())
        #expect(store.writes == 1)
        #expect(store.messages.map(\.text) == (1...10).map { "m\($0)" })
        #expect(sink.messageIDs(for: 2) == store.messages.map(\.id))
    }

    @Test("a message that could not be stored is neither acknowledged nor delivered; its sender is told")
    func failedWrite() async throws {
        let sink = RecordingSink()
        let store = MemoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        _ = try hub.register(nick: "bob", peer: 2)
        let publisher = Publisher(hub: hub, store: store)
        await publisher.publish(hub.takeEffects())
        let before = sink.steps.count
        store.fail(true)
        hub.handle(.say(room: nil, text: "lost?", kind: .normal), ref: "x", from: alice)
        await publisher.publish(hub.takeEffects())
        let after = Array(sink.steps.dropFirst(before))
        #expect(after.count == 1)
        guard case .deliver(.error(let error, "x"), [1]) = after.first else {
            Issue.record("expected a not_stored error to alice, got \(after)")
            return
        }
        #expect(error.code == .notStored)
        // The store recovers: the next message goes through.
        store.fail(false)
        hub.handle(.say(room: nil, text: "again", kind: .normal), ref: "y", from: alice)
        await publisher.publish(hub.takeEffects())
        #expect(store.messages.map(\.text) == ["again"])
        #expect(sink.steps.contains { if case .deliver(.ack("y", _), [1]) = $0 { true } else { false } })
    }

    @Test("joining replays the latest messages; a resuming client gets exactly what came after its last id")
    func replay() async throws {
        let sink = RecordingSink()
        let store = MemoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 3, now: { Self.now })
        let publisher = Publisher(hub: hub, store: store)
        let alice = try hub.register(nick: "alice", peer: 1)
        for index in 1...5 { hub.handle(.say(room: nil, text: "m\(index)", kind: .normal), from: alice) }
        await publisher.publish(hub.takeEffects())
        _ = try hub.register(nick: "bob", peer: 2)
        _ = try hub.register(nick: "carol", peer: 3, resume: ["#GENERAL": 1])
        await publisher.publish(hub.takeEffects())
        await publisher.settle()
        func history(for peer: Int) -> [String] {
            sink.steps.compactMap { step -> [String]? in
                guard case .deliver(.history("#general", let messages, nil), [peer]) = step else { return nil }
                return messages.map(\.text)
            }.last ?? []
        }
        #expect(history(for: 2) == ["m3", "m4", "m5"])
        #expect(history(for: 3) == ["m2", "m3", "m4", "m5"])
        hub.handle(.history(room: nil, .before(3, count: 10)), ref: "h", from: alice)
        await publisher.publish(hub.takeEffects())
        await publisher.settle()
        guard case .deliver(.history("#general", let older, "h"), [1])? = sink.steps.last else {
            Issue.record("expected a history reply, got \(String(describing: sink.steps.last))")
            return
        }
        #expect(older.map(\.text) == ["m1", "m2"])
    }

    @Test("a replay in the same batch as a later message does not include it: it comes live, once")
    func replayInBatch() async throws {
        let sink = RecordingSink()
        let store = MemoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 10, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        let publisher = Publisher(hub: hub, store: store)
        await publisher.publish(hub.takeEffects())
        await publisher.settle()
        _ = try hub.register(nick: "bob", peer: 2)
        hub.handle(.say(room: nil, text: "right after bob joined", kind: .normal), from: alice)
        await publisher.publish(hub.takeEffects())
        await publisher.settle()
        let seen = sink.steps.flatMap { step -> [Int64] in
            switch step {
            case .deliver(.history(_, let messages, _), [2]): messages.map(\.id)
            case .deliver(.message(let message), let peers) where peers.contains(2): [message.id]
            default: []
            }
        }
        #expect(seen == [1])
    }

    @Test("a cancelled publisher stops waiting")
    func cancellation() async {
        let hub = ChatHub(serverName: "t", sink: RecordingSink())
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Publisher(hub: hub, store: NoStore()).run() }
            group.cancelAll()
            await group.waitForAll()
        }
        #expect(await hub.nextEffects() == nil)
    }

    @Test("a history read does not hold up anyone else; the requester gets it where it asked, then what came meanwhile")
    func historyOffThePath() async throws {
        let sink = RecordingSink()
        let store = SlowHistoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, now: { Self.now })
        let publisher = Publisher(hub: hub, store: store)
        let alice = try hub.register(nick: "alice", peer: 1)
        let bobID = try hub.register(nick: "bob", peer: 2)
        hub.handle(.say(room: nil, text: "old", kind: .normal), from: alice)
        await publisher.publish(hub.takeEffects())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await publisher.run() }
            // bob asks for history; the read hangs. alice talks on and is acknowledged: the publisher does not
            // wait for the read.
            hub.handle(.history(room: nil, .latest(10)), ref: "h", from: bobID)
            hub.handle(.say(room: nil, text: "live", kind: .normal), ref: "l", from: alice)
            try await store.changes.wait("bob's read to start") { store.reads == 1 }
            try await sink.changes.wait("alice's ack") { sink.steps.contains { if case .deliver(.ack("l", _), [1]) = $0 { true } else { false } } }
            store.open()
            hub.finish()
            try await group.waitForAll()
        }
        // bob: the history first, then the live message that came while it was being read.
        let bob = sink.steps.compactMap { step -> String? in
            guard case .deliver(let event, [2]) = step else { return nil }
            switch event {
            case .history(_, let messages, "h"): return "history " + messages.map(\.text).joined(separator: ",")
            case .message(let message): return message.text
            default: return nil
            }
        }
        #expect(bob.suffix(2) == ["history old", "live"])
    }

    @Test("every room change of a batch is one write, before anything announces it")
    func roomChangesInOneWrite() async throws {
        let sink = RecordingSink()
        let rooms = CountingRoomStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1, account: "alice")
        hub.handle(.join("#mine", key: nil), from: alice)
        for locked in [true, false, true, false, true] { hub.handle(.moderate(room: "#mine", .topicLock(locked)), from: alice) }
        await Publisher(hub: hub, store: NoStore(), rooms: rooms).publish(hub.takeEffects())
        #expect(rooms.writes.count == 1)
        #expect(rooms.writes.first?.changes.count == 6)  // ownership, then five locks
        #expect(rooms.writes.first?.audits.count == 5)
    }

    @Test("a reader can wait for the publisher to carry out what it queued; cancelling or finishing ends every wait")
    func carriedOut() async throws {
        let store = GatedStore()
        let hub = ChatHub(serverName: "t", sink: RecordingSink(), historyOnJoin: 0, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        let start = hub.queuePosition
        hub.handle(.say(room: nil, text: "one", kind: .normal), from: alice)
        let first = hub.queuePosition
        #expect(first == start + 1)
        final class Flag: Sendable {
            let raised = Mutex(false)
            let changes = Changes()
        }
        let reached = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Publisher(hub: hub, store: store).run() }
            group.addTask {
                await hub.carriedOut(through: first)
                reached.raised.withLock { $0 = true }
                reached.changes.changed()
            }
            // The publisher is stuck in the write of "one": the reader must not have gone on.
            try await store.changes.wait("the write to start") { store.writesStarted == 1 }
            let readerWentOn = reached.raised.withLock { $0 }
            #expect(!readerWentOn)
            // A reader waiting for a place that never comes gives up when cancelled.
            hub.handle(.say(room: nil, text: "two", kind: .normal), from: alice)
            let never = Task { await hub.carriedOut(through: hub.queuePosition + 100) }
            never.cancel()
            await never.value
            store.open()
            try await reached.changes.wait("the reader to go on") { reached.raised.withLock { $0 } }
            // Once the publisher is done for good, nobody waits for it.
            hub.finish()
            await hub.carriedOut(through: hub.queuePosition + 100)
            try await group.waitForAll()
        }
    }

    @Test("past the shutdown deadline nothing more is written, and every sender is answered not_stored")
    func shutdownDeadline() async throws {
        let sink = RecordingSink()
        let store = MemoryStore()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        _ = try hub.register(nick: "bob", peer: 2)
        let publisher = Publisher(hub: hub, store: store)
        await publisher.publish(hub.takeEffects())
        hub.beginShutdown(grace: .zero)
        hub.handle(.say(room: nil, text: "too late", kind: .normal), ref: "late", from: alice)
        await publisher.publish(hub.takeEffects())
        #expect(store.messages.isEmpty)
        #expect(sink.messageIDs(for: 2).isEmpty)
        #expect(sink.steps.contains { if case .deliver(.error(let error, "late"), [1]) = $0 { error.code == .notStored } else { false } })
    }

    @Test("a batch that lands higher in a shared log: its ids move by the offset everywhere, other nodes' messages come first, and the next ids start above")
    func sharedLog() async throws {
        let sink = RecordingSink()
        let other = ChatMessage(id: 7, time: Self.now, from: "zed", target: .room("#general"), kind: .normal, text: "from node b")
        let store = ShiftedStore(offset: 10, others: [other])
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, sharedLog: true, now: { Self.now })
        let alice = try hub.register(nick: "alice", peer: 1)
        _ = try hub.register(nick: "bob", peer: 2)
        // Their registrations, for the other nodes (ids 1 to 4: each came online and joined #general), stored
        // where nothing moves.
        await Publisher(hub: hub, store: NoStore()).publish(hub.takeEffects())
        let publisher = Publisher(hub: hub, store: store)
        let before = sink.steps.count
        hub.handle(.say(room: nil, text: "hi", kind: .normal), ref: "r", from: alice)
        let batch = hub.takeEffects()
        #expect(batch.ids == 5..<6)
        await publisher.publish(batch)
        let after = Array(sink.steps.dropFirst(before))
        guard after.count == 3,
            case .deliver(.message(let theirs), [1, 2]) = after[0],
            case .deliver(.message(let relayed), [2]) = after[1],
            case .deliver(.ack("r", let acked), [1]) = after[2]
        else {
            Issue.record("expected node b's message to both, then alice's to bob and her ack, got \(after)")
            return
        }
        #expect(theirs == other)
        #expect(relayed.id == 15 && acked.id == 15 && relayed.text == "hi")
        #expect(store.stored.map(\.id) == [5], "the store is handed the provisional ids, and moves them itself")
        hub.handle(.say(room: nil, text: "next", kind: .normal), ref: "s", from: alice)
        #expect(hub.takeEffects().ids == 16..<17, "the next batch is numbered above what was carried out")
    }

    @Test("on a node: another node's messages reach those who were in the room before the batch; one who joined in it gets them in its replay; a private one to a user who was not here yet is not delivered")
    func othersBeforeTheBatch() async throws {
        let sink = RecordingSink()
        let fromB = ChatMessage(id: 7, time: Self.now, from: "zed", target: .room("#general"), kind: .normal, text: "from node b")
        let privately = ChatMessage(id: 8, time: Self.now, from: "yan", target: .user("bob"), kind: .normal, text: "to b's bob")
        let store = ShiftedStore(offset: 0, others: [fromB, privately])
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 50, sharedLog: true, now: { Self.now })
        _ = try hub.register(nick: "alice", peer: 1)
        // Her registration, for the other nodes, stored where nothing moves (her replay is read there too).
        let first = Publisher(hub: hub, store: NoStore())
        await first.publish(hub.takeEffects())
        await first.settle()
        let publisher = Publisher(hub: hub, store: store)
        let before = sink.steps.count
        // Bob comes while node b's messages are on their way: the batch that has his join writes nothing, and
        // reads them because node b said so.
        _ = try hub.register(nick: "bob", peer: 2)
        hub.wake()
        await publisher.publish(hub.takeEffects())
        await publisher.settle()
        let after = Array(sink.steps.dropFirst(before))
        let relayed = after.filter { if case .deliver(.message, _) = $0 { true } else { false } }
        #expect(relayed == [.deliver(.message(fromB), to: [1])], "alice, who was in the room, gets it live; bob, not yet in it, does not")
        #expect(store.replayBounds == [9], "bob's replay reaches past node b's messages")
    }
}

@Suite("Publisher: other nodes' presence")
struct PublisherPresenceTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test("another node's user comes online while bob joins here: alice, here before, is told at once; bob after his own welcome; the next batch knows them")
    func newsAroundTheBatch() async throws {
        let sink = RecordingSink()
        let hub = ChatHub(serverName: "t", sink: sink, historyOnJoin: 0, sharedLog: true, nodeName: "a", now: { Self.now })
        _ = try hub.register(nick: "alice", peer: 1)
        await Publisher(hub: hub, store: NoStore()).publish(hub.takeEffects())
        let profile = PresenceProfile(nick: "zed", rooms: [])
        let online = PresenceEntry(id: 100, node: "b", session: 7, kind: .online, profile: profile)
        var joined = PresenceEntry(id: 101, node: "b", session: 7, kind: .joined, room: "#general", profile: profile)
        joined.profile?.rooms = ["#general"]
        let store = PresenceStore(presence: [online, joined])
        let publisher = Publisher(hub: hub, store: store)
        let before = sink.steps.count
        _ = try hub.register(nick: "bob", peer: 2)
        await publisher.publish(hub.takeEffects())
        let after = Array(sink.steps.dropFirst(before))
        let zedJoined = ChatEvent.joined(room: "#general", nick: "zed", account: nil, realName: nil)
        let toAlice = after.firstIndex(of: .deliver(zedJoined, to: [1]))
        let toBob = after.firstIndex(of: .deliver(zedJoined, to: [2]))
        let bobsWelcome = after.firstIndex { if case .deliver(.welcome, [2]) = $0 { true } else { false } }
        #expect(toAlice != nil && toBob != nil && bobsWelcome != nil, "\(after)")
        #expect(toAlice! < bobsWelcome!, "alice, here before the batch, is told first")
        #expect(bobsWelcome! < toBob!, "bob hears of zed after his own welcome")
        #expect(after.filter { $0 == .deliver(zedJoined, to: [1]) || $0 == .deliver(zedJoined, to: [2]) }.count == 2, "each told once")
        #expect(try hub.nicks(in: "#general") == ["alice", "bob", "zed"])
        // The next batch starts from a copy that has zed: an update of theirs is no second join.
        let before2 = sink.steps.count
        var away = PresenceEntry(id: 102, node: "b", session: 7, kind: .updated, profile: joined.profile)
        away.profile?.away = "lunch"
        store.add([away])
        hub.wake()
        await publisher.publish(hub.takeEffects())
        let next = Array(sink.steps.dropFirst(before2))
        #expect(!next.contains { if case .deliver(.joined(_, "zed", _, _), _) = $0 { true } else { false } }, "\(next)")
        #expect(next.contains { if case .deliver(.awayChanged("zed", "lunch"), let to) = $0 { Set(to) == [1, 2] } else { false } }, "\(next)")
    }
}

/// Hands back other nodes' presence entries once, from the next commit or catch-up.
final class PresenceStore: MessageStore {
    private let pending: Mutex<[PresenceEntry]>

    init(presence: [PresenceEntry]) { pending = Mutex(presence) }

    func add(_ entries: [PresenceEntry]) { pending.withLock { $0 += entries } }

    private func take() -> LogCommit {
        pending.withLock { pending in
            defer { pending = [] }
            return LogCommit(presence: pending)
        }
    }

    func append(_ messages: [ChatMessage]) async throws {}
    func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit { take() }
    func catchUp() async throws -> LogCommit { take() }
    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] { [] }
    func lastMessageID() async throws -> Int64 { 0 }
}

/// A store whose batches land `offset` higher in the log, after `others` (another node's), once: handed back by
/// the first commit or catch-up. Records the bounds it was asked to read history below.
final class ShiftedStore: MessageStore {
    private let state: Mutex<(stored: [ChatMessage], others: [ChatMessage], bounds: [Int64])>
    let offset: Int64

    init(offset: Int64, others: [ChatMessage]) {
        self.offset = offset
        self.state = Mutex(([], others, []))
    }

    var stored: [ChatMessage] { state.withLock { $0.stored } }
    var replayBounds: [Int64] { state.withLock { $0.bounds } }

    func append(_ messages: [ChatMessage]) async throws { state.withLock { $0.stored += messages } }

    func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit {
        state.withLock { state in
            state.stored += messages
            defer { state.others = [] }
            return LogCommit(offset: offset, others: state.others)
        }
    }

    func catchUp() async throws -> LogCommit {
        state.withLock { state in
            defer { state.others = [] }
            return LogCommit(others: state.others)
        }
    }

    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        state.withLock { $0.bounds.append(below) }
        return []
    }

    func lastMessageID() async throws -> Int64 { 0 }
}
