import Foundation
import ParleyCore
import ParleyProtocols

/// One IRC command: what it needs before its handler runs, checked once in `IRCSession.receive` (as in ergo's
/// `irc/commands.go`), and the handler, which turns the message into chat requests or replies.
struct IRCCommand: Sendable {
    typealias Handler = @Sendable (inout IRCSession, IRCMessage) async -> Flow

    /// Fewer parameters get ERR_NEEDMOREPARAMS (461) without the handler running.
    let minimumParameters: Int
    /// Usable before 001 (CAP, PASS, NICK, USER, AUTHENTICATE, PING, QUIT); others get ERR_NOTREGISTERED (451).
    let beforeRegistration: Bool
    /// Only server operators may use it; others get ERR_NOPRIVILEGES (481).
    let operatorOnly: Bool
    let handler: Handler

    init(minimumParameters: Int = 0, beforeRegistration: Bool = false, operatorOnly: Bool = false, _ handler: @escaping Handler) {
        self.minimumParameters = minimumParameters
        self.beforeRegistration = beforeRegistration
        self.operatorOnly = operatorOnly
        self.handler = handler
    }
}

extension IRCSession {
    /// Every command the IRC door knows. A command missing here gets ERR_UNKNOWNCOMMAND (421).
    static let commands: [String: IRCCommand] = [
        "CAP": IRCCommand(minimumParameters: 1, beforeRegistration: true) { session, message in session.capability(message) },
        "AUTHENTICATE": IRCCommand(minimumParameters: 1, beforeRegistration: true) { session, message in await session.authenticate(message) },
        "PASS": IRCCommand(minimumParameters: 1, beforeRegistration: true) { session, message in session.pass(message) },
        "NICK": IRCCommand(beforeRegistration: true) { session, message in session.nick(message) },
        "USER": IRCCommand(minimumParameters: 4, beforeRegistration: true) { session, message in session.user(message) },
        "PING": IRCCommand(beforeRegistration: true) { session, message in session.ping(message) },
        "PONG": IRCCommand(beforeRegistration: true) { _, _ in .proceed },
        "QUIT": IRCCommand(beforeRegistration: true) { session, message in session.quit(message) },

        "JOIN": IRCCommand(minimumParameters: 1) { session, message in session.join(message) },
        "PART": IRCCommand(minimumParameters: 1) { session, message in
            let rooms = message.params[0].split(separator: ",").map(String.init)
            session.charge(rooms.count)
            for room in rooms { session.request(.part(room: room, reason: message.params.dropFirst().first), "PART", room) }
            return .proceed
        },
        "PRIVMSG": IRCCommand { session, message in await session.chat(message, kind: .normal) },
        "NOTICE": IRCCommand { session, message in await session.chat(message, kind: .notice) },
        "TAGMSG": IRCCommand { session, message in await session.chat(message, kind: .tags) },
        "TOPIC": IRCCommand(minimumParameters: 1) { session, message in
            let room = message.params[0]
            session.request(.topic(room: room, text: message.params.dropFirst().first), "TOPIC", room)
            return .proceed
        },
        "NAMES": IRCCommand { session, message in
            // TARGMAX NAMES:4. Several rooms end with one 366 naming them all (the ref carries the list).
            var seen = Set<String>()
            let rooms = (message.params.first ?? "").split(separator: ",").map(String.init).filter { seen.insert(asciiLowercased($0)).inserted }
                .prefix(IRCCodec.maximumTargets)
            guard !rooms.isEmpty else {
                session.send(session.codec.numeric("366", session.me, "*", "End of /NAMES list."))
                return .proceed
            }
            session.charge(rooms.count)
            let list = rooms.count > 1 ? rooms.joined(separator: ",") : nil
            for room in rooms { session.request(.who(room: room), "NAMES", room, list) }
            return .proceed
        },
        "LIST": IRCCommand { session, message in
            // `LIST #a,#b`, masks `#ch*`, `!mask`, `>N`, `<N` (ELIST=MNU); conditions on times (C, T) are not offered.
            let terms = (message.params.first ?? "").split(separator: ",").prefix(8).map(String.init)
            session.request(.rooms(matching: terms), "LIST")
            return .proceed
        },
        "WHO": IRCCommand { session, message in
            let mask = message.params.first ?? "*"
            // WHOX: `WHO mask %fields[,token]` (the `o` of RFC 1459's `WHO mask o` asks nothing Parley has).
            let fields = message.params.dropFirst().first.flatMap { $0.hasPrefix("%") ? $0 : nil }
            session.request(.lookup(mask), "WHO", mask, fields)
            return .proceed
        },
        "WHOIS": IRCCommand(minimumParameters: 1) { session, message in
            // `WHOIS server nick` asks a given server: this is the only one, so the nick is what counts.
            let nick = message.params.last!
            guard !nick.isEmpty else {
                session.send(session.codec.numeric("431", session.me, "No nickname given"))
                return .proceed
            }
            session.request(.whois(nick), "WHOIS", nick)
            return .proceed
        },
        "WHOWAS": IRCCommand(minimumParameters: 1) { session, message in
            let nick = message.params[0]
            guard !nick.isEmpty else {
                session.send(session.codec.numeric("431", session.me, "No nickname given"))
                return .proceed
            }
            // A count of zero or less means all of them (RFC 2812).
            let count = message.params.dropFirst().first.flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
            session.request(.whowas(nick, count: count), "WHOWAS", nick)
            return .proceed
        },
        "USERHOST": IRCCommand(minimumParameters: 1) { session, message in session.userhost(message) },
        "MODE": IRCCommand(minimumParameters: 1) { session, message in session.mode(message) },
        "KICK": IRCCommand(minimumParameters: 2) { session, message in
            // `KICK #a a,b` kicks both from #a; `KICK #a,#b a,b` pairs them (RFC 2812). TARGMAX KICK: a few nicks a
            // line, each charged as a line.
            let rooms = message.params[0].split(separator: ",").map(String.init)
            let all = message.params[1].split(separator: ",").map(String.init)
            guard !rooms.isEmpty, rooms.count == 1 || rooms.count == all.count else { return session.needMoreParams(message) }
            let nicks = all.prefix(IRCCodec.maximumTargets)
            if all.count > nicks.count {
                session.send(session.codec.numeric("407", session.me, all[nicks.count], "Too many targets: at most \(IRCCodec.maximumTargets) a KICK; the rest were not kicked"))
            }
            let reason = message.params.count > 2 ? message.params[2] : nil
            session.charge(nicks.count)
            for (index, nick) in nicks.enumerated() {
                let room = rooms.count == 1 ? rooms[0] : rooms[index]
                session.request(.moderate(room: room, .kick(nick: nick, reason: reason)), "KICK", room, nick)
            }
            return .proceed
        },
        "INVITE": IRCCommand(minimumParameters: 2) { session, message in
            let (nick, room) = (message.params[0], message.params[1])
            session.request(.invite(nick: nick, room: room), "INVITE", room, nick)
            return .proceed
        },
        "AWAY": IRCCommand { session, message in
            let text = message.params.first ?? ""
            session.request(.away(text.isEmpty ? nil : text), "AWAY")
            return .proceed
        },
        "LUSERS": IRCCommand { session, _ in
            let hub = session.context.hub
            for line in session.codec.lusers(me: session.me, online: hub.sessionCount, rooms: max(1, hub.roomCount), most: hub.mostOnline) { session.send(line) }
            return .proceed
        },
        "INFO": IRCCommand { session, _ in
            for line in ["Parley: one chat for nc, telnet, parley connect and IRC clients.", "Rooms, accounts and history are shared by every door."] {
                session.send(session.codec.numeric("371", session.me, line))
            }
            session.send(session.codec.numeric("374", session.me, "End of INFO list"))
            return .proceed
        },
        "TIME": IRCCommand { session, _ in
            session.send(session.codec.numeric("391", session.me, session.codec.serverName, ISO8601DateFormatter().string(from: Date())))
            return .proceed
        },
        "MOTD": IRCCommand { session, _ in
            for line in session.codec.motd(session.context.hub.motd, to: session.me) { session.send(line) }
            return .proceed
        },
        "CHATHISTORY": IRCCommand { session, message in session.chathistory(message) },
        // ergo's HISTORY, for clients without draft/chathistory: `/quote HISTORY #room [N]` replays the latest N.
        "HISTORY": IRCCommand(minimumParameters: 1) { session, message in
            let room = message.params[0]
            let count = message.params.dropFirst().first.flatMap { Int($0) }.map { min(max($0, 1), IRCCodec.maximumHistoryPage) } ?? 50
            session.charge(HistoryQuery.latest(count).cost)
            session.request(.history(room: room, .latest(count)), "HISTORY", room)
            return .proceed
        },
        // Accounts: IRCv3 draft/account-registration, and NickServ as every network has it.
        "REGISTER": IRCCommand(minimumParameters: 3, beforeRegistration: true) { session, message in await session.register(message) },
        "NICKSERV": IRCCommand { session, message in
            await session.nickServ(message.params.joined(separator: " "))
            return .proceed
        },
        "NS": IRCCommand { session, message in
            await session.nickServ(message.params.joined(separator: " "))
            return .proceed
        },
        "OPER": IRCCommand(minimumParameters: 2) { session, message in await session.oper(message) },
        "KILL": IRCCommand(minimumParameters: 1, operatorOnly: true) { session, message in session.kill(message) },
    ]
}
