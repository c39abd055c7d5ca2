import Foundation
import NIOCore
import ParleyCore
import ParleyServer
import Testing

/// The IRC front door past the basics: accounts (SASL, PASS), history (batch, chathistory), presence (away)
/// and the capabilities that decorate what clients see.
@Suite("IRC front door: IRCv3, accounts and history")
struct IRCv3Tests {
    static func plain(_ identity: String, _ name: String, _ password: String) -> String {
        Data("\(identity)\u{0}\(name)\u{0}\(password)".utf8).base64EncodedString()
    }

    /// A text user registers `nick` with `password` and leaves, so an IRC client can log in to it.
    static func makeAccount(_ nick: String, _ password: String, server: TestServer) async throws {
        let owner = try await server.textUser(nick)
        try await owner.send("/register \(password)")
        try await owner.waitFor { $0.hasPrefix("*** The nickname \(nick) is now registered to you.") }
        try await owner.send("/quit")
        _ = try await owner.waitForClose()
    }

    @Test("SASL PLAIN logs an IRC client in to a Parley account; wrong passwords, other mechanisms and aborts are refused")
    func sasl() async throws {
        try await TestServer.run { server in
            try await Self.makeAccount("alice", "hunter22", server: server)
            let observer = try await IRCTests.ircUser("watcher", port: server.ircPort, capabilities: ["account-tag", "extended-join"])

            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == ":test.parley 904 * :SASL authentication failed: request the sasl capability first" }
            try await client.send("CAP LS 302")
            try await client.send("CAP REQ :sasl")
            try await client.waitFor { $0 == ":test.parley CAP * ACK :sasl" }
            try await client.send("AUTHENTICATE SCRAM-SHA-256")
            try await client.waitFor { $0 == ":test.parley 908 * PLAIN :are available SASL mechanisms" }
            try await client.waitFor { $0 == ":test.parley 904 * :SASL authentication failed" }
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == "AUTHENTICATE +" }
            try await client.send("AUTHENTICATE *")
            try await client.waitFor { $0 == ":test.parley 906 * :SASL authentication aborted" }
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == "AUTHENTICATE +" }
            try await client.send("AUTHENTICATE \(Self.plain("", "alice", "wrong-password"))")
            try await client.waitFor { $0 == ":test.parley 904 * :SASL authentication failed: Wrong nickname or password." }
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == "AUTHENTICATE +" }
            try await client.send("AUTHENTICATE \(Self.plain("alice", "alice", "hunter22"))")
            try await client.waitFor { $0 == ":test.parley 900 * *!*@parley alice :You are now logged in as alice" }
            try await client.waitFor { $0 == ":test.parley 903 * :SASL authentication successful" }
            // Logging in again is allowed (SASL 3.2); aborting it keeps the account already proved.
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == "AUTHENTICATE +" }
            try await client.send("AUTHENTICATE *")
            try await client.waitFor { $0 == ":test.parley 906 * :SASL authentication aborted" }
            try await client.send("NICK alice")
            try await client.send("USER alice 0 * :Alice")
            try await client.send("CAP END")
            try await client.waitFor { $0 == ":test.parley 001 alice :Welcome to Parley on test.parley, alice" }
            try await client.send("JOIN #general")

            // Everyone sees the account: extended-join, account-tag, WHOIS.
            try await observer.waitFor { $0 == ":alice!alice@parley JOIN #general alice Alice" }
            try await client.send("PRIVMSG #general :logged in")
            try await observer.waitFor { $0 == "@account=alice :alice!alice@parley PRIVMSG #general :logged in" }
            try await observer.send("WHOIS alice")
            try await observer.waitFor { $0 == ":test.parley 330 watcher alice alice :is logged in as" }
            // A guest has no account: `*` in extended-join, no tag.
            let guest = try await IRCTests.ircUser("guest", port: server.ircPort)
            try await observer.waitFor { $0 == ":guest!guest@parley JOIN #general * :guest on IRC" }
            try await guest.send("PRIVMSG #general :no account")
            try await observer.waitFor { $0 == ":guest!guest@parley PRIVMSG #general :no account" }
        }
    }

    @Test("SASL after registration logs the session in; a payload over 400 bytes comes in chunks")
    func saslLater() async throws {
        try await TestServer.run { server in
            let long = String(repeating: "p", count: 300)  // base64 of the payload is over 400 bytes
            let owner = try await server.textUser("bob")
            try await owner.send("/register \(long)")
            try await owner.waitFor { $0.hasPrefix("*** The nickname bob is now registered to you.") }
            try await owner.send("/quit")
            _ = try await owner.waitForClose()

            let client = try await IRCTests.ircUser("bob_", port: server.ircPort, capabilities: ["sasl"])
            try await client.send("AUTHENTICATE PLAIN")
            try await client.waitFor { $0 == "AUTHENTICATE +" }
            let payload = Self.plain("", "bob", long)
            #expect(payload.utf8.count > 400)
            var rest = Substring(payload)
            while !rest.isEmpty {
                try await client.send("AUTHENTICATE \(rest.prefix(400))")
                let sent = rest.prefix(400).count
                rest = rest.dropFirst(400)
                if rest.isEmpty && sent == 400 { try await client.send("AUTHENTICATE +") }
            }
            try await client.waitFor { $0 == ":test.parley 903 bob_ :SASL authentication successful" }
            // On IRC, logging in keeps the nick (the client learns the account from 900); WHOIS shows it.
            try await client.send("WHOIS bob_")
            try await client.waitFor { $0 == ":test.parley 330 bob_ bob_ bob :is logged in as" }
            let nickChanged = try await client.lines.contains { $0.contains(" NICK ") }
            #expect(!nickChanged)
        }
    }

    @Test("a server password is asked at every front door: IRC PASS, the text prompt, JSON hello")
    func serverPassword() async throws {
        try await TestServer.run(configure: { $0.serverPassword = "letmein" }) { server in
            let missing = try await TestClient.connect(port: server.ircPort)
            try await missing.send("NICK nopass")
            try await missing.send("USER nopass 0 * :x")
            try await missing.waitFor { $0 == ":test.parley 464 * :Password incorrect" }
            try await missing.waitFor { $0.hasPrefix("ERROR :Closing link") }
            _ = try await missing.waitForClose()

            let wrong = try await TestClient.connect(port: server.ircPort)
            try await wrong.send("PASS guess")
            try await wrong.send("NICK wrongpass")
            try await wrong.send("USER wrongpass 0 * :x")
            try await wrong.waitFor { $0 == ":test.parley 464 * :Password incorrect" }
            _ = try await wrong.waitForClose()

            let right = try await TestClient.connect(port: server.ircPort)
            try await right.send("PASS letmein")
            try await right.send("NICK ircer")
            try await right.send("USER ircer 0 * :x")
            try await right.waitFor { $0.hasPrefix(":test.parley 001 ircer ") }
            try await right.send("PASS letmein")
            try await right.waitFor { $0 == ":test.parley 462 ircer :You may not reregister" }

            // Without the server password no account password may be tried.
            let sasl = try await TestClient.connect(port: server.ircPort)
            try await sasl.send("CAP REQ :sasl")
            try await sasl.send("AUTHENTICATE PLAIN")
            try await sasl.waitFor { $0 == ":test.parley 904 * :SASL authentication failed: send the server password (PASS) first" }

            let badText = try await TestClient.connect(port: server.port)
            try await badText.waitFor { $0 == "*** This server needs a password:" }
            try await badText.send("guess")
            try await badText.waitFor { $0 == "!!! Wrong password. Goodbye." }
            _ = try await badText.waitForClose()

            let text = try await TestClient.connect(port: server.port)
            try await text.waitFor { $0 == "*** This server needs a password:" }
            try await text.send("letmein")
            try await text.waitFor { $0 == "*** Choose a nickname:" }
            try await text.send("texter")
            try await text.waitFor { $0.hasPrefix("*** In #general") }

            let badJSON = try await TestClient.connect(port: server.port)
            try await badJSON.send(#"{"type":"hello","version":1,"nick":"bot","ref":"h"}"#)
            try await badJSON.waitFor(isEvent("error", ["code": "server_password", "ref": "h"]))
            _ = try await badJSON.waitForClose()

            let json = try await TestClient.connect(port: server.port)
            try await json.send(#"{"type":"hello","version":1,"nick":"bot","server_password":"letmein"}"#)
            try await json.waitFor(isEvent("welcome", ["nick": "bot"]))
        }
    }

    @Test("history: a batch on join for batch clients; CHATHISTORY LATEST, BEFORE, AFTER, BETWEEN, AROUND by msgid and timestamp")
    func chathistory() async throws {
        try await TestServer.run { server in
            let text = try await server.textUser("texter")
            for word in ["one", "two", "three", "four", "five"] { try await text.send(word) }
            // The answer to /who comes after the five are stored (one ordered stream): only then may the batch
            // hold them all, rather than some coming live on a loaded machine.
            try await text.send("/who")
            try await text.waitFor { $0.hasPrefix("*** Online") }
            let batcher = try await IRCTests.ircUser("batcher", port: server.ircPort, capabilities: ["batch", "server-time", "message-tags"])
            try await text.waitFor { $0 == "*** batcher joined #general" }
            let opening = try await batcher.waitFor { $0.contains(" BATCH +") }
            let id = try #require(opening.split(separator: " ").first { $0.hasPrefix("+") }).dropFirst()
            #expect(opening == ":test.parley BATCH +\(id) chathistory #general")
            var replayed: [String] = []
            while true {
                let line = try await batcher.nextLine()
                if line == ":test.parley BATCH -\(id)" { break }
                #expect(line.hasPrefix("@batch=\(id);msgid=") && line.contains(";time=20"), "\(line)")
                replayed.append(String(line.split(separator: ":").last!))
            }
            #expect(replayed == ["one", "two", "three", "four", "five"])

            // A chathistory client asks for itself: no replay comes unasked.
            let caps = ["batch", "server-time", "message-tags", "draft/chathistory"]
            let fetcher = try await IRCTests.ircUser("fetcher", port: server.ircPort, capabilities: caps)
            func page(_ command: String) async throws -> [(id: String, time: String, text: String)] {
                try await fetcher.send(command)
                let opening = try await fetcher.waitFor { $0.contains(" BATCH +") }
                #expect(opening.hasSuffix(" chathistory #general"), "\(opening)")
                var messages: [(id: String, time: String, text: String)] = []
                while true {
                    let line = try await fetcher.nextLine()
                    if line.contains(" BATCH -") { return messages }
                    let tags = Dictionary(uniqueKeysWithValues: line.dropFirst().prefix { $0 != " " }.split(separator: ";").map {
                        let parts = $0.split(separator: "=", maxSplits: 1)
                        return (String(parts[0]), String(parts[1]))
                    })
                    messages.append((tags["msgid"] ?? "", tags["time"] ?? "", String(line.split(separator: ":").last!)))
                }
            }
            let all = try await page("CHATHISTORY LATEST #general * 50")
            #expect(all.map(\.text) == ["one", "two", "three", "four", "five"])
            #expect(try await page("CHATHISTORY LATEST #general * 2").map(\.text) == ["four", "five"])
            #expect(try await page("CHATHISTORY LATEST #general msgid=\(all[2].id) 10").map(\.text) == ["four", "five"])
            #expect(try await page("CHATHISTORY BEFORE #general msgid=\(all[3].id) 2").map(\.text) == ["two", "three"])
            #expect(try await page("CHATHISTORY AFTER #general msgid=\(all[0].id) 1").map(\.text) == ["two"])
            #expect(try await page("CHATHISTORY BETWEEN #general msgid=\(all[0].id) msgid=\(all[4].id) 10").map(\.text) == ["two", "three", "four"])
            #expect(try await page("CHATHISTORY BETWEEN #general msgid=\(all[4].id) msgid=\(all[0].id) 2").map(\.text) == ["three", "four"])
            // Messages sent in one millisecond share a time, so what a timestamp selects is computed from the tags
            // (ISO 8601 in UTC with milliseconds compares as text).
            let afterFour = all.filter { $0.time > all[3].time }.map(\.text)
            #expect(try await page("CHATHISTORY AFTER #general timestamp=2000-01-01T00:00:00.000Z 10").map(\.text) == all.map(\.text))
            #expect(try await page("CHATHISTORY BEFORE #general timestamp=2999-01-01T00:00:00.000Z 2").map(\.text) == ["four", "five"])
            #expect(try await page("CHATHISTORY AFTER #general timestamp=\(all[3].time) 10").map(\.text) == afterFour)
            #expect(try await page("CHATHISTORY BEFORE #general timestamp=\(all[4].time) 10").map(\.text) == all.filter { $0.time < all[4].time }.map(\.text))
            #expect(try await page("CHATHISTORY BEFORE #general timestamp=\(all[0].time) 10").map(\.text) == [])

            // Around a message: about half before it, the rest from it on.
            #expect(try await page("CHATHISTORY AROUND #general msgid=\(all[2].id) 3").map(\.text) == ["two", "three", "four"])
            #expect(try await page("CHATHISTORY AROUND #general msgid=\(all[2].id) 1").map(\.text) == ["three"])
            // By time: up to three in a row, about half before the moment and the rest from it on (messages sent in
            // one millisecond share it, so which of them come is not fixed).
            let around = try await page("CHATHISTORY AROUND #general timestamp=\(all[2].time) 3").map(\.text)
            #expect((1...3).contains(around.count) && all.map(\.text).joined(separator: " ").contains(around.joined(separator: " ")), "\(around)")
            #expect(all.filter { around.contains($0.text) }.contains { $0.time == all[2].time }, "\(around)")
            // Not logged in, nobody's private messages were kept for this client: an empty history.
            try await fetcher.send("CHATHISTORY LATEST texter * 10")
            try await fetcher.waitFor { $0.hasSuffix(" BATCH +h0 chathistory texter") }
            try await fetcher.waitFor { $0.hasSuffix(" BATCH -h0") }
            try await fetcher.send("CHATHISTORY SOMETIME #general msgid=1 10")
            try await fetcher.waitFor {
                $0 == ":test.parley FAIL CHATHISTORY INVALID_PARAMS SOMETIME :Supported: LATEST, BEFORE, AFTER, BETWEEN, AROUND and TARGETS"
            }
            try await fetcher.send("CHATHISTORY LATEST #general * none")
            try await fetcher.waitFor { $0.hasPrefix(":test.parley FAIL CHATHISTORY INVALID_PARAMS LATEST :") }
            // Times out of range or malformed are refused, never trusted (they once trapped the server).
            for reference in ["timestamp=99999999999-01-01T00:00:00.000Z", "timestamp=2000000000-01-01T00:00:00Z", "timestamp=2026-13-01T00:00:00Z", "timestamp=now", "msgid=x"] {
                try await fetcher.send("CHATHISTORY BEFORE #general \(reference) 10")
                try await fetcher.waitFor { $0 == ":test.parley FAIL CHATHISTORY INVALID_PARAMS BEFORE :Unknown message reference" }
            }
            try await fetcher.send("CHATHISTORY LATEST #elsewhere * 10")
            try await fetcher.waitFor { $0.hasPrefix(":test.parley FAIL CHATHISTORY INVALID_TARGET LATEST #elsewhere :") }
        }
    }

    @Test("history for clients without batch: the last 10 as notices split to 512 bytes, a pointer to HISTORY, which shows more")
    func plainHistory() async throws {
        try await TestServer.run(configure: { $0.limits.flood = .init(burst: 1000, perSecond: 1000) }) { server in
            let text = try await server.textUser("texter")
            for index in 1...29 { try await text.send("line \(index)") }
            let long = (1...300).map { "w\($0)" }.joined(separator: " ")  // about 1,500 bytes
            try await text.send(long)
            try await text.send("/history 1")
            try await text.waitFor { $0.hasSuffix("w300") }
            let plain = try await IRCTests.ircUser("plain", port: server.ircPort)
            try await plain.waitFor { $0 == ":test.parley NOTICE #general :[history] Showing the last 10 messages; /quote HISTORY #general 50 shows more." }
            var replay: [String] = []
            while replay.count < 9 || !(replay.last ?? "").hasSuffix("w300") {
                replay.append(try await plain.nextLine())
            }
            #expect(replay.first?.hasSuffix("<texter> line 21") == true, "\(replay)")
            #expect(replay.filter { $0.contains("<texter> line ") }.count == 9)
            // The long message arrives whole, in lines that each fit 512 bytes with their CR LF.
            let pieces = replay.filter { !$0.contains("<texter> line ") }
            #expect(pieces.count > 2)
            #expect(pieces.allSatisfy { $0.utf8.count + 2 <= 512 && $0.hasPrefix(":test.parley NOTICE #general :") }, "\(pieces)")
            let joined = pieces.map { String($0.dropFirst(":test.parley NOTICE #general :".count)) }.joined()
            #expect(joined.hasSuffix("<texter> \(long)"))

            try await plain.send("HISTORY #general 25")
            let asked = try await plain.waitFor { $0.contains("<texter> line 6") }
            #expect(asked.hasPrefix(":test.parley NOTICE #general :["))
            try await plain.waitFor { $0.hasSuffix("w300") }
            try await plain.send("HISTORY #nowhere")
            try await plain.waitFor { $0.hasPrefix(":test.parley 403 plain #nowhere :") }
        }
    }

    @Test("a logged-in IRC client that reconnects is replayed only what came since it last left in order")
    func noReplayOfWhatWasSeen() async throws {
        try await TestServer.run { server in
            try await Self.makeAccount("alice", "hunter22", server: server)
            let text = try await server.textUser("texter")
            // Each message is stored before the next step (its own /history shows it), so none can arrive live.
            func say(_ words: String) async throws {
                try await text.send(words)
                try await text.send("/history 1")
                try await text.waitFor { $0.hasSuffix("<texter> \(words)") }
            }
            try await say("before alice")
            func connect() async throws -> TestClient {
                let client = try await TestClient.connect(port: server.ircPort)
                try await client.send("CAP LS 302")
                try await client.send("CAP REQ :sasl")
                try await client.waitFor { $0 == ":test.parley CAP * ACK :sasl" }
                try await client.send("AUTHENTICATE PLAIN")
                try await client.waitFor { $0 == "AUTHENTICATE +" }
                try await client.send("AUTHENTICATE \(Self.plain("", "alice", "hunter22"))")
                try await client.waitFor { $0.contains(" 903 ") }
                try await client.send("NICK alice")
                try await client.send("USER alice 0 * :Alice")
                try await client.send("CAP END")
                try await client.waitFor { $0.contains(" 376 alice ") }
                try await client.send("JOIN #general")
                return client
            }
            // First time: the latest messages.
            var alice = try await connect()
            try await alice.waitFor { $0.contains(" 366 alice #general ") }
            try await alice.waitFor { $0.hasSuffix("<texter> before alice") }
            try await text.send("while alice is here")
            try await alice.waitFor { $0.hasSuffix("PRIVMSG #general :while alice is here") }
            try await alice.send("QUIT :brb")
            _ = try await alice.waitForClose()
            try await say("while alice is away")

            // Back: only what came while she was away, however many messages the room has.
            alice = try await connect()
            try await alice.waitFor { $0.contains(" 366 alice #general ") }
            try await alice.send("PING :after-join")
            let seen = try await alice.waitFor { $0.hasSuffix(":after-join") }
            let replay = try await alice.lines.filter { $0.contains(":[") && $0.contains("<texter>") }
            #expect(replay.count == 1 && replay[0].hasSuffix("<texter> while alice is away"), "\(replay) \(seen)")

            // A connection lost without QUIT moves no mark: what was on its way may never have arrived.
            try await alice.send("PRIVMSG #general :last words")
            try await text.waitFor { $0.hasSuffix("<alice> last words") }
            try await text.send("after her last words")
            try await alice.waitFor { $0.hasSuffix("PRIVMSG #general :after her last words") }
            await alice.close()
            try await text.waitFor { $0.hasPrefix("*** alice left #general") }
            alice = try await connect()
            try await alice.waitFor { $0.contains(" 366 alice #general ") }
            try await alice.waitFor { $0.hasSuffix("<texter> after her last words") }
            try await alice.send("QUIT")
            _ = try await alice.waitForClose()

            // Nothing new: nothing replayed.
            alice = try await connect()
            try await alice.waitFor { $0.contains(" 366 alice #general ") }
            try await alice.send("PING :quiet")
            try await alice.waitFor { $0.hasSuffix(":quiet") }
            #expect(try await alice.lines.filter { $0.contains("<texter>") }.isEmpty)
        }
    }

    @Test("away: AWAY is answered 306/305, shown by away-notify, 301 to whoever messages, WHOIS and WHO; text users see it")
    func away() async throws {
        try await TestServer.run { server in
            let watcher = try await IRCTests.ircUser("watcher", port: server.ircPort, capabilities: ["away-notify"])
            let plain = try await IRCTests.ircUser("plain", port: server.ircPort)
            let text = try await server.textUser("texter")
            let bot = try await server.jsonUser("bot")
            try await plain.waitFor { $0 == ":bot!bot@parley JOIN #general" }
            try await plain.send("AWAY :at lunch")
            try await bot.waitFor(isEvent("away", ["nick": "plain", "message": "at lunch"]))
            try await plain.waitFor { $0 == ":test.parley 306 plain :You have been marked as being away" }
            try await watcher.waitFor { $0 == ":plain!plain@parley AWAY :at lunch" }
            try await text.waitFor { $0 == "*** plain is away: at lunch" }
            try await watcher.send("PRIVMSG plain :are you there?")
            try await watcher.waitFor { $0 == ":test.parley 301 watcher plain :at lunch" }
            try await text.send("/msg plain ping")
            try await text.waitFor { $0 == "*** plain is away: at lunch" }
            try await watcher.send("WHOIS plain")
            try await watcher.waitFor { $0 == ":test.parley 301 watcher plain :at lunch" }
            try await watcher.send("WHO plain")
            try await watcher.waitFor { $0 == ":test.parley 352 watcher * plain parley test.parley plain G :0 plain on IRC" }
            try await plain.send("AWAY")
            try await plain.waitFor { $0 == ":test.parley 305 plain :You are no longer marked as being away" }
            try await watcher.waitFor { $0 == ":plain!plain@parley AWAY" }
            try await text.waitFor { $0 == "*** plain is back." }
            try await text.send("/away brb")
            try await watcher.waitFor { $0 == ":texter!texter@parley AWAY :brb" }
            try await bot.send(#"{"type":"away","text":"compiling"}"#)
            try await watcher.waitFor { $0 == ":bot!bot@parley AWAY :compiling" }
            try await text.send("/back")
            try await watcher.waitFor { $0 == ":texter!texter@parley AWAY" }
        }
    }

    @Test("NAMES marks operators (and full masks with userhost-in-names); LUSERS comes in the burst; KILL needs an IRC operator")
    func namesAndOperators() async throws {
        try await TestServer.run { server in
            let client = try await TestClient.connect(port: server.ircPort)
            try await client.send("NICK op")
            try await client.send("USER op 0 * :x")
            try await client.waitFor { $0 == ":test.parley 251 op :There are 1 users and 0 invisible on 1 servers" }
            try await client.waitFor { $0 == ":test.parley 254 op 1 :channels formed" }
            try await client.waitFor { $0 == ":test.parley 376 op :End of /MOTD command." }
            let names = try await IRCTests.ircUser("names", port: server.ircPort, capabilities: ["userhost-in-names", "multi-prefix"])
            try await client.send("JOIN #room")
            try await client.waitFor { $0 == ":test.parley 353 op = #room :@op" }
            try await names.send("JOIN #room")
            try await names.waitFor { $0 == ":test.parley 353 names = #room :names!names@parley @op!op@parley" }
            try await names.send("WHOIS op")
            try await names.waitFor { $0 == ":test.parley 319 names op :@#room" }
            try await names.send("WHO #room")
            try await names.waitFor { $0 == ":test.parley 352 names #room op parley test.parley op H@ :0 x" }
            try await names.send("LUSERS")
            try await names.waitFor { $0 == ":test.parley 255 names :I have 2 clients and 0 servers" }
            try await names.send("KILL op :bye")
            try await names.waitFor { $0 == ":test.parley 481 names :Permission Denied- You're not an IRC operator" }
        }
    }

    @Test("a channel key (+k): JOIN without it or with another gets 475; with it, from IRC or text, gets in")
    func channelKey() async throws {
        try await TestServer.run { server in
            let owner = try await IRCTests.ircUser("owner", port: server.ircPort)
            try await owner.send("JOIN #vault")
            try await owner.waitFor { $0.contains(" 366 owner #vault ") }
            try await owner.send("MODE #vault +k sesame")
            try await owner.waitFor { $0 == ":owner!owner@parley MODE #vault +k sesame" }
            let guest = try await IRCTests.ircUser("guest", port: server.ircPort)
            try await guest.send("JOIN #vault")
            try await guest.waitFor { $0 == ":test.parley 475 guest #vault :#vault needs a key: /join #vault KEY" }
            try await guest.send("JOIN #vault,#open wrong")
            try await guest.waitFor { $0.hasPrefix(":test.parley 475 guest #vault :") }
            try await guest.waitFor { $0 == ":guest!guest@parley JOIN #open" }
            try await guest.send("JOIN #vault sesame")
            try await owner.waitFor { $0 == ":guest!guest@parley JOIN #vault" }
            let text = try await server.textUser("texter")
            try await text.send("/join #vault")
            try await text.waitFor { $0 == "!!! #vault needs a key: /join #vault KEY" }
            try await text.send("/join #vault sesame")
            try await owner.waitFor { $0 == ":texter!texter@parley JOIN #vault" }
            try await owner.send("MODE #vault -k")
            try await text.waitFor { $0 == "*** owner removed the key of #vault: anyone may join" }
            try await guest.waitFor { $0 == ":owner!owner@parley MODE #vault -k *" }
            // JSON sets a key and joins with one.
            let bot = try await server.jsonUser("bot")
            try await bot.send(##"{"type":"join","room":"#vault"}"##)
            try await bot.waitFor(isEvent("joined", ["room": "#vault", "nick": "bot"]))
            try await owner.send("MODE #vault +o bot")
            try await bot.waitFor(isEvent("moderation", ["action": "op", "target": "bot"]))
            try await bot.send(##"{"type":"key","room":"#vault","key":"opensesame"}"##)
            try await owner.waitFor { $0 == ":bot!bot@parley MODE #vault +k opensesame" }
            let late = try await server.jsonUser("late")
            try await late.send(##"{"type":"join","room":"#vault","ref":"j1"}"##)
            try await late.waitFor(isEvent("error", ["code": "wrong_key", "ref": "j1"]))
            try await late.send(##"{"type":"join","room":"#vault","key":"opensesame"}"##)
            try await owner.waitFor { $0 == ":late!late@parley JOIN #vault" }
            try await guest.send("MODE #vault +k mine")
            try await guest.waitFor { $0.hasPrefix(":test.parley 482 guest #vault :") }
        }
    }

    @Test("a silent IRC client is sent PING and dropped when it does not answer; one that answers stays")
    func pingTimeout() async throws {
        try await TestServer.run(configure: { $0.limits.pingInterval = .seconds(4) }) { server in
            let text = try await server.textUser("texter")
            let lively = try await IRCTests.ircUser("lively", port: server.ircPort)
            // Answered where it arrives: a test task starved on a loaded machine would answer too late.
            try await lively.answerPings()
            let silent = try await IRCTests.ircUser("silent", port: server.ircPort)
            try await lively.waitFor { $0 == "PING test.parley" }
            try await silent.waitFor { $0 == "PING test.parley" }
            try await silent.waitFor { $0 == "ERROR :Closing link: ping timeout" }
            _ = try await silent.waitForClose()
            try await text.waitFor { $0 == "*** silent left #general (ping timeout)" }
            try await lively.send("PRIVMSG #general :still here")
            try await text.waitFor { $0.hasSuffix("<lively> still here") }
        }
    }
}
