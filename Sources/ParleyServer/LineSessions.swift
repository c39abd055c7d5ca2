import NIOCore
import ParleyCore
import ParleyProtocols

/// What the reader does after each line.
enum Flow {
    case proceed
    /// The client asked to leave (or must): stop reading and let the goodbye drain.
    case stop
}

/// One wire format's adapter between lines and the chat: registration first, then requests.
protocol LineSession {
    mutating func receive(_ line: ByteBuffer) -> Flow
}

/// Plain-text mode: greet, ask for a nickname until one is free, then treat lines as messages and /commands.
struct TextSession: LineSession {
    let connection: ConnectionState
    let hub: ChatHub<Fanout>
    private let codec = TextCodec()
    private var session: SessionID?

    init(connection: ConnectionState, hub: ChatHub<Fanout>) {
        self.connection = connection
        self.hub = hub
        connection.settle(on: .text)
        connection.send(codec.greeting(server: hub.serverName))
    }

    mutating func receive(_ line: ByteBuffer) -> Flow {
        let text = codec.string(from: line)
        guard let session else { return register(text) }
        do throws(ChatError) {
            guard let request = try TextCommands.request(forLine: text) else { return .proceed }
            hub.handle(request, from: session)
            if case .quit = request { return .stop }
        } catch {
            connection.send(.error(error, ref: nil))
        }
        return .proceed
    }

    /// At the nickname prompt a line is the nickname; `/nick NAME` and `/quit` also do what they say.
    private mutating func register(_ text: String) -> Flow {
        var nick = Sanitizer.trimmed(text)
        guard !nick.isEmpty else { return .proceed }
        if nick.hasPrefix("/") {
            switch try? TextCommands.request(forLine: nick) {
            case .quit: return .stop
            case .nick(let name): nick = name
            default:
                connection.send(codec.nicknamePrompt(after: ChatError(.notRegistered, "Choose a nickname first.")))
                return .proceed
            }
        }
        let client = connection.makeClient(format: .text)
        do throws(ChatError) {
            let id = try hub.register(nick: nick, peer: client)
            session = id
            connection.registered(id, as: client)
        } catch {
            connection.send(codec.nicknamePrompt(after: error))
        }
        return .proceed
    }
}

/// JSON-lines mode: `hello` registers, every other request goes to the chat with its `ref`.
struct JSONSession: LineSession {
    let connection: ConnectionState
    let hub: ChatHub<Fanout>
    private let codec = JSONCodec()
    private var session: SessionID?

    init(connection: ConnectionState, hub: ChatHub<Fanout>) {
        self.connection = connection
        self.hub = hub
        connection.settle(on: .json)
    }

    mutating func receive(_ line: ByteBuffer) -> Flow {
        let (decoded, ref) = codec.decode(line)
        do throws(ChatError) {
            switch try decoded.get() {
            case .hello(let version, let nick, let resume):
                guard session == nil else { throw ChatError(.alreadyRegistered, "You are registered already.") }
                guard version == JSONCodec.version else {
                    throw ChatError(
                        .unsupportedVersion,
                        "This server speaks protocol version \(JSONCodec.version), not \(version)."
                    )
                }
                let client = connection.makeClient(format: .json)
                let id = try hub.register(nick: nick, peer: client, resume: resume)
                session = id
                connection.registered(id, as: client)
            case .request(let request):
                if case .quit = request, session == nil { return .stop }
                guard let session else { throw ChatError(.notRegistered, "Send \"hello\" first.") }
                hub.handle(request, ref: ref, from: session)
                if case .quit = request { return .stop }
            }
        } catch {
            connection.send(.error(error, ref: ref))
        }
        return .proceed
    }
}
