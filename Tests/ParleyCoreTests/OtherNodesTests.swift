import Foundation
import ParleyCore
import Testing

/// Two nodes' `ChatState`s, wired by hand: what one replicates, the other applies (as the publisher does
/// through the log), without sockets or a database.
@Suite("Other nodes' users")
struct OtherNodesTests {
    /// A node: its state, and the presence entries it has said and not yet handed to the other.
    struct Node {
        let name: String
        var state = ChatState<Int>(serverName: "t", historyOnJoin: 0)
        var said: [PresenceEntry] = []

        init(_ name: String) {
            self.name = name
            state.replicating = true
        }

        /// Keeps what `effects` replicate, and gives back the rest as steps.
        mutating func keep(_ effects: [Effect<Int>]) -> [Step] {
            for case .replicate(var entry) in effects {
                entry.node = name
                said.append(entry)
            }
            return effects.steps
        }

        /// Node a with ann (peer 1) and art (peer 2), node b with bea (peer 9), who has heard of them.
        static func annAndArtOnABeaOnB() throws -> (Node, Node) {
            var a = Node("a")
            var b = Node("b")
            for (index, nick) in ["ann", "art"].enumerated() { _ = a.keep(try a.state.register(nick: nick, peer: index + 1).1) }
            _ = b.keep(try b.state.register(nick: "bea", peer: 9).1)
            _ = b.hear(&a)
            return (a, b)
        }

        /// Applies what `other` said since last time, giving what this node's users were told.
        mutating func hear(_ other: inout Node) -> [Step] {
            defer { other.said = [] }
            return other.said.flatMap { keep(state.apply($0)) }
        }
    }

    @Test("another node's user joins, renames, parts and quits here as a member without a connection: told to those who share a room, in /who, never delivered to")
    func remoteLife() throws {
        var a = Node("a")
        var b = Node("b")
        let (alice, registered) = try a.state.register(nick: "alice", peer: 1)
        _ = a.keep(registered)
        #expect(a.said.map(\.kind) == [.online, .joined] && a.said.allSatisfy { $0.profile?.nick == "alice" })
        let (bob, bobRegistered) = try b.state.register(nick: "bob", peer: 2)
        _ = b.keep(bobRegistered)
        #expect(b.hear(&a) == [.deliver(.joined(room: "#general", nick: "alice", account: nil, realName: nil), to: [2])])
        _ = a.hear(&b)
        #expect(try b.state.nicks(in: "#general") == ["alice", "bob"])
        #expect(throws: ChatError.self) { try b.state.register(nick: "Alice", peer: 3) }

        // A room message from bob reaches carol here, not him (the sender), and not alice: she is reached on node
        // a, through the log. (The room's audience leaves her out, and still skips bob by his place in it.)
        _ = b.keep(try b.state.register(nick: "carol", peer: 3).1)
        #expect(b.keep(b.state.handle(.say(room: nil, text: "hi", kind: .normal), ref: nil, from: bob, now: Date())).allPeersDelivered == [3])
        _ = a.hear(&b)

        _ = a.keep(a.state.handle(.nick("alicia"), ref: nil, from: alice, now: Date()))
        #expect(b.hear(&a).map(\.sortedPeers) == [.deliver(.nickChanged(from: "alice", to: "alicia"), to: [2, 3])])
        _ = a.keep(a.state.handle(.quit(reason: "bye"), ref: nil, from: alice, now: Date()))
        let told = b.hear(&a)
        #expect(told.map(\.sortedPeers) == [.deliver(.left(room: "#general", nick: "alicia", reason: .quit("bye")), to: [2, 3])], "\(told)")
        #expect(try b.state.nicks(in: nil) == ["bob", "carol"])
        // Her nick is free there again.
        _ = b.keep(b.state.handle(.nick("alicia"), ref: nil, from: bob, now: Date()))
        #expect(b.state.nick(of: bob) == "alicia")
    }

    @Test("a nick two nodes admitted at once: both users lose it, each renamed on its own node, and the nodes agree")
    func nickRace() throws {
        var a = Node("a")
        var b = Node("b")
        let (onA, first) = try a.state.register(nick: "sam", peer: 1)
        _ = a.keep(first)
        let (onB, second) = try b.state.register(nick: "sam", peer: 2)
        _ = b.keep(second)
        let toldOnB = b.hear(&a)
        #expect(toldOnB.contains { if case .deliver(.notice(let text), [2]) = $0 { text.contains("took the nickname sam") } else { false } })
        _ = a.hear(&b)
        // Each renamed its own and told the other; after hearing that, both agree on everyone's nick.
        _ = a.hear(&b)
        _ = b.hear(&a)
        let (nameOnA, nameOnB) = (try #require(a.state.nick(of: onA)), try #require(b.state.nick(of: onB)))
        #expect(nameOnA.hasPrefix("Guest") && nameOnB.hasPrefix("Guest"))
        #expect(try a.state.nicks(in: nil) == b.state.nicks(in: nil))
        #expect(try !a.state.nicks(in: nil).contains("sam"))
    }

    @Test("a node gone: every user it had leaves here at once, told as a lost connection, their nicks freed")
    func nodeGone() throws {
        var (_, b) = try Node.annAndArtOnABeaOnB()
        #expect(try b.state.nicks(in: "#general") == ["ann", "art", "bea"])
        let gone = PresenceEntry(id: 99, node: "a", session: 0, kind: .nodeGone, cause: "lost", reason: "connection lost (its server stopped answering)")
        let told = b.keep(b.state.apply(gone))
        #expect(told.count == 2 && told.allSatisfy { if case .deliver(.left(_, _, .received("lost", _)), [9]) = $0 { true } else { false } })
        #expect(try b.state.nicks(in: nil) == ["bea"])
        #expect(throws: Never.self) { try b.state.register(nick: "ann", peer: 10) }
    }
}

@Suite("Other nodes' users: owners and lost news")
struct OtherNodesRecoveryTests {
    typealias Node = OtherNodesTests.Node

    @Test("a registered nick's owner logs in on one node while a guest holds it on another: the owner gets it, the guest is renamed on its own node")
    func ownerTakesNick() throws {
        var a = Node("a")
        var b = Node("b")
        let dana = Account(name: "Dana", credential: Credential(hash: [], salt: [], parameters: ""))
        // A guest took "dana" on node b before the account was made.
        let (guest, first) = try b.state.register(nick: "dana", peer: 2)
        _ = b.keep(first)
        a.state.setAccounts([dana])
        b.state.setAccounts([dana])
        _ = a.hear(&b)
        let (owner, second) = try a.state.register(nick: "Dana", peer: 1, account: "Dana")
        _ = a.keep(second)
        #expect(a.state.nick(of: owner) == "Dana")
        let told = b.hear(&a)
        #expect(told.contains { if case .deliver(.notice(let text), [2]) = $0 { text.contains("its owner logged in") } else { false } })
        #expect(b.state.nick(of: guest)?.hasPrefix("Guest") == true)
        _ = a.hear(&b)
        #expect(try a.state.nicks(in: nil) == b.state.nicks(in: nil))
        #expect(try a.state.nicks(in: nil).contains("Dana"))
    }

    @Test("a roster (a node back from losing its database) ends here whoever it no longer has, and keeps the rest")
    func roster() throws {
        var a = Node("a")
        var b = Node("b")
        let (stays, _) = try a.state.register(nick: "stays", peer: 1)
        let (goes, _) = try a.state.register(nick: "goes", peer: 2)
        a.said = []
        _ = a.keep(a.state.presenceSnapshot())
        #expect(a.said.map(\.kind) == [.roster, .updated, .updated])
        _ = b.keep(try b.state.register(nick: "bea", peer: 9).1)
        _ = b.hear(&a)
        #expect(try b.state.nicks(in: "#general") == ["bea", "goes", "stays"])
        // "goes" left while node a could not write: its offline never reached node b.
        _ = a.state.disconnect(goes, reason: .connectionLost)
        a.said = []
        _ = a.keep(a.state.presenceSnapshot())
        let told = b.hear(&a)
        #expect(told == [.deliver(.left(room: "#general", nick: "goes", reason: .received(cause: "lost", text: "connection lost")), to: [9])], "\(told)")
        #expect(try b.state.nicks(in: nil) == ["bea", "stays"])
        _ = stays
    }
}

extension OtherNodesRecoveryTests {
    @Test("back from a long absence, a node brings the others' sessions into line with the database's present: the gone leave, the new come, the rest stay")
    func resync() throws {
        var (_, b) = try Node.annAndArtOnABeaOnB()
        // Meanwhile on node a (news node b missed): art left, ama came.
        let present = [
            PresenceEntry(id: 0, node: "a", session: 1, kind: .online, profile: PresenceProfile(nick: "ann", rooms: ["#general"])),
            PresenceEntry(id: 0, node: "a", session: 9, kind: .online, profile: PresenceProfile(nick: "ama", rooms: ["#general"])),
        ]
        let told = b.keep(b.state.resync(with: present))
        #expect(told.contains(.deliver(.left(room: "#general", nick: "art", reason: .received(cause: "lost", text: "connection lost")), to: [9])), "\(told)")
        #expect(told.contains(.deliver(.joined(room: "#general", nick: "ama", account: nil, realName: nil), to: [9])), "\(told)")
        #expect(!told.contains { if case .deliver(.joined(_, "ann", _, _), _) = $0 { true } else { false } }, "ann stays, unannounced")
        #expect(try b.state.nicks(in: nil) == ["ama", "ann", "bea"])
    }
}

extension Step {
    /// The same step, its recipients in order (a set of sessions comes in no particular order).
    var sortedPeers: Step {
        if case .deliver(let event, let to) = self { return .deliver(event, to: to.sorted()) }
        return self
    }
}

extension Array where Element == Step {
    /// Every peer a message was delivered to.
    var allPeersDelivered: Set<Int> {
        var peers: Set<Int> = []
        for case .deliver(.message, let to) in self { peers.formUnion(to) }
        return peers
    }
}
