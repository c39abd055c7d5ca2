import Foundation
import Logging
import NIOCore
import ParleyCore
import ParleyStore
import ServiceLifecycle
import UnixSignals

/// Assembles a server from its configuration: the store, the chat hub and the services that run them, in one
/// group. The CLI runs it; tests run the same assembly on port 0 with a temporary data folder.
public struct ParleyApplication: Sendable {
    public let configuration: ServerConfiguration
    public let hub: ChatHub<Fanout>
    public let store: any MessageStore
    let logger: Logger
    private let closeStore: @Sendable () async -> Void

    /// Opens the data folder's database (creating folder and file when missing) and prepares the hub to carry
    /// on its message ids. Throws a `StoreError` that says what to do when the database cannot be used.
    public static func open(configuration: ServerConfiguration, logger: Logger) async throws -> ParleyApplication {
        guard configuration.storesMessages else {
            return ParleyApplication(configuration: configuration, logger: logger, store: NoStore(), lastID: 0) {}
        }
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.cannotOpen(path: configuration.dataDirectory, reason: error.localizedDescription)
        }
        let store = try await SQLiteStore.open(directory: configuration.dataDirectory)
        let lastID: Int64
        do {
            lastID = try await store.lastMessageID()
        } catch {
            await store.close()
            throw error
        }
        return ParleyApplication(configuration: configuration, logger: logger, store: store, lastID: lastID) { await store.close() }
    }

    private init(
        configuration: ServerConfiguration, logger: Logger, store: any MessageStore, lastID: Int64,
        closeStore: @escaping @Sendable () async -> Void
    ) {
        self.configuration = configuration
        self.logger = logger
        self.store = store
        self.closeStore = closeStore
        self.hub = ChatHub(
            serverName: configuration.serverName, sink: Fanout(), firstMessageID: lastID + 1,
            historyOnJoin: configuration.historyOnJoin
        )
    }

    /// The services in start order; a group stops them in reverse: the console and the listener first (so no
    /// new work arrives), then the publisher (which drains what is queued), then the store.
    public func services(
        console: Bool, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: StoreService(close: closeStore)),
            .init(service: PublisherService(publisher: Publisher(hub: hub, store: store) { [logger] error in
                logger.error("storing messages failed; they were not delivered", metadata: ["error": "\(error)"])
            })),
            .init(service: ChatListener(configuration: configuration, hub: hub, logger: logger, onListening: onListening)),
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

/// Keeps the database open while the server runs and closes it last.
struct StoreService: Service {
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}

/// Runs the publisher; on shutdown (after the listener has stopped) it drains the queue, then returns.
struct PublisherService: Service {
    let publisher: Publisher<Fanout>

    func run() async throws {
        await withGracefulShutdownHandler {
            await publisher.run()
        } onGracefulShutdown: {
            publisher.hub.finish()
        }
    }
}
