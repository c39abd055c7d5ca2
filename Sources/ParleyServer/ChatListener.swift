import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ParleyCore
import ParleyProtocols
import ServiceLifecycle
import Synchronization

/// One port of one front door as a `Service`: binds, accepts, has the door build each connection's pipeline
/// and a `Connection` drive it, and keeps the open connections in a registry. It knows no door by name.
///
/// On graceful shutdown it stops accepting; each connection says goodbye and drains (`ConnectionState.shutDown`);
/// connections still open after `shutdownGrace` (clients that do not read) are closed, so shutdown always ends.
/// It returns only once every connection's session has left the hub.
public struct ChatListener: Service {
    let host: String
    let port: Int
    let endpoint: Endpoint
    let context: PortContext
    /// The certificate of a TLS port; nil: plaintext.
    let tls: TLSProvider?
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    let onListening: @Sendable (SocketAddress) -> Void
    /// Shared by every listener: the limits count an address's connections over all doors.
    let addressLimits: AddressLimits

    init(
        endpoint: Endpoint,
        door: any FrontDoor,
        port: Int,
        tls: TLSProvider?,
        security: PortSecurity,
        addressLimits: AddressLimits,
        liveLimits: LiveLimits,
        operatorLog: OperatorLog,
        configuration: ServerConfiguration,
        hub: ChatHub<Fanout>,
        accounts: AccountDesk,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.host = configuration.host
        self.port = port
        self.endpoint = endpoint
        self.tls = tls
        self.addressLimits = addressLimits
        // Every line of the port and of its connections names the door.
        var logger = logger
        logger[metadataKey: "door"] = "\(endpoint)"
        self.context = PortContext(
            door: door, hub: hub, accounts: accounts, liveLimits: liveLimits,
            serverPassword: configuration.serverPassword, security: security, metrics: accounts.metrics, logger: logger,
            operatorLog: operatorLog
        )
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.onListening = onListening
    }

    public func run() async throws {
        // Shutdown's grace is not live (the service group's deadline was set from it at start).
        let limits = context.liveLimits.current
        let registry = ConnectionRegistry()
        let server: any Channel
        do {
            server = try await bind(registry: registry)
        } catch {
            let failure = ListenerError(portFlag: endpoint.portFlag, host: host, port: port, underlying: error)
            logger.critical("\(failure)")
            throw failure
        }
        guard let address = server.localAddress else { throw ChannelError.unknownLocalAddress }
        logger.notice("listening", metadata: ["address": "\(address.display)"])
        onListening(address)

        let stopping = Atomic(false)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await server.closeFuture.get()
            } onGracefulShutdown: {
                stopping.store(true, ordering: .relaxed)
                server.close(promise: nil)
                // Half the grace to answer what is queued by storing it, the rest to answer it by refusing, so
                // every sender hears back before its connection is closed.
                context.hub.beginShutdown(grace: limits.shutdownGrace / 2)
                registry.shutDownAll(grace: limits.shutdownGrace)
            }
        } onCancel: {
            // Another service failed and the group is stopping: close everything now.
            stopping.store(true, ordering: .relaxed)
            server.close(promise: nil)
            registry.closeAll()
        }
        let failed = !stopping.load(ordering: .relaxed)
        if failed {
            // The listening socket itself failed: the server cannot go on. Its clients are told, as at shutdown.
            logger.critical("listener failed: the listening socket closed")
            registry.shutDownAll(grace: limits.shutdownGrace)
        }
        if Task.isCancelled {
            // Closed already; a short wait for the sessions to leave the hub. In a task of its own, awaited here,
            // because this task is cancelled and every wait in it would end at once; it ends within a second.
            await Task { _ = await registry.waitUntilEmpty(within: .seconds(1)) }.value
            throw CancellationError()
        }
        // Each connection's own drain deadline is the grace; a second more for clients that do not read.
        if await !registry.waitUntilEmpty(within: limits.shutdownGrace + .seconds(1)) {
            registry.closeAll()
            await withTaskCancellationHandler {
                await registry.waitUntilEmpty()
            } onCancel: {
                registry.closeAll()
            }
        }
        if failed { throw ListenerClosed(endpoint: endpoint) }
        logger.notice("stopped")
    }

    private func bind(registry: ConnectionRegistry) async throws -> any Channel {
        let (context, logger, tls, addressLimits) = (context, logger, tls, addressLimits)
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { server in
                server.eventLoop.makeCompletedFuture {
                    // Out of descriptors (EMFILE), accepting again at once would spin: wait a second, say so
                    // at most once a minute, and leave the process the descriptors held in reserve.
                    try server.pipeline.syncOperations.addHandlers(
                        ReserveGate(), AcceptFailureLog(logger: logger), AcceptBackoffHandler(backoffProvider: Self.acceptBackoff)
                    )
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                    switch addressLimits.admit(peer) {
                    case .refused(let reason, let key, let log):
                        if log {
                            context.operatorLog.log(
                                .refused, .notice, "connection refused; said once a minute per address",
                                metadata: ["peer": "\(peer)", "address": "\(key)", "reason": "\(reason)"], to: logger
                            )
                        }
                        guard tls == nil else {
                            // Over TLS a line would cost a whole handshake per refusal, the very work the limit
                            // is there to spare: the connection is closed at once.
                            channel.close(promise: nil)
                            return
                        }
                        // One line in the door's own words, then the close (within seconds, whatever the peer does).
                        try channel.pipeline.syncOperations.addHandler(Refusal(context.door.refusal(reason, serverName: context.hub.serverName)))
                        let deadline = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
                        channel.closeFuture.whenComplete { _ in deadline.cancel() }
                        return
                    case .admitted(let key):
                        channel.closeFuture.whenComplete { _ in addressLimits.release(key) }
                    }
                    // As they are now (SIGHUP may have changed them), once: the connection keeps this copy, also
                    // through an HTTP request that becomes a WebSocket later.
                    let limits = context.liveLimits.current
                    Self.configure(channel, limits: limits)
                    // TLS first, so that whatever the door puts behind it reads and writes plaintext.
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context)) }
                    let opener = ConnectionOpener(
                        open: { channel, outbox, door in
                            let connection = Connection(channel: channel, outbox: outbox, door: door, port: context, limits: limits) { registry.remove($0) }
                            // The driver first: only a connection whose close it will see may enter the registry.
                            try channel.pipeline.syncOperations.addHandler(Connection.Driver(connection))
                            registry.add(connection)
                        },
                        track: { registry.track($0) }
                    )
                    try context.door.setUp(channel, limits: limits, opener: opener)
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// A second's pause for running out of descriptors or memory; other accept errors (a connection reset
    /// before it was accepted) need none.
    private static func acceptBackoff(_ error: IOError) -> TimeAmount? {
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) ? .seconds(1) : nil
    }

    /// Per-connection socket settings. Each is best effort: a peer that resets at once can make setsockopt
    /// fail, and that must cost that one connection nothing more.
    private static func configure(_ channel: any Channel, limits: ServerConfiguration.Limits) {
        guard let options = channel.syncOptions else { return }
        try? options.setOption(.tcpOption(.tcp_nodelay), value: 1)
        // A client that half-closes (`printf … | nc -N`) still gets the replies to what it sent.
        try? options.setOption(.allowRemoteHalfClosure, value: true)
        // Pinned: Linux would let each grow to 4 MiB, which would both unbound memory per client and hide a
        // stalled reader for megabytes.
        try? options.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(limits.socketSendBufferBytes))
        // One socket read per wake-up bounds the raw input waiting in `FrameHandler` to one read.
        try? options.setOption(.maxMessagesPerRead, value: 1)
        // Chat lines are short, and the read buffer stays with the connection between reads: start it small
        // (NIO's default is 2 KiB); it grows for a client that fills it.
        try? options.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536))
        // A peer that vanished without a FIN (power loss, NAT timeout) is found in about two minutes instead
        // of Linux's default two hours: probe after 60 s idle, every 10 s, give up after 6.
        try? options.setOption(.socketOption(.so_keepalive), value: 1)
        try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: 60)
        try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: 10)
        try? options.setOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: 6)
    }
}

/// The listening socket closed while the server was not stopping.
struct ListenerClosed: Error, CustomStringConvertible {
    let endpoint: Endpoint
    var description: String { "the \(endpoint) port's listening socket closed unexpectedly" }
}

/// Logs why accepting failed (out of file descriptors, above all), once a minute at most; `AcceptBackoffHandler`
/// after it waits before accepting again.
private final class AcceptFailureLog: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = any Channel

    let logger: Logger
    private var lastLogged: NIODeadline?
    private var unlogged = 0

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = NIODeadline.now()
        if let last = lastLogged, now - last < .minutes(1) {
            unlogged += 1
        } else {
            lastLogged = now
            logger.error(
                "accepting a connection failed; trying again in a second",
                metadata: ["error": "\(error)", "failures since last logged": "\(unlogged)"]
            )
            unlogged = 0
        }
        context.fireErrorCaught(error)
    }
}

/// A refused connection's whole pipeline: once the connection is active, one line, then the end of output, and
/// the close once the peer has closed too. Closing with its input unread would send a reset, which makes some
/// peers drop the line (an IRC client has sent CAP, NICK and USER by then).
private final class Refusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let line: ByteBuffer

    init(_ line: ByteBuffer) {
        self.line = line
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { context.close(promise: nil) }
    }

    private func refuse(_ context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(line)).whenComplete { _ in channel.close(mode: .output, promise: nil) }
    }
}

/// A port that could not be opened, said in words an operator can act on.
public struct ListenerError: Error, CustomStringConvertible {
    let portFlag: String
    let host: String
    let port: Int
    let underlying: any Error

    public var description: String {
        let flag = portFlag
        switch (underlying as? IOError)?.errnoCode {
        case EADDRINUSE: return "port \(port) is in use (another parley?); stop it, or choose another with \(flag)"
        case EACCES: return "port \(port) needs privileges this user does not have (ports below 1024 do); choose another with \(flag)"
        case EADDRNOTAVAIL: return "\(host) is not an address of this machine; check --host"
        default: return "cannot listen on \(host):\(port): \(underlying)"
        }
    }
}
