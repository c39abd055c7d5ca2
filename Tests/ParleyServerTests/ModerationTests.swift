import Foundation
import NIOCore
import ParleyCore
import ParleyServer
import ParleySQLite
import Testing

@Suite("Moderation, end to end")
struct ModerationEndToEndTests {
    @Test("bans, mutes, a locked topic and room ownership survive a restart; a short ban runs out on its own")
    func survivesRestart() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("parley-moderation-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        try await TestServer.run(dataDirectory: data) { server in
            let alice = try await server.textUser("alice")
            // A room keeps its bans while empty (and across restarts) when it has an owner: a logged-in creator.
            try await alice.send("/register alice-password")
            try await alice.waitFor { $0.hasPrefix("*** The nickname alice is now registered to you.") }
            try await alice.send("/join #dev")
            try await alice.waitFor { $0.hasPrefix("*** In #dev") }
            let bob = try await server.textUser("bob")
            let carol = try await server.textUser("carol")
            let dave = try await server.textUser("dave")
            for user in [bob, carol, dave] {
                try await user.send("/join #dev")
                try await user.waitFor { $0.hasPrefix("*** In #dev") }
            }
            try await bob.send("/ban carol")
            try await bob.waitFor { $0 == "!!! Only operators of #dev can do that." }

            try await alice.send("/ban bob 1h spam")
            try await bob.waitFor { $0.hasPrefix("*** alice banned bob from #dev until ") && $0.hasSuffix(": spam") }
            try await bob.waitFor { $0 == "*** bob left #dev (kicked by alice: banned: spam)" }
            try await bob.send("/join #dev")
            try await bob.waitFor { $0.hasPrefix("!!! You are banned from #dev for ") && $0.hasSuffix(" more: spam") }

            try await alice.send("/ban carol 3s")
            try await carol.waitFor { $0 == "*** carol left #dev (kicked by alice: banned)" }
            try await alice.send("/mute dave 1h")
            try await dave.waitFor { $0.hasPrefix("*** alice muted dave in #dev until ") }
            try await dave.send("can I still talk?")
            try await dave.waitFor { $0.hasPrefix("!!! You are muted in #dev for ") }
            try await alice.send("/topic stable topic")
            try await alice.send("/topiclock on")
            try await dave.waitFor { $0 == "*** alice locked the topic of #dev: only operators can change it" }
            try await alice.send("/join #vault")
            try await alice.send("/key sesame")
            try await alice.waitFor { $0 == "*** alice set the key of #vault to sesame: joining needs it" }
        }

        let store = try await SQLiteStore.open(directory: data)
        let trail = try await store.auditTrail()
        await store.close()
        #expect(trail.map(\.action) == ["register", "ban", "ban", "mute", "topic_lock", "key"])
        #expect(trail.dropFirst().first.map { [$0.actor, $0.target, $0.detail] } == ["alice", "bob", "#dev for 1 hour: spam"])

        try await TestServer.run(dataDirectory: data) { server in
            let bob = try await server.textUser("bob")
            try await bob.send("/join #dev")
            try await bob.waitFor { $0.hasPrefix("!!! You are banned from #dev") }
            let dave = try await server.textUser("dave")
            try await dave.send("/join #dev")
            // Who set the topic and when survive the restart too.
            try await dave.waitFor { $0.hasPrefix("*** Topic of #dev: stable topic (set by alice on ") }
            try await dave.send("hello?")
            try await dave.waitFor { $0.hasPrefix("!!! You are muted in #dev") }
            // Nor can the muted speak through the topic.
            try await dave.send("/topic #dev dave was here")
            try await dave.waitFor { $0.hasPrefix("!!! You are muted in #dev") }
            // carol's three seconds run out whether or not the server ran all along; dave sees it said.
            let carol = try await server.textUser("carol")
            try await eventually("carol's ban runs out") {
                try await carol.send("/join #dev")
                let line = try await carol.waitFor { $0.hasPrefix("!!! You are banned") || $0.hasPrefix("*** In #dev") }
                return line.hasPrefix("*** In #dev")
            }
            try await carol.send("/topic #dev carol was here")
            try await carol.waitFor { $0 == "!!! The topic of #dev is locked: only its operators can change it." }
            try await dave.send("/bans")
            try await dave.waitFor { $0 == "*** Bans and mutes in #dev (2):" }
            #expect(try await dave.nextLine().hasPrefix("***   ban bob by alice until "))
            #expect(try await dave.nextLine().hasPrefix("***   mute dave by alice until "))
            try await dave.send("/join #vault")
            try await dave.waitFor { $0 == "!!! #vault needs a key: /join #vault KEY" }
            try await dave.send("/join #vault sesame")
            try await dave.waitFor { $0.hasPrefix("*** In #vault") }
        }
    }

    @Test("JSON clients get moderation events and can moderate: kick, ban with a duration, bans, op")
    func json() async throws {
        try await TestServer.run { server in
            let owner = try await server.jsonUser("owner")
            try await owner.send(##"{"type":"join","room":"#ops"}"##)
            try await owner.waitFor(isEvent("members", ["room": "#ops"]))
            let guest = try await server.jsonUser("guest")
            try await guest.send(##"{"type":"join","room":"#ops"}"##)
            try await guest.waitFor(isEvent("members", ["room": "#ops"]))

            try await guest.send(##"{"type":"kick","room":"#ops","nick":"owner","ref":"k"}"##)
            try await guest.waitFor(isEvent("error", ["code": "not_operator", "ref": "k"]))

            try await owner.send(##"{"type":"op","room":"#ops","nick":"guest"}"##)
            let op = try ParleyServerTests.json(try await guest.waitFor(isEvent("moderation", ["action": "op"])))
            #expect(op["target"] as? String == "guest" && op["by"] as? String == "owner" && op["room"] as? String == "#ops")
            try await owner.send(##"{"type":"deop","room":"#ops","nick":"guest"}"##)
            try await guest.waitFor(isEvent("moderation", ["action": "deop"]))

            try await owner.send(##"{"type":"ban","room":"#ops","mask":"guest","duration":600,"reason":"testing"}"##)
            let ban = try ParleyServerTests.json(try await guest.waitFor(isEvent("moderation", ["action": "ban"])))
            #expect(ban["reason"] as? String == "testing")
            #expect(ban["until"] is String)
            let left = try ParleyServerTests.json(try await guest.waitFor(isEvent("left", ["room": "#ops", "nick": "guest"])))
            #expect(left["cause"] as? String == "kicked")
            try await guest.send(##"{"type":"join","room":"#ops","ref":"j"}"##)
            try await guest.waitFor(isEvent("error", ["code": "banned", "ref": "j"]))

            try await owner.send(##"{"type":"bans","room":"#ops"}"##)
            let list = try ParleyServerTests.json(try await owner.waitFor(isEvent("restrictions", ["room": "#ops"])))
            let entries = try #require(list["restrictions"] as? [[String: Any]])
            #expect(entries.count == 1)
            #expect(entries.first?["kind"] as? String == "ban" && entries.first?["mask"] as? String == "guest")
            #expect(entries.first?["until"] is String && entries.first?["since"] is String)

            // A short mute runs out by itself, and the room is told (by nobody: no "by").
            try await owner.send(##"{"type":"mute","room":"#ops","mask":"someone","duration":1}"##)
            try await owner.waitFor(isEvent("moderation", ["action": "mute"]))
            let ran = try ParleyServerTests.json(try await owner.waitFor(isEvent("moderation", ["action": "unmute"])))
            #expect(ran["target"] as? String == "someone" && ran["by"] == nil)

            try await owner.send(##"{"type":"ban","room":"#ops","mask":"x","duration":0,"ref":"bad"}"##)
            try await owner.waitFor(isEvent("error", ["code": "bad_request", "ref": "bad"]))
        }
    }

    @Test("a server operator (an account marked with parley account op) operates every room")
    func serverOperator() async throws {
        try await TestServer.run { server in
            let store = try #require(server.application.storage as? SQLiteStore)
            try await store.create(Account(name: "root", credential: try PasswordHasher.credential(for: "correct-horse", cost: 1024)))
            try await store.setOperator("root", true)
            server.application.hub.setAccounts(try await store.accounts())
            // A registered nick logs in at the nickname prompt.
            let root = try await TestClient.connect(port: server.port)
            try await root.send("/login root correct-horse")
            try await root.waitFor { $0.hasPrefix("*** In #general") }
            let mallory = try await server.textUser("mallory")
            try await root.send("/mute mallory 10m flooding")
            try await mallory.waitFor { $0.hasPrefix("*** root muted mallory in #general until ") }
            try await mallory.send("/kick root")
            try await mallory.waitFor { $0 == "!!! Only operators of #general can do that." }
            try await root.send("/kick mallory")
            try await mallory.waitFor { $0 == "*** mallory left #general (kicked by root)" }
        }
    }
}
