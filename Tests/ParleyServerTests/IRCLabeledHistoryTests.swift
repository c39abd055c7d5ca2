import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
@testable import ParleyServer
import Testing

/// IRCv3 labeled-response, private history kept per account, CHATHISTORY TARGETS and draft/event-playback, over
/// real sockets.
@Suite("IRC front door: labeled responses, private history, CHATHISTORY TARGETS, event playback")
struct IRCLabeledHistoryTests {
    static let allCapabilities = ["batch", "labeled-response", "echo-message", "message-tags", "server-time", "draft/chathistory"]

    /// An IRC client with every history capability, logged in with SASL to `nick`'s account (made by a text
    /// user), in #general.
    static func loggedIn(_ nick: String, server: TestServer) async throws -> TestClient {
        try await IRCv3Tests.makeAccount(nick, "pw-\(nick)-1", server: server)
        let client = try await TestClient.connect(port: server.ircPort)
        try await client.send("CAP LS 302")
        try await client.send("CAP REQ :\((allCapabilities + ["sasl"]).joined(separator: " "))")
        try await client.waitFor { $0.contains(" CAP * ACK :") }
        try await client.send("AUTHENTICATE PLAIN")
        try await client.waitFor { $0 == "AUTHENTICATE +" }
        try await client.send("AUTHENTICATE \(IRCv3Tests.plain(nick, nick, "pw-\(nick)-1"))")
        try await client.waitFor { $0.hasSuffix(" 903 * :SASL authentication successful") }
        try await client.send("NICK \(nick)")
        try await client.send("USER \(nick) 0 * :\(nick)")
        try await client.send("CAP END")
        try await client.waitFor { $0.contains(" 376 \(nick) ") }
        try await client.send("JOIN #general")
        try await client.waitFor { $0.contains(" 366 \(nick) #general ") }
        return client
    }

    /// The lines of one labeled-response batch, its opening first; checks every line inside carries its tag.
    static func labeledBatch(_ client: TestClient, label: String) async throws -> [String] {
        let opening = try await client.waitFor { $0.hasPrefix("@label=\(label) ") }
        let parts = opening.split(separator: " ")
        #expect(parts.count == 5 && parts[2] == "BATCH" && parts[4] == "labeled-response", "\(opening)")
        let id = String(parts[3].dropFirst())
        var lines = [opening]
        while true {
            let line = try await client.nextLine()
            lines.append(line)
            if line == ":test.parley BATCH -\(id)" { return lines }
        }
    }

    /// The texts of the PRIVMSGs in the next chathistory batch, and the target the batch names.
    static func history(_ client: TestClient, _ command: String) async throws -> (target: String, texts: [String]) {
        try await client.send(command)
        let opening = try await client.waitFor { $0.contains(" BATCH +") && $0.contains(" chathistory ") }
        var texts: [String] = []
        while true {
            let line = try await client.nextLine()
            if line.contains(" BATCH -") { return (String(opening.split(separator: " ").last!), texts) }
            if let range = line.range(of: " PRIVMSG ") {
                texts.append(String(line[range.upperBound...].drop { $0 != ":" }.dropFirst()))
            }
        }
    }

    @Test("labeled-response: no reply is an ACK, one reply is labeled, several are a batch (with a history batch nested whole); unlabeled without the capability")
    func labeledResponses() async throws {
        try await TestServer.run { server in
            let client = try await IRCTests.ircUser("labeler", port: server.ircPort, capabilities: Self.allCapabilities)
            try await client.send("@label=p1 PING :token")
            try await client.waitFor { $0 == "@label=p1 :test.parley PONG test.parley :token" }
            // The echo is the one reply.
            try await client.send("@label=m1;+draft/reply=7 PRIVMSG #general :hello")
            let echo = try await client.waitFor { $0.contains(" PRIVMSG #general :hello") }
            #expect(echo.hasPrefix("@label=m1;") && echo.contains("+draft/reply=7") && echo.contains("msgid="), "\(echo)")
            // A JOIN's replies: JOIN, 353, 366, all in one batch.
            try await client.send("@label=j1 JOIN #lab")
            let join = try await Self.labeledBatch(client, label: "j1")
            let id = String(join[0].split(separator: " ")[3].dropFirst())
            let inside = join.dropFirst().dropLast()
            #expect(inside.allSatisfy { $0.hasPrefix("@batch=\(id) ") || $0.hasPrefix("@batch=\(id);") }, "\(join)")
            #expect(inside.map { $0.split(separator: " ")[2] } == ["JOIN", "353", "366"], "\(join)")
            // A refusal is the one reply.
            try await client.send("@label=x1 PART #nowhere")
            try await client.waitFor { $0.hasPrefix("@label=x1 :test.parley 403 labeler #nowhere ") }
            // History inside a labeled batch: the chathistory batch opens and closes inside it, its lines in it.
            try await client.send("@label=h1 CHATHISTORY LATEST #general * 10")
            let history = try await Self.labeledBatch(client, label: "h1")
            let outer = String(history[0].split(separator: " ")[3].dropFirst())
            #expect(history[1].hasPrefix("@batch=\(outer) :test.parley BATCH +") && history[1].hasSuffix(" chathistory #general"), "\(history)")
            let inner = String(history[1].split(separator: " ")[3].dropFirst())
            // (The client-only tag the message carried is kept with it.)
            #expect(history[2].hasPrefix("@+draft/reply=7;batch=\(inner);") && history[2].hasSuffix(" PRIVMSG #general :hello"), "\(history)")
            #expect(history[3] == "@batch=\(outer) :test.parley BATCH -\(inner)", "\(history)")

            // Nothing to answer (a NOTICE without echo-message): an ACK.
            let quiet = try await IRCTests.ircUser("quiet", port: server.ircPort, capabilities: ["batch", "labeled-response"])
            try await quiet.send("@label=n1 NOTICE #general :psst")
            try await quiet.waitFor { $0 == "@label=n1 :test.parley ACK" }
            // Without the capability, or without batch beside it (the spec asks for both), the label is ignored.
            let plain = try await IRCTests.ircUser("plain", port: server.ircPort)
            try await plain.send("@label=z1 PING :again")
            try await plain.waitFor { $0 == ":test.parley PONG test.parley :again" }
            let unbatched = try await IRCTests.ircUser("unbatched", port: server.ircPort, capabilities: ["labeled-response"])
            try await unbatched.send("@label=z2 PING :once more")
            try await unbatched.waitFor { $0 == ":test.parley PONG test.parley :once more" }
        }
    }

    @Test("a labeled answer waits for a history read that ends after the line was carried out, and is released into its place whole")
    func answerWaitsForItsRead() throws {
        let peer = IRCPeer()
        peer.nick = "me"
        let response = LabeledResponse(label: "x", hold: 7, serverName: "s", batch: "L1")
        peer.beginLabel(response)
        let renderer = IRCRenderer(codec: IRCCodec(serverName: "s"), peer: peer)
        #expect(renderer.collect(ByteBuffer(string: ":s PONG s :a\r\n"), for: .pong(ref: nil)) == nil)
        let message = ChatMessage(id: 1, time: Date(), from: "other", target: .room("#a"), kind: .normal, text: "hi")
        #expect(renderer.collect(ByteBuffer(string: ":other PRIVMSG #a :hi\r\n"), for: .message(message)) != nil)
        let place = try #require(renderer.reservePlace())
        #expect(peer.endLabel() == nil)  // the read is still out
        #expect(!peer.isLabeling && renderer.reservePlace() == nil)
        let answer = try #require(renderer.fill(place, with: .notice("read")))
        #expect(answer.hold == 7)
        #expect(String(buffer: answer.frame) == "@label=x :s BATCH +L1 labeled-response\r\n@batch=L1 :s PONG s :a\r\n@batch=L1 :s NOTICE me :read\r\n:s BATCH -L1\r\n")
        #expect(renderer.fill(place, with: .notice("again")) == nil)
    }

    @Test("labeled-response collects the client's replies and its own actions, never what others did")
    func whatAnswers() {
        #expect(IRCRenderer.answers(.pong(ref: "x"), me: "me"))
        #expect(IRCRenderer.answers(.joined(room: "#a", nick: "ME"), me: "me"))
        #expect(!IRCRenderer.answers(.joined(room: "#a", nick: "other"), me: "me"))
        #expect(IRCRenderer.answers(.nickChanged(from: "old", to: "me"), me: "me"))
        #expect(IRCRenderer.answers(.left(room: "#a", nick: "other", reason: .kicked(by: .user("me"), reason: nil)), me: "me"))
        #expect(!IRCRenderer.answers(.left(room: "#a", nick: "me", reason: .kicked(by: .user("op"), reason: nil)), me: "me"))
        #expect(!IRCRenderer.answers(.topicChanged(room: "#a", text: "t", by: .user("other"), at: Date(), id: 1), me: "me"))
        let message = ChatMessage(id: 1, time: Date(), from: "other", target: .user("me"), kind: .normal, text: "hi")
        #expect(!IRCRenderer.answers(.message(message), me: "me"))
        #expect(IRCRenderer.answers(.ack(ref: nil, message: message), me: "me"))
        #expect(!IRCRenderer.answers(.invited(room: "#a", nick: "me", by: "other"), me: "me"))
    }

    @Test("private history is kept per account: both logged-in sides read it, any case of the nick; not for a nick without an account")
    func privateHistory() async throws {
        try await TestServer.run { server in
            let alice = try await Self.loggedIn("alice", server: server)
            let bob = try await Self.loggedIn("bob", server: server)
            let carol = try await IRCTests.ircUser("carol", port: server.ircPort, capabilities: Self.allCapabilities)
            try await alice.send("PRIVMSG bob :hi bob")
            try await bob.waitFor { $0.hasSuffix(" PRIVMSG bob :hi bob") }
            try await bob.send("PRIVMSG alice :hi alice")
            try await alice.waitFor { $0.hasSuffix(" PRIVMSG alice :hi alice") }
            try await carol.send("PRIVMSG alice :from carol")
            try await alice.waitFor { $0.hasSuffix(" PRIVMSG alice :from carol") }
            try await alice.send("PRIVMSG carol :to carol")
            try await carol.waitFor { $0.hasSuffix(" PRIVMSG carol :to carol") }
            try await alice.send("PRIVMSG alice :note to self")
            try await alice.waitFor { !$0.contains("label") && $0.hasSuffix(" PRIVMSG alice :note to self") }

            #expect(try await Self.history(alice, "CHATHISTORY LATEST bob * 10") == ("bob", ["hi bob", "hi alice"]))
            #expect(try await Self.history(alice, "CHATHISTORY LATEST BOB * 1") == ("BOB", ["hi alice"]))
            #expect(try await Self.history(bob, "CHATHISTORY LATEST alice * 10") == ("alice", ["hi bob", "hi alice"]))
            // alice kept her conversation with carol; carol, with no account, kept nothing.
            #expect(try await Self.history(alice, "CHATHISTORY LATEST carol * 10") == ("carol", ["from carol", "to carol"]))
            #expect(try await Self.history(carol, "CHATHISTORY LATEST alice * 10") == ("alice", []))
            #expect(try await Self.history(alice, "CHATHISTORY LATEST alice * 10") == ("alice", ["note to self"]))

            // TARGETS: rooms one is in and conversations, by their latest message, the longest quiet first.
            try await alice.send("CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z timestamp=2262-01-01T00:00:00.000Z 10")
            let opening = try await alice.waitFor { $0.contains(" BATCH +") }
            #expect(opening.hasSuffix(" draft/chathistory-targets"), "\(opening)")
            var targets: [String] = []
            var times: [String] = []
            while true {
                let line = try await alice.nextLine()
                if line.contains(" BATCH -") { break }
                let parts = line.split(separator: " ")
                #expect(parts[2] == "CHATHISTORY" && parts[3] == "TARGETS", "\(line)")
                targets.append(String(parts[4]))
                times.append(String(parts[5]))
            }
            #expect(targets == ["bob", "carol", "alice"])
            // The window is open at both ends: from bob's latest on, bob is out.
            try await alice.send("CHATHISTORY TARGETS timestamp=\(times[0]) timestamp=2262-01-01T00:00:00.000Z 10")
            var later: [String] = []
            _ = try await alice.waitFor { $0.contains(" BATCH +") }
            while true {
                let line = try await alice.nextLine()
                if line.contains(" BATCH -") { break }
                later.append(String(line.split(separator: " ")[4]))
            }
            #expect(later == ["carol", "alice"])
            // The later bound first counts from the newer end (as BETWEEN): the newest one.
            try await alice.send("CHATHISTORY TARGETS timestamp=2262-01-01T00:00:00.000Z timestamp=2020-01-01T00:00:00.000Z 1")
            _ = try await alice.waitFor { $0.contains(" BATCH +") }
            #expect(try await alice.nextLine().split(separator: " ")[4] == "alice")
            try await alice.waitFor { $0.contains(" BATCH -") }
            try await alice.send("CHATHISTORY TARGETS timestamp=nonsense * 10")
            try await alice.waitFor { $0.hasPrefix(":test.parley FAIL CHATHISTORY INVALID_PARAMS TARGETS :") }

            // A text user logged in to the account reads the same conversation with /history.
            try await alice.send("QUIT")
            _ = try await alice.waitForClose()
            let text = try await server.textUser("alice2")
            try await text.send("/login alice pw-alice-1")
            try await text.waitFor { $0 == "*** You are logged in as alice." }
            try await text.send("/history bob")
            try await text.waitFor { $0 == "*** History of bob, 2 messages:" }
            try await text.waitFor { $0.hasSuffix("<alice> hi bob") }
            try await text.waitFor { $0.hasSuffix("<bob> hi alice") }
        }
    }

    /// The lines inside the next chathistory batch after `command`.
    static func batchLines(_ client: TestClient, _ command: String) async throws -> [String] {
        try await client.send(command)
        _ = try await client.waitFor { $0.contains(" BATCH +") && $0.contains(" chathistory ") }
        var lines: [String] = []
        while true {
            let line = try await client.nextLine()
            if line.contains(" BATCH -") { return lines }
            lines.append(line)
        }
    }

    @Test("draft/event-playback: topic changes and TAGMSGs marked +draft/persist replay as TOPIC and TAGMSG to clients that ask; others get messages only; text history shows the topic change")
    func eventPlayback() async throws {
        try await TestServer.run { server in
            let player = try await IRCTests.ircUser("player", port: server.ircPort, capabilities: Self.allCapabilities + ["draft/event-playback"])
            let other = try await IRCTests.ircUser("other", port: server.ircPort, capabilities: Self.allCapabilities)
            for client in [player, other] {
                try await client.send("JOIN #ev")
                try await client.waitFor { $0.contains(" 366 ") && $0.contains(" #ev ") }
            }
            try await player.send("TOPIC #ev :first topic")
            let echo = try await player.waitFor { $0.hasSuffix(" TOPIC #ev :first topic") }
            #expect(echo.contains("msgid=") && echo.contains("time="), "\(echo)")
            let msgid = try #require(echo.split(separator: " ")[0].dropFirst().split(separator: ";").first { $0.hasPrefix("msgid=") })
            try await player.send("@+draft/react=yes;+draft/persist TAGMSG #ev")
            try await player.waitFor { $0.contains("+draft/react=yes") && $0.hasSuffix(" TAGMSG #ev") }
            try await player.send("@+typing=active TAGMSG #ev")
            try await player.waitFor { $0.contains("+typing=active") && $0.hasSuffix(" TAGMSG #ev") }
            try await player.send("PRIVMSG #ev :said")
            try await other.waitFor { $0.hasSuffix(" PRIVMSG #ev :said") }

            let played = try await Self.batchLines(player, "CHATHISTORY LATEST #ev * 10")
            #expect(played.map { $0.split(separator: " ")[2] } == ["TOPIC", "TAGMSG", "PRIVMSG"], "\(played)")
            #expect(played[0].contains(String(msgid)) && played[1].contains("+draft/react=yes"), "\(played)")
            let plain = try await Self.batchLines(other, "CHATHISTORY LATEST #ev * 10")
            #expect(plain.map { $0.split(separator: " ")[2] } == ["PRIVMSG"], "\(plain)")

            let text = try await server.textUser("reader")
            try await text.send("/join #ev")
            try await text.waitFor { $0.hasSuffix("*** player set the topic: first topic") }
            try await text.waitFor { $0.hasSuffix("<player> said") }
        }
    }
}
