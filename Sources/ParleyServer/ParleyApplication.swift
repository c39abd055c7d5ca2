import Logging
import NIOCore
import ParleyCore
import ServiceLifecycle
import UnixSignals

/// Assembles a server from its configuration: the chat hub and the services that run it, in one group.
/// The CLI runs it; tests run the same assembly on port 0.
public struct ParleyApplication: Sendable {
    public let configuration: ServerConfiguration
    public let hub: ChatHub<Fanout>
    let logger: Logger

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.hub = ChatHub(serverName: configuration.serverName, sink: Fanout())
        self.logger = logger
    }

    /// The services in start order (a group stops them in reverse): the listener, then the console.
    public func services(
        console: Bool, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ChatListener(configuration: configuration, hub: hub, logger: logger, onListening: onListening))
        ]
        if console {
            // The console returning (after `exit`) shuts the whole server down gracefully.
            services.append(
                .init(service: AdminConsole(hub: hub, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup)
            )
        }
        return services
    }

    /// SIGINT and SIGTERM shut down gracefully; a shutdown stuck past the grace period is cancelled.
    public func serviceGroupConfiguration(
        console: Bool, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) -> ServiceGroupConfiguration {
        var group = ServiceGroupConfiguration(
            services: services(console: console, onListening: onListening),
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = configuration.limits.shutdownGrace + .seconds(5)
        return group
    }
}
