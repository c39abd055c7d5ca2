import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Testing

/// The pure part of the IRC door: MODE letters, USER's identity, masks, the 512-byte rule for relayed lines,
/// request refs, and the numerics a refusal becomes.
@Suite("IRCTranslation and the IRC codec's replies")
struct IRCTranslationTests {
    static let codec = IRCCodec(serverName: "test.parley")

    /// The lines `codec` writes for `event` to `me`, without CR LF, parsed.
    static func messages(_ event: ChatEvent, for me: String = "me", capabilities: IRCCapabilities = []) -> [IRCMessage] {
        lines(event, for: me, capabilities: capabilities).compactMap { IRCMessage(parsing: Substring($0)) }
    }

    static func lines(_ event: ChatEvent, for me: String = "me", capabilities: IRCCapabilities = []) -> [String] {
        guard let buffer = codec.encode(event, for: me, capabilities: capabilities) else { return [] }
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        #expect(text.hasSuffix("\r\n"), "\(text)")
        let lines: [String] = text.components(separatedBy: "\r\n")
        return Array(lines.dropLast())
    }

    static func profile(_ nick: String, account: String? = nil, rooms: [Profile.Room] = []) -> Profile {
        Profile(nick: nick, username: "u-\(nick)", realName: "\(nick) Real", account: account, away: nil, rooms: rooms, isServerOperator: false)
    }

    // MARK: - channelModes

    @Test("the on-or-off letters of one MODE line are one change, placed where the first of them stood")
    func flagsGroup() {
        #expect(
            IRCTranslation.channelModes("+itn", arguments: []) == [
                .moderate(.modes(on: [.inviteOnly, .topicLocked, .membersOnly], off: []), subject: nil)
            ]
        )
        // Between other changes: after the +o, before the +v, wherever the later flag letters are.
        #expect(
            IRCTranslation.channelModes("+o-i+vm", arguments: ["bob", "carol"]) == [
                .moderate(.op(nick: "bob"), subject: "bob"),
                .moderate(.modes(on: [.moderated], off: [.inviteOnly]), subject: nil),
                .moderate(.voice(nick: "carol"), subject: "carol"),
            ]
        )
        // The last word on a letter wins.
        #expect(IRCTranslation.channelModes("+i-i", arguments: []) == [.moderate(.modes(on: [], off: [.inviteOnly]), subject: nil)])
        #expect(IRCTranslation.channelModes("-s+s", arguments: []) == [.moderate(.modes(on: [.secret], off: []), subject: nil)])
        // No sign means +.
        #expect(IRCTranslation.channelModes("m", arguments: []) == [.moderate(.modes(on: [.moderated], off: []), subject: nil)])
    }

    @Test("k: a valid key is set, -k removes (its argument eaten), a bad key is invalidKey, a +k without one is skipped")
    func keys() {
        #expect(IRCTranslation.channelModes("+k", arguments: ["sesame"]) == [.moderate(.key("sesame"), subject: nil)])
        #expect(IRCTranslation.channelModes("-k", arguments: []) == [.moderate(.key(nil), subject: nil)])
        // -k may name the key (RFC 2812): the argument is used up, so the +v after it gets the next one.
        #expect(IRCTranslation.channelModes("-k+v", arguments: ["old", "bob"]) == [.moderate(.key(nil), subject: nil), .moderate(.voice(nick: "bob"), subject: "bob")])
        #expect(IRCTranslation.channelModes("+k", arguments: []) == [])
        let longest = String(repeating: "k", count: ChatState<Int>.maximumKeyLength)
        #expect(IRCTranslation.channelModes("+k", arguments: [longest]) == [.moderate(.key(longest), subject: nil)])
        for bad in ["", "open sesame", "a,b", longest + "k", "bell\u{7}"] {
            #expect(IRCTranslation.channelModes("+k", arguments: [bad]) == [.invalidKey(bad)], "\(bad.debugDescription)")
            #expect(!IRCTranslation.isValidKey(bad), "\(bad.debugDescription)")
        }
        #expect(IRCTranslation.isValidKey("sesame") && IRCTranslation.isValidKey(longest))
    }

    @Test("v voices and devoices the nick it names; without one it is skipped")
    func voice() {
        #expect(
            IRCTranslation.channelModes("+v-v", arguments: ["ann", "ben"]) == [
                .moderate(.voice(nick: "ann"), subject: "ann"), .moderate(.devoice(nick: "ben"), subject: "ben"),
            ]
        )
        #expect(IRCTranslation.channelModes("+v", arguments: []) == [])
    }

    @Test("b without a mask lists the bans; with one it bans or unbans Parley's form of the mask")
    func bans() {
        #expect(IRCTranslation.channelModes("+b", arguments: []) == [.listBans])
        #expect(IRCTranslation.channelModes("b", arguments: []) == [.listBans])
        #expect(IRCTranslation.channelModes("+b", arguments: ["bob!*@*"]) == [.moderate(.ban(mask: "bob", seconds: nil, reason: nil), subject: "bob!*@*")])
        #expect(IRCTranslation.channelModes("-b", arguments: ["bob!x@10.0.0.1"]) == [.moderate(.unban(mask: "bob@10.0.0.1"), subject: "bob!x@10.0.0.1")])
    }

    @Test("a letter Parley has no mode for is unknown, in its place; the other letters still count")
    func unknown() {
        #expect(IRCTranslation.channelModes("+z", arguments: []) == [.unknown("z")])
        #expect(
            IRCTranslation.channelModes("+zi", arguments: []) == [.unknown("z"), .moderate(.modes(on: [.inviteOnly], off: []), subject: nil)]
        )
    }

    @Test("past MODES changes a line, one tooMany and the rest dropped")
    func tooMany() {
        #expect(IRCCodec.maximumModes == 4)
        #expect(
            IRCTranslation.channelModes("+imnst", arguments: []) == [
                .moderate(.modes(on: [.inviteOnly, .moderated, .membersOnly, .secret], off: []), subject: nil), .tooMany,
            ]
        )
        let nicks = ["a", "b", "c", "d", "e", "f"]
        #expect(
            IRCTranslation.channelModes("+vvvvvv", arguments: nicks) == nicks.prefix(4).map { .moderate(.voice(nick: $0), subject: $0) } + [.tooMany]
        )
        // Exactly MODES changes is fine; signs do not count.
        #expect(!IRCTranslation.channelModes("+v-v+v-v", arguments: nicks).contains(.tooMany))
    }

    // MARK: - Masks and identity

    @Test("an IRC mask nick!user@host becomes Parley's nick@host; a * host is dropped, the user part ignored")
    func parleyMask() {
        #expect(IRCTranslation.parleyMask(fromIRC: "bob!*@*") == "bob")
        #expect(IRCTranslation.parleyMask(fromIRC: "bob!bobby@10.0.0.7") == "bob@10.0.0.7")
        #expect(IRCTranslation.parleyMask(fromIRC: "bob") == "bob")
        #expect(IRCTranslation.parleyMask(fromIRC: "bob!x") == "bob")
        #expect(IRCTranslation.parleyMask(fromIRC: "bob@host.example") == "bob@host.example")
        #expect(IRCTranslation.parleyMask(fromIRC: "*!*@10.0.0.*") == "*@10.0.0.*")
    }

    @Test("USER: the username is one short word, the real name free text; an empty real name is refused")
    func identity() {
        #expect(IRCTranslation.identity(username: "jdoe", realName: "John Doe") == Identity(username: "jdoe", realName: "John Doe"))
        #expect(IRCTranslation.identity(username: "jdoe", realName: "") == nil)
        #expect(IRCTranslation.identity(username: "jdoe", realName: "   ") == nil)
        #expect(IRCTranslation.identity(username: "a b!c@d*e,f", realName: "x")?.username == "abcdef")
        #expect(IRCTranslation.identity(username: "averyveryverylongname", realName: "x")?.username == "averyveryv")
        // Nothing left of the username: none (the nick stands for it).
        #expect(IRCTranslation.identity(username: "!@*", realName: "Real") == Identity(username: nil, realName: "Real"))
        // The real name is cleaned like any text others see, trimmed and capped.
        #expect(IRCTranslation.identity(username: "u", realName: "  Jane\u{1B}[31m Roe  ")?.realName == "Jane Roe")
        #expect(IRCTranslation.identity(username: "u", realName: String(repeating: "r", count: 300))?.realName?.count == 100)
    }

    // MARK: - The 512-byte rule

    @Test("a relayed PRIVMSG fits when its line with CR LF is exactly 512 bytes, not 513")
    func fitsRelayed() {
        let (source, command, target) = ("alice!alice@parley", "PRIVMSG", "#room")
        let overhead = ":\(source) \(command) \(target) :\r\n".utf8.count
        let exact = String(repeating: "x", count: 512 - overhead)
        #expect(":\(source) \(command) \(target) :\(exact)\r\n".utf8.count == 512)
        #expect(IRCTranslation.fitsRelayed(source: source, command: command, target: target, text: exact))
        #expect(!IRCTranslation.fitsRelayed(source: source, command: command, target: target, text: exact + "x"))
        // Bytes, not characters: one é too many is two bytes over.
        let accents = String(repeating: "é", count: (512 - overhead) / 2)
        #expect(IRCTranslation.fitsRelayed(source: source, command: command, target: target, text: accents))
        #expect(!IRCTranslation.fitsRelayed(source: source, command: command, target: target, text: accents + "éé"))
        // A longer target leaves less room.
        #expect(!IRCTranslation.fitsRelayed(source: source, command: command, target: target + "s", text: exact))
    }

    // MARK: - Refs

    @Test("a ref carries command, target and subject through the hub and back; an empty PING token survives")
    func refRoundTrip() throws {
        #expect(IRCCodec.ref("KICK", "#a", "bob") == "KICK\n#a\nbob")
        let kick = try #require(IRCCodec.parse(ref: IRCCodec.ref("KICK", "#a", "bob")))
        #expect(kick.command == "KICK" && kick.target == "#a" && kick.subject == "bob")
        let list = try #require(IRCCodec.parse(ref: IRCCodec.ref("LIST")))
        #expect(list.command == "LIST" && list.target == nil && list.subject == nil)
        // WHOX fields ride as the subject, spaces and commas and all.
        let who = try #require(IRCCodec.parse(ref: IRCCodec.ref("WHO", "#a", "%tna,42")))
        #expect(who.target == "#a" && who.subject == "%tna,42")
        #expect(IRCCodec.parse(ref: nil) == nil)

        // `PING :` has an empty token: it is kept (not taken for no token), and echoed empty.
        let ping = IRCCodec.ref("PING", "")
        #expect(ping == "PING\n")
        let parsed = try #require(IRCCodec.parse(ref: ping))
        #expect(parsed.command == "PING" && parsed.target == "" && parsed.subject == nil)
        #expect(Self.lines(.pong(ref: ping)) == [":test.parley PONG test.parley :"])
        #expect(Self.lines(.pong(ref: IRCCodec.ref("PING", "x y"))) == [":test.parley PONG test.parley :x y"])
        // A PONG with no ref names the server.
        #expect(Self.lines(.pong(ref: nil)) == [":test.parley PONG test.parley :test.parley"])
    }

    // MARK: - Refusals as numerics

    @Test("a refusal becomes what its command calls for: nothing for NOTICE, 366 for NAMES, 404 for PRIVMSG, 441/443 naming nick and channel")
    func numericsByCommand() {
        let codec = Self.codec
        func numerics(_ code: ChatError.Code, _ command: String, _ target: String?, _ subject: String? = nil) -> [IRCMessage] {
            codec.numerics(for: ChatError(code, "why"), ref: IRCCodec.parse(ref: IRCCodec.ref(command, target, subject)), me: "me")
        }
        // RFC 2812: never an automatic reply to a NOTICE, whatever went wrong.
        for code in [ChatError.Code.noSuchNick, .noSuchRoom, .notInRoom, .muted] {
            #expect(numerics(code, "NOTICE", "#x").isEmpty, "\(code)")
        }
        #expect(numerics(.noSuchRoom, "NAMES", "#x") == [IRCMessage(source: "test.parley", command: "366", params: ["me", "#x", "End of /NAMES list."])])
        #expect(numerics(.invalidRoom, "NAMES", "bad") == [IRCMessage(source: "test.parley", command: "366", params: ["me", "bad", "End of /NAMES list."])])
        // Not in the channel: 404 for PRIVMSG and TAGMSG, 442 for anything else.
        #expect(numerics(.notInRoom, "PRIVMSG", "#x") == [IRCMessage(source: "test.parley", command: "404", params: ["me", "#x", "Cannot send to channel: why"])])
        #expect(numerics(.notInRoom, "TAGMSG", "#x").map(\.command) == ["404"])
        #expect(numerics(.notInRoom, "TOPIC", "#x") == [IRCMessage(source: "test.parley", command: "442", params: ["me", "#x", "why"])])
        // +m: 404 for PRIVMSG too.
        #expect(numerics(.muted, "PRIVMSG", "#x") == [IRCMessage(source: "test.parley", command: "404", params: ["me", "#x", "why"])])
        #expect(numerics(.userNotInRoom, "KICK", "#x", "bob") == [IRCMessage(source: "test.parley", command: "441", params: ["me", "bob", "#x", "why"])])
        #expect(numerics(.alreadyInRoom, "INVITE", "#x", "bob") == [IRCMessage(source: "test.parley", command: "443", params: ["me", "bob", "#x", "why"])])
        #expect(numerics(.noSuchNick, "INVITE", "#x", "bob") == [IRCMessage(source: "test.parley", command: "401", params: ["me", "bob", "why"])])
        #expect(numerics(.inviteOnly, "JOIN", "#x") == [IRCMessage(source: "test.parley", command: "473", params: ["me", "#x", "why"])])
        #expect(numerics(.notOperator, "MODE", "#x") == [IRCMessage(source: "test.parley", command: "482", params: ["me", "#x", "why"])])
        // A refusal with no ref at all still gets its numeric, naming `*`.
        #expect(codec.numerics(for: ChatError(.noSuchRoom, "why"), ref: nil, me: "me") == [IRCMessage(source: "test.parley", command: "403", params: ["me", "*", "why"])])
    }

    @Test("433 for a registered nick tells IRC users how to log in: SASL or NickServ IDENTIFY")
    func nickRegistered() {
        let error = ChatError(.nickRegistered, "The nickname alice is registered. Log in with /login alice PASSWORD, or choose another nickname.")
        let reply = Self.codec.numeric(for: error, target: "alice", me: "*")
        #expect(reply.command == "433")
        #expect(reply.params.prefix(2) == ["*", "alice"])
        let text = reply.params.last ?? ""
        #expect(text.contains("/msg NickServ IDENTIFY alice PASSWORD"), "\(text)")
        #expect(text.contains("SASL") && !text.contains("/login"), "\(text)")
        // The same through a NICK ref.
        let viaRef = Self.codec.numerics(for: error, ref: IRCCodec.parse(ref: IRCCodec.ref("NICK", "alice")), me: "bob")
        #expect(viaRef == [IRCMessage(source: "test.parley", command: "433", params: ["bob", "alice", text])])
        // A nick simply taken says nothing of NickServ.
        let taken = Self.codec.numeric(for: ChatError(.nickTaken, "taken"), target: "alice", me: "*")
        #expect(taken.command == "433" && taken.params.last == "taken")
    }

    // MARK: - WHO and WHOX

    @Test("WHOX: `%tna,42` gives 354 with token, nick and account in that order; fields come in tcuihsnfdlaor order whatever the asking order")
    func whox() {
        let op = Self.profile("alice", account: "alice", rooms: [Profile.Room(name: "#room", isOperator: true)])
        let guest = Self.profile("bob", rooms: [Profile.Room(name: "#room", isOperator: false, isVoiced: true)])
        let event = ChatEvent.whoList(query: "#room", [op, guest], ref: IRCCodec.ref("WHO", "#room", "%tna,42"))
        let replies = Self.messages(event)
        #expect(replies.map(\.command) == ["354", "354", "315"])
        #expect(replies.allSatisfy { $0.source == "test.parley" })
        #expect(replies[0].params == ["me", "42", "alice", "alice"])
        // No account: 0.
        #expect(replies[1].params == ["me", "42", "bob", "0"])
        #expect(replies[2].params == ["me", "#room", "End of /WHO list."])

        // Asked in another order, answered in the fixed one; the flags show the channel prefix; no token: none shown.
        let reordered = Self.messages(.whoList(query: "#room", [guest], ref: IRCCodec.ref("WHO", "#room", "%rfnuc")))
        #expect(reordered.first?.params == ["me", "#room", "u-bob", "bob", "H+", "bob Real"])
        // A `t` without a token: 0.
        let untokened = Self.messages(.whoList(query: "bob", [guest], ref: IRCCodec.ref("WHO", "bob", "%tn")))
        #expect(untokened.first?.params == ["me", "0", "bob"])
        // A token is at most three characters.
        let long = Self.messages(.whoList(query: "bob", [guest], ref: IRCCodec.ref("WHO", "bob", "%t,12345")))
        #expect(long.first?.params == ["me", "123"])
    }

    @Test("plain WHO: 352 with username, real name and the channel's prefix; 315 ends it; * as the channel for a mask")
    func who() {
        let op = Self.profile("alice", rooms: [Profile.Room(name: "#room", isOperator: true)])
        #expect(
            Self.lines(.whoList(query: "#room", [op], ref: IRCCodec.ref("WHO", "#room"))) == [
                ":test.parley 352 me #room u-alice parley test.parley alice H@ :0 alice Real",
                ":test.parley 315 me #room :End of /WHO list.",
            ]
        )
        #expect(
            Self.lines(.whoList(query: "al*", [op], ref: nil)) == [
                ":test.parley 352 me * u-alice parley test.parley alice H :0 alice Real", ":test.parley 315 me al* :End of /WHO list.",
            ]
        )
        // Nobody: just the end.
        #expect(Self.lines(.whoList(query: "zz*", [], ref: nil)) == [":test.parley 315 me zz* :End of /WHO list."])
    }

    // MARK: - Masks shown, LUSERS, modes

    @Test("bans are shown as IRC masks: nick!*@* and nick!*@address")
    func ircMasks() {
        let ban = ModerationNotice(room: "#r", action: .ban, target: "bob", by: .user("alice"))
        #expect(Self.lines(.moderation(ban)) == [":alice!alice@parley MODE #r +b bob!*@*"])
        let byAddress = ModerationNotice(room: "#r", action: .unban, target: "bob@10.0.0.*", by: .user("alice"))
        #expect(Self.lines(.moderation(byAddress)) == [":alice!alice@parley MODE #r -b bob!*@10.0.0.*"])
        let modes = ModerationNotice(room: "#r", action: .modes, target: "+i-n", by: .user("alice"))
        #expect(Self.lines(.moderation(modes)) == [":alice!alice@parley MODE #r +i-n"])
        let voice = ModerationNotice(room: "#r", action: .voice, target: "bob", by: .user("alice"))
        #expect(Self.lines(.moderation(voice)) == [":alice!alice@parley MODE #r +v bob"])
    }

    @Test("LUSERS: 265 and 266 carry the most users online at once, never fewer than now")
    func lusers() {
        let lines = Self.codec.lusers(me: "me", online: 3, rooms: 2, most: 7)
        #expect(lines.map(\.command) == ["251", "254", "255", "265", "266"])
        #expect(lines[3].params == ["me", "3", "7", "Current local users 3, max 7"])
        #expect(lines[4].params == ["me", "3", "7", "Current global users 3, max 7"])
        let grown = Self.codec.lusers(me: "me", online: 9, rooms: 2, most: 7)
        #expect(grown[3].params == ["me", "9", "9", "Current local users 9, max 9"])
    }

    @Test("a room's modes: 324 with the letters (and the key, k last) and 329 with when it came to life")
    func channelModeReply() {
        let created = Date(timeIntervalSince1970: 1_700_000_000)
        let plain = Self.messages(.modes(room: "#r", [.membersOnly, .topicLocked], key: nil, limit: nil, created: created))
        #expect(plain.map(\.command) == ["324", "329"])
        #expect(plain.first?.params == ["me", "#r", "+nt"])
        #expect(plain.last?.params == ["me", "#r", "1700000000"])
        let keyed = Self.messages(.modes(room: "#r", [.inviteOnly, .membersOnly], key: "sesame", limit: nil, created: created))
        #expect(keyed.first?.params == ["me", "#r", "+ink", "sesame"])
        // Those outside the room are told there is a key, not what it is.
        #expect(Self.messages(.modes(room: "#r", [], key: "*", limit: nil, created: created)).first?.params == ["me", "#r", "+k", "*"])
    }

    @Test("TAGMSG goes only to clients with message-tags, carrying the client-only tags; other messages drop them for the rest")
    func tagMessages() {
        let typing = ChatMessage(id: 9, time: Date(timeIntervalSince1970: 0), from: "bob", target: .room("#r"), kind: .tags, text: "", tags: ["+typing": "active"])
        #expect(Self.lines(.message(typing)).isEmpty)
        #expect(Self.lines(.message(typing), capabilities: .messageTags) == ["@+typing=active;msgid=9 :bob!bob@parley TAGMSG #r"])
        let reply = ChatMessage(id: 10, time: Date(timeIntervalSince1970: 0), from: "bob", target: .room("#r"), kind: .normal, text: "yes", tags: ["+draft/reply": "9"])
        #expect(Self.lines(.message(reply)) == [":bob!bob@parley PRIVMSG #r :yes"])
        #expect(Self.lines(.message(reply), capabilities: .messageTags) == ["@+draft/reply=9;msgid=10 :bob!bob@parley PRIVMSG #r :yes"])
    }
}
