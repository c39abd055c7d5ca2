import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What one hostile client does alongside the load (`parley bench --attack`), so that the cost of an attack to
/// everyone else is measured as the latency of the bench's own messages, against a run without it. The
/// attacker speaks IRC, where every one of these was once enough to freeze a Parley server (issue 13).
public enum BenchAttack: String, Sendable, CaseIterable {
    /// MODE lines of as many changes as a line holds, on a room the attacker created (so it is its operator).
    case mode
    /// PRIVMSG to as many comma targets as a line holds; the target is the attacker itself, so that no bench
    /// client sees a line it does not expect.
    case targets
    /// The longest history page of the bench's first room, asked again and again (the answers are read).
    case history
    /// Joins the bench's first room and never reads: the server must drop it without slowing anyone.
    case slow

    /// What it sends once registered.
    func setup(room: String) -> [String] {
        switch self {
        case .mode: ["JOIN #pbattack"]
        case .targets: []
        case .history, .slow: ["JOIN \(room)"]
        }
    }

    /// The line it sends over and over, as fast as the server takes it; nil: it only sits there.
    func flood(nick: String, room: String) -> String? {
        switch self {
        // 480 changes: 510 bytes with the command.
        case .mode: "MODE #pbattack " + String(repeating: "+t-t", count: 120) + "\r\n"
        case .targets: "PRIVMSG " + Array(repeating: nick, count: 480 / (nick.utf8.count + 1)).joined(separator: ",") + " :x\r\n"
        case .history: "HISTORY \(room) 500\r\n"
        case .slow: nil
        }
    }
}

/// Runs one attack until a deadline, reconnecting whenever the server drops it (a real attacker would), and
/// counts the lines it got out and the connections it took.
final class Attacker: Sendable {
    private let attack: BenchAttack
    private let host: String
    private let port: Int
    private let room: String
    private let group: any EventLoopGroup
    private let counts = NIOLockedValueBox((lines: 0, connections: 0))

    init(_ attack: BenchAttack, host: String, port: Int, room: String, group: any EventLoopGroup) {
        self.attack = attack
        self.host = host
        self.port = port
        self.room = room
        self.group = group
    }

    /// Attacks until `end`; then reports what it did.
    func run(until end: NIODeadline) async -> BenchReport.Attack {
        while NIODeadline.now() < end {
            let connection = counts.withLockedValue {
                $0.connections += 1
                return $0.connections
            }
            let nick = "pbatk\(connection)"
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    // A slow reader with a small window: the server's send queue for it fills within the run.
                    .channelOption(.socketOption(.so_rcvbuf), value: attack == .slow ? 4096 : 65536)
                    .channelInitializer { [self] channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers([
                                ByteToMessageHandler(LineDecoder()),
                                AttackHandler(attack: attack, nick: nick, room: room, end: end, counts: counts),
                            ])
                        }
                    }
                    .connect(host: host, port: port).get()
                let closer = channel.eventLoop.scheduleTask(deadline: end) { channel.close(promise: nil) }
                try? await channel.closeFuture.get()
                closer.cancel()
            } catch {
                // Refused (a limit on connections, say): try again shortly, as an attacker would.
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return counts.withLockedValue { BenchReport.Attack(kind: attack.rawValue, lines: $0.lines, connections: $0.connections) }
    }
}

/// One attacking connection: registers, sends the attack's setup, then writes its line whenever the socket
/// takes more, in batches, so the bench's own clients on the same event loop still get their turns.
private final class AttackHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case registering, attacking
    }

    private let attack: BenchAttack
    private let nick: String
    private let room: String
    private let end: NIODeadline
    private let counts: NIOLockedValueBox<(lines: Int, connections: Int)>
    private let line: ByteBuffer?
    private var phase = Phase.registering

    init(attack: BenchAttack, nick: String, room: String, end: NIODeadline, counts: NIOLockedValueBox<(lines: Int, connections: Int)>) {
        self.attack = attack
        self.nick = nick
        self.room = room
        self.end = end
        self.counts = counts
        self.line = attack.flood(nick: nick, room: room).map { ByteBuffer(string: $0) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: BenchProtocol.irc.registration(nick: nick))), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let received = unwrapInboundIn(data)
        guard received.readableBytesView.starts(with: "PING ".utf8) || phase == .registering else { return }
        let text = String(buffer: received)
        if let reply = BenchProtocol.irc.reply(to: text) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
        } else if phase == .registering, BenchProtocol.irc.isRegistered(text) {
            phase = .attacking
            for setup in attack.setup(room: room) {
                context.write(wrapOutboundOut(ByteBuffer(string: setup + "\r\n")), promise: nil)
            }
            context.flush()
            if attack == .slow {
                context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
            }
            flood(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flood(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func flood(context: ChannelHandlerContext) {
        guard phase == .attacking, let line, context.channel.isActive else { return }
        var written = 0
        while context.channel.isWritable, written < 63 {
            context.write(wrapOutboundOut(line), promise: nil)
            written += 1
        }
        // Counted once the socket took them: writes complete in order, so the last one's success says all did.
        let sent = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(line), promise: sent)
        sent.futureResult.whenSuccess { [counts, written] in counts.withLockedValue { $0.lines += written + 1 } }
        guard NIODeadline.now() < end else { return }
        // Still writable: the socket took it all. Go again after whatever else this loop has to do.
        if context.channel.isWritable {
            context.eventLoop.assumeIsolated().execute { self.flood(context: context) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
