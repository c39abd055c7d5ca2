import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// The IRC front door's adapter: registration (CAP, PASS, NICK, USER, SASL), then IRC commands become the same
/// chat requests text and JSON users make, so IRC users share rooms, messages and rules with everyone. The
/// commands are one table (`IRCSession.commands`); replies to requests come back as chat events rendered by
/// `IRCCodec`, and a request's ref (`IRCCodec.ref`) names the command and what it was about, because IRC's
/// numerics depend on both.
struct IRCSession: LineSession {
    /// Where registration is. Before 001 the client says who it is (NICK, USER), may negotiate capabilities
    /// (registration waits between `CAP LS`/`REQ` and `CAP END`) and may log in with SASL; then it is a
    /// session of the hub.
    enum Registration {
        case connecting(Pending)
        case registered(SessionID)
    }

    struct Pending {
        var nick: String?
        var identity: Identity?
        var negotiating = false
        /// Whether PASS gave the server password (or the server has none).
        var passwordAccepted: Bool
        /// The account SASL proved: the session is registered logged in to it.
        var account: Account?

        /// Where registration stands: what it waits for, or ready. (A SASL exchange before registration happens
        /// while negotiating, which holds registration until `CAP END`.)
        enum Stage: Equatable {
            case awaitingNick, awaitingUser, negotiating, ready
        }

        var stage: Stage {
            if nick == nil { return .awaitingNick }
            if identity == nil { return .awaitingUser }
            if negotiating { return .negotiating }
            return .ready
        }
    }

    let context: SessionContext
    let codec: IRCCodec
    let peer: IRCPeer
    var registration: Registration
    var sasl = SASLExchange.idle
    /// Replies made here rather than by the hub, each with the hub's queue position when it was made.
    private let replies = Replies()
    /// Labeled lines answered so far: each answer's batch gets its own reference.
    private var labelsAnswered = 0

    init(_ context: SessionContext) {
        self.context = context
        self.codec = IRCCodec(serverName: context.hub.serverName)
        self.peer = IRCPeer()
        self.registration = .connecting(Pending(passwordAccepted: context.serverPassword == nil))
        context.connection.settle(on: IRCRenderer(codec: codec, peer: peer))
    }

    var session: SessionID? {
        if case .registered(let id) = registration { return id }
        return nil
    }

    var me: String { peer.nick }

    mutating func receive(_ line: ByteBuffer) async -> Flow {
        // Labeled responses come in batches: the spec has a client negotiate `batch` with them.
        if peer.capabilities.isSuperset(of: [.labeledResponse, .batch]), let label = Self.label(of: line) { return await answer(line, labeled: label) }
        let flow = await handle(line)
        await replies.flush(to: context)
        return flow
    }

    /// IRCv3 labeled-response: every reply to the line, collected into one answer (see `LabeledResponse`).
    private mutating func answer(_ line: ByteBuffer, labeled label: String) async -> Flow {
        // What earlier lines asked of the hub is delivered first: none of it belongs in this answer.
        await context.hub.carriedOut(through: context.hub.queuePosition)
        labelsAnswered += 1
        let response = LabeledResponse(
            label: label, hold: context.connection.outbox.hold(), serverName: codec.serverName, batch: "L\(labelsAnswered)"
        )
        peer.beginLabel(response)
        replies.collect(into: response)
        let flow = await handle(line)
        await replies.flush(to: context)
        // Everything the line asked of the hub is rendered (a history read may still fill its place later).
        await context.hub.carriedOut(through: context.hub.queuePosition)
        replies.collect(into: nil)
        if let answer = peer.endLabel() { context.connection.outbox.release(answer.hold, with: answer.frame) }
        return flow
    }

    /// The `label` tag of a line, if it has one (of at most 64 bytes, as the spec bounds it).
    static func label(of line: ByteBuffer) -> String? {
        let bytes = line.readableBytesView
        guard bytes.first == UInt8(ascii: "@"), let end = bytes.firstIndex(of: UInt8(ascii: " ")),
            bytes[..<end].split(separator: UInt8(ascii: ";")).contains(where: { $0.drop { $0 == UInt8(ascii: "@") }.starts(with: "label=".utf8) }),
            let label = IRCMessage(parsing: Substring(String(decoding: bytes, as: UTF8.self)))?.tags["label"], !label.isEmpty, label.utf8.count <= 64
        else { return nil }
        return label
    }

    private mutating func handle(_ line: ByteBuffer) async -> Flow {
        // The framer bounds the whole line; IRC bounds its two parts: tags (8191 bytes) and the message (510
        // without its CR LF, or less when --max-line-bytes is lower).
        let bytes = line.readableBytesView
        let tagged = bytes.first == UInt8(ascii: "@")
        let tagBytes = tagged ? (bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex) - bytes.startIndex : 0
        let bodyBytes = bytes.count - (tagged ? min(bytes.count, tagBytes + 1) : 0)
        guard tagBytes <= IRCMessage.maximumClientTagBytes, bodyBytes <= min(IRCMessage.maximumBodyBytes - 2, context.maximumLineBytes) else {
            send(codec.numeric("417", me, "Input line was too long"))
            return .proceed
        }
        guard let message = IRCMessage(parsing: Substring(String(decoding: bytes, as: UTF8.self))) else { return .proceed }
        guard let command = Self.commands[message.command] else {
            send(session == nil ? codec.numeric("451", me, message.command, "You have not registered") : codec.numeric("421", me, message.command, "Unknown command"))
            return .proceed
        }
        guard session != nil || command.beforeRegistration else {
            send(codec.numeric("451", me, message.command, "You have not registered"))
            return .proceed
        }
        guard message.params.count >= command.minimumParameters else { return needMoreParams(message) }
        if command.operatorOnly, !(session.map(context.hub.isOperator) ?? false) {
            send(codec.numeric("481", me, "Permission Denied- You're not an IRC operator"))
            return .proceed
        }
        return await command.handler(&self, message)
    }

    // MARK: - Registration

    mutating func pass(_ message: IRCMessage) -> Flow {
        guard case .connecting(var pending) = registration else { return alreadyRegistered() }
        pending.passwordAccepted = context.acceptsServerPassword(message.params[0])
        registration = .connecting(pending)
        return .proceed
    }

    mutating func nick(_ message: IRCMessage) -> Flow {
        guard let nick = message.params.first, !nick.isEmpty else {
            send(codec.numeric("431", me, "No nickname given"))
            return .proceed
        }
        guard case .connecting(var pending) = registration else {
            request(.nick(nick), "NICK", nick)
            return .proceed
        }
        pending.nick = nick
        registration = .connecting(pending)
        return tryToRegister()
    }

    mutating func user(_ message: IRCMessage) -> Flow {
        guard case .connecting(var pending) = registration else { return alreadyRegistered() }
        guard let identity = IRCTranslation.identity(username: message.params[0], realName: message.params[3]) else {
            return needMoreParams(message)
        }
        pending.identity = identity
        registration = .connecting(pending)
        return tryToRegister()
    }

    mutating func capability(_ message: IRCMessage) -> Flow {
        let negotiating = { (session: inout IRCSession) in
            if case .connecting(var pending) = session.registration {
                pending.negotiating = true
                session.registration = .connecting(pending)
            }
        }
        switch message.params[0].uppercased() {
        case "LS":
            negotiating(&self)
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
            negotiating(&self)
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
            guard case .connecting(var pending) = registration else { return .proceed }
            pending.negotiating = false
            registration = .connecting(pending)
            return tryToRegister()
        default:
            send(codec.numeric("410", me, message.params[0], "Invalid CAP command"))
        }
        return .proceed
    }

    private mutating func tryToRegister() -> Flow {
        guard case .connecting(var pending) = registration, pending.stage == .ready, let nick = pending.nick else { return .proceed }
        guard pending.passwordAccepted else {
            send(codec.numeric("464", me, "Password incorrect"))
            send(IRCMessage(command: "ERROR", params: ["Closing link: this server needs the right password (PASS)"]))
            return .stop
        }
        let client = context.connection.makeClient()
        do throws(ChatError) {
            // An IRC client joins the channels it is configured for; it is not put anywhere.
            let id = try context.hub.register(
                nick: nick, peer: client, account: pending.account?.name, address: context.address, joiningGeneral: false,
                identity: pending.identity ?? Identity()
            )
            registration = .registered(id)
            context.registered(id, as: client)
        } catch {
            pending.nick = nil
            registration = .connecting(pending)
            for line in codec.numerics(for: error, ref: IRCCodec.parse(ref: IRCCodec.ref("NICK", nick)), me: me) { send(line) }
        }
        return .proceed
    }

    mutating func ping(_ message: IRCMessage) -> Flow {
        // A PING needs a token to echo (modern-irc: ERR_NOORIGIN without one).
        guard let token = message.params.first else {
            send(codec.numeric("409", me, "No origin specified"))
            return .proceed
        }
        // Registered, the PONG goes through the hub like every other reply, so it comes after the replies to
        // the lines before it: clients (and irctest) send PING to know those have all arrived.
        if session != nil {
            request(.ping, "PING", token)
        } else {
            send(IRCMessage(source: codec.serverName, command: "PONG", params: [codec.serverName, token]))
        }
        return .proceed
    }

    mutating func quit(_ message: IRCMessage) -> Flow {
        if session != nil {
            request(.quit(reason: message.params.first), "QUIT")
        } else {
            send(IRCMessage(command: "ERROR", params: ["Closing link: quit"]))
        }
        return .stop
    }

    // MARK: - Requests

    /// Hands a request to the chat; its ref (`IRCCodec.ref`) comes back with any refusal, for the numeric. After
    /// a reply this line made, the request waits its turn behind it (see `send`).
    func request(_ request: Request, _ command: String, _ target: String? = nil, _ subject: String? = nil) {
        guard let session else { return }
        replies.request(request, ref: IRCCodec.ref(command, target, subject), from: session, hub: context.hub)
    }

    /// Writes the replies made so far, in order with the requests between them; before the door acts on the
    /// hub directly (logging in), so that what it said comes first.
    func flushReplies() async {
        await replies.flush(to: context)
    }

    mutating func join(_ message: IRCMessage) -> Flow {
        let list = message.params[0]
        if list == "0" {
            request(.partAll(reason: nil), "JOIN", "0")
            return .proceed
        }
        var keys = (message.params.dropFirst().first ?? "").split(separator: ",", omittingEmptySubsequences: false).makeIterator()
        let rooms = list.split(separator: ",").map(String.init)
        // Each channel is a join (and a replay): a line of fifty costs as much as fifty lines.
        charge(rooms.count)
        for room in rooms {
            let key = keys.next().flatMap { $0.isEmpty ? nil : String($0) }
            request(.join(room, key: key), "JOIN", room)
        }
        return .proceed
    }

    /// PRIVMSG, NOTICE and TAGMSG, to channels and nicks, with the client-only tags (`+name`) they carry.
    mutating func chat(_ message: IRCMessage, kind: ChatMessage.Kind) async -> Flow {
        let notice = kind == .notice
        guard let targets = message.params.first, !targets.isEmpty else {
            if !notice { send(codec.numeric("411", me, "No recipient given (\(message.command))")) }
            return .proceed
        }
        let tags = message.tags.filter { $0.key.hasPrefix("+") }
        if kind == .tags {
            guard !tags.isEmpty else { return .proceed }
        } else if message.params.count < 2 || message.params[1].isEmpty {
            if !notice { send(codec.numeric("412", me, "No text to send")) }
            return .proceed
        }
        let raw = kind == .tags ? "" : message.params[1]
        var (text, kind) = (raw, kind)
        if raw.hasPrefix("\u{1}ACTION ") {
            text = String(raw.dropFirst(8).prefix { $0 != "\u{1}" })
            kind = .action
        } else if raw.hasPrefix("\u{1}") {
            return .proceed  // other CTCP requests (VERSION, PING…) are not relayed
        }
        // TARGMAX: a few targets a line, each charged as a line; one 407 for the rest, however many there are.
        let all = targets.split(separator: ",").map(String.init)
        let accepted = all.prefix(IRCCodec.maximumTargets)
        if all.count > accepted.count {
            send(codec.numeric("407", me, all[accepted.count], "Too many targets: at most \(IRCCodec.maximumTargets) a message; not sent to the rest"))
        }
        charge(accepted.count)
        let source = IRCCodec.source(me)
        for target in accepted {
            // To NickServ, a message is a command; a notice or tags are not (a NOTICE is never answered).
            if target.utf8.count == 8, asciiLowercased(target) == "nickserv" {
                if kind == .normal { await nickServ(raw) }
                continue
            }
            guard IRCTranslation.fitsRelayed(source: source, command: message.command, target: target, text: raw) else {
                if !notice { send(codec.numeric("417", me, "Input line was too long: your message would not reach \(target) whole")) }
                continue
            }
            let request: Request =
                target.hasPrefix("#") ? .say(room: target, text: text, kind: kind, tags: tags) : .whisper(to: target, text: text, kind: kind, tags: tags)
            self.request(request, message.command, target)
        }
        return .proceed
    }

    mutating func userhost(_ message: IRCMessage) -> Flow {
        // USERHOST nick…: up to five, `nick=+user@host` (`-` when away); unknown nicks are left out.
        let found = message.params.prefix(5).compactMap { context.hub.profile(of: $0) }
        let replies = found.map { "\($0.nick)\($0.isServerOperator ? "*" : "")=\($0.away == nil ? "+" : "-")\($0.username)@\(IRCCodec.host)" }
        send(codec.numeric("302", me, replies.joined(separator: " ")))
        return .proceed
    }

    /// Channel modes map onto moderation (+o, +b, +t, +k); of user modes there is +i.
    mutating func mode(_ message: IRCMessage) -> Flow {
        let target = message.params[0]
        guard target.hasPrefix("#") else { return userMode(target, message.params.dropFirst().first) }
        guard message.params.count >= 2 else {
            request(.modes(room: target), "MODE", target)
            return .proceed
        }
        let steps = IRCTranslation.channelModes(message.params[1], arguments: Array(message.params.dropFirst(2)))
        var changes = 0
        for step in steps {
            switch step {
            case .moderate(let action, let subject):
                changes += 1
                request(.moderate(room: target, action), "MODE", target, subject)
            case .listBans:
                request(.moderate(room: target, .restrictions), "MODE", target)
            case .listExceptions:
                request(.moderate(room: target, .restrictions), "MODE", target, "e")
            case .invalidKey:
                send(codec.numeric("696", me, target, "k", "*", "A key is one word of 1 to \(ChatState<Int>.maximumKeyLength) characters, without spaces or commas"))
            case .invalidLimit(let text):
                send(codec.numeric("696", me, target, "l", text.isEmpty ? "*" : text, "A member limit is a number from 1 to \(ChatState<Int>.maximumRoomLimit)"))
            case .unknown(let letter):
                send(codec.numeric("472", me, String(letter), "is an unknown mode char to me"))
            case .tooMany:
                send(IRCMessage(source: codec.serverName, command: "NOTICE", params: [me, "At most \(IRCCodec.maximumModes) mode changes a line (MODES); the rest were not made."]))
            }
        }
        // MODES: each change is stored and announced, and charged as a line.
        charge(max(1, changes))
        return .proceed
    }

    /// `MODE nick [+i|-i]`: only one's own modes, of which only `i` exists.
    private mutating func userMode(_ target: String, _ changes: String?) -> Flow {
        guard asciiLowercased(target) == asciiLowercased(me) else {
            let exists = context.hub.profile(of: target) != nil
            send(exists ? codec.numeric("502", me, "Can't change mode for other users") : codec.numeric("401", me, target, "No such nick"))
            return .proceed
        }
        guard let changes else {
            let (invisible, isOperator) = (context.hub.profile(of: me)?.isInvisible ?? false, session.map(context.hub.isOperator) ?? false)
            send(codec.numeric("221", me, "+" + (invisible ? "i" : "") + (isOperator ? "o" : "")))
            return .proceed
        }
        var adding = true
        var unknown = false
        var wanted: Bool?
        for letter in changes {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "i": wanted = adding
            default: unknown = true
            }
        }
        if unknown { send(codec.numeric("501", me, "Unknown MODE flag")) }
        // The hub keeps the mode, and confirms only a change.
        if let wanted { request(.invisible(wanted), "MODE", me) }
        return .proceed
    }

    /// The answer is a `chathistory` batch (rendered from the `history` event this asks for), of a channel or
    /// of a private conversation (as the client's account kept it); TARGETS lists both, with history in a window.
    func chathistory(_ message: IRCMessage) -> Flow {
        let subcommand = message.params[0].uppercased()
        if subcommand == "TARGETS" {
            switch IRCTranslation.chathistoryTargets(message.params) {
            case .failure(let failure):
                send(IRCMessage(source: codec.serverName, command: "FAIL", params: ["CHATHISTORY", failure.code, failure.context, failure.text]))
            case .success(let (after, before, count, newest)):
                charge(1 + count / 100)
                request(.historyTargets(after: after, before: before, count: count, newest: newest), "CHATHISTORY", "*", subcommand)
            }
            return .proceed
        }
        switch IRCTranslation.chathistory(message.params) {
        case .failure(let failure):
            send(IRCMessage(source: codec.serverName, command: "FAIL", params: ["CHATHISTORY", failure.code, failure.context, failure.text]))
        case .success(let (target, query)):
            charge(query.cost)
            request(.history(room: target, query, withTags: peer.capabilities.contains(.eventPlayback)), "CHATHISTORY", target, subcommand)
        }
        return .proceed
    }

    func oper(_ message: IRCMessage) async -> Flow {
        guard let session else { return .proceed }
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
            // The nick stays, as with SASL; the client learns its new rights from 381 and user mode +o.
            send(codec.numeric("381", me, "You are now an IRC operator"))
            send(IRCMessage(source: IRCCodec.source(me), command: "MODE", params: [me, "+o"]))
            await flushReplies()
            context.hub.authenticate(session, as: account, takingNick: false)
        } catch {
            send(codec.numeric("464", me, "Password incorrect"))
        }
        return .proceed
    }

    func kill(_ message: IRCMessage) -> Flow {
        let nick = message.params[0]
        guard let id = session, let me = context.hub.nick(of: id) else { return .proceed }
        do throws(ChatError) {
            try context.hub.kick(nick, reason: message.params.dropFirst().first, by: .user(me))
        } catch {
            send(codec.numeric(for: error, target: nick, me: self.me))
        }
        return .proceed
    }

    // MARK: - Replies

    func needMoreParams(_ message: IRCMessage) -> Flow {
        send(codec.numeric("461", me, message.command, "Not enough parameters"))
        return .proceed
    }

    private func alreadyRegistered() -> Flow {
        send(codec.numeric("462", me, "You may not reregister"))
        return .proceed
    }

    /// The line costs `tokens` lines' worth of flood control in all (see `ConnectionState.charge`).
    func charge(_ tokens: Int) {
        context.connection.charge(tokens - 1)
    }

    /// A reply made here, not by the hub: it goes out once the hub has carried out everything queued before it,
    /// so it never overtakes the replies to the lines before it (a pipelined `JOIN #a` then `BOGUS` gets the
    /// JOIN's replies, then 421), and a request made after it waits for it.
    func send(_ message: IRCMessage) {
        // Before registration nothing of this client's is in the hub to wait for.
        replies.add(ByteBuffer(string: message.serialized()), after: session == nil ? 0 : context.hub.queuePosition)
    }
}

/// What a session did while handling a line, in order, once it made a reply of its own: the replies, and the
/// requests that came after them. Without a reply pending, a request goes to the hub at once (the common case:
/// a PRIVMSG makes no reply).
final class Replies: Sendable {
    private enum Step {
        /// A reply, and the hub's queue position when it was made: what it must not overtake.
        case reply(ByteBuffer, after: UInt64)
        case request(Request, ref: String, from: SessionID)
    }

    private let pending = Mutex<[Step]>([])
    /// The answer to a labeled line being collected: replies go into it rather than to the connection.
    private let collecting = Mutex<LabeledResponse?>(nil)

    func collect(into response: LabeledResponse?) {
        collecting.withLock { $0 = response }
    }

    func add(_ frame: ByteBuffer, after position: UInt64) {
        pending.withLock { $0.append(.reply(frame, after: position)) }
    }

    func request(_ request: Request, ref: String, from session: SessionID, hub: ChatHub<Fanout>) {
        let queued = pending.withLock { pending in
            guard !pending.isEmpty else { return false }
            pending.append(.request(request, ref: ref, from: session))
            return true
        }
        if !queued { hub.handle(request, ref: ref, from: session) }
    }

    /// Carries the steps out in order: replies once everything queued before them is carried out (at once when
    /// the hub is idle; one wait for a run of them), requests then.
    func flush(to context: SessionContext) async {
        let taken = pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        // What a held request of this line queued: replies after it wait for it too.
        var floor: UInt64 = 0
        var run: [ByteBuffer] = []
        var runAfter: UInt64 = 0
        func write() async {
            guard !run.isEmpty else { return }
            await context.hub.carriedOut(through: runAfter)
            if let response = collecting.withLock({ $0 }) {
                for frame in run { response.add(frame) }
            } else {
                for frame in run { context.connection.send(frame) }
            }
            run.removeAll()
        }
        for step in taken {
            switch step {
            case .reply(let frame, let position):
                run.append(frame)
                runAfter = max(runAfter, position, floor)
            case .request(let request, let ref, let session):
                await write()
                context.hub.handle(request, ref: ref, from: session)
                floor = context.hub.queuePosition
            }
        }
        await write()
    }
}
