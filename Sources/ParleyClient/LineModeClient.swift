import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import ParleyTerminal

/// `parley connect` when stdin or stdout is not a terminal: for scripts, bots and tests.
///
/// Each input line is sent (commands allowed); each event is printed as one plain line (or, with `--json`,
/// as the raw protocol line). At end of input the client waits until the server has handled everything it
/// sent (a final `ping` comes back as `pong` only after every earlier request), then quits and exits 0.
public enum LineModeClient {
    private enum Input {
        case line(String)
        case endOfInput
        case event(ChatEvent, raw: String)
        case closed
    }

    private enum Phase {
        /// Waiting for `welcome`; input lines wait too.
        case registering(queued: [String], inputEnded: Bool)
        case chatting
        /// Input ended; waiting for the final pong.
        case draining
        /// `quit` sent; waiting for the server to close.
        case quitting
    }

    /// Runs the session; returns the exit status.
    public static func run(_ options: ClientOptions) async -> Int32 {
        guard let (channel, _, _) = await ServerLink.connectOrReport(options) else { return 1 }
        let (inputs, feed) = AsyncStream.makeStream(of: Input.self)
        do {
            return try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let codec = JSONCodec()
                        do {
                            for try await frame in inbound {
                                guard case .line(let buffer) = frame else { continue }
                                let raw = String(decoding: buffer.readableBytesView, as: UTF8.self)
                                if let event = codec.decodeEvent(raw) {
                                    feed.yield(.event(event, raw: raw))
                                } else if raw.hasPrefix("!!! ") {
                                    // A connection refused before it began says why in one plain line.
                                    printError(String(raw.dropFirst(4)))
                                }
                            }
                        } catch {}
                        feed.yield(.closed)
                    }
                    group.addTask {
                        var pending: [UInt8] = []
                        for await chunk in StandardInput.chunks() {
                            pending.append(contentsOf: chunk)
                            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                                var line = Array(pending[..<newline])
                                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                                feed.yield(.line(String(decoding: line, as: UTF8.self)))
                                pending.removeFirst(newline + 1)
                            }
                        }
                        if !pending.isEmpty { feed.yield(.line(String(decoding: pending, as: UTF8.self))) }
                        feed.yield(.endOfInput)
                    }
                    var session = Session(options: options, outbound: outbound)
                    try await outbound.write(JSONCodec().encodeHello(nick: options.nick, password: options.password, serverPassword: options.serverPassword))
                    let status = try await session.run(inputs)
                    group.cancelAll()
                    return status
                }
            }
        } catch {
            printError(ClientError.connectionLost.description)
            return 1
        }
    }

    private struct Session {
        let options: ClientOptions
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        let codec = JSONCodec()
        let text = TextCodec()
        var phase = Phase.registering(queued: [], inputEnded: false)
        var currentRoom: String? = RoomName.general.display
        /// The nick the server knows this client by (it may change with /nick).
        var currentNick: String
        var nextRef = 1
        /// What was sent, by ref, so an ack can be shown as the message it acknowledges.
        var sent: [String: Request] = [:]

        init(options: ClientOptions, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
            self.options = options
            self.outbound = outbound
            self.currentNick = options.nick
        }

        mutating func run(_ inputs: AsyncStream<Input>) async throws -> Int32 {
            for await input in inputs {
                switch (input, phase) {
                case (.event(let event, let raw), _):
                    if let status = try await handle(event, raw: raw) { return status }
                case (.line(let line), .registering(var queued, let ended)):
                    queued.append(line)
                    phase = .registering(queued: queued, inputEnded: ended)
                case (.line(let line), .chatting):
                    try await submit(line)
                case (.line, _):
                    continue
                case (.endOfInput, .registering(let queued, _)):
                    phase = .registering(queued: queued, inputEnded: true)
                case (.endOfInput, .chatting):
                    try await drain()
                case (.endOfInput, _):
                    continue
                case (.closed, .quitting):
                    return 0
                case (.closed, _):
                    printError(ClientError.connectionLost.description)
                    return 1
                }
            }
            return 1
        }

        /// Handles one event; returns an exit status when the session is over.
        mutating func handle(_ event: ChatEvent, raw: String) async throws -> Int32? {
            switch event {
            case .welcome(let nick, _, _, _, _):
                currentNick = nick
                print(event, raw: raw)
                guard case .registering(let queued, let ended) = phase else { return nil }
                phase = .chatting
                for room in options.room.map({ [$0] }) ?? options.rooms { try await send(.join(room)) }
                for line in queued { try await submit(line) }
                if ended { try await drain() }
                return nil
            case .error(let error, _) where isRegistering:
                printError(error.message)
                return 2
            case .joined(let room, let nick, _, _) where nick.lowercased() == currentNick.lowercased():
                currentRoom = room
            case .left(let room, let nick, _) where nick.lowercased() == currentNick.lowercased() && room.lowercased() == currentRoom?.lowercased():
                currentRoom = nil
            case .nickChanged(let old, let new) where old.lowercased() == currentNick.lowercased():
                currentNick = new
            case .ack(let ref, let ack):
                guard let ref, case .whisper(let to, let text, let kind, _)? = sent.removeValue(forKey: ref) else {
                    if let ref { sent[ref] = nil }
                    break
                }
                let message = ChatMessage(id: ack.id, time: ack.time, from: currentNick, target: .user(to), kind: kind, text: text)
                print(.ack(ref: ref, message: message), raw: raw)
                return nil
            case .pong(let ref) where ref == "parley-eof":
                if case .draining = phase {
                    phase = .quitting
                    try await send(.quit(reason: nil))
                }
                return nil
            case .shutdown:
                print(event, raw: raw)
                phase = .quitting  // the server closes next; that is a clean end
                return nil
            default:
                break
            }
            print(event, raw: raw)
            return nil
        }

        var isRegistering: Bool { if case .registering = phase { true } else { false } }

        func write(_ line: String) { LineModeClient.write(line) }

        mutating func submit(_ line: String) async throws {
            switch ClientCommands.action(forLine: line, currentRoom: currentRoom) {
            case .send(let request):
                // Like text mode on the server, /join makes the room current at once, so the next line goes there.
                if case .join(let room, _) = request, let name = try? RoomName(validating: room) { currentRoom = name.display }
                try await send(request)
            case .switchRoom(let room): currentRoom = room
            // Line mode has no windows: a query with text is a private message.
            case .query(let nick, let text?): try await send(.whisper(to: nick, text: text, kind: .normal))
            case .query(_, nil), .close, .find, .ignore, .unignore: break
            case .help: for line in ClientCommands.helpLines { write("*** \(line)") }
            case .error(let message): write("!!! \(message)")
            case .clear, .reconnect, .nothing: break
            }
        }

        mutating func send(_ request: Request) async throws {
            let ref = "c\(nextRef)"
            nextRef += 1
            if case .whisper = request { sent[ref] = request }
            if case .quit = request { phase = .quitting }
            guard let frame = codec.encode(request, ref: ref) else { return }
            try await outbound.write(frame)
        }

        /// End of input: a ping goes behind everything sent; its pong means all of it was handled.
        mutating func drain() async throws {
            phase = .draining
            try await outbound.write(codec.encode(.ping, ref: "parley-eof")!)
        }

        func print(_ event: ChatEvent, raw: String) {
            if options.json {
                write(raw)
                return
            }
            let focused: Bool =
                switch event {
                case .message(let message): if case .room(let room) = message.target { room.lowercased() == currentRoom?.lowercased() } else { true }
                default: true
                }
            for line in text.render(event, focused: focused) { write(Sanitizer.text(line)) }
        }
    }

    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("parley: \(message)\n".utf8))
    }
}
