import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyServer
import ParleySQLite
import Testing

/// The IRC door against a real server over sockets, for what IRC clients (and irctest) count on: replies in
/// the order of the lines that caused them, USER's identity, NickServ and REGISTER, client-only tags, and the
/// channel modes i, m, s with INVITE, voice, LIST and WHO/WHOX.
@Suite("IRC front door: conformance")
struct IRCConformanceTests {
    /// Registers `nick` on the IRC port with USER `username` and `realName`, joining nothing (as a client with
    /// no autojoin), and waits for the end of the welcome burst.
    static func connect(
        _ nick: String, port: Int, username: String? = nil, realName: String? = nil, capabilities: [String] = []
    ) async throws -> TestClient {
        let client = try await TestClient.connect(port: port)
        if !capabilities.isEmpty {
            try await client.send("CAP LS 302")
            try await client.send("CAP REQ :\(capabilities.joined(separator: " "))")
            try await client.waitFor { $0.contains(" CAP * ACK :") }
        }
        try await client.send("NICK \(nick)")
        try await client.send("USER \(username ?? nick) 0 * :\(realName ?? "\(nick) on IRC")")
        if !capabilities.isEmpty { try await client.send("CAP END") }
        try await client.waitFor { $0.contains(" 376 \(nick) ") }
        return client
    }

    /// Joins `room` and waits for the end of its NAMES.
    static func join(_ client: TestClient, _ nick: String, _ room: String) async throws {
        try await client.send("JOIN \(room)")
        try await client.waitFor { $0 == ":test.parley 366 \(nick) \(room) :End of /NAMES list." }
    }

    /// Sends PING and waits for its PONG: every reply to the lines before it has arrived.
    static func sync(_ client: TestClient, _ token: String) async throws {
        try await client.send("PING :\(token)")
        try await client.waitFor { $0 == ":test.parley PONG test.parley :\(token)" }
    }

    /// Creates an account directly in the store (as `parley account create` would) and tells the hub.
    static func createAccount(_ name: String, _ password: String, server: TestServer) async throws {
        let store = try #require(server.application.storage as? SQLiteStore)
        try await store.create(Account(name: name, credential: try PasswordHasher.credential(for: password, cost: 1024)))
        server.application.hub.setAccounts(try await store.accounts())
    }

    // MARK: - Order

    @Test("pipelined JOIN, WHO, an unknown command and PING are answered in that order: 366, 352/315, 421, PONG")
    func pipelinedOrder() async throws {
        try await TestServer.run { server in
            let client = try await Self.connect("orderly", port: server.ircPort)
            // A few rounds: the order must hold every time, not by luck.
            for round in 1...3 {
                let room = "#order\(round)"
                try await client.sendRaw(Array("JOIN \(room)\r\nWHO \(room)\r\nBOGUS\(round)\r\nPING :x\(round)\r\n".utf8))
                try await client.waitFor { $0 == ":test.parley PONG test.parley :x\(round)" }
                let lines = try await client.lines
                let start = try #require(lines.firstIndex { $0 == ":orderly!orderly@parley JOIN \(room)" })
                let seen = Array(lines[start...])
                let joined = try #require(seen.firstIndex { $0 == ":test.parley 366 orderly \(room) :End of /NAMES list." }, "\(seen)")
                let who = try #require(seen.firstIndex { $0 == ":test.parley 352 orderly \(room) orderly parley test.parley orderly H@ :0 orderly on IRC" }, "\(seen)")
                let endOfWho = try #require(seen.firstIndex { $0 == ":test.parley 315 orderly \(room) :End of /WHO list." }, "\(seen)")
                let bogus = try #require(seen.firstIndex { $0 == ":test.parley 421 orderly BOGUS\(round) :Unknown command" }, "\(seen)")
                let pong = try #require(seen.firstIndex { $0 == ":test.parley PONG test.parley :x\(round)" }, "\(seen)")
                #expect(joined < who && who < endOfWho && endOfWho < bogus && bogus < pong, "\(seen)")
            }
        }
    }

    @Test("door replies between hub replies keep their places: 461 and 421 between two WHOs; PING : echoes an empty token")
    func doorRepliesInterleaved() async throws {
        try await TestServer.run { server in
            let client = try await Self.connect("mixer", port: server.ircPort)
            try await Self.join(client, "mixer", "#mix")
            try await client.sendRaw(Array("WHO #mix\r\nKICK #mix\r\nWHO mixer\r\nNOPE\r\nPING :\r\n".utf8))
            try await client.waitFor { $0 == ":test.parley PONG test.parley :" }
            let lines = try await client.lines
            let start = try #require(lines.lastIndex { $0.hasPrefix(":test.parley 366 mixer #mix ") })
            let replies = lines[(start + 1)...].filter { !$0.contains(" NOTICE ") }
            #expect(
                Array(replies) == [
                    ":test.parley 352 mixer #mix mixer parley test.parley mixer H@ :0 mixer on IRC",
                    ":test.parley 315 mixer #mix :End of /WHO list.",
                    ":test.parley 461 mixer KICK :Not enough parameters",
                    ":test.parley 352 mixer * mixer parley test.parley mixer H :0 mixer on IRC",
                    ":test.parley 315 mixer mixer :End of /WHO list.",
                    ":test.parley 421 mixer NOPE :Unknown command",
                    ":test.parley PONG test.parley :",
                ]
            )
        }
    }

    // MARK: - USER

    @Test("USER's username and real name show in WHO (352) and WHOIS (311); a username is cleaned to one short word")
    func userIdentity() async throws {
        try await TestServer.run { server in
            let ident = try await Self.connect("ident1", port: server.ircPort, username: "jdoe", realName: "John Q. Doe")
            let odd = try await Self.connect("ident2", port: server.ircPort, username: "w!e@i*rdandlong", realName: "  Odd  One  ")
            let observer = try await Self.connect("watcher1", port: server.ircPort)
            try await Self.join(ident, "ident1", "#idents")
            try await Self.join(odd, "ident2", "#idents")
            try await Self.join(observer, "watcher1", "#idents")

            try await observer.send("WHO #idents")
            try await observer.waitFor { $0 == ":test.parley 352 watcher1 #idents jdoe parley test.parley ident1 H@ :0 John Q. Doe" }
            try await observer.waitFor { $0 == ":test.parley 352 watcher1 #idents weirdandlo parley test.parley ident2 H :0 Odd  One" }
            try await observer.waitFor { $0 == ":test.parley 315 watcher1 #idents :End of /WHO list." }
            try await observer.send("WHOIS ident1")
            try await observer.waitFor { $0 == ":test.parley 311 watcher1 ident1 jdoe parley * :John Q. Doe" }
            try await observer.waitFor { $0 == ":test.parley 319 watcher1 ident1 :@#idents" }
            try await observer.waitFor { $0 == ":test.parley 318 watcher1 ident1 :End of /WHOIS list." }
            try await observer.send("USERHOST ident2")
            try await observer.waitFor { $0 == ":test.parley 302 watcher1 :ident2=+weirdandlo@parley" }

            // A USER with an empty real name is not enough.
            let empty = try await TestClient.connect(port: server.ircPort)
            try await empty.send("NICK ident3")
            try await empty.send("USER jd 0 * :")
            try await empty.waitFor { $0 == ":test.parley 461 * USER :Not enough parameters" }
            try await empty.send("USER jd 0 * :Real")
            try await empty.waitFor { $0.hasPrefix(":test.parley 001 ident3 ") }
        }
    }

    // MARK: - Accounts

    @Test("NickServ: REGISTER; IDENTIFY from another connection logs in (900) keeping the nick; a wrong password is a notice; SET PASSWORD; INFO; HELP")
    func nickServ() async throws {
        try await TestServer.run { server in
            let owner = try await IRCTests.ircUser("nsowner", port: server.ircPort)
            try await owner.send("PRIVMSG NickServ :REGISTER swordfish1")
            try await owner.waitFor {
                $0 == ":test.parley NOTICE nsowner :The nickname nsowner is now registered to you. Next time, log in with /msg NickServ IDENTIFY nsowner PASSWORD (or SASL)."
            }
            try await owner.waitFor { $0 == ":test.parley 900 nsowner nsowner!nsowner@parley nsowner :You are now logged in as nsowner" }
            try await owner.send("NS INFO")
            try await owner.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner :nsowner is registered." }
            try await owner.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner :nsowner is online, logged in as nsowner." }
            try await owner.send("NICKSERV REGISTER swordfish1")
            try await owner.waitFor { $0.hasPrefix(":NickServ!NickServ@services NOTICE nsowner :") && $0.contains("registered already") }
            try await owner.send("QUIT :later")
            _ = try await owner.waitForClose()

            // The nick is the account's now: a second connection cannot take it, and is told how to log in.
            let second = try await TestClient.connect(port: server.ircPort)
            try await second.send("NICK nsowner")
            try await second.send("USER nsowner 0 * :Owner Again")
            let refused = try await second.waitFor { $0.hasPrefix(":test.parley 433 * nsowner :") }
            #expect(refused.contains("/msg NickServ IDENTIFY nsowner PASSWORD"), "\(refused)")
            try await second.send("NICK nsowner_")
            try await second.waitFor { $0.contains(" 376 nsowner_ ") }

            try await second.send("PRIVMSG NickServ :IDENTIFY nsowner wrong-password")
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :Wrong nickname or password." }
            try await Self.sync(second, "after-wrong")
            let loggedInWithWrongPassword = try await second.lines.contains { $0.contains(" 900 ") }
            #expect(!loggedInWithWrongPassword)

            try await second.send("PRIVMSG NickServ :IDENTIFY nsowner swordfish1")
            try await second.waitFor { $0 == ":test.parley 900 nsowner_ nsowner_!nsowner_@parley nsowner :You are now logged in as nsowner" }
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :You are now identified for nsowner." }
            try await second.send("WHOIS nsowner_")
            try await second.waitFor { $0 == ":test.parley 330 nsowner_ nsowner_ nsowner :is logged in as" }
            // On IRC logging in keeps the nick.
            let nickChanged = try await second.lines.contains { $0.contains(" NICK ") }
            #expect(!nickChanged)
            try await second.send("PRIVMSG NickServ :INFO nsowner_")
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :nsowner_ is not registered." }
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :nsowner_ is online, logged in as nsowner." }

            try await second.send("NICKSERV SET PASSWORD wrong-current marlin-22")
            try await second.waitFor {
                $0 == ":NickServ!NickServ@services NOTICE nsowner_ :That is not your current password; your password was not changed."
            }
            try await second.send("NICKSERV SET PASSWORD swordfish1 marlin-22")
            try await second.waitFor { $0 == ":test.parley NOTICE nsowner_ :Your password has been changed." }
            try await second.send("NS HELP")
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :NickServ keeps nicknames for their owners. Commands:" }
            try await second.send("NS FROBNICATE")
            try await second.waitFor { $0.hasPrefix(":NickServ!NickServ@services NOTICE nsowner_ :Unknown command or wrong arguments for FROBNICATE") }
            // Arguments are never quoted back: they may hold passwords.
            try await second.send("NS SET PASSWORD only-one")
            try await second.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsowner_ :To change your password: SET PASSWORD <current> <new>." }
            let passwordQuoted = try await second.lines.contains { $0.contains("only-one") }
            #expect(!passwordQuoted)

            // The new password works from a third connection, the old one no longer does.
            let third = try await Self.connect("nsthird", port: server.ircPort)
            try await third.send("NS IDENTIFY nsowner swordfish1")
            try await third.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsthird :Wrong nickname or password." }
            try await third.send("NS IDENTIFY nsowner marlin-22")
            try await third.waitFor { $0 == ":test.parley 900 nsthird nsthird!nsthird@parley nsowner :You are now logged in as nsowner" }
            try await third.send("NS INFO nobody-here")
            try await third.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsthird :nobody-here is not registered." }
            // NickServ's PASSWD needs a login; a guest is told to IDENTIFY.
            let guest = try await Self.connect("nsguest", port: server.ircPort)
            try await guest.send("NS PASSWD a b")
            try await guest.waitFor { $0 == ":NickServ!NickServ@services NOTICE nsguest :You are not logged in: /msg NickServ IDENTIFY PASSWORD first." }
        }
    }

    @Test("REGISTER (draft/account-registration): SUCCESS and 900; again is ALREADY_AUTHENTICATED; WEAK_PASSWORD; ACCOUNT_EXISTS; the name must be the nick")
    func register() async throws {
        try await TestServer.run { server in
            let client = try await Self.connect("regger", port: server.ircPort, capabilities: ["draft/account-registration"])
            try await client.send("REGISTER * * long-enough-1")
            try await client.waitFor { $0 == ":test.parley 900 regger regger!regger@parley regger :You are now logged in as regger" }
            try await client.waitFor { $0 == ":test.parley REGISTER SUCCESS regger :Account created" }
            try await client.send("REGISTER * * long-enough-1")
            try await client.waitFor { $0 == ":test.parley FAIL REGISTER ALREADY_AUTHENTICATED * :You are logged in already" }
            try await client.send("WHOIS regger")
            try await client.waitFor { $0 == ":test.parley 330 regger regger regger :is logged in as" }

            let weak = try await Self.connect("weakling", port: server.ircPort)
            try await weak.send("REGISTER weakling * abc")
            try await weak.waitFor { $0 == ":test.parley FAIL REGISTER WEAK_PASSWORD weakling :A password has at least 6 characters." }
            try await weak.send("REGISTER someone-else * long-enough-2")
            try await weak.waitFor { $0 == ":test.parley FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK someone-else :The account is the nick you use: change to it first (/nick someone-else)" }
            try await weak.send("REGISTER * *")
            try await weak.waitFor { $0 == ":test.parley 461 weakling REGISTER :Not enough parameters" }
            // A failed registration counts for nothing: the same connection registers after.
            try await weak.send("REGISTER WEAKLING * long-enough-2")
            try await weak.waitFor { $0 == ":test.parley REGISTER SUCCESS weakling :Account created" }

            // Someone holds a nick when its account is made elsewhere: their REGISTER finds it exists.
            let holder = try await Self.connect("holder", port: server.ircPort)
            try await Self.createAccount("holder", "made-elsewhere", server: server)
            try await holder.send("REGISTER * * long-enough-3")
            let exists = try await holder.waitFor { $0.hasPrefix(":test.parley FAIL REGISTER ACCOUNT_EXISTS * :") }
            #expect(exists.contains("IDENTIFY holder"), "\(exists)")
        }
    }

    @Test("a registered nick gets 433 telling how to log in (SASL or NickServ IDENTIFY), at registration and on NICK")
    func registeredNick() async throws {
        try await TestServer.run { server in
            try await Self.createAccount("owned", "owned-password", server: server)
            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("NICK owned")
            try await client.send("USER x 0 * :x")
            try await client.waitFor {
                $0 == ":test.parley 433 * owned :owned is a registered nickname: log in with SASL or /msg NickServ IDENTIFY owned PASSWORD, or choose another"
            }
            try await client.send("NICK squatter")
            try await client.waitFor { $0.contains(" 001 squatter ") }
            try await client.send("NICK OWNED")
            try await client.waitFor {
                $0 == ":test.parley 433 squatter OWNED :OWNED is a registered nickname: log in with SASL or /msg NickServ IDENTIFY OWNED PASSWORD, or choose another"
            }
            // Logged in to it, the nick is theirs.
            try await client.send("NS IDENTIFY owned owned-password")
            try await client.waitFor { $0.hasPrefix(":test.parley 900 squatter ") }
            try await client.send("NICK owned")
            try await client.waitFor { $0 == ":squatter!squatter@parley NICK owned" }
        }
    }

    // MARK: - Client-only tags

    @Test("TAGMSG +typing reaches message-tags clients in the room only; a PRIVMSG's +draft/reply goes to them, the others get the plain line")
    func clientTags() async throws {
        try await TestServer.run { server in
            let sender = try await Self.connect("tagger", port: server.ircPort, capabilities: ["message-tags"])
            let tagged = try await Self.connect("tagwatch", port: server.ircPort, capabilities: ["message-tags", "server-time"])
            let plain = try await Self.connect("plainwatch", port: server.ircPort)
            let outsider = try await Self.connect("tagout", port: server.ircPort, capabilities: ["message-tags"])
            for (client, nick) in [(sender, "tagger"), (tagged, "tagwatch"), (plain, "plainwatch")] {
                try await Self.join(client, nick, "#tags")
            }
            let text = try await server.textUser("tagtext")
            try await text.send("/join #tags")
            try await sender.waitFor { $0 == ":tagtext!tagtext@parley JOIN #tags" }

            try await sender.send("@+typing=active TAGMSG #tags")
            let typing = try await tagged.waitFor { $0.contains(" :tagger!tagger@parley TAGMSG #tags") }
            #expect(typing.hasPrefix("@+typing=active;msgid="), "\(typing)")
            #expect(typing.hasSuffix(" :tagger!tagger@parley TAGMSG #tags") && typing.contains(";time="), "\(typing)")
            // Server tags a client sends are not relayed as its own; a TAGMSG with no client tags is nothing.
            try await sender.send("@time=1999-01-01T00:00:00.000Z TAGMSG #tags")

            try await sender.send("@+draft/reply=42 PRIVMSG #tags :replying")
            let reply = try await tagged.waitFor { $0.hasSuffix(" :tagger!tagger@parley PRIVMSG #tags :replying") }
            #expect(reply.hasPrefix("@+draft/reply=42;msgid="), "\(reply)")
            try await plain.waitFor { $0 == ":tagger!tagger@parley PRIVMSG #tags :replying" }
            try await text.waitFor { $0.hasSuffix("<tagger> replying") }

            // Everything before the PRIVMSG has been delivered by now: no TAGMSG reached those without the capability.
            let plainGotTyping = try await plain.lines.contains { $0.contains("TAGMSG") || $0.contains("typing") }
            #expect(!plainGotTyping)
            let textGotTyping = try await text.lines.contains { $0.contains("typing") || $0.hasSuffix("<tagger> ") }
            #expect(!textGotTyping)
            // Only one TAGMSG (the tagless one was dropped), and nothing reached the client outside the room.
            #expect(try await tagged.lines.filter { $0.contains(" TAGMSG ") }.count == 1)
            try await Self.sync(outsider, "outside")
            let outsiderGotTagger = try await outsider.lines.contains { $0.contains("tagger!") }
            #expect(!outsiderGotTagger)
            // From outside the channel (mode n): TAGMSG and PRIVMSG get 404, a NOTICE gets nothing at all.
            try await outsider.send("@+typing=active TAGMSG #tags")
            try await outsider.waitFor { $0.hasPrefix(":test.parley 404 tagout #tags :Cannot send to channel: ") }
            try await outsider.send("PRIVMSG #tags :let me in")
            try await outsider.waitFor { $0.hasPrefix(":test.parley 404 tagout #tags :Cannot send to channel: ") }
            try await outsider.send("NOTICE #tags :let me in")
            try await Self.sync(outsider, "after-notice")
            #expect(try await outsider.lines.filter { $0.contains(" 404 ") }.count == 2)
            // The sender, without echo-message, gets nothing back.
            try await Self.sync(sender, "sender")
            let senderGotEcho = try await sender.lines.contains { $0.contains("TAGMSG") || $0.contains(":replying") }
            #expect(!senderGotEcho)
            // TAGMSG privately, too.
            try await sender.send("@+typing=paused TAGMSG tagwatch")
            try await tagged.waitFor { $0.hasPrefix("@+typing=paused;") && $0.hasSuffix(" :tagger!tagger@parley TAGMSG tagwatch") }
        }
    }

    // MARK: - Channel modes

    @Test("+i: JOIN gets 473 until an operator INVITEs (341 to them, INVITE to the invitee); a member who is no operator gets 482")
    func inviteOnly() async throws {
        try await TestServer.run { server in
            let op = try await Self.connect("invop", port: server.ircPort)
            try await Self.join(op, "invop", "#inv")
            let member = try await Self.connect("invmember", port: server.ircPort)
            try await Self.join(member, "invmember", "#inv")
            try await op.send("MODE #inv +i")
            try await op.waitFor { $0 == ":invop!invop@parley MODE #inv +i" }
            try await member.waitFor { $0 == ":invop!invop@parley MODE #inv +i" }

            let guest = try await Self.connect("invguest", port: server.ircPort)
            try await guest.send("JOIN #inv")
            try await guest.waitFor { $0 == ":test.parley 473 invguest #inv :#inv is invite only: ask one of its operators to /invite you." }
            try await member.send("INVITE invguest #inv")
            try await member.waitFor { $0 == ":test.parley 482 invmember #inv :#inv is invite only: only its operators invite." }

            try await op.send("INVITE invguest #inv")
            try await op.waitFor { $0 == ":test.parley 341 invop invguest :#inv" }
            try await guest.waitFor { $0 == ":invop!invop@parley INVITE invguest #inv" }
            try await guest.send("JOIN #inv")
            try await guest.waitFor { $0 == ":invguest!invguest@parley JOIN #inv" }
            try await op.waitFor { $0 == ":invguest!invguest@parley JOIN #inv" }
            try await op.send("INVITE invguest #inv")
            try await op.waitFor { $0 == ":test.parley 443 invop invguest #inv :invguest is in #inv already." }
            try await op.send("INVITE nobody #inv")
            try await op.waitFor { $0.hasPrefix(":test.parley 401 invop nobody :") }

            // The invitation was used: out and back in needs another.
            try await guest.send("PART #inv")
            try await guest.waitFor { $0 == ":invguest!invguest@parley PART :#inv" }
            try await guest.send("JOIN #inv")
            try await guest.waitFor { $0.hasPrefix(":test.parley 473 invguest #inv :") }
        }
    }

    @Test("+m: a member without a voice gets 404; MODE +v lets them speak and NAMES shows +nick")
    func moderated() async throws {
        try await TestServer.run { server in
            let op = try await Self.connect("modop", port: server.ircPort)
            try await Self.join(op, "modop", "#hush")
            let talker = try await Self.connect("modtalk", port: server.ircPort)
            try await Self.join(talker, "modtalk", "#hush")
            try await op.send("MODE #hush +m")
            try await talker.waitFor { $0 == ":modop!modop@parley MODE #hush +m" }

            try await talker.send("PRIVMSG #hush :can anyone hear me")
            try await talker.waitFor {
                $0 == ":test.parley 404 modtalk #hush :#hush is moderated: only its operators and those they give a voice speak."
            }
            try await op.send("PRIVMSG #hush :operators can")
            try await talker.waitFor { $0 == ":modop!modop@parley PRIVMSG #hush :operators can" }

            try await op.send("MODE #hush +v modtalk")
            try await talker.waitFor { $0 == ":modop!modop@parley MODE #hush +v modtalk" }
            try await talker.send("PRIVMSG #hush :now I can")
            try await op.waitFor { $0 == ":modtalk!modtalk@parley PRIVMSG #hush :now I can" }
            try await op.send("NAMES #hush")
            try await op.waitFor { $0 == ":test.parley 353 modop = #hush :@modop +modtalk" }
            try await op.waitFor { $0 == ":test.parley 366 modop #hush :End of /NAMES list." }
            try await op.send("WHO #hush")
            try await op.waitFor { $0 == ":test.parley 352 modop #hush modtalk parley test.parley modtalk H+ :0 modtalk on IRC" }
            // No #expect(no message): the 404 said it; nobody received the refused line.
            let opGotRefusedLine = try await op.lines.contains { $0.contains("can anyone hear me") }
            #expect(!opGotRefusedLine)

            try await op.send("MODE #hush -v modtalk")
            try await talker.waitFor { $0 == ":modop!modop@parley MODE #hush -v modtalk" }
            try await talker.send("PRIVMSG #hush :again")
            try await talker.waitFor { $0.hasPrefix(":test.parley 404 modtalk #hush :") }
            // A member who is no operator cannot voice.
            try await talker.send("MODE #hush +v modtalk")
            try await talker.waitFor { $0.hasPrefix(":test.parley 482 modtalk #hush :") }
        }
    }

    @Test("MODE #room without changes answers 324 with its modes and 329 with when it came to life; the key only for members")
    func modeQuery() async throws {
        try await TestServer.run { server in
            let op = try await Self.connect("modeop", port: server.ircPort)
            try await Self.join(op, "modeop", "#modes")
            try await op.send("MODE #modes")
            try await op.waitFor { $0 == ":test.parley 324 modeop #modes :+n" }
            let created = try await op.waitFor { $0.hasPrefix(":test.parley 329 modeop #modes :") }
            let seconds = try #require(Double(created.split(separator: ":").last ?? ""))
            #expect(abs(seconds - Date().timeIntervalSince1970) < 120, "\(created)")

            // Several flag letters in one line are one change, announced once.
            try await op.send("MODE #modes +tsk-n sesame")
            try await op.waitFor { $0 == ":modeop!modeop@parley MODE #modes +st-n" }
            try await op.waitFor { $0 == ":modeop!modeop@parley MODE #modes +k sesame" }
            try await op.send("MODE #modes")
            try await op.waitFor { $0 == ":test.parley 324 modeop #modes +stk :sesame" }
            let outsider = try await Self.connect("modeout", port: server.ircPort)
            try await outsider.send("MODE #modes")
            // #modes is secret (+s): to an outsider it is no channel at all.
            try await outsider.waitFor { $0.hasPrefix(":test.parley 403 modeout #modes :") }
            try await op.send("MODE #modes -s")
            try await op.waitFor { $0 == ":modeop!modeop@parley MODE #modes -s" }
            try await outsider.send("MODE #modes")
            try await outsider.waitFor { $0 == ":test.parley 324 modeout #modes +tk :*" }
            try await outsider.send("MODE #nowhere")
            try await outsider.waitFor { $0.hasPrefix(":test.parley 403 modeout #nowhere :") }
            // Setting what is set says nothing; an invalid key is 696.
            try await op.send("MODE #modes +t")
            try await op.send("MODE #modes +k :two words")
            try await op.waitFor { $0.hasPrefix(":test.parley 696 modeop #modes k * :") }
            try await Self.sync(op, "after-noop")
            #expect(try await !op.lines.contains(":modeop!modeop@parley MODE #modes +t"))
        }
    }

    // MARK: - LIST and WHO

    @Test("LIST shows rooms with people in them, hides empty and secret ones; LIST #x lists only that")
    func list() async throws {
        try await TestServer.run { server in
            let lister = try await Self.connect("lister", port: server.ircPort)
            let busy = try await Self.connect("listbusy", port: server.ircPort)
            try await Self.join(busy, "listbusy", "#visible")
            try await busy.send("TOPIC #visible :come in")
            try await busy.waitFor { $0 == ":listbusy!listbusy@parley TOPIC #visible :come in" }
            try await Self.join(busy, "listbusy", "#other")
            let hider = try await Self.connect("listhider", port: server.ircPort)
            try await Self.join(hider, "listhider", "#hidden")
            try await hider.send("MODE #hidden +s")
            try await hider.waitFor { $0 == ":listhider!listhider@parley MODE #hidden +s" }

            func list(_ command: String) async throws -> [String] {
                try await lister.send(command)
                try await lister.waitFor { $0 == ":test.parley 321 lister Channel :Users  Name" }
                var entries: [String] = []
                while true {
                    let line = try await lister.nextLine()
                    if line == ":test.parley 323 lister :End of /LIST" { return entries }
                    entries.append(line)
                }
            }
            // #general has nobody (IRC users are put in no channel): not listed.
            #expect(
                try await list("LIST") == [":test.parley 322 lister #other 1 :", ":test.parley 322 lister #visible 1 :come in"]
            )
            #expect(try await list("LIST #visible") == [":test.parley 322 lister #visible 1 :come in"])
            #expect(try await list("LIST #hidden,#other") == [":test.parley 322 lister #other 1 :"])
            #expect(try await list("LIST #nowhere") == [])
            // Its members see a secret room.
            try await hider.send("LIST #hidden")
            try await hider.waitFor { $0 == ":test.parley 322 listhider #hidden 1 :" }
            // Nor does WHOIS show the secret channel to those outside it.
            try await lister.send("WHOIS listhider")
            try await lister.waitFor { $0 == ":test.parley 318 lister listhider :End of /WHOIS list." }
            let listerSawHidden = try await lister.lines.contains { $0.contains("#hidden") }
            #expect(!listerSawHidden)
            // Nor does NAMES: to those outside it, a secret channel is no channel (just 366).
            try await lister.send("NAMES #hidden")
            try await lister.waitFor { $0 == ":test.parley 366 lister #hidden :End of /NAMES list." }
            let names = try await lister.lines.filter { $0.hasPrefix(":test.parley 353 lister ") }
            #expect(names.isEmpty, "\(names)")
            // Once someone is in #general, it is listed.
            try await Self.join(lister, "lister", "#general")
            #expect(try await list("LIST #general") == [":test.parley 322 lister #general 1 :"])
        }
    }

    @Test("WHO with a mask lists matching nicks (channel *); WHOX %tna,7 answers 354 with token, nick and account")
    func whoMaskAndWhox() async throws {
        try await TestServer.run { server in
            let asker = try await Self.connect("whoami", port: server.ircPort)
            let other = try await Self.connect("whoelse", port: server.ircPort, realName: "Someone Else")
            let unrelated = try await Self.connect("stranger", port: server.ircPort)
            try await other.send("REGISTER * * whoelse-pass")
            try await other.waitFor { $0.hasPrefix(":test.parley REGISTER SUCCESS whoelse ") }
            for (client, nick) in [(asker, "whoami"), (other, "whoelse"), (unrelated, "stranger")] {
                try await Self.join(client, nick, "#whox")
            }
            try await asker.waitFor { $0 == ":stranger!stranger@parley JOIN #whox" }

            func who(_ command: String, end: String) async throws -> [String] {
                try await asker.send(command)
                var replies: [String] = []
                while true {
                    let line = try await asker.nextLine()
                    if line == ":test.parley 315 whoami \(end) :End of /WHO list." { return replies }
                    replies.append(line)
                }
            }
            let masked = try await who("WHO who*", end: "who*")
            #expect(
                masked == [
                    ":test.parley 352 whoami * whoami parley test.parley whoami H :0 whoami on IRC",
                    ":test.parley 352 whoami * whoelse parley test.parley whoelse H :0 Someone Else",
                ]
            )
            #expect(try await who("WHO W?OELSE", end: "W?OELSE").count == 1)
            #expect(try await who("WHO nobody*", end: "nobody*") == [])
            #expect(
                try await who("WHO #whox %tna,7", end: "#whox") == [
                    ":test.parley 354 whoami 7 stranger :0",
                    ":test.parley 354 whoami 7 whoami :0",
                    ":test.parley 354 whoami 7 whoelse :whoelse",
                ]
            )
            // Fields come in WHOX order whatever order they are asked in.
            #expect(
                try await who("WHO whoelse %rfnuct,123", end: "whoelse") == [
                    ":test.parley 354 whoami 123 * whoelse whoelse H :Someone Else"
                ]
            )

            // An invisible user (+i) is found by a mask only by those who share a channel with them.
            try await unrelated.send("MODE stranger +i")
            try await unrelated.waitFor { $0 == ":stranger!stranger@parley MODE stranger +i" }
            #expect(try await who("WHO str*", end: "str*").count == 1)
            let loner = try await Self.connect("loner", port: server.ircPort)
            try await loner.send("WHO str*")
            try await loner.waitFor { $0 == ":test.parley 315 loner str* :End of /WHO list." }
            let lonerGotWhoReply = try await loner.lines.contains { $0.contains(" 352 ") }
            #expect(!lonerGotWhoReply)
            // ISUPPORT announces WHOX.
            #expect(try await asker.lines.contains { $0.hasPrefix(":test.parley 005 whoami ") && $0.contains(" WHOX ") })
        }
    }

    @Test("IRC clients are not told when flood control delays their lines (no IRC server says so); the lines still all come")
    func noDelayNotice() async throws {
        // A burst of 3 and 20 a second: twelve PINGs wait, and are answered all the same.
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 3, perSecond: 20) }) { server in
            let client = try await Self.connect("pacer", port: server.ircPort)
            for index in 1...12 { try await client.send("PING :p\(index)") }
            try await client.waitFor { $0 == ":test.parley PONG test.parley :p12" }
            let lines = try await client.lines
            let gotNotice = lines.contains { $0.contains(" NOTICE ") }
            #expect(!gotNotice, "\(lines.filter { $0.contains(" NOTICE ") })")
        }
    }

    @Test("ban exceptions (+e, EXCEPTS=e): set by MODE, listed with 348/349, let a banned user in; NAMES of several channels ends with one 366")
    func banExceptionsAndNamesOfSeveral() async throws {
        try await TestServer.run { server in
            let op = try await IRCTests.ircUser("chanop", port: server.ircPort)
            try await op.send("JOIN #ex")
            try await op.waitFor { $0.contains(" 366 chanop #ex ") }
            try await op.send("MODE #ex +b ba*!*@*")
            try await op.waitFor { $0.hasPrefix(":chanop!") && $0.contains(" MODE #ex +b ba*") }
            let bar = try await IRCTests.ircUser("bar", port: server.ircPort)
            try await bar.send("JOIN #ex")
            try await bar.waitFor { $0.hasPrefix(":test.parley 474 bar #ex ") }
            try await op.send("MODE #ex +e *ar!*@*")
            try await op.waitFor { $0.hasPrefix(":chanop!") && $0.contains(" MODE #ex +e *ar") }
            try await bar.send("JOIN #ex")
            try await bar.waitFor { $0.hasPrefix(":bar!") && $0.hasSuffix(" JOIN #ex") }
            try await op.send("MODE #ex e")
            let exception = try await op.waitFor { $0.hasPrefix(":test.parley 348 chanop #ex ") }
            #expect(exception.contains(" *ar") && exception.contains(" chanop "), "\(exception)")
            #expect(try await op.nextLine() == ":test.parley 349 chanop #ex :End of channel exception list")
            try await op.send("MODE #ex b")
            try await op.waitFor { $0.hasPrefix(":test.parley 367 chanop #ex ba*") }
            #expect(try await op.nextLine() == ":test.parley 368 chanop #ex :End of channel ban list")

            try await op.send("JOIN #ex2")
            try await op.waitFor { $0.contains(" 366 chanop #ex2 ") }
            try await op.send("NAMES #ex,#ex2,#nowhere")
            #expect(try await op.waitFor { $0.contains(" 353 ") } == ":test.parley 353 chanop = #ex :bar @chanop")
            #expect(try await op.nextLine() == ":test.parley 353 chanop = #ex2 :@chanop")
            #expect(try await op.nextLine() == ":test.parley 366 chanop #ex,#ex2,#nowhere :End of /NAMES list.")
            // A channel named twice is listed once.
            try await op.send("NAMES #ex2,#EX2")
            #expect(try await op.nextLine() == ":test.parley 353 chanop = #ex2 :@chanop")
            #expect(try await op.nextLine() == ":test.parley 366 chanop #ex2 :End of /NAMES list.")
        }
    }
}
