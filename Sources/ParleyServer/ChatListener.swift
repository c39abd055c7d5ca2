import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ParleyProtocols
import ServiceLifecycle

/// One port of one front door as a `Service`: binds, accepts, has the door build each connection's pipeline,
/// and owns every connection in one discarding task group. It knows no door by name.
///
/// On graceful shutdown it stops accepting; each connection says goodbye and drains (see `ConnectionHandler`);
/// connections still open after `shutdownGrace` (clients that do not read) are cancelled, so shutdown always
/// ends.
public struct ChatListener: Service {
    let host: String
    let port: Int
    let handler: ConnectionHandler
    let logger: Logger
    let eventLoopGroup: any EventLoopGroup
    let onListening: @Sendable (SocketAddress) -> Void

    init(
        door: any FrontDoor,
        port: Int,
        configuration: ServerConfiguration,
        hub: ChatHub<Fanout>,
        accounts: AccountDesk,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.host = configuration.host
        self.port = port
        self.handler = ConnectionHandler(
            door: door, hub: hub, accounts: accounts, limits: configuration.limits, serverPassword: configuration.serverPassword, logger: logger
        )
        var logger = logger
        logger[metadataKey: "door"] = "\(door.name)"
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.onListening = onListening
    }

    public func run() async throws {
        let limits = handler.limits
        let server: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            server = try await bind(limits: limits)
        } catch {
            let failure = ListenerError(door: door, host: host, port: port, underlying: error)
            logger.critical("\(failure)")
            throw failure
        }
        guard let address = server.channel.localAddress else { throw ChannelError.unknownLocalAddress }
        logger.notice("listening", metadata: ["address": "\(address.display)"])
        onListening(address)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await acceptConnections(server) }
            group.addTask {
                // Started only once shutdown begins: the deadline for clients that do not read (the grace
                // plus a second, since each connection's own drain deadline is the grace).
                guard (try? await gracefulShutdown()) != nil else { return }
                try? await Task.sleep(for: limits.shutdownGrace + .seconds(1))
            }
            try await group.next()
            group.cancelAll()
        }
        logger.notice("stopped")
    }

    private var door: any FrontDoor { handler.door }

    private func bind(limits: ServerConfiguration.Limits) async throws -> NIOAsyncChannel<AcceptedConnection, Never> {
        try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    Self.configure(channel, limits: limits)
                    let outbox = try door.setUp(channel, limits: limits)
                    return AcceptedConnection(channel: try NIOAsyncChannel(wrappingChannelSynchronously: channel), outbox: outbox)
                }
            }
    }

    private func acceptConnections(_ server: NIOAsyncChannel<AcceptedConnection, Never>) async throws {
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { connections in
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            connections.addTask { await handler.run(connection) }
                        }
                    }
                }
            } onGracefulShutdown: {
                server.channel.close(promise: nil)
                // Half the grace to answer what is queued by storing it, the rest to answer it by refusing, so
                // every sender hears back before its connection is closed.
                handler.hub.beginShutdown(grace: handler.limits.shutdownGrace / 2)
            }
        } catch is CancellationError {
            throw CancellationError()  // another service failed and the group is stopping: nothing to report
        } catch {
            // The listening socket itself failed: the server cannot go on, so the service fails and the
            // process exits non-zero with this in the log.
            logger.critical("listener failed", metadata: ["error": "\(error)"])
            throw error
        }
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

/// A port that could not be opened, said in words an operator can act on.
public struct ListenerError: Error, CustomStringConvertible {
    let door: any FrontDoor
    let host: String
    let port: Int
    let underlying: any Error

    public var description: String {
        let flag = door.portFlag
        switch (underlying as? IOError)?.errnoCode {
        case EADDRINUSE: return "port \(port) is in use (another parley?); stop it, or choose another with \(flag)"
        case EACCES: return "port \(port) needs privileges this user does not have (ports below 1024 do); choose another with \(flag)"
        case EADDRNOTAVAIL: return "\(host) is not an address of this machine; check --host"
        default: return "cannot listen on \(host):\(port): \(underlying)"
        }
    }
}
