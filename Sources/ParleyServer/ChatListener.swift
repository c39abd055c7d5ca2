import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ParleyProtocols
import ServiceLifecycle

/// The text/JSON port as a `Service`: binds, accepts, and owns every connection in one discarding task group.
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

    public init(
        configuration: ServerConfiguration,
        hub: ChatHub<Fanout>,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.host = configuration.host
        self.port = configuration.port
        self.handler = ConnectionHandler(hub: hub, fanout: Fanout(), limits: configuration.limits, logger: logger)
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.onListening = onListening
    }

    public func run() async throws {
        let limits = handler.limits
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A peer that vanished without a FIN (power loss, NAT timeout) is found in about two minutes
            // instead of Linux's default two hours: probe after 60 s idle, every 10 s, give up after 6.
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: 60)
            .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: 10)
            .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: 6)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // A client that half-closes (`printf … | nc -N`) still gets the replies to what it sent.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(limits.socketSendBufferBytes))
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FrameHandler(limits: limits.line, stripsTelnet: true, greetingWindow: limits.greetingWindow.timeAmount)
                    )
                    return try NIOAsyncChannel<InboundFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard let address = server.channel.localAddress else { throw ChannelError.unknownLocalAddress }
        logger.notice("listening", metadata: ["address": "\(address.display)"])
        onListening(address)

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await acceptConnections(server) }
            group.addTask {
                // Started only once shutdown begins: the deadline for clients that do not read.
                guard (try? await gracefulShutdown()) != nil else { return }
                try? await Task.sleep(for: limits.shutdownGrace)
            }
            await group.next()
            group.cancelAll()
        }
        logger.notice("stopped")
    }

    private func acceptConnections(_ server: NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never>) async {
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { connections in
                    try await server.executeThenClose { inbound in
                        for try await channel in inbound {
                            connections.addTask { await handler.run(channel) }
                        }
                    }
                }
            } onGracefulShutdown: {
                server.channel.close(promise: nil)
            }
        } catch {
            logger.error("listener failed", metadata: ["error": "\(error)"])
        }
    }
}
