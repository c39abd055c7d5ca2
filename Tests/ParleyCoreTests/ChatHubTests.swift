import Foundation
import ParleyCore
import Synchronization
import Testing

/// Records what the hub hands out, in order.
final class RecordingSink: EventSink {
    typealias Peer = Int

    /// What was delivered in order, and (like a connection's outbox) what waits behind a place held for a
    /// reply: delivered to the log when the reply comes.
    private struct Log {
        var steps: [Step] = []
        var held: [(id: Int, peer: Int, reply: ChatEvent?, behind: [Step])] = []
        var nextHold = 0
    }

    private let log = Mutex(Log())
    /// Moves whenever a step is recorded.
    let changes = Changes()

    var steps: [Step] { log.withLock { $0.steps } }

    func deliver(_ event: ChatEvent, to recipients: Recipients<Int>) {
        log.withLock { log in
            let peers = recipients.map(\.peer)
            let waiting = peers.filter { peer in log.held.contains { $0.peer == peer } }
            for peer in waiting {
                let index = log.held.lastIndex { $0.peer == peer }!
                log.held[index].behind.append(.deliver(event, to: [peer]))
            }
            let now = peers.filter { !waiting.contains($0) }
            if !now.isEmpty { log.steps.append(.deliver(event, to: now)) }
        }
        changes.changed()
    }

    func close(_ peer: Int, reason: LeaveReason) {
        log.withLock { $0.steps.append(.close(peer, reason)) }
        changes.changed()
    }

    func hold(_ peer: Int) -> Int {
        log.withLock { log in
            defer { log.nextHold += 1 }
            log.held.append((log.nextHold, peer, nil, []))
            return log.nextHold
        }
    }

    func release(_ hold: Int, with event: ChatEvent) {
        log.withLock { log in
            guard let index = log.held.firstIndex(where: { $0.id == hold }) else { return }
            log.held[index].reply = event
            let peer = log.held[index].peer
            // A peer's places are let go in the order they were taken.
            while let first = log.held.firstIndex(where: { $0.peer == peer }), let reply = log.held[first].reply {
                let place = log.held.remove(at: first)
                log.steps.append(.deliver(reply, to: [peer]))
                log.steps += place.behind
            }
        }
        changes.changed()
    }

    /// The message ids `peer` received, in the order delivered.
    func messageIDs(for peer: Int) -> [Int64] {
        log.withLock { log in
            log.steps.compactMap { step in
                guard case .deliver(.message(let message), let peers) = step, peers.contains(peer) else { return nil }
                return message.id
            }
        }
    }
}

/// Publishes what the hub has queued (with no store), answers its history reads, then reads what the sink got.
func settled(_ hub: ChatHub<RecordingSink>, _ sink: RecordingSink) async -> [Step] {
    let publisher = Publisher(hub: hub, store: NoStore())
    await publisher.publish(hub.takeEffects())
    await publisher.settle()
    return sink.steps
}

func settledIDs(_ hub: ChatHub<RecordingSink>, _ sink: RecordingSink, for peer: Int) async -> [Int64] {
    _ = await settled(hub, sink)
    return sink.messageIDs(for: peer)
}

@Suite("ChatHub")
struct ChatHubTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000.5)

    private func makeHub() -> (ChatHub<RecordingSink>, RecordingSink) {
        let sink = RecordingSink()
        return (ChatHub(serverName: "hub.test", sink: sink, historyOnJoin: 0, now: { Self.now }), sink)
    }

    @Test("effects are delivered in the order the state made them, with the injected time")
    func deliveriesInOrder() async throws {
        let (hub, sink) = makeHub()
        let alice = try hub.register(nick: "alice", peer: 1)
        _ = try hub.register(nick: "bob", peer: 2)
        hub.handle(.say(room: nil, text: "hi bob", kind: .normal), ref: "r1", from: alice)
        let message = ChatMessage(id: 1, time: Self.now, from: "alice", target: .room("#general"), kind: .normal, text: "hi bob")
        #expect(
            (await settled(hub, sink)) == [
                .deliver(.welcome(nick: "alice", server: "hub.test"), to: [1]),
                .deliver(.motd(lines: []), to: [1]),
                .deliver(.joined(room: "#general", nick: "alice"), to: [1]),
                .deliver(.members(room: "#general", nicks: ["alice"]), to: [1]),
                .deliver(.welcome(nick: "bob", server: "hub.test", online: 2, mostOnline: 2), to: [2]),
                .deliver(.motd(lines: []), to: [2]),
                .deliver(.joined(room: "#general", nick: "bob"), to: [1, 2]),
                .deliver(.members(room: "#general", nicks: ["alice", "bob"]), to: [2]),
                .deliver(.message(message), to: [2]),
                .deliver(.ack(ref: "r1", message: message), to: [1]),
            ]
        )
        #expect(hub.serverName == "hub.test")
        #expect(hub.sessionCount == 2)
    }

    @Test("deliveries with no recipients are skipped, closes are passed on")
    func emptyDeliveriesAndCloses() async throws {
        let (hub, sink) = makeHub()
        let alice = try hub.register(nick: "alice", peer: 1)
        let before = (await settled(hub, sink)).count
        hub.handle(.say(room: nil, text: "anyone?", kind: .normal), from: alice)
        let said = Array((await settled(hub, sink)).dropFirst(before))
        #expect(said.count == 1)
        guard case .deliver(.ack(nil, let message), [1]) = try #require(said.first) else {
            Issue.record("expected only the ack, got \(said)")
            return
        }
        #expect(message.text == "anyone?")
        // Kicking the only user: the left notice has nobody to go to, the close comes after the error.
        try hub.kick("alice", reason: nil, by: .server)
        let kicked = Array((await settled(hub, sink)).dropFirst(before + 1))
        #expect(
            kicked == [
                .deliver(.error(ChatError(.kicked, "You were disconnected by the server operator."), ref: nil), to: [1]),
                .close(1, .kicked(by: .server, reason: nil)),
            ]
        )
        #expect(hub.sessionCount == 0)
    }

    @Test("refusals throw or come back as errors; queries read the state")
    func refusalsAndQueries() async throws {
        let (hub, sink) = makeHub()
        let alice = try hub.register(nick: "alice", peer: 1)
        let count = (await settled(hub, sink)).count
        let taken = #expect(throws: ChatError.self) { try hub.register(nick: "Alice", peer: 2) }
        #expect(taken?.code == .nickTaken)
        #expect((await settled(hub, sink)).count == count)
        #expect(throws: ChatError.self) { try hub.kick("nobody", reason: nil, by: .server) }
        #expect(throws: ChatError.self) { try hub.announce("hello", in: "#nowhere") }
        hub.handle(.join("#rust"), from: alice)
        #expect(try hub.nicks(in: "#rust") == ["alice"])
        #expect(try hub.nicks(in: nil) == ["alice"])
        #expect(hub.roomSummaries().map(\.name) == ["#general", "#rust"])
        hub.handle(.part(room: "#nowhere", reason: nil), ref: "x", from: alice)
        guard case .deliver(.error(let error, "x"), [1]) = try #require((await settled(hub, sink)).last) else {
            Issue.record("expected an error, got \(String(describing: (await settled(hub, sink)).last))")
            return
        }
        #expect(error.code == .noSuchRoom)
    }

    @Test("announcements and disconnects reach the sink")
    func announceAndDisconnect() async throws {
        let (hub, sink) = makeHub()
        _ = try hub.register(nick: "alice", peer: 1)
        let bob = try hub.register(nick: "bob", peer: 2)
        hub.announce("maintenance soon")
        try hub.announce("room notice", in: "#general")
        hub.disconnect(bob, reason: .connectionLost)
        let tail = Array((await settled(hub, sink)).suffix(3))
        let everyone = ChatMessage(id: 1, time: Self.now, from: nil, target: .everyone, kind: .notice, text: "maintenance soon")
        let room = ChatMessage(id: 2, time: Self.now, from: nil, target: .room("#general"), kind: .notice, text: "room notice")
        // Each user is told the announcement with the rooms they are in; those in the same rooms, together.
        guard case .deliver(.announcement(everyone, rooms: ["#general"]), let peers) = tail[0] else {
            Issue.record("expected the announcement, got \(tail[0])")
            return
        }
        #expect(Set(peers) == [1, 2])
        #expect(tail[1] == .deliver(.message(room), to: [1, 2]))
        #expect(tail[2] == .deliver(.left(room: "#general", nick: "bob", reason: .connectionLost), to: [1]))
        #expect(hub.sessionCount == 1)
    }

    @Test("concurrent senders: every recipient sees messages in id order")
    func concurrentOrder() async throws {
        let (hub, sink) = makeHub()
        let peers = [1, 2, 3, 4]
        var ids: [SessionID] = []
        for peer in peers { ids.append(try hub.register(nick: "user\(peer)", peer: peer)) }
        let perSender = 200
        await withTaskGroup(of: Void.self) { group in
            for id in ids {
                group.addTask {
                    for index in 0..<perSender { hub.handle(.say(room: nil, text: "line \(index)", kind: .normal), from: id) }
                }
            }
        }
        for peer in peers {
            let received = await settledIDs(hub, sink, for: peer)
            #expect(received.count == perSender * (peers.count - 1))
            #expect(received == received.sorted())
            #expect(Set(received).count == received.count)
        }
    }
}
