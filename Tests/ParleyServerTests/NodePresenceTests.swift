import Foundation
import NIOCore
import ParleyCore
import ParleyPostgres
import ParleyServer
import Testing

/// Several nodes as one chat's presence (docs/ARCHITECTURE.md, "Several nodes on one PostgreSQL"): who is online
/// where, nicknames across nodes, private messages, late starters, and a dead node's users leaving. Against a real
/// PostgreSQL server (`PostgresCluster`).
@Suite("Several nodes: who is online")
struct NodePresenceTests {
    /// The line `/who #room` answers with, once it names everyone in `nicks`.
    static func members(of room: String, seenBy user: TestClient, including nicks: [String]) async throws -> String {
        var found = ""
        try await eventually("\(nicks) in \(room) as /who \(room) lists it", timeout: .seconds(20)) {
            try await user.send("/who \(room)")
            found = try await user.waitFor { $0.hasPrefix("*** In \(room)") }
            return nicks.allSatisfy { nick in found.components(separatedBy: CharacterSet(charactersIn: " :@+,")).contains(nick) }
        }
        return found
    }

    @Test("two nodes are one chat: joins, nick changes, parts and quits cross; /who and /whois show everyone; a nick is taken on every node; private messages cross; a node started later knows who is there")
    func presenceCrosses() async throws {
        let database = try await PostgresCluster.newDatabase()
        try await TestServer.run(storage: NodeTests.node("a", of: database)) { a in
            try await TestServer.run(storage: NodeTests.node("b", of: database)) { b in
                let alice = try await a.textUser("alice")
                let bob = try await b.textUser("bob")
                try await alice.waitFor { $0 == "*** bob joined #general" }
                _ = try await Self.members(of: "#general", seenBy: bob, including: ["alice", "bob"])

                // A nick held on node a is taken on node b, at registration and by /nick.
                let clash = try await TestClient.connect(port: b.port)
                try await clash.waitFor { $0 == "*** Choose a nickname:" }
                try await clash.send("alice")
                try await clash.waitFor { $0.contains("The nickname alice is taken") }
                try await bob.send("/nick alice")
                try await bob.waitFor { $0 == "!!! The nickname alice is taken by a user of another server of this chat; choose another." }

                try await alice.send("/nick alicia")
                try await bob.waitFor { $0 == "*** alice is now known as alicia" }
                try await bob.send("/join #side")
                try await bob.waitFor { $0.hasPrefix("*** In #side") }
                try await alice.send("/join #side")
                try await bob.waitFor { $0 == "*** alicia joined #side" }
                try await alice.send("hello side")
                try await bob.waitFor { $0.hasSuffix("<alicia> hello side") }
                try await bob.send("/rooms")
                try await bob.waitFor { $0 == "***   #side (2 members)" }
                try await bob.send("/whois alicia")
                try await bob.waitFor { $0.contains(" in ") && $0.contains("#general") && $0.contains("#side") }

                // Private messages, both ways.
                try await alice.send("/msg bob psst")
                try await bob.waitFor { $0.hasSuffix("] -> (private) <alicia> psst") }
                try await alice.waitFor { $0.hasSuffix("] <- (private to bob) psst") }
                try await bob.send("/msg alicia and back")
                try await alice.waitFor { $0.hasSuffix("] -> (private) <bob> and back") }

                // A node that starts now learns who is online from the database before it serves.
                try await TestServer.run(storage: NodeTests.node("c", of: database)) { c in
                    let carol = try await c.textUser("carol")
                    try await carol.send("/who #side")
                    let side = try await carol.waitFor { $0.hasPrefix("*** In #side") }
                    #expect(side.contains("alicia") && side.contains("bob"), "\(side)")
                    try await bob.waitFor { $0 == "*** carol joined #general" }
                    try await alice.waitFor { $0 == "*** carol joined #general" }

                    try await alice.send("/part #side off")
                    try await bob.waitFor { $0 == "*** alicia left #side (off)" }
                    try await alice.send("/quit bye")
                    try await bob.waitFor { $0 == "*** alicia left #general (quit: bye)" }
                    try await carol.waitFor { $0 == "*** alicia left #general (quit: bye)" }
                    // Her nick is free everywhere again.
                    try await carol.send("/nick alicia")
                    try await bob.waitFor { $0 == "*** carol is now known as alicia" }
                }
                // Node c stopped in order: its user's departure was told.
                try await bob.waitFor { $0.hasPrefix("*** alicia left #general") }
                let general = try await Self.members(of: "#general", seenBy: bob, including: ["bob"])
                #expect(!general.contains("alicia") && !general.contains("alice"), "\(general)")
            }
        }
    }

    @Test("moderation holds on every node: a ban, a kick and a mute given on node a hold for users of node b, told to both; a topic lock too")
    func moderationCrosses() async throws {
        let database = try await PostgresCluster.newDatabase()
        try await TestServer.run(storage: NodeTests.node("a", of: database)) { a in
            try await TestServer.run(storage: NodeTests.node("b", of: database)) { b in
                let alice = try await a.textUser("alice")
                try await alice.send("/join #mod")
                try await alice.waitFor { $0.hasPrefix("*** In #mod") }
                let bob = try await b.textUser("bob")
                let carol = try await b.textUser("carol")
                let dave = try await b.textUser("dave")
                for user in [bob, carol, dave] {
                    try await user.send("/join #mod")
                    try await user.waitFor { $0.hasPrefix("*** In #mod") }
                }
                _ = try await Self.members(of: "#mod", seenBy: alice, including: ["alice", "bob", "carol", "dave"])

                // A ban: node b removes its banned user, and keeps them out.
                try await alice.send("/ban bob 1h spam")
                try await bob.waitFor { $0.hasPrefix("*** alice banned bob from #mod until ") && $0.hasSuffix(": spam") }
                try await bob.waitFor { $0 == "*** bob left #mod (kicked by alice: banned: spam)" }
                try await alice.waitFor { $0 == "*** bob left #mod (kicked by alice: banned: spam)" }
                try await bob.send("/join #mod")
                try await bob.waitFor { $0.hasPrefix("!!! You are banned from #mod for ") }

                // A kick of a user of node b: carried out there, told everywhere.
                try await alice.send("/kick carol out")
                try await carol.waitFor { $0 == "*** carol left #mod (kicked by alice: out)" }
                try await alice.waitFor { $0 == "*** carol left #mod (kicked by alice: out)" }
                try await dave.waitFor { $0 == "*** carol left #mod (kicked by alice: out)" }

                // A mute holds where its user speaks; so does a topic lock.
                try await alice.send("/mute dave 1h")
                try await dave.waitFor { $0.hasPrefix("*** alice muted dave in #mod until ") }
                try await dave.send("can I still talk?")
                try await dave.waitFor { $0.hasPrefix("!!! You are muted in #mod for ") }
                try await alice.send("/unmute dave")
                try await dave.waitFor { $0.hasPrefix("*** alice unmuted dave in #mod") }
                try await alice.send("/topiclock on")
                try await dave.waitFor { $0 == "*** alice locked the topic of #mod: only operators can change it" }
                try await dave.send("/topic mine now")
                try await dave.waitFor { $0 == "!!! The topic of #mod is locked: only its operators can change it." }
                try await alice.send("/topic set by alice")
                try await dave.waitFor { $0 == "*** Topic of #mod: set by alice (set by alice)" }

                // A moderated room: a voice given on node a lets dave speak on node b.
                try await alice.send("/mode +m")
                try await dave.waitFor { $0.hasPrefix("*** alice made #mod moderated") }
                try await dave.send("quiet in here")
                try await dave.waitFor { $0 == "!!! #mod is moderated: only its operators and those they give a voice speak." }
                try await alice.send("/voice dave")
                try await dave.waitFor { $0 == "*** alice gave dave a voice in #mod" }
                try await dave.send("/who #mod")
                let voiced = try await dave.waitFor { $0.hasPrefix("*** In #mod") }
                #expect(voiced.contains("+dave"), "\(voiced)")
                try await dave.send("may I?")
                try await alice.waitFor { $0.hasSuffix("<dave> may I?") }

                // An invitation from node a reaches a user of node b, and lets them into an invite-only room.
                let erin = try await b.textUser("erin")
                try await alice.send("/mode +i")
                try await dave.waitFor { $0 == "*** alice made #mod invite only" }
                try await erin.send("/join #mod")
                try await erin.waitFor { $0.hasPrefix("!!! #mod is invite only") }
                try await alice.send("/invite erin #mod")
                try await alice.waitFor { $0 == "*** You invited erin to #mod." }
                try await erin.waitFor { $0 == "*** alice invites you to #mod: /join #mod" }
                try await erin.send("/join #mod")
                try await erin.waitFor { $0.hasPrefix("*** In #mod") }
            }
        }
    }

    @Test("a typing indicator (a TAGMSG that is not kept) reaches IRC users of another node, in a room and in private, and stays out of the history")
    func typingCrosses() async throws {
        let database = try await PostgresCluster.newDatabase()
        try await TestServer.run(storage: NodeTests.node("a", of: database)) { a in
            try await TestServer.run(storage: NodeTests.node("b", of: database)) { b in
                let tagger = try await IRCConformanceTests.connect("tagger", port: a.ircPort, capabilities: ["message-tags"])
                let watcher = try await IRCConformanceTests.connect("tagwatch", port: b.ircPort, capabilities: ["message-tags"])
                try await IRCConformanceTests.join(tagger, "tagger", "#tags")
                try await IRCConformanceTests.join(watcher, "tagwatch", "#tags")
                try await tagger.waitFor(timeout: .seconds(20)) { $0.hasPrefix(":tagwatch!") && $0.hasSuffix(" JOIN #tags") }
                try await tagger.send("@+typing=active TAGMSG #tags")
                let typing = try await watcher.waitFor { $0.contains(" :tagger!") && $0.hasSuffix(" TAGMSG #tags") }
                #expect(typing.hasPrefix("@+typing=active;"), "\(typing)")
                try await tagger.send("@+typing=paused TAGMSG tagwatch")
                let inPrivate = try await watcher.waitFor { $0.contains(" :tagger!") && $0.hasSuffix(" TAGMSG tagwatch") }
                #expect(inPrivate.hasPrefix("@+typing=paused;"), "\(inPrivate)")
                // Not kept: a newcomer's history of the room has none of it.
                try await tagger.send("PRIVMSG #tags :words")
                try await watcher.waitFor { $0.hasSuffix("PRIVMSG #tags :words") }
                let late = try await b.jsonUser("late")
                try await late.send(##"{"type":"join","room":"#tags"}"##)
                let history = try json(try await late.waitFor(isEvent("history", ["room": "#tags"])))["messages"] as! [[String: Any]]
                #expect(history.map { $0["text"] as? String } == ["words"], "\(history)")
            }
        }
    }

    @Test("kill -9 of a node: its users leave every other node within --node-timeout, told once on each, and their nicks are free again")
    func deadNodesUsersLeave() async throws {
        let (cluster, database, environment) = try await NodeTests.newDatabase()
        var nodes: [(ParleyProcess, port: Int)] = []
        for name in ["a", "b", "c"] { nodes.append(try await NodeTests.serve(name, environment: environment, extra: ["--node-timeout", "3"])) }
        let alice = try await TestServer.textUser("alice", port: nodes[0].port)
        let bob = try await TestServer.textUser("bob", port: nodes[1].port)
        let carol = try await TestServer.textUser("carol", port: nodes[2].port)
        for user in [bob, carol] { _ = try await Self.members(of: "#general", seenBy: user, including: ["alice", "bob", "carol"]) }
        try await alice.send("/join #side")
        try await bob.send("/join #side")
        _ = try await Self.members(of: "#side", seenBy: bob, including: ["alice", "bob"])

        let killed = ContinuousClock.now
        nodes[0].0.signal(SIGKILL)
        _ = try? await nodes[0].0.waitForExit()
        let departure = "*** alice left #general (connection lost (its server stopped answering))"
        try await bob.waitFor(timeout: .seconds(30)) { $0 == departure }
        try await carol.waitFor(timeout: .seconds(30)) { $0 == departure }
        let waited = ContinuousClock.now - killed
        // The lease lasts 3 s; renewals and checks come once a second: well inside 3 s and a few checks.
        #expect(waited < .seconds(10), "\(waited)")
        try await bob.waitFor { $0 == "*** alice left #side (connection lost (its server stopped answering))" }

        // Told once on each node: exactly one node ended node a, with one entry in the log.
        #expect(try await cluster.number(database: database.database, "SELECT count(*) FROM presence_log WHERE node = 'a' AND entry LIKE '%nodeGone%'") == 1)
        #expect(try await cluster.number(database: database.database, "SELECT count(*) FROM presence WHERE node = 'a'") == 0)
        try await carol.send("/nick alice")
        try await bob.waitFor { $0 == "*** carol is now known as alice" }
        for user in [bob, carol] {
            let general = try await Self.members(of: "#general", seenBy: user, including: ["alice", "bob"])
            #expect(general == "*** In #general (2): alice, bob", "\(general)")
            #expect(try await user.lines.count { $0.hasPrefix("*** alice left #general") } == 1)
        }
        for node in nodes.dropFirst() {
            node.0.signal(SIGTERM)
            #expect(try await node.0.waitForExit() == 0)
        }
    }

    @Test("a node stalled past its --node-timeout: the others end its users; woken, it finds its lease was ended and tells them again who is there")
    func stalledNodeComesBack() async throws {
        let (_, _, environment) = try await NodeTests.newDatabase()
        let (a, portA) = try await NodeTests.serve("a", environment: environment, extra: ["--node-timeout", "2"])
        let (b, portB) = try await NodeTests.serve("b", environment: environment)
        let alice = try await TestServer.textUser("alice", port: portA)
        let bob = try await TestServer.textUser("bob", port: portB)
        _ = try await Self.members(of: "#general", seenBy: bob, including: ["alice", "bob"])
        a.signal(SIGSTOP)
        try await bob.waitFor(timeout: .seconds(30)) { $0.hasPrefix("*** alice left #general (connection lost") }
        a.signal(SIGCONT)
        try await bob.waitFor(timeout: .seconds(30)) { $0 == "*** alice joined #general" }
        _ = try await Self.members(of: "#general", seenBy: bob, including: ["alice", "bob"])
        try await alice.send("still here")
        try await bob.waitFor { $0.hasSuffix("<alice> still here") }
        for node in [a, b] {
            node.signal(SIGTERM)
            #expect(try await node.waitForExit() == 0)
        }
    }
}
