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
        case .range: return []  // IRC's CHATHISTORY; the SQLite store's implementation is tested over IRC
        }
    }

    func lastMessageID() async throws -> Int64 { messages.last?.id ?? 0 }
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
        await Publisher(hub: hub, store: store).publish(hub.takeEffects())
        _ = try hub.register(nick: "bob", peer: 2)
        hub.handle(.say(room: nil, text: "right after bob joined", kind: .normal), from: alice)
        await Publisher(hub: hub, store: store).publish(hub.takeEffects())
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
}
