import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols

/// The IRC front door's adapter: registration (CAP, PASS, NICK, USER), then IRC commands become the same
/// chat requests text and JSON users make, so IRC users share rooms, messages and rules with everyone.
/// Replies come back as chat events rendered by `IRCCodec`; a request's `ref` carries the name the command
/// was about, because IRC's error numerics repeat it.
struct IRCSession: LineSession {
    typealias Handler = @Sendable (inout IRCSession, IRCMessage) async -> Flow

    let context: SessionContext
    private let codec: IRCCodec
    private let peer: IRCPeer
    private var nick: String?
    private var user: String?
    /// Whether PASS gave the server password (or the server has none); checked at registration and SASL.
    private var passwordAccepted: Bool
    /// Between `CAP LS`/`REQ` and `CAP END` registration waits, as the capability negotiation spec says.
    private var negotiating = false
    private var sasl = SASLExchange.idle
    /// The account SASL proved before registration; the session is registered logged in to it.
    private var account: Account?
    private var session: SessionID?
    /// User mode +i, which clients set on connecting. Parley never lists users other than by channel or by
    /// exact nick, so everyone is as good as invisible; the flag is kept so that MODE answers truthfully.
    private var invisible = false

    init(_ context: SessionContext) {
        self.context = context
        self.codec = IRCCodec(serverName: context.hub.serverName)
        self.peer = IRCPeer()
        self.passwordAccepted = context.serverPassword == nil
        context.connection.settle(on: IRCRenderer(codec: codec, peer: peer))
    }

    mutating func receive(_ line: ByteBuffer) async -> Flow {
        // The framer bounds the whole line; IRC bounds its two parts: tags (8191 bytes) and the message (510
        // without its CR LF, or less when --max-line-bytes is lower).
        let bytes = line.readableBytesView
        let tagged = bytes.first == UInt8(ascii: "@")
        let tagBytes = tagged ? (bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex) - bytes.startIndex : 0
        let bodyBytes = bytes.count - (tagged ? min(bytes.count, tagBytes + 1) : 0)
        guard tagBytes <= IRCMessage.maximumTagBytes, bodyBytes <= min(IRCMessage.maximumBodyBytes - 2, context.maximumLineBytes) else {
            send(codec.numeric("417", me, "Input line was too long"))
            return .proceed
        }
        guard let message = IRCMessage(parsing: Substring(String(decoding: bytes, as: UTF8.self))) else { return .proceed }
        if let handler = Self.anytime[message.command] { return await handler(&self, message) }
        guard session != nil else {
            if let handler = Self.beforeRegistration[message.command] { return await handler(&self, message) }
            send(codec.numeric("451", me, message.command, "You have not registered"))
            return .proceed
        }
        guard let handler = Self.registered[message.command] else {
            send(codec.numeric("421", me, message.command, "Unknown command"))
            return .proceed
        }
        return await handler(&self, message)
    }

    // MARK: - The command tables

    private static let anytime: [String: Handler] = [
        "CAP": { session, message in session.capability(message) },
        "PING": { session, message in
            // A PING needs a token to echo (modern-irc: ERR_NOORIGIN without one).
            guard let token = message.params.first else {
                session.send(session.codec.numeric("409", session.me, "No origin specified"))
                return .proceed
            }
            // Registered, the PONG goes through the hub like every other reply, so it comes after the replies to
            // the lines before it: clients (and irctest) send PING to know those have all arrived.
            if let id = session.session {
                session.context.hub.handle(.ping, ref: token, from: id)
            } else {
                session.send(IRCMessage(source: session.codec.serverName, command: "PONG", params: [session.codec.serverName, token]))
            }
            return .proceed
        },
        "PONG": { _, _ in .proceed },
        "QUIT": { session, message in session.quit(message) },
        "AUTHENTICATE": { session, message in await session.authenticate(message) },
    ]

    private static let beforeRegistration: [String: Handler] = [
        "PASS": { session, message in
            guard let password = message.params.first else { return session.needMoreParams(message) }
            session.passwordAccepted = session.context.acceptsServerPassword(password)
            return .proceed
        },
        "NICK": { session, message in
            guard let nick = message.params.first, !nick.isEmpty else {
                session.send(session.codec.numeric("431", session.me, "No nickname given"))
                return .proceed
            }
            session.nick = nick
            return session.tryToRegister()
        },
        "USER": { session, message in
            guard message.params.count >= 4 else { return session.needMoreParams(message) }
            session.user = message.params[0]
            return session.tryToRegister()
        },
    ]

    private static let registered: [String: Handler] = [
        "PASS": { session, _ in session.alreadyRegistered() },
        "USER": { session, _ in session.alreadyRegistered() },
        "NICK": { session, message in
            guard let nick = message.params.first, !nick.isEmpty else {
                session.send(session.codec.numeric("431", session.me, "No nickname given"))
                return .proceed
            }
            return session.request(.nick(nick), about: nick)
        },
        "JOIN": { session, message in
            guard let list = message.params.first else { return session.needMoreParams(message) }
            if list == "0" {
                let rooms = session.context.hub.rooms(of: session.session!)
                session.charge(rooms.count)
                for room in rooms { _ = session.request(.part(room: room, reason: nil), about: room) }
                return .proceed
            }
            var keys = (message.params.dropFirst().first ?? "").split(separator: ",", omittingEmptySubsequences: false).makeIterator()
            let joined = Set(session.context.hub.rooms(of: session.session!).map(asciiLowercased))
            let rooms = list.split(separator: ",")
            // Each channel is a join (and a replay): a line of fifty costs as much as fifty lines.
            session.charge(rooms.count)
            for room in rooms {
                let key = keys.next().flatMap { $0.isEmpty ? nil : String($0) }
                // Joining a channel one is in does nothing on IRC (in text mode it makes the room current).
                guard !joined.contains(asciiLowercased(String(room))) else { continue }
                _ = session.request(.join(String(room), key: key), about: String(room))
            }
            return .proceed
        },
        "CHATHISTORY": { session, message in session.chathistory(message) },
        // ergo's HISTORY, for clients without draft/chathistory: `/quote HISTORY #room [N]` replays the latest N.
        "HISTORY": { session, message in
            guard let room = message.params.first else { return session.needMoreParams(message) }
            let count = message.params.dropFirst().first.flatMap { Int($0) }.map { min(max($0, 1), IRCCodec.maximumHistoryPage) } ?? 50
            session.charge(HistoryQuery.latest(count).cost)
            return session.request(.history(room: room, .latest(count)), about: room)
        },
        "PART": { session, message in
            guard let list = message.params.first else { return session.needMoreParams(message) }
            let rooms = list.split(separator: ",")
            session.charge(rooms.count)
            for room in rooms {
                _ = session.request(.part(room: String(room), reason: message.params.dropFirst().first), about: String(room))
            }
            return .proceed
        },
        "PRIVMSG": { session, message in session.chat(message, notice: false) },
        "NOTICE": { session, message in session.chat(message, notice: true) },
        "TOPIC": { session, message in
            guard let room = message.params.first else { return session.needMoreParams(message) }
            return session.request(.topic(room: room, text: message.params.dropFirst().first), about: room)
        },
        "NAMES": { session, message in
            guard let room = message.params.first?.split(separator: ",").first.map(String.init) else {
                session.send(session.codec.numeric("366", session.me, "*", "End of /NAMES list."))
                return .proceed
            }
            return session.request(.who(room: room), about: room)
        },
        "LIST": { session, _ in session.request(.rooms, about: nil) },
        "WHO": { session, message in session.who(message) },
        "WHOIS": { session, message in session.whois(message) },
        "MODE": { session, message in session.mode(message) },
        "KICK": { session, message in
            guard message.params.count >= 2 else { return session.needMoreParams(message) }
            let reason = message.params.count > 2 ? message.params[2] : nil
            return session.request(.moderate(room: message.params[0], .kick(nick: message.params[1], reason: reason)), about: message.params[1])
        },
        "INVITE": { session, message in
            guard message.params.count >= 2 else { return session.needMoreParams(message) }
            let (nick, room) = (message.params[0], message.params[1])
            session.send(session.codec.numeric("341", session.me, nick, room))
            return session.request(.whisper(to: nick, text: "invites you to join \(room)", kind: .notice), about: nick)
        },
        "AWAY": { session, message in
            let text = message.params.first ?? ""
            return session.request(.away(text.isEmpty ? nil : text), about: nil)
        },
        "LUSERS": { session, _ in
            let lines = session.codec.lusers(
                me: session.me, online: session.context.hub.sessionCount, rooms: max(1, session.context.hub.roomCount)
            )
            for line in lines { session.send(line) }
            return .proceed
        },
        "MOTD": { session, _ in
            session.send(session.codec.numeric("422", session.me, "MOTD File is missing"))
            return .proceed
        },
        "OPER": { session, message in await session.oper(message) },
        "KILL": { session, message in
            guard let nick = message.params.first else { return session.needMoreParams(message) }
            guard let id = session.session, session.context.hub.isOperator(id), let me = session.context.hub.nick(of: id) else {
                session.send(session.codec.numeric("481", session.me, "Permission Denied- You're not an IRC operator"))
                return .proceed
            }
            do throws(ChatError) {
                try session.context.hub.kick(nick, reason: message.params.dropFirst().first, by: .user(me))
            } catch {
                session.send(session.codec.numeric(for: error, target: nick, me: session.me))
            }
            return .proceed
        },
    ]

    // MARK: - Registration

    private var me: String { peer.nick }

    private mutating func capability(_ message: IRCMessage) -> Flow {
        switch message.params.first?.uppercased() {
        case "LS":
            if session == nil { negotiating = true }
            // 302 and later see values (sasl=PLAIN) and have cap-notify without asking.
            let version = message.params.dropFirst().first.flatMap { Int($0) } ?? 0
            if version >= 302 { peer.capabilities.insert(.capNotify) }
            var names = IRCCapabilities.names.map { entry in
                guard version >= 302, let value = entry.value else { return entry.name }
                return "\(entry.name)=\(value)"
            }
            // Strict transport security: not requested, only listed (with its value, so 302 and later).
            if version >= 302, let policy = context.security.strictTransport { names.append("sts=\(policy)") }
            send(IRCMessage(source: codec.serverName, command: "CAP", params: [me, "LS", names.joined(separator: " ")]))
        case "LIST":
            let enabled = IRCCapabilities.names.filter { peer.capabilities.contains($0.capability) }.map(\.name).joined(separator: " ")
            send(IRCMessage(source: codec.serverName, command: "CAP", params: [me, "LIST", enabled]))
        case "REQ":
            if session == nil { negotiating = true }
            let asked = (message.params.dropFirst().first ?? "").split(separator: " ")
            var wanted = peer.capabilities
            var known = true
            for token in asked {
                let removing = token.hasPrefix("-")
                let name = removing ? token.dropFirst() : token
                guard let capability = IRCCapabilities.names.first(where: { $0.name == name })?.capability else {
                    known = false
                    break
                }
                if removing { wanted.remove(capability) } else { wanted.insert(capability) }
            }
            // All or nothing, as the spec says.
            if known { peer.capabilities = wanted }
            send(IRCMessage(source: codec.serverName, command: "CAP", params: [me, known ? "ACK" : "NAK", message.params.dropFirst().first ?? ""]))
        case "END":
            negotiating = false
            return tryToRegister()
        default:
            send(codec.numeric("410", me, message.params.first ?? "*", "Invalid CAP command"))
        }
        return .proceed
    }

    private mutating func tryToRegister() -> Flow {
        guard session == nil, !negotiating, let nick, user != nil else { return .proceed }
        guard passwordAccepted else {
            send(codec.numeric("464", me, "Password incorrect"))
            send(IRCMessage(command: "ERROR", params: ["Closing link: this server needs the right password (PASS)"]))
            return .stop
        }
        let client = context.connection.makeClient()
        do throws(ChatError) {
            // An IRC client joins the channels it is configured for; it is not put anywhere.
            let id = try context.hub.register(nick: nick, peer: client, account: account?.key, address: context.address, joiningGeneral: false)
            session = id
            context.registered(id, as: client)
        } catch {
            self.nick = nil
            send(codec.numeric(for: error, target: nick, me: me))
        }
        return .proceed
    }

    private mutating func quit(_ message: IRCMessage) -> Flow {
        if session != nil { return request(.quit(reason: message.params.first), about: nil) }
        send(IRCMessage(command: "ERROR", params: ["Closing link: quit"]))
        return .stop
    }

    // MARK: - Requests

    /// Hands a request to the chat; `target` comes back as the ref of any error, for the numeric.
    private func request(_ request: Request, about target: String?) -> Flow {
        guard let session else { return .proceed }
        context.hub.handle(request, ref: target, from: session)
        if case .quit = request { return .stop }
        return .proceed
    }

    private func chat(_ message: IRCMessage, notice: Bool) -> Flow {
        guard let targets = message.params.first, !targets.isEmpty else {
            if !notice { send(codec.numeric("411", me, "No recipient given (\(message.command))")) }
            return .proceed
        }
        guard message.params.count >= 2, !message.params[1].isEmpty else {
            if !notice { send(codec.numeric("412", me, "No text to send")) }
            return .proceed
        }
        var text = message.params[1]
        var kind: ChatMessage.Kind = notice ? .notice : .normal
        if text.hasPrefix("\u{1}ACTION ") {
            text = String(text.dropFirst(8).prefix { $0 != "\u{1}" })
            kind = .action
        } else if text.hasPrefix("\u{1}") {
            return .proceed  // other CTCP requests (VERSION, PING…) are not relayed
        }
        // TARGMAX: a few targets a line, each charged as a line; one 407 for the rest, however many there are.
        let all = targets.split(separator: ",").map(String.init)
        let accepted = all.prefix(IRCCodec.maximumTargets)
        if all.count > accepted.count {
            send(codec.numeric("407", me, all[accepted.count], "Too many targets: at most \(IRCCodec.maximumTargets) a message; not sent to the rest"))
        }
        charge(accepted.count)
        for target in accepted {
            let request: Request = target.hasPrefix("#") ? .say(room: target, text: text, kind: kind) : .whisper(to: target, text: text, kind: kind)
            _ = self.request(request, about: target)
        }
        return .proceed
    }

    /// WHO for a channel or one nick; flags say here (H) or gone (G), and mark operators.
    private func who(_ message: IRCMessage) -> Flow {
        let mask = message.params.first ?? "*"
        let channel = mask.hasPrefix("#") ? mask : nil
        let nicks = channel.map { (try? context.hub.nicks(in: $0)) ?? [] } ?? [mask]
        for profile in nicks.compactMap(context.hub.profile(of:)) {
            let isOperator = channel.map { channel in profile.rooms.contains { $0.isOperator && asciiLowercased($0.name) == asciiLowercased(channel) } } ?? false
            let flags = (profile.away == nil ? "H" : "G") + (profile.isServerOperator ? "*" : "") + (isOperator ? "@" : "")
            let nick = profile.nick
            send(codec.numeric("352", me, channel ?? "*", nick, "parley", codec.serverName, nick, flags, "0 \(nick)"))
        }
        send(codec.numeric("315", me, mask, "End of /WHO list."))
        return .proceed
    }

    private func whois(_ message: IRCMessage) -> Flow {
        guard let nick = message.params.last, !nick.isEmpty else {
            send(codec.numeric("431", me, "No nickname given"))
            return .proceed
        }
        if let profile = context.hub.profile(of: nick) {
            let found = profile.nick
            send(codec.numeric("311", me, found, found, "parley", "*", found))
            if !profile.rooms.isEmpty {
                send(codec.numeric("319", me, found, profile.rooms.map { ($0.isOperator ? "@" : "") + $0.name }.joined(separator: " ")))
            }
            send(codec.numeric("312", me, found, codec.serverName, "Parley"))
            if profile.isServerOperator { send(codec.numeric("313", me, found, "is an IRC operator")) }
            if let away = profile.away { send(codec.numeric("301", me, found, away)) }
            if let account = profile.account { send(codec.numeric("330", me, found, account, "is logged in as")) }
        } else {
            send(codec.numeric("401", me, nick, "No such nick"))
        }
        send(codec.numeric("318", me, nick, "End of /WHOIS list."))
        return .proceed
    }

    // MARK: - History

    /// draft/chathistory: LATEST, BEFORE, AFTER and BETWEEN, by msgid (Parley's message ids) or timestamp.
    /// The answer is a `chathistory` batch (rendered from the `history` event this asks for).
    private func chathistory(_ message: IRCMessage) -> Flow {
        let params = message.params
        guard params.count >= 3 else { return fail("CHATHISTORY", "INVALID_PARAMS", params.first ?? "*", "Not enough parameters") }
        let subcommand = params[0].uppercased()
        let target = params[1]
        guard let count = params.last.flatMap({ Int($0) }), count > 0 else {
            return fail("CHATHISTORY", "INVALID_PARAMS", subcommand, "The limit must be a positive number")
        }
        let limit = min(count, IRCCodec.maximumHistoryPage)
        func point(_ text: String) -> HistoryPoint? {
            let (kind, value) = (text.prefix { $0 != "=" }, text.drop { $0 != "=" }.dropFirst())
            switch kind {
            case "msgid": return Int64(value).map(HistoryPoint.id)
            case "timestamp": return Timestamps.parseISO8601(String(value)).map(HistoryPoint.time)
            default: return nil
            }
        }
        let query: HistoryQuery
        switch (subcommand, params.count) {
        case ("LATEST", 4) where params[2] == "*":
            query = .latest(limit)
        case ("LATEST", 4), ("BEFORE", 4), ("AFTER", 4):
            guard let reference = point(params[2]) else { return fail("CHATHISTORY", "INVALID_PARAMS", subcommand, "Unknown message reference") }
            query =
                switch subcommand {
                case "BEFORE": .range(after: .id(0), before: reference, count: limit, newest: true)
                case "AFTER": .range(after: reference, before: .id(.max), count: limit, newest: false)
                default: .range(after: reference, before: .id(.max), count: limit, newest: true)
                }
        case ("BETWEEN", 5):
            guard let first = point(params[2]), let second = point(params[3]) else {
                return fail("CHATHISTORY", "INVALID_PARAMS", subcommand, "Unknown message reference")
            }
            // The first reference says where to start: from the newer end when it is the later one.
            switch (first, second) {
            case (.id(let a), .id(let b)) where a > b: query = .range(after: second, before: first, count: limit, newest: true)
            case (.time(let a), .time(let b)) where a > b: query = .range(after: second, before: first, count: limit, newest: true)
            case (.id, .id), (.time, .time): query = .range(after: first, before: second, count: limit, newest: false)
            default: return fail("CHATHISTORY", "INVALID_PARAMS", subcommand, "Both references must be of one kind")
            }
        default:
            return fail("CHATHISTORY", "INVALID_PARAMS", subcommand, "Supported: LATEST, BEFORE, AFTER and BETWEEN")
        }
        guard target.hasPrefix("#") else {
            // Private conversations are not kept per pair of users: their history is empty.
            send(IRCMessage(source: codec.serverName, command: "BATCH", params: ["+p", "chathistory", target]))
            send(IRCMessage(source: codec.serverName, command: "BATCH", params: ["-p"]))
            return .proceed
        }
        charge(query.cost)
        return request(.history(room: target, query), about: target)
    }

    /// A standard reply (IRCv3 FAIL).
    private func fail(_ command: String, _ code: String, _ context: String, _ text: String) -> Flow {
        send(IRCMessage(source: codec.serverName, command: "FAIL", params: [command, code, context, text]))
        return .proceed
    }

    // MARK: - SASL

    /// Where a SASL PLAIN exchange is: between `AUTHENTICATE PLAIN` and the last chunk of its payload
    /// (base64 of `authzid NUL authcid NUL password`, sent 400 bytes at a time).
    enum SASLExchange {
        case idle
        case plain(received: String)
    }

    private mutating func authenticate(_ message: IRCMessage) async -> Flow {
        guard peer.capabilities.contains(.sasl) else {
            send(codec.numeric("904", me, "SASL authentication failed: request the sasl capability first"))
            return .proceed
        }
        guard let argument = message.params.first, !argument.isEmpty else { return needMoreParams(message) }
        // The server password comes first: nobody who lacks it may try account passwords.
        guard passwordAccepted else {
            send(codec.numeric("904", me, "SASL authentication failed: send the server password (PASS) first"))
            return .proceed
        }
        if argument == "*" {
            sasl = .idle
            send(codec.numeric("906", me, "SASL authentication aborted"))
            return .proceed
        }
        switch sasl {
        case .idle:
            if account != nil || session.flatMap(context.hub.account(of:)) != nil {
                send(codec.numeric("907", me, "You have already authenticated using SASL"))
                return .proceed
            }
            guard argument.uppercased() == "PLAIN" else {
                send(codec.numeric("908", me, "PLAIN", "are available SASL mechanisms"))
                send(codec.numeric("904", me, "SASL authentication failed"))
                return .proceed
            }
            // Refused before the client sends its password, not after.
            if let refusal = context.security.passwordRefusal {
                send(codec.numeric("904", me, "SASL authentication failed: \(refusal.message)"))
                return .proceed
            }
            sasl = .plain(received: "")
            send(IRCMessage(command: "AUTHENTICATE", params: ["+"]))
        case .plain(let received):
            let payload = received + (argument == "+" ? "" : argument)
            guard argument.utf8.count <= 400, payload.utf8.count <= 2048 else {
                sasl = .idle
                send(codec.numeric("905", me, "SASL message too long"))
                return .proceed
            }
            // A chunk of exactly 400 bytes means more follows.
            if argument.utf8.count == 400 {
                sasl = .plain(received: payload)
                return .proceed
            }
            sasl = .idle
            await logIn(plain: payload)
        }
        return .proceed
    }

    private mutating func logIn(plain payload: String) async {
        let parts = Data(base64Encoded: payload).map { $0.split(separator: 0, omittingEmptySubsequences: false) } ?? []
        guard parts.count == 3 else {
            send(codec.numeric("904", me, "SASL authentication failed: the PLAIN payload is malformed"))
            return
        }
        let (identity, name, password) = (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self), String(decoding: parts[2], as: UTF8.self))
        guard identity.isEmpty || asciiLowercased(identity) == asciiLowercased(name) else {
            send(codec.numeric("904", me, "SASL authentication failed: you can only log in as yourself"))
            return
        }
        do throws(ChatError) {
            let verified = try await context.accounts.verify(nick: name, password: password, from: context.address)
            // The replies first, under the nick the client has now: logging in may rename it.
            let nick = session == nil ? self.nick ?? "*" : me
            send(codec.numeric("900", nick, "\(nick)!\(nick)@parley", verified.name, "You are now logged in as \(verified.name)"))
            send(codec.numeric("903", nick, "SASL authentication successful"))
            if let session { context.hub.authenticate(session, as: verified) } else { account = verified }
        } catch {
            send(codec.numeric("904", me, "SASL authentication failed: \(error.message)"))
        }
    }

    /// Channel modes map onto moderation (+o, +b, +t, +k); of user modes there is +i.
    private mutating func mode(_ message: IRCMessage) -> Flow {
        guard let target = message.params.first else { return needMoreParams(message) }
        guard target.hasPrefix("#") else { return userMode(target, message.params.dropFirst().first) }
        guard message.params.count >= 2 else {
            send(codec.numeric("324", me, target, "+n"))
            return .proceed
        }
        var adding = true
        var arguments = message.params.dropFirst(2).makeIterator()
        // MODES: a few changes a line, each stored and announced, each charged as a line; the rest are dropped.
        var changes = 0
        for letter in message.params[1] {
            if letter != "+" && letter != "-" {
                changes += 1
                guard changes <= IRCCodec.maximumModes else {
                    send(IRCMessage(source: codec.serverName, command: "NOTICE", params: [me, "At most \(IRCCodec.maximumModes) mode changes a line (MODES); the rest were not made."]))
                    break
                }
            }
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "b":
                guard let mask = arguments.next() else {
                    _ = request(.moderate(room: target, .restrictions), about: target)
                    continue
                }
                let parleyMask = Self.parleyMask(fromIRC: mask)
                _ = request(.moderate(room: target, adding ? .ban(mask: parleyMask, seconds: nil, reason: nil) : .unban(mask: parleyMask)), about: mask)
            case "o":
                guard let nick = arguments.next() else { continue }
                _ = request(.moderate(room: target, adding ? .op(nick: nick) : .deop(nick: nick)), about: nick)
            case "t":
                _ = request(.moderate(room: target, .topicLock(adding)), about: target)
            case "n" where adding:
                continue  // always on: only members speak in a room
            case "k":
                // +k takes the key; -k may name it too (RFC 2812), which changes nothing.
                let key = arguments.next()
                if adding, key == nil { continue }
                _ = request(.moderate(room: target, .key(adding ? key : nil)), about: target)
            default:
                send(codec.numeric("472", me, String(letter), "is an unknown mode char to me"))
            }
        }
        charge(min(changes, IRCCodec.maximumModes))
        return .proceed
    }

    /// `MODE nick [+i|-i]`: only one's own modes, of which only `i` exists; a change is confirmed with MODE.
    private mutating func userMode(_ target: String, _ changes: String?) -> Flow {
        guard asciiLowercased(target) == asciiLowercased(me) else {
            let exists = context.hub.profile(of: target) != nil
            send(exists ? codec.numeric("502", me, "Can't change mode for other users") : codec.numeric("401", me, target, "No such nick"))
            return .proceed
        }
        guard let changes else {
            send(codec.numeric("221", me, invisible ? "+i" : "+"))
            return .proceed
        }
        var adding = true
        var unknown = false
        let before = invisible
        for letter in changes {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "i": invisible = adding
            default: unknown = true
            }
        }
        if unknown { send(codec.numeric("501", me, "Unknown MODE flag")) }
        if invisible != before {
            send(IRCMessage(source: IRCCodec.source(me), command: "MODE", params: [me, invisible ? "+i" : "-i"]))
        }
        return .proceed
    }

    /// `nick!user@host` → Parley's `nick@host` (the user part means nothing here; a `*` host is dropped).
    static func parleyMask(fromIRC mask: String) -> String {
        let nickPart = mask.split(separator: "!", maxSplits: 1).first.map(String.init) ?? mask
        let host = mask.split(separator: "@", maxSplits: 1).dropFirst().first.map(String.init)
        let nick = nickPart.split(separator: "@", maxSplits: 1).first.map(String.init) ?? nickPart
        guard let host, host != "*" else { return nick }
        return "\(nick)@\(host)"
    }

    private func oper(_ message: IRCMessage) async -> Flow {
        guard message.params.count >= 2, let session else { return needMoreParams(message) }
        if let refusal = context.security.passwordRefusal {
            send(codec.numeric("464", me, refusal.message))
            return .proceed
        }
        do throws(ChatError) {
            let account = try await context.accounts.verify(nick: message.params[0], password: message.params[1], from: context.address)
            guard account.isOperator else {
                send(codec.numeric("491", me, "Only server operators may use OPER"))
                return .proceed
            }
            // The reply first, under the nick the client has now: logging in may rename it.
            send(codec.numeric("381", me, "You are now an IRC operator"))
            context.hub.authenticate(session, as: account)
        } catch {
            send(codec.numeric("464", me, "Password incorrect"))
        }
        return .proceed
    }

    // MARK: - Replies

    private func needMoreParams(_ message: IRCMessage) -> Flow {
        send(codec.numeric("461", me, message.command, "Not enough parameters"))
        return .proceed
    }

    private func alreadyRegistered() -> Flow {
        send(codec.numeric("462", me, "You may not reregister"))
        return .proceed
    }

    /// The line costs `tokens` lines' worth of flood control in all (see `ConnectionState.charge`).
    private func charge(_ tokens: Int) {
        context.connection.charge(tokens - 1)
    }

    /// Straight to this connection: replies that need no state change. (A registered session's replies that
    /// follow a request go through the hub instead, so they keep their place after what the request caused.)
    private func send(_ message: IRCMessage) {
        context.connection.send(ByteBuffer(string: message.serialized()))
    }
}
