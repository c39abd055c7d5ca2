import Foundation
import NIOCore
import ParleyCore

/// The IRCv3 capabilities Parley offers, as a set so frames can be cached per combination.
public struct IRCCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let serverTime = IRCCapabilities(rawValue: 1 << 0)
    public static let echoMessage = IRCCapabilities(rawValue: 1 << 1)
    public static let messageTags = IRCCapabilities(rawValue: 1 << 2)
    public static let capNotify = IRCCapabilities(rawValue: 1 << 3)
    public static let accountTag = IRCCapabilities(rawValue: 1 << 4)
    public static let extendedJoin = IRCCapabilities(rawValue: 1 << 5)
    public static let awayNotify = IRCCapabilities(rawValue: 1 << 6)
    public static let multiPrefix = IRCCapabilities(rawValue: 1 << 7)
    public static let userhostInNames = IRCCapabilities(rawValue: 1 << 8)
    public static let batch = IRCCapabilities(rawValue: 1 << 9)
    public static let chathistory = IRCCapabilities(rawValue: 1 << 10)
    public static let sasl = IRCCapabilities(rawValue: 1 << 11)
    public static let accountRegistration = IRCCapabilities(rawValue: 1 << 12)
    public static let labeledResponse = IRCCapabilities(rawValue: 1 << 13)
    public static let eventPlayback = IRCCapabilities(rawValue: 1 << 14)

    /// The capabilities that change how an event every recipient sees is rendered: frames are shared by
    /// clients that agree on these.
    public static let rendering: IRCCapabilities = [.serverTime, .messageTags, .accountTag, .extendedJoin]

    /// Names as `CAP LS` lists them, in that order, with the value `CAP LS 302` adds.
    public static let names: [(name: String, capability: IRCCapabilities, value: String?)] = [
        ("account-tag", .accountTag, nil), ("away-notify", .awayNotify, nil), ("batch", .batch, nil), ("cap-notify", .capNotify, nil),
        ("draft/account-registration", .accountRegistration, nil),
        ("draft/chathistory", .chathistory, nil), ("draft/event-playback", .eventPlayback, nil), ("echo-message", .echoMessage, nil), ("extended-join", .extendedJoin, nil),
        ("labeled-response", .labeledResponse, nil), ("message-tags", .messageTags, nil), ("multi-prefix", .multiPrefix, nil), ("sasl", .sasl, "PLAIN"),
        ("server-time", .serverTime, nil), ("userhost-in-names", .userhostInNames, nil),
    ]
}

/// Renders chat events as IRC lines. Events that every recipient sees alike (a channel message, a join) are
/// the same bytes for all clients with the same capabilities; replies meant for one client (numerics carry
/// its nick) are `personal` and encoded for it alone.
public struct IRCCodec: Sendable {
    public let serverName: String
    /// ISUPPORT (005) tokens: what this server really does.
    public static let isupport = [
        "AWAYLEN=\(ChatState<Int>.maximumReasonLength)", "CASEMAPPING=ascii", "CHANLIMIT=#:\(ChatState<Int>.maximumRoomsPerUser)", "CHANMODES=be,k,l,imnst", "EXCEPTS=e",
        "CHANNELLEN=\(RoomName.maximumLength + 1)", "CHANTYPES=#", "KICKLEN=300", "MAXLIST=b:\(ChatState<Int>.maximumRestrictions),e:\(ChatState<Int>.maximumRestrictions)",
        "CHATHISTORY=\(IRCCodec.maximumHistoryPage)", "MSGREFTYPES=msgid,timestamp", "NETWORK=Parley",
        "NICKLEN=\(Nick.maximumLength)", "PREFIX=(ov)@+", "TOPICLEN=\(ChatState<Int>.maximumTopicLength)",
        "MODES=\(IRCCodec.maximumModes)", "MAXTARGETS=\(IRCCodec.maximumTargets)",
        "WHOX", "ELIST=MNU", "TARGMAX=PRIVMSG:\(IRCCodec.maximumTargets),NOTICE:\(IRCCodec.maximumTargets),KICK:\(IRCCodec.maximumTargets),NAMES:\(IRCCodec.maximumTargets),WHOIS:1",
    ]
    /// Targets of one PRIVMSG or NOTICE, and mode changes of one MODE line: each is a stored and delivered
    /// action, so one line must not carry thousands.
    public static let maximumTargets = 4
    public static let maximumModes = 4
    /// The most messages one CHATHISTORY request returns.
    public static let maximumHistoryPage = 100
    /// The most messages a client without `batch` is shown on joining a channel: they arrive as notices,
    /// which such clients (irssi, WeeChat) cannot tell from live talk but by their time stamp.
    public static let plainReplayCount = 10

    public init(serverName: String) {
        self.serverName = serverName
    }

    /// The source of a user's lines. Parley does not show addresses to other users: every host is `parley`.
    public static func source(_ nick: String) -> String { "\(nick)!\(nick)@\(host)" }

    /// True when the event's lines name their one recipient (numerics, notices to them).
    public static func isPersonal(_ event: ChatEvent) -> Bool {
        switch event {
        case .joined, .left, .nickChanged, .moderation, .topicChanged: false
        case .message(let message): message.target == .everyone
        // To channels it is the same for everyone in them; to a nick (someone in no channel), personal.
        case .announcement(_, let rooms): rooms.isEmpty
        default: true
        }
    }

    public func encode(_ event: ChatEvent, for me: String, capabilities: IRCCapabilities) -> ByteBuffer? {
        let messages = render(event, for: me, capabilities: capabilities)
        guard !messages.isEmpty else { return nil }
        var buffer = ByteBuffer()
        for message in messages { buffer.writeString(message.serialized()) }
        return buffer
    }

    /// LUSERS: one server, no IRC operators counted apart; this server is the whole network, so local and
    /// global counts are the same.
    public func lusers(me: String, online: Int, rooms: Int, most: Int) -> [IRCMessage] {
        let most = max(most, online)
        return [
            numeric("251", me, "There are \(online) users and 0 invisible on 1 servers"),
            numeric("254", me, String(rooms), "channels formed"),
            numeric("255", me, "I have \(online) clients and 0 servers"),
            numeric("265", me, String(online), String(most), "Current local users \(online), max \(most)"),
            numeric("266", me, String(online), String(most), "Current global users \(online), max \(most)"),
        ]
    }

    /// A request's ref on the IRC door: the command, what its numerics name first (a channel, or a nick), and
    /// what they name second (the nick or mask a channel command was about), so that a refusal becomes the
    /// numeric that command calls for. Joined by line feeds, which no IRC parameter can hold.
    public static func ref(_ command: String, _ target: String? = nil, _ subject: String? = nil) -> String {
        [command, target, subject].compactMap { $0 }.joined(separator: "\n")
    }

    public struct Ref: Equatable, Sendable {
        public let command: String
        public let target: String?
        public let subject: String?
    }

    public static func parse(ref: String?) -> Ref? {
        guard let ref else { return nil }
        // By bytes: a CR before the LF would make one Character of them.
        let parts = ref.utf8.split(separator: UInt8(ascii: "\n"), maxSplits: 2, omittingEmptySubsequences: false).map { String(Substring($0)) }
        return Ref(command: parts[0], target: parts.count > 1 ? parts[1] : nil, subject: parts.count > 2 ? parts[2] : nil)
    }

    public func numeric(_ code: String, _ me: String, _ params: String...) -> IRCMessage {
        IRCMessage(source: serverName, command: code, params: [me] + params)
    }

    /// The message of the day as IRC sends it (after the welcome burst, and for `MOTD`): the operator's lines,
    /// or, when none is set, how Parley's rooms meet IRC's channels.
    public func motd(_ lines: [String], to nick: String) -> [IRCMessage] {
        let body = lines.isEmpty
            ? ["Rooms are IRC channels; people on nc, telnet and parley connect start in #general: /join #general to meet them."]
            : lines
        return [numeric("375", nick, "- \(serverName) Message of the day -")] + body.map { numeric("372", nick, "- " + $0) }
            + [numeric("376", nick, "End of /MOTD command.")]
    }

    func render(_ event: ChatEvent, for me: String, capabilities: IRCCapabilities) -> [IRCMessage] {
        switch event {
        case .welcome(let nick, let server, let online, let rooms, let most):
            return [
                numeric("001", nick, "Welcome to Parley on \(server), \(nick)"),
                numeric("002", nick, "Your host is \(serverName), running parley"),
                numeric("003", nick, "This server speaks IRC, plain text and JSON lines; all meet in the same rooms"),
                // User modes, channel modes, and those of them that take a parameter.
                numeric("004", nick, serverName, "parley", "io", "beiklmnostv", "beklov"),
                // At most 13 tokens a line (modern.ircdocs.horse), so two lines.
                IRCMessage(source: serverName, command: "005", params: [nick] + Self.isupport.prefix(8) + ["are supported by this server"]),
                IRCMessage(source: serverName, command: "005", params: [nick] + Self.isupport.dropFirst(8) + ["are supported by this server"]),
            ] + lusers(me: nick, online: online, rooms: rooms, most: most)
        case .motd(let lines):
            return motd(lines, to: me)
        case .message(let message):
            return chat(message, to: me, capabilities: capabilities)
        case .announcement(let message, let rooms):
            // In each channel's window, where the user looks, rather than the status window a notice to the
            // nick lands in; to the nick only when the user is in no channel.
            guard !rooms.isEmpty else { return chat(message, to: me, capabilities: capabilities) }
            // One message: its msgid goes with the first copy only, so no client takes the others for repeats.
            return rooms.enumerated().flatMap { index, room in
                chat(message, to: me, capabilities: index == 0 ? capabilities : capabilities.subtracting(.messageTags), target: room)
            }
        case .ack(_, let message):
            // Only with echo-message does a client see its own messages come back.
            return capabilities.contains(.echoMessage) ? chat(message, to: me, capabilities: capabilities) : []
        case .joined(let room, let nick, let account, let realName):
            // extended-join adds the account (`*`: none) and the real name (USER's; the nick for other doors).
            let extended = capabilities.contains(.extendedJoin) ? [account ?? "*", realName ?? nick] : []
            return [IRCMessage(source: Self.source(nick), command: "JOIN", params: [room] + extended)]
        case .left(let room, let nick, let reason):
            switch reason {
            case .parted(let text):
                return [IRCMessage(source: Self.source(nick), command: "PART", params: [room] + (text.map { [$0] } ?? []))]
            case .kicked(let by, let text):
                // The console and the server's own rules act as the server: its name is the source.
                let source = by.nick.map(Self.source) ?? serverName
                return [IRCMessage(source: source, command: "KICK", params: [room, nick, text ?? by.description])]
            case .quit(let text):
                return [IRCMessage(source: Self.source(nick), command: "QUIT", params: [text.map { "Quit: \($0)" } ?? "Quit"])]
            default:
                return [IRCMessage(source: Self.source(nick), command: "QUIT", params: [reason.text])]
            }
        case .nickChanged(let old, let new):
            return [IRCMessage(source: Self.source(old), command: "NICK", params: [new])]
        case .members(let room, let nicks, let operators, let voiced, let secret, let ref):
            guard let room else { return [] }
            let (operators, voiced) = (Set(operators), Set(voiced))
            let names = nicks.map { nick in
                // The highest prefix, or all of them with multi-prefix.
                let prefixes = (operators.contains(nick) ? "@" : "") + (voiced.contains(nick) ? "+" : "")
                let shown = capabilities.contains(.multiPrefix) ? prefixes : String(prefixes.prefix(1))
                return shown + (capabilities.contains(.userhostInNames) ? Self.source(nick) : nick)
            }
            // RFC 2812: `@` marks a secret channel, `=` a public one.
            return Self.chunks(names, budget: 400).map { numeric("353", me, secret ? "@" : "=", room, $0.joined(separator: " ")) }
                + endOfNames(room, ref: Self.parse(ref: ref), me: me)
        case .rooms(let rooms):
            // An IRC channel exists while someone is in it: rooms kept for their history or rules are not listed.
            return [numeric("321", me, "Channel", "Users  Name")]
                + rooms.filter { $0.members > 0 }.map { numeric("322", me, $0.name, String($0.members), $0.topic) }
                + [numeric("323", me, "End of /LIST")]
        case .topic(let room, let text, let setBy, let setAt):
            guard !text.isEmpty else { return [numeric("331", me, room, "No topic is set")] }
            // 333 carries who and when (seconds since 1970); a topic from before Parley kept the time has none.
            guard let setBy, let setAt else { return [numeric("332", me, room, text)] }
            // The console ("the server operator") is named by the server's name: a setter is one word here.
            let setter = setBy.contains(" ") ? serverName : setBy
            return [numeric("332", me, room, text), numeric("333", me, room, setter, String(Int(setAt.timeIntervalSince1970)))]
        case .topicChanged(let room, let text, let by, let at, let id):
            // Kept in history with an id (draft/event-playback replays it), so tagged like a message.
            var tags: [String: String] = [:]
            if capabilities.contains(.serverTime) { tags["time"] = Timestamps.iso8601(at) }
            if capabilities.contains(.messageTags) { tags["msgid"] = String(id) }
            return [IRCMessage(tags: tags, source: by.nick.map(Self.source) ?? serverName, command: "TOPIC", params: [room, text])]
        case .error(let error, let ref):
            return numerics(for: error, ref: Self.parse(ref: ref), me: me)
        case .notice(let text):
            return [IRCMessage(source: serverName, command: "NOTICE", params: [me, text])]
        case .help(let commands):
            return commands.map { IRCMessage(source: serverName, command: "NOTICE", params: [me, "\($0.usage)  \($0.summary)"]) }
        case .currentRoom:
            return []  // IRC has a window per channel, no current one
        case .shutdown(let reason):
            return [IRCMessage(command: "ERROR", params: ["Closing link: " + (reason ?? "server shutting down")])]
        case .pong(let ref):
            return [IRCMessage(source: serverName, command: "PONG", params: [serverName, Self.parse(ref: ref)?.target ?? serverName])]
        case .historyTargets(let targets, _):
            let batch = "targets"
            return [IRCMessage(source: serverName, command: "BATCH", params: ["+" + batch, "draft/chathistory-targets"])]
                + targets.map { target in
                    IRCMessage(
                        tags: ["batch": batch], source: serverName, command: "CHATHISTORY", params: ["TARGETS", target.name, Timestamps.iso8601(target.latest)]
                    )
                }
                + [IRCMessage(source: serverName, command: "BATCH", params: ["-" + batch])]
        case .history(let room, var messages, let ref):
            // A CHATHISTORY client asks for what it wants (`ref` marks its requests) rather than take a replay.
            if capabilities.contains(.chathistory) && ref == nil { return [] }
            // Topic changes and kept TAGMSGs replay as such to clients that asked for events (draft/event-playback);
            // to other batch clients, which would take them for live ones, not at all; tags alone are nothing to
            // show as a notice.
            if !capabilities.contains(.eventPlayback) { messages.removeAll { $0.kind == .tags || ($0.kind == .topic && capabilities.contains(.batch)) } }
            // A batch of timestamped messages for clients that can show them as history; the rest get notices
            // marked with their time, so no client takes history for live talk.
            if capabilities.contains(.batch) && (capabilities.contains(.serverTime) || ref != nil) {
                guard !messages.isEmpty || ref != nil else { return [] }
                let batch = "h\(String(messages.first?.id ?? 0, radix: 36))"
                return [IRCMessage(source: serverName, command: "BATCH", params: ["+" + batch, "chathistory", room])]
                    + messages.flatMap { chat($0, to: me, capabilities: capabilities.union([.serverTime, .messageTags]), batch: batch) }
                    + [IRCMessage(source: serverName, command: "BATCH", params: ["-" + batch])]
            }
            messages.removeAll { $0.kind == .tags }  // tags alone are nothing to show as a notice
            guard !messages.isEmpty else { return ref == nil ? [] : [notice(room, "[history] There is nothing before this in \(room).")] }
            // On join, only the latest few, and how to see more; asked for (HISTORY), all of them.
            let shown = ref == nil ? messages.suffix(Self.plainReplayCount) : messages[...]
            let more = shown.count < messages.count ? [notice(room, "[history] Showing the last \(shown.count) messages; /quote HISTORY \(room) 50 shows more.")] : []
            return more + shown.flatMap { message in
                let stamp = Timestamps.localDateAndClock(message.time)
                let text: String =
                    switch (message.kind, message.from) {
                    case (.topic, let from): "* \(from ?? Moderator.consoleName) set the topic: \(message.text)"
                    case (.action, let from?): "* \(from) \(message.text)"
                    case (_, let from?): "<\(from)> \(message.text)"
                    case (_, nil): message.text
                    }
                return notices(room, "[\(stamp)] \(text)")
            }
        case .moderation(let notice):
            let by = notice.by?.nick.map(Self.source) ?? serverName
            let (mode, argument): (String, String?) =
                switch notice.action {
                case .ban: ("+b", Self.ircMask(notice.target))
                case .unban: ("-b", Self.ircMask(notice.target))
                case .op: ("+o", notice.target)
                case .deop: ("-o", notice.target)
                case .topicLock: ("+t", nil)
                case .topicUnlock: ("-t", nil)
                case .key: ("+k", notice.target)
                case .unkey: ("-k", "*")  // k is a type B mode: its parameter is never left out
                case .modes: (notice.target, nil)
                case .limit: ("+l", notice.target)
                case .unlimit: ("-l", nil)
                case .voice: ("+v", notice.target)
                case .devoice: ("-v", notice.target)
                case .exempt: ("+e", Self.ircMask(notice.target))
                case .unexempt: ("-e", Self.ircMask(notice.target))
                case .mute, .unmute: ("", nil)
                }
            let sentence = IRCMessage(source: serverName, command: "NOTICE", params: [notice.room, notice.sentence(time: Timestamps.localDateAndClock)])
            guard !mode.isEmpty else { return [sentence] }
            return [IRCMessage(source: by, command: "MODE", params: [notice.room, mode] + (argument.map { [$0] } ?? []))]
                // The MODE says it all, but for what IRC has no mode parameter for: a ban's reason or end, or that
                // the server (not a user) acted.
                + ((notice.action == .ban && (notice.reason != nil || notice.until != nil)) || notice.by == nil ? [sentence] : [])
        case .restrictions(let room, let list, let ref) where Self.parse(ref: ref)?.subject == "e":
            return list.filter { $0.kind == .exception }.map {
                numeric("348", me, room, Self.ircMask($0.mask.text), $0.setBy, String(Int($0.since.timeIntervalSince1970)))
            } + [numeric("349", me, room, "End of channel exception list")]
        case .restrictions(let room, let list, _):
            return list.filter { $0.kind == .ban }.map { numeric("367", me, room, Self.ircMask($0.mask.text), $0.setBy, String(Int($0.since.timeIntervalSince1970))) }
                + [numeric("368", me, room, "End of channel ban list")]
                + list.filter { $0.kind == .mute }.map {
                    IRCMessage(source: serverName, command: "NOTICE", params: [me, "\(room): " + $0.summary(time: Timestamps.localDateAndClock)])
                }
        case .awayChanged(let nick, let message):
            if asciiLowercased(nick) == asciiLowercased(me) {
                return [message == nil ? numeric("305", me, "You are no longer marked as being away") : numeric("306", me, "You have been marked as being away")]
            }
            guard capabilities.contains(.awayNotify) else { return [] }
            return [IRCMessage(source: Self.source(nick), command: "AWAY", params: message.map { [$0] } ?? [])]
        case .isAway(let nick, let message):
            return [numeric("301", me, nick, message)]
        case .whois(let query, nil):
            return [numeric("401", me, query, "No such nick"), numeric("318", me, query, "End of /WHOIS list.")]
        case .whois(let query, let profile?):
            var lines = [numeric("311", me, profile.nick, profile.username, Self.host, "*", profile.realName)]
            if !profile.rooms.isEmpty {
                lines += Self.chunks(profile.rooms.map { ($0.isOperator ? "@" : $0.isVoiced ? "+" : "") + $0.name }, budget: 400).map {
                    numeric("319", me, profile.nick, $0.joined(separator: " "))
                }
            }
            lines.append(numeric("312", me, profile.nick, serverName, "Parley"))
            if profile.isServerOperator { lines.append(numeric("313", me, profile.nick, "is an IRC operator")) }
            if let away = profile.away { lines.append(numeric("301", me, profile.nick, away)) }
            if let account = profile.account { lines.append(numeric("330", me, profile.nick, account, "is logged in as")) }
            return lines + [numeric("318", me, query, "End of /WHOIS list.")]
        case .whowas(let query, let profiles):
            guard !profiles.isEmpty else { return [numeric("406", me, query, "There was no such nickname"), numeric("369", me, query, "End of WHOWAS")] }
            return profiles.flatMap { profile in
                [
                    numeric("314", me, profile.nick, profile.username, Self.host, "*", profile.realName),
                    numeric("312", me, profile.nick, serverName, "Parley"),
                ]
            } + [numeric("369", me, query, "End of WHOWAS")]
        case .whoList(let query, let profiles, let ref):
            let channelKey = query.hasPrefix("#") ? asciiLowercased(query) : nil
            // WHOX (`WHO mask %fields[,token]`): the fields asked for, in their fixed order, as 354.
            let whox = Self.parse(ref: ref)?.subject.flatMap(WhoxFields.init)
            return profiles.map { profile in
                let room = channelKey.flatMap { key in profile.rooms.first { asciiLowercased($0.name) == key } }
                let prefixes = (room?.isOperator == true ? "@" : "") + (room?.isVoiced == true ? "+" : "")
                let flags = (profile.away == nil ? "H" : "G") + (profile.isServerOperator ? "*" : "")
                    + (capabilities.contains(.multiPrefix) ? prefixes : String(prefixes.prefix(1)))
                let channel = room?.name ?? "*"
                guard let whox else {
                    return numeric("352", me, channel, profile.username, Self.host, serverName, profile.nick, flags, "0 \(profile.realName)")
                }
                let values: [Character: String] = [
                    "t": whox.token, "c": channel, "u": profile.username, "i": "255.255.255.255", "h": Self.host, "s": serverName,
                    "n": profile.nick, "f": flags, "d": "0", "l": "0", "a": profile.account ?? "0", "o": "n/a", "r": profile.realName,
                ]
                return IRCMessage(source: serverName, command: "354", params: [me] + whox.fields.map { values[$0] ?? "*" })
            } + [numeric("315", me, query, "End of /WHO list.")]
        case .invited(let room, let nick, let by, let account):
            let tags = capabilities.contains(.accountTag) ? account.map { ["account": $0] } ?? [:] : [:]
            return [IRCMessage(tags: tags, source: Self.source(by), command: "INVITE", params: [nick, room])]
        case .inviting(let room, let nick):
            return [numeric("341", me, nick, room)]
        case .invisible(let on):
            return [IRCMessage(source: Self.source(me), command: "MODE", params: [me, on ? "+i" : "-i"])]
        case .modes(let room, let modes, let key, let limit, let created):
            let letters = modes.letters + (key == nil ? "" : "k") + (limit == nil ? "" : "l")
            let parameters = (key.map { [$0] } ?? []) + (limit.map { [String($0)] } ?? [])
            return [
                IRCMessage(source: serverName, command: "324", params: [me, room, "+" + letters] + parameters),
                numeric("329", me, room, String(Int(created.timeIntervalSince1970))),
            ]
        }
    }

    /// Parley's `nick@address` mask as IRC writes masks: `nick!*@address` (`*` for a missing part).
    static func ircMask(_ mask: String) -> String {
        let parts = mask.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        return "\(parts[0])!*@\(parts.count > 1 ? parts[1] : "*")"
    }

    /// WHOX's `%fields[,token]`: the field letters asked for, in the order replies give them (`tcuihsnfdlaor`).
    struct WhoxFields {
        static let order = Array("tcuihsnfdlaor")
        let fields: [Character]
        let token: String

        init?(_ text: String) {
            guard text.hasPrefix("%") else { return nil }
            let parts = text.dropFirst().split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
            let asked = Set(parts[0])
            fields = Self.order.filter(asked.contains)
            // The token is up to three digits, echoed so a client can match replies to its query.
            token = parts.count > 1 ? String(parts[1].prefix(3)) : "0"
        }
    }

    /// Every user's host, as others see it: Parley does not show addresses.
    public static let host = "parley"


    /// PRIVMSG or NOTICE lines of one message, split to fit IRC's 512 bytes, with the tags the client asked
    /// for (and `batch` when it is part of one).
    private func chat(
        _ message: ChatMessage, to me: String, capabilities: IRCCapabilities, batch: String? = nil, target: String? = nil
    ) -> [IRCMessage] {
        // TAGMSG is only for clients that take tags.
        if message.kind == .tags && !capabilities.contains(.messageTags) { return [] }
        let source = message.from.map(Self.source) ?? serverName
        let target: String =
            switch (target, message.target) {
            case (let target?, _): target
            case (nil, .room(let room)): room
            case (nil, .user(let nick)): nick
            case (nil, .everyone): me
            }
        var tags: [String: String] = [:]
        if capabilities.contains(.messageTags) { tags = message.tags }
        if capabilities.contains(.serverTime) { tags["time"] = Timestamps.iso8601(message.time) }
        if capabilities.contains(.messageTags) { tags["msgid"] = String(message.id) }
        if capabilities.contains(.accountTag), let account = message.account { tags["account"] = account }
        if let batch { tags["batch"] = batch }
        if message.kind == .tags { return [IRCMessage(tags: tags, source: source, command: "TAGMSG", params: [target])] }
        if message.kind == .topic { return [IRCMessage(tags: tags, source: source, command: "TOPIC", params: [target, message.text])] }
        let command = message.kind == .notice || message.from == nil ? "NOTICE" : "PRIVMSG"
        // ":source COMMAND target :" and CR LF around the text (tags do not count: they have their own limit).
        let overhead = source.utf8.count + target.utf8.count + command.utf8.count + 7 + (message.kind == .action ? 9 : 0)
        return Self.split(message.text, maximumBytes: IRCMessage.maximumBodyBytes - overhead).enumerated().map { index, part in
            let text = message.kind == .action ? "\u{1}ACTION \(part)\u{1}" : part
            // A msgid names one line: the rest of a split message go without, so no client drops them as repeats.
            var tags = tags
            if index > 0 { tags["msgid"] = nil }
            return IRCMessage(tags: tags, source: source, command: command, params: [target, text])
        }
    }

    /// A server NOTICE to `target`.
    func notice(_ target: String, _ text: String) -> IRCMessage {
        IRCMessage(source: serverName, command: "NOTICE", params: [target, text])
    }

    /// Server NOTICEs to `target` carrying `text`, split so that each line fits IRC's 512 bytes.
    func notices(_ target: String, _ text: String) -> [IRCMessage] {
        let overhead = serverName.utf8.count + target.utf8.count + 16  // ":server NOTICE target :" and CR LF
        return Self.split(text, maximumBytes: IRCMessage.maximumBodyBytes - overhead).map { notice(target, $0) }
    }

    /// Splits text into pieces of at most `maximumBytes` UTF-8 bytes, never inside a character — unless one
    /// character alone is larger (a letter with a thousand combining marks), which is then cut between its
    /// Unicode scalars.
    static func split(_ text: String, maximumBytes: Int) -> [String] {
        guard text.utf8.count > maximumBytes else { return [text] }
        var parts: [String] = []
        var current = ""
        var bytes = 0
        func add(_ piece: some StringProtocol, size: Int) {
            if bytes + size > maximumBytes, !current.isEmpty {
                parts.append(current)
                (current, bytes) = ("", 0)
            }
            current += piece
            bytes += size
        }
        for character in text {
            let size = character.utf8.count
            if size <= maximumBytes {
                add(String(character), size: size)
            } else {
                for scalar in character.unicodeScalars { add(String(scalar), size: scalar.utf8.count) }
            }
        }
        if !current.isEmpty { parts.append(current) }
        return parts
    }

    /// Nick lists split so that each 353 line stays within the limit.
    static func chunks(_ nicks: [String], budget: Int) -> [[String]] {
        var chunks: [[String]] = [[]]
        var size = 0
        for nick in nicks {
            if size + nick.utf8.count + 1 > budget, !chunks[chunks.count - 1].isEmpty {
                chunks.append([])
                size = 0
            }
            chunks[chunks.count - 1].append(nick)
            size += nick.utf8.count + 1
        }
        return chunks
    }

    /// The replies to a refusal of the command `ref` names: what the command calls for (NAMES of a channel that
    /// is not there ends the list; a NOTICE is never answered), else the numeric for the error.
    public func numerics(for error: ChatError, ref: Ref?, me: String) -> [IRCMessage] {
        switch (ref?.command, error.code) {
        case ("NOTICE", _):
            return []  // RFC 2812: automatic replies must never be sent in response to a NOTICE
        case ("CHATHISTORY", .noSuchRoom), ("CHATHISTORY", .notInRoom), ("CHATHISTORY", .invalidRoom), ("CHATHISTORY", .invalidNick):
            return [IRCMessage(source: serverName, command: "FAIL", params: ["CHATHISTORY", "INVALID_TARGET", ref?.subject ?? "*", ref?.target ?? "*", error.message])]
        case ("CHATHISTORY", .historyUnavailable):
            return [IRCMessage(source: serverName, command: "FAIL", params: ["CHATHISTORY", "MESSAGE_ERROR", ref?.subject ?? "*", ref?.target ?? "*", error.message])]
        case ("NAMES", .noSuchRoom), ("NAMES", .invalidRoom):
            return endOfNames(ref?.target ?? "*", ref: ref, me: me)
        case ("PRIVMSG", .notInRoom), ("TAGMSG", .notInRoom):
            return [numeric("404", me, ref?.target ?? "*", "Cannot send to channel: \(error.message)")]
        case (_, .userNotInRoom):
            return [numeric("441", me, ref?.subject ?? "*", ref?.target ?? "*", error.message)]
        case (_, .alreadyInRoom):
            return [numeric("443", me, ref?.subject ?? "*", ref?.target ?? "*", error.message)]
        case (_, .noSuchNick):
            return [numeric("401", me, ref?.subject ?? ref?.target ?? "*", error.message)]
        default:
            return [numeric(for: error, target: ref?.target, me: me)]
        }
    }

    /// 366 after a room's names; a NAMES of several rooms (its ref's subject lists them) ends with one 366 for
    /// the whole list, after the last room.
    func endOfNames(_ room: String, ref: Ref?, me: String) -> [IRCMessage] {
        guard ref?.command == "NAMES", let list = ref?.subject else { return [numeric("366", me, room, "End of /NAMES list.")] }
        guard let last = list.split(separator: ",").last, asciiLowercased(String(last)) == asciiLowercased(room) else { return [] }
        return [numeric("366", me, list, "End of /NAMES list.")]
    }

    /// The numeric for a refusal; `target` is what the command named, since most numerics repeat it.
    public func numeric(for error: ChatError, target: String?, me: String) -> IRCMessage {
        let target = target ?? "*"
        switch error.code {
        case .noSuchNick: return numeric("401", me, target, error.message)
        case .noSuchRoom: return numeric("403", me, target, error.message)
        case .muted: return numeric("404", me, target, error.message)
        case .tooManyRooms, .tooManyRoomsCreated: return numeric("405", me, target, error.message)
        case .invalidNick, .nickReserved: return numeric("432", me, target, error.message)
        case .nickTaken: return numeric("433", me, target, error.message)
        case .nickRegistered:
            // The core's text names /login; on IRC one logs in with SASL or NickServ.
            return numeric("433", me, target, "\(target) is a registered nickname: log in with SASL or /msg NickServ IDENTIFY \(target) PASSWORD, or choose another")
        case .notInRoom: return numeric("442", me, target, error.message)
        case .usage: return numeric("461", me, target, error.message)
        case .banned: return numeric("474", me, target, error.message)
        case .wrongKey: return numeric("475", me, target, error.message)
        case .inviteOnly: return numeric("473", me, target, error.message)
        case .roomFull: return numeric("471", me, target, error.message)
        case .invalidRoom: return numeric("476", me, target, error.message)
        case .notOperator: return numeric("482", me, target, error.message)
        case .unknownCommand: return numeric("421", me, target, error.message)
        case .loginFailed: return numeric("464", me, error.message)
        case .lineTooLong: return numeric("417", me, error.message)
        default: return IRCMessage(source: serverName, command: "NOTICE", params: [me, error.message])
        }
    }
}
