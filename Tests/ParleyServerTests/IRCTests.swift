import Foundation
import Logging
import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyServer
import ParleySQLite
import Testing

@Suite("IRC front door")
struct IRCTests {
    /// Connects to the IRC port, registers `nick` and joins #general (as a client's autojoin would), waiting
    /// for the end of the welcome burst and of the join.
    static func ircUser(_ nick: String, port: Int, capabilities: [String] = []) async throws -> TestClient {
        let client = try await TestClient.connect(port: port)
        if !capabilities.isEmpty {
            try await client.send("CAP LS 302")
            try await client.waitFor { $0.contains(" CAP * LS :") }
            try await client.send("CAP REQ :\(capabilities.joined(separator: " "))")
            try await client.waitFor { $0.contains(" CAP * ACK :") }
        }
        try await client.send("NICK \(nick)")
        try await client.send("USER \(nick) 0 * :\(nick) on IRC")
        if !capabilities.isEmpty { try await client.send("CAP END") }
        try await client.waitFor { $0.contains(" 376 \(nick) ") }
        try await client.send("JOIN #general")
        try await client.waitFor { $0.contains(" 366 \(nick) #general ") }
        return client
    }

    @Test("registration: CAP negotiation holds it back, then the welcome burst with honest ISUPPORT, MOTD and #general")
    func registration() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("JOIN #early")
            try await client.waitFor { $0 == ":test.parley 451 * JOIN :You have not registered" }
            try await client.send("CAP LS 302")
            try await client.waitFor {
                $0 == ":test.parley CAP * LS :account-tag away-notify batch cap-notify draft/account-registration draft/chathistory draft/event-playback echo-message extended-join "
                    + "labeled-response message-tags multi-prefix sasl=PLAIN server-time userhost-in-names"
            }
            try await client.send("CAP REQ :server-time nonsense")
            try await client.waitFor { $0 == ":test.parley CAP * NAK :server-time nonsense" }
            try await client.send("NICK ircer")
            try await client.send("USER ircer 0 * :Irc User")
            try await client.send("PING :still-negotiating")
            // Nothing registers before CAP END: the PONG comes first, then the burst.
            try await client.waitFor { $0 == ":test.parley PONG test.parley :still-negotiating" }
            try await client.send("CAP END")
            try await client.waitFor { $0.hasPrefix(":test.parley 001 ircer :Welcome to Parley") }
            let isupport = try await client.waitFor { $0.hasPrefix(":test.parley 005 ircer ") }
                + (try await client.waitFor { $0.hasPrefix(":test.parley 005 ircer ") })
            for token in ["CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(ov)@+", "CHANMODES=be,k,l,imnst", "EXCEPTS=e", "NICKLEN=24", "CHANNELLEN=33", "TOPICLEN=300"] {
                #expect(isupport.contains(token), "\(token)")
            }
            try await client.waitFor { $0 == ":test.parley 376 ircer :End of /MOTD command." }
            // An IRC client is put in no channel: it joins what it is configured to.
            try await client.send("NAMES #general")
            try await client.waitFor { $0 == ":test.parley 353 ircer = #general :" || $0 == ":test.parley 366 ircer #general :End of /NAMES list." }
            try await client.send("JOIN #general")
            try await client.waitFor { $0 == ":ircer!ircer@parley JOIN #general" }
            try await client.waitFor { $0 == ":test.parley 353 ircer = #general :ircer" }
            try await client.send("USER again 0 * :x")
            try await client.waitFor { $0 == ":test.parley 462 ircer :You may not reregister" }
            try await client.send("FROB")
            try await client.waitFor { $0 == ":test.parley 421 ircer FROB :Unknown command" }
        }
    }

    @Test("a taken or invalid nick gets 433 or 432 and another try; QUIT works before registration")
    func nicks() async throws {
        try await TestServer.run { server in
            let alice = try await server.textUser("alice")
            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("NICK ALICE")
            try await client.send("USER a 0 * :a")
            try await client.waitFor { $0.hasPrefix(":test.parley 433 * ALICE :") }
            try await client.send("NICK 9lives")
            try await client.waitFor { $0.hasPrefix(":test.parley 432 * 9lives :") }
            try await client.send("NICK alice2")
            try await client.waitFor { $0.contains(" 001 alice2 ") }
            try await client.send("JOIN #general")
            try await alice.waitFor { $0 == "*** alice2 joined #general" }
            let quitter = try await TestClient.connect(port: server.ircPort)
            try await quitter.send("QUIT :never mind")
            try await quitter.waitFor { $0.hasPrefix("ERROR ") }
            _ = try await quitter.waitForClose()
        }
    }

    @Test("IRC, text and JSON users in one room see each other; private messages cross; errors are numerics")
    func conversation() async throws {
        try await TestServer.run { server in
            let irc = try await Self.ircUser("ircer", port: server.ircPort, capabilities: ["server-time", "echo-message"])
            let text = try await server.textUser("texter")
            let bot = try await server.jsonUser("bot")
            try await irc.waitFor { $0 == ":bot!bot@parley JOIN #general" }

            try await text.send("hello from nc")
            let line = try await irc.waitFor { $0.contains("PRIVMSG #general :hello from nc") }
            #expect(line.hasPrefix("@time=20") && line.contains(" :texter!texter@parley PRIVMSG"), "\(line)")
            try await irc.send("PRIVMSG #general :hello from irc")
            try await text.waitFor { $0.hasSuffix("] <ircer> hello from irc") }
            try await bot.waitFor(isEvent("message", ["from": "ircer", "text": "hello from irc"]))
            try await irc.waitFor { $0.hasSuffix(":ircer!ircer@parley PRIVMSG #general :hello from irc") }  // echo-message
            try await irc.send("PRIVMSG #general :\u{1}ACTION waves\u{1}")
            try await text.waitFor { $0.hasSuffix("] * ircer waves") }

            try await irc.send("PRIVMSG texter :psst")
            try await text.waitFor { $0.hasSuffix("-> (private) <ircer> psst") }
            try await text.send("/msg ircer back at you")
            try await irc.waitFor { $0.hasSuffix(":texter!texter@parley PRIVMSG ircer :back at you") }

            try await irc.send("JOIN #dev,#ops")
            try await irc.waitFor { $0 == ":test.parley 366 ircer #ops :End of /NAMES list." }
            try await text.send("/join #dev")
            try await irc.waitFor { $0 == ":texter!texter@parley JOIN #dev" }
            try await irc.send("TOPIC #dev :release Friday")
            try await text.waitFor { $0 == "*** Topic of #dev: release Friday (set by ircer)" }
            // Whoever joins later is told who set it and when (333: seconds since 1970), not "1 Jan 1970".
            let late = try await Self.ircUser("late", port: server.ircPort)
            try await late.send("JOIN #dev")
            try await late.waitFor { $0 == ":test.parley 332 late #dev :release Friday" }
            let setAt = try await late.waitFor { $0.hasPrefix(":test.parley 333 late #dev ircer ") }
            let seconds = try #require(setAt.split(separator: " ").last.flatMap { Double($0.trimmingCharacters(in: [":"])) })
            #expect(abs(seconds - Date().timeIntervalSince1970) < 120, "\(setAt)")
            try await text.send("/part #dev see you")
            try await irc.waitFor { $0 == ":texter!texter@parley PART #dev :see you" }

            try await irc.send("PRIVMSG nobody :hi")
            try await irc.waitFor { $0.hasPrefix(":test.parley 401 ircer nobody :") }
            try await irc.send("JOIN bad")
            try await irc.waitFor { $0.hasPrefix(":test.parley 476 ircer bad :") }
            try await irc.send("PRIVMSG #nowhere :x")
            try await irc.waitFor { $0.hasPrefix(":test.parley 403 ircer #nowhere :") }
            try await irc.send("PRIVMSG")
            try await irc.waitFor { $0.hasPrefix(":test.parley 411 ircer ") }
            try await irc.send("WHOIS texter")
            try await irc.waitFor { $0 == ":test.parley 311 ircer texter texter parley * :texter" }
            try await irc.send("NICK ircer2")
            try await text.waitFor { $0 == "*** ircer is now known as ircer2" }
            try await irc.send("PING :x")
            try await irc.waitFor { $0 == ":test.parley PONG test.parley :x" }
            try await irc.send("PING")
            try await irc.waitFor { $0 == ":test.parley 409 ircer2 :No origin specified" }
            try await irc.send("QUIT :bye")
            try await text.waitFor { $0 == "*** ircer2 left #general (quit: bye)" }
        }
    }

    @Test("a PING's PONG comes after the replies to every line before it, even while the publisher is busy")
    func pongInOrder() async throws {
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 100_000, perSecond: 100_000) }) { server in
            let irc = try await Self.ircUser("syncer", port: server.ircPort)
            let busy = try await server.textUser("busy")
            // Keep the publisher busy storing, so the JOIN below waits its turn in the hub's queue.
            try await busy.sendRaw(Array((0..<3000).map { "message \($0)\n" }.joined().utf8))
            try await irc.sendRaw(Array("JOIN #ordered\r\nPING :after-join\r\n".utf8))
            let pong = try await irc.waitFor(timeout: .seconds(30)) { $0 == ":test.parley PONG test.parley :after-join" }
            let seen = try await irc.lines
            let ponged = try #require(seen.lastIndex(of: pong))
            let joined = seen.firstIndex { $0.contains(" 366 syncer #ordered ") }
            #expect(joined.map { $0 < ponged } == true, "\(seen.suffix(6))")
        }
    }

    @Test("one QUIT for someone who shared several channels; the quitter gets ERROR; JOIN of a channel one is in is ignored")
    func quitOnce() async throws {
        try await TestServer.run { server in
            let stayer = try await Self.ircUser("stayer", port: server.ircPort)
            let quitter = try await Self.ircUser("quitter", port: server.ircPort)
            let text = try await server.textUser("texter")
            for user in [stayer, quitter] {
                try await user.send("JOIN #dev")
                try await user.send("JOIN #general")
                try await user.send("PING :joined")
                try await user.waitFor { $0.hasSuffix("PONG test.parley :joined") }
            }
            try await text.send("/join #dev")
            try await stayer.waitFor { $0 == ":texter!texter@parley JOIN #dev" }
            try await quitter.send("QUIT :bye")
            try await quitter.waitFor { $0 == "ERROR :Closing link: quit: bye" }
            _ = try await quitter.waitForClose()
            // Text users hear of it per room.
            try await text.waitFor { $0 == "*** quitter left #dev (quit: bye)" }
            try await text.waitFor { $0 == "*** quitter left #general (quit: bye)" }
            try await text.send("/msg stayer after")
            try await stayer.waitFor { $0.hasSuffix("PRIVMSG stayer :after") }
            let quits = try await stayer.lines.filter { $0.contains(" QUIT ") }
            #expect(quits == [":quitter!quitter@parley QUIT :Quit: bye"])
            let stayerToldCurrentRoom = try await stayer.lines.contains { $0.contains("is now your current room") }
            #expect(!stayerToldCurrentRoom)
        }
    }

    @Test("the remaining error numerics: 403, 404, 405, 412, 431, 461, 464, 472, 474")
    func numerics() async throws {
        try await TestServer.run { server in
            let owner = try await Self.ircUser("owner", port: server.ircPort)
            let user = try await Self.ircUser("user", port: server.ircPort)
            try await user.send("TOPIC #nowhere")
            try await user.waitFor { $0.hasPrefix(":test.parley 403 user #nowhere :") }
            try await user.send("PRIVMSG #general :")
            try await user.waitFor { $0 == ":test.parley 412 user :No text to send" }
            try await user.send("NICK")
            try await user.waitFor { $0 == ":test.parley 431 user :No nickname given" }
            try await user.send("KICK #general")
            try await user.waitFor { $0 == ":test.parley 461 user KICK :Not enough parameters" }
            try await user.send("MODE #general +z")
            try await user.waitFor { $0 == ":test.parley 472 user z :is an unknown mode char to me" }
            try await user.send("OPER user wrong-password")
            try await user.waitFor { $0 == ":test.parley 464 user :Password incorrect" }

            try await owner.send("JOIN #quiet")
            try await owner.waitFor { $0.contains(" 366 owner #quiet ") }
            try await user.send("JOIN #quiet")
            try await owner.waitFor { $0 == ":user!user@parley JOIN #quiet" }
            try await owner.send("MODE #quiet +b user")
            try await owner.waitFor { $0 == ":owner!owner@parley MODE #quiet +b user!*@*" }
            try await user.send("JOIN #quiet")
            try await user.waitFor { $0.hasPrefix(":test.parley 474 user #quiet :") }
            try await owner.send("MODE #quiet -b user")
            try await owner.send("PING :unbanned")
            try await owner.waitFor { $0.hasSuffix("PONG test.parley :unbanned") }
            try await user.send("JOIN #quiet")
            try await owner.waitFor { $0 == ":user!user@parley JOIN #quiet" }

            // Muting has no IRC mode; a text-mode operator mutes, the IRC user gets 404.
            let moderator = try await server.textUser("moderator")
            try await moderator.send("/join #muted")
            try await moderator.waitFor { $0.hasPrefix("*** In #muted") }
            try await user.send("JOIN #muted")
            try await moderator.waitFor { $0 == "*** user joined #muted" }
            try await moderator.send("/mute user")
            try await user.waitFor { $0.hasPrefix(":test.parley NOTICE #muted :moderator muted user in #muted") }
            try await user.send("PRIVMSG #muted :can you hear me")
            try await user.waitFor { $0.hasPrefix(":test.parley 404 user #muted :") }

            let rooms = (1...50).map { "#r\($0)" }.joined(separator: ",")
            try await user.send("JOIN \(rooms)")
            try await user.waitFor { $0.hasPrefix(":test.parley 405 user #r") }
        }
    }

    @Test("OPER: a server operator's account gets 381 and may KILL; another account gets 491")
    func oper() async throws {
        try await TestServer.run { server in
            let store = try #require(server.application.storage as? SQLiteStore)
            try await store.create(Account(name: "root", credential: try PasswordHasher.credential(for: "correct-horse", cost: 1024)))
            try await store.setOperator("root", true)
            try await store.create(Account(name: "plain", credential: try PasswordHasher.credential(for: "plain-horse", cost: 1024)))
            server.application.hub.setAccounts(try await store.accounts())
            let admin = try await Self.ircUser("admin", port: server.ircPort)
            let victim = try await server.textUser("victim")
            try await admin.send("JOIN #side")
            try await admin.waitFor { $0.contains(" 366 admin #side ") }
            try await victim.send("/join #side")
            try await admin.waitFor { $0 == ":victim!victim@parley JOIN #side" }
            try await admin.send("OPER plain plain-horse")
            try await admin.waitFor { $0 == ":test.parley 491 admin :Only server operators may use OPER" }
            try await admin.send("OPER root correct-horse")
            try await admin.waitFor { $0 == ":test.parley 381 admin :You are now an IRC operator" }
            // The nick stays (as with SASL); user mode +o says what changed.
            try await admin.waitFor { $0 == ":admin!admin@parley MODE admin +o" }
            try await admin.send("KILL victim :spam")
            try await victim.waitFor { $0 == "!!! You were disconnected by admin: spam" }
            _ = try await victim.waitForClose()
            // A kill is a KICK in every shared channel, so no client keeps a ghost member.
            try await admin.waitFor { $0 == ":admin!admin@parley KICK #general victim :spam" }
            try await admin.waitFor { $0 == ":admin!admin@parley KICK #side victim :spam" }
        }
    }

    @Test("lines: a lone CR ends one; an echoed bad name cannot break a numeric; too long is 417")
    func lineEdges() async throws {
        try await TestServer.run(configure: { $0.limits.line = .init(maximumLineBytes: 300) }) { server in
            let client = try await Self.ircUser("edgy", port: server.ircPort)
            try await client.sendRaw(Array("PING :one\rPING :two\r".utf8))
            try await client.waitFor { $0 == ":test.parley PONG test.parley :one" }
            try await client.waitFor { $0 == ":test.parley PONG test.parley :two" }
            try await client.send("JOIN :#a b")
            try await client.waitFor { $0.hasPrefix(":test.parley 476 edgy * :") }
            // --max-line-bytes below 512 holds the message part of IRC lines to it (tags aside).
            try await client.send("PRIVMSG #general :" + String(repeating: "x", count: 300))
            try await client.waitFor { $0.hasPrefix(":test.parley 417 edgy :") }
            try await client.send("@+tag=" + String(repeating: "t", count: 1000) + " PRIVMSG #general :short enough")
            try await client.send("PING :tags-are-apart")
            try await client.waitFor { $0.hasSuffix(":tags-are-apart") }
            #expect(try await client.lines.filter { $0.contains(" 417 ") }.count == 1)
        }
    }

    @Test("user modes: +i is kept and confirmed, other letters get 501, other users' modes 502; 004 lists what exists")
    func userModes() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("NICK moder")
            try await client.send("USER moder 0 * :Moder")
            try await client.waitFor { $0 == ":test.parley 004 moder test.parley parley io beiklmnostv :beklov" }
            try await client.waitFor { $0.contains(" 376 moder ") }
            try await client.send("MODE moder")
            try await client.waitFor { $0 == ":test.parley 221 moder :+" }
            try await client.send("MODE moder +i")
            try await client.waitFor { $0 == ":moder!moder@parley MODE moder +i" }
            try await client.send("MODE moder")
            try await client.waitFor { $0 == ":test.parley 221 moder :+i" }
            try await client.send("MODE moder +iw")
            try await client.waitFor { $0 == ":test.parley 501 moder :Unknown MODE flag" }
            _ = try await Self.ircUser("other", port: server.ircPort)
            try await client.send("MODE other +i")
            try await client.waitFor { $0 == ":test.parley 502 moder :Can't change mode for other users" }
            try await client.send("MODE nobody")
            try await client.waitFor { $0 == ":test.parley 401 moder nobody :No such nick" }
        }
    }

    @Test("the console acts as the server: its KICK and MODE come from the server's name, its announcements reach channel windows")
    func consoleActions() async throws {
        try await TestServer.run { server in
            let alice = try await Self.ircUser("alice", port: server.ircPort)
            let bob = try await Self.ircUser("bob", port: server.ircPort)
            try await alice.send("JOIN #side")
            try await alice.waitFor { $0.contains(" 366 alice #side ") }
            let loner = try await Self.ircUser("loner", port: server.ircPort)
            try await loner.send("PART #general")
            try await loner.waitFor { $0 == ":loner!loner@parley PART :#general" }
            let console = AdminConsole(hub: server.application.hub, logger: Logger(label: "test"))

            // A notice to everyone: in each channel the user is in, to the nick only when it is in none.
            _ = console.execute("restart at noon")
            try await alice.waitFor { $0 == ":test.parley NOTICE #general :restart at noon" }
            try await alice.waitFor { $0 == ":test.parley NOTICE #side :restart at noon" }
            try await bob.waitFor { $0 == ":test.parley NOTICE #general :restart at noon" }
            try await loner.waitFor { $0 == ":test.parley NOTICE loner :restart at noon" }

            _ = console.execute("/kick #general bob behave")
            try await alice.waitFor { $0 == ":test.parley KICK #general bob :behave" }
            try await bob.waitFor { $0 == ":test.parley KICK #general bob :behave" }
            _ = console.execute("/ban #side carol")
            try await alice.waitFor { $0 == ":test.parley MODE #side +b carol!*@*" }
            try await bob.send("JOIN #general")
            try await alice.waitFor { $0 == ":bob!bob@parley JOIN #general" }
            _ = console.execute("/kick alice")
            try await alice.waitFor { $0 == ":test.parley NOTICE alice :You were disconnected by the server operator." }
            try await bob.waitFor { $0 == ":test.parley KICK #general alice :the server operator" }
            // No line anyone received names the console as if it were a user.
            for client in [alice, bob, loner] {
                #expect(try await client.lines.allSatisfy { !$0.contains("server operator!") })
            }
        }
    }

    @Test("MODE maps onto moderation: +o, +b with an IRC mask, +t, and KICK")
    func modes() async throws {
        try await TestServer.run { server in
            let owner = try await Self.ircUser("owner", port: server.ircPort)
            try await owner.send("JOIN #mod")
            try await owner.waitFor { $0.contains(" 366 owner #mod ") }
            let guest = try await server.textUser("guest")
            try await guest.send("/join #mod")
            try await owner.waitFor { $0 == ":guest!guest@parley JOIN #mod" }
            try await owner.send("MODE #mod +o guest")
            try await owner.waitFor { $0 == ":owner!owner@parley MODE #mod +o guest" }
            try await owner.send("MODE #mod -o guest")
            try await owner.send("MODE #mod +t")
            try await guest.waitFor { $0 == "*** owner locked the topic of #mod: only operators can change it" }
            try await owner.send("KICK #mod guest :out")
            try await guest.waitFor { $0 == "*** guest left #mod (kicked by owner: out)" }
            try await owner.waitFor { $0 == ":owner!owner@parley KICK #mod guest :out" }
            try await owner.send("MODE #mod +b guest!*@*")
            try await owner.waitFor { $0 == ":owner!owner@parley MODE #mod +b guest!*@*" }
            try await guest.send("/join #mod")
            try await guest.waitFor { $0.hasPrefix("!!! You are banned from #mod") }
            try await owner.send("MODE #mod b")
            try await owner.waitFor { $0.hasPrefix(":test.parley 367 owner #mod guest!*@* owner ") }
            try await owner.waitFor { $0 == ":test.parley 368 owner #mod :End of channel ban list" }
        }
    }
}
