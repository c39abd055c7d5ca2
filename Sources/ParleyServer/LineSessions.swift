import Logging
import NIOCore
import ParleyCore
import ParleyProtocols

/// What the reader does after each line.
enum Flow {
    case proceed
    /// The client asked to leave (or must): stop reading and let the goodbye drain.
    case stop
}

/// One door's adapter between lines and the chat: registration first, then requests. Account requests go to
/// the `AccountDesk` (they await hashing and the store); everything else to the hub. A session settles its
/// connection's `Renderer`.
protocol LineSession: Sendable {
    /// What the framing found out before any line (the lines door's `.greet` and `.json`).
    mutating func signal(_ frame: InboundFrame)
    mutating func receive(_ line: ByteBuffer) async -> Flow
}

extension LineSession {
    mutating func signal(_ frame: InboundFrame) {}
}

/// The shared text/JSON-lines port's session: plain text for a person, JSON lines for a program, decided by
/// the framing's signal (`.greet`, `.json`) or, when the client sent a line before either, by the line itself.
/// A JSON client slower than the greeting window was greeted as a person; its first `{` still makes it JSON,
/// as long as it has not registered as text.
struct LinesSession: LineSession {
    private enum Mode {
        case undecided
        case text(TextSession)
        case json(JSONSession)
    }

    let context: SessionContext
    private var mode = Mode.undecided

    init(_ context: SessionContext) {
        self.context = context
    }

    mutating func signal(_ frame: InboundFrame) {
        switch (frame, mode) {
        case (.greet, .undecided): mode = .text(TextSession(context))
        case (.json, .undecided): mode = .json(JSONSession(context))
        case (.json, .text) where context.connection.session == nil: mode = .json(JSONSession(context))
        default: break
        }
    }

    mutating func receive(_ line: ByteBuffer) async -> Flow {
        if case .undecided = mode {
            // No sniffing on this connection: decide from the line itself.
            mode = JSONCodec.looksLikeJSON(line) ? .json(JSONSession(context)) : .text(TextSession(context))
        }
        switch mode {
        case .text(var session):
            defer { mode = .text(session) }
            return await session.receive(line)
        case .json(var session):
            defer { mode = .json(session) }
            return await session.receive(line)
        case .undecided:
            return .proceed
        }
    }
}

/// What both sessions need besides their own state.
struct SessionContext: Sendable {
    let connection: ConnectionState
    let hub: ChatHub<Fanout>
    let accounts: AccountDesk
    /// The peer's address, for throttling failed logins.
    let address: String
    /// The password every connection must give before it registers, if the server has one.
    let serverPassword: String?
    /// Whether the port is encrypted, and so whether it takes passwords.
    let security: PortSecurity
    /// `--max-line-bytes`: the longest line a client may send (IRC: the message part, 510 at most).
    let maximumLineBytes: Int
    /// The connection's logger (its peer in the metadata).
    let logger: Logger

    /// Whether `given` is the server password (true when there is none). Compared in constant time, and at
    /// most five wrong guesses a minute from one address, like logins.
    func acceptsServerPassword(_ given: String?) -> Bool {
        guard let required = serverPassword else { return true }
        let key = "server password \(addressKey(address))"
        guard accounts.attempts.begin([(key, 5)]) == nil else { return false }
        let (offered, expected) = (Array((given ?? "").utf8), Array(required.utf8))
        var difference = offered.count ^ expected.count
        for index in expected.indices { difference |= Int((index < offered.count ? offered[index] : 0) ^ expected[index]) }
        guard difference == 0 else { return false }
        accounts.attempts.refund([key])
        return true
    }

    /// The session is registered: the connection learns it, and the log says who it is.
    func registered(_ id: SessionID, as client: Client) {
        let nick = hub.nick(of: id)
        connection.registered(id, nick: nick, as: client)
        accounts.metrics.registered()
        var metadata: Logger.Metadata = ["session": "\(id)", "nick": "\(nick ?? "?")"]
        if let account = hub.account(of: id) { metadata["account"] = "\(account)" }
        logger.info("registered", metadata: metadata)
    }

    /// Throws when passwords must not cross this connection (a plaintext port of a server with TLS ports):
    /// called before any password is looked at.
    func checkPasswordsAccepted() throws(ChatError) {
        if let refusal = security.passwordRefusal { throw refusal }
    }

    /// Runs an account request of a registered session.
    func perform(_ request: Request, session: SessionID) async throws(ChatError) {
        if request.isAccountRequest { try checkPasswordsAccepted() }
        switch request {
        case .register(let password): try await accounts.register(session, password: password, from: address)
        case .login(let nick, let password): try await accounts.login(session, nick: nick, password: password, from: address)
        case .changePassword(let old, let new): try await accounts.changePassword(session, old: old, new: new, from: address)
        default: hub.handle(request, from: session)
        }
    }
}

extension Request {
    var isAccountRequest: Bool {
        switch self {
        case .register, .login, .changePassword: true
        default: false
        }
    }
}

/// Plain-text mode: greet, ask for the server password when there is one, ask for a nickname until one is
/// free, then treat lines as messages and /commands.
struct TextSession: LineSession {
    let context: SessionContext
    private let codec = TextCodec()
    private var passwordGiven: Bool
    private var session: SessionID?

    init(_ context: SessionContext) {
        self.context = context
        self.passwordGiven = context.serverPassword == nil
        context.connection.settle(on: TextRenderer())
        context.connection.send(codec.greeting(server: context.hub.serverName, askingPassword: !passwordGiven))
    }

    mutating func receive(_ line: ByteBuffer) async -> Flow {
        let text = codec.string(from: line)
        guard passwordGiven else {
            guard context.acceptsServerPassword(text) else {
                context.connection.send(.error(ChatError(.serverPassword, "Wrong password. Goodbye."), ref: nil))
                return .stop
            }
            passwordGiven = true
            context.connection.send(codec.nicknamePrompt())
            return .proceed
        }
        guard let session else { return await register(text) }
        do throws(ChatError) {
            guard let request = try TextCommands.request(forLine: text) else { return .proceed }
            // `/join #bad room` reads as room #bad with the key "room": a key for a room that needs none is
            // someone typing a name with a space, so say so rather than drop the rest.
            if case .join(let room, let key?) = request, !context.hub.roomNeedsKey(room) {
                throw ChatError(.invalidRoom, "Room names have no spaces, and \(room) needs no key: /join \(room)-\(key) or /join \(room).")
            }
            if case .history(_, let query, _) = request { context.connection.charge(query.cost - 1) }
            if request.isAccountRequest {
                try await context.perform(request, session: session)
            } else {
                context.hub.handle(request, from: session)
            }
            if case .quit = request { return .stop }
        } catch {
            context.hub.tell(session, .error(error, ref: nil))
        }
        return .proceed
    }

    /// At the nickname prompt a line is the nickname; `/nick NAME`, `/login NICK PASSWORD` and `/quit` also
    /// do what they say.
    private mutating func register(_ text: String) async -> Flow {
        var nick = Sanitizer.trimmed(text)
        guard !nick.isEmpty else { return .proceed }
        var account: String?
        do throws(ChatError) {
            if nick.hasPrefix("/") {
                switch try? TextCommands.request(forLine: nick) {
                case .quit: return .stop
                case .nick(let name): nick = name
                case .login(let name, let password):
                    try context.checkPasswordsAccepted()
                    let verified = try await context.accounts.verify(nick: name, password: password, from: context.address)
                    (nick, account) = (verified.name, verified.name)
                default:
                    throw ChatError(.notRegistered, "Choose a nickname first.")
                }
            }
            let client = context.connection.makeClient()
            let id = try context.hub.register(nick: nick, peer: client, account: account, address: context.address)
            session = id
            context.registered(id, as: client)
        } catch {
            context.connection.send(codec.nicknamePrompt(after: error))
        }
        return .proceed
    }
}

/// JSON-lines mode: `hello` registers (with a password for a registered nick), every other request goes to
/// the chat with its `ref`.
struct JSONSession: LineSession {
    let context: SessionContext
    private let codec = JSONCodec()
    private var session: SessionID?

    init(_ context: SessionContext) {
        self.context = context
        context.connection.settle(on: JSONRenderer())
    }

    mutating func receive(_ line: ByteBuffer) async -> Flow {
        let (decoded, ref) = codec.decode(line)
        do throws(ChatError) {
            switch try decoded.get() {
            case .hello(let version, let nick, let password, let resume, let serverPassword, let joinGeneral):
                guard session == nil else { throw ChatError(.alreadyRegistered, "You are registered already.") }
                if !context.acceptsServerPassword(serverPassword) {
                    let error = ChatError(.serverPassword, "This server needs its password: \"server_password\" in \"hello\" is missing or wrong. Goodbye.")
                    context.connection.send(.error(error, ref: ref))
                    return .stop
                }
                guard version == JSONCodec.version else {
                    throw ChatError(
                        .unsupportedVersion,
                        "This server speaks protocol version \(JSONCodec.version), not \(version)."
                    )
                }
                var account: Account?
                if let password {
                    try context.checkPasswordsAccepted()
                    account = try await context.accounts.verify(nick: nick, password: password, from: context.address)
                }
                let client = context.connection.makeClient()
                let id = try context.hub.register(
                    nick: account?.name ?? nick, peer: client, resume: resume, account: account?.name, address: context.address,
                    joiningGeneral: joinGeneral
                )
                session = id
                context.registered(id, as: client)
            case .request(let request):
                if case .quit = request, session == nil { return .stop }
                guard let session else { throw ChatError(.notRegistered, "Send \"hello\" first.") }
                if case .history(_, let query, _) = request { context.connection.charge(query.cost - 1) }
                if request.isAccountRequest {
                    try await context.perform(request, session: session)
                } else {
                    context.hub.handle(request, ref: ref, from: session)
                }
                if case .quit = request { return .stop }
            }
        } catch {
            if let session {
                context.hub.tell(session, .error(error, ref: ref))
            } else {
                context.connection.send(.error(error, ref: ref))
            }
        }
        return .proceed
    }
}
