import Foundation
import Logging
import NIOCore
import NIOPosix
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
    public let accountStore: any AccountStore
    public let roomStore: any RoomStore
    /// What `/metrics` shows.
    public let metrics: ServerMetrics
    let logger: Logger
    /// The server's one pool of password-hashing threads.
    let hashing = PasswordHashing()
    /// The TLS ports' certificate, when there are TLS ports.
    public let tls: TLSProvider?
    private let closeStore: @Sendable () async -> Void

    /// Opens the data folder's database (creating folder and file when missing) and prepares the hub to carry
    /// on its message ids. Throws a `StoreError` that says what to do when the database cannot be used.
    public static func open(configuration: ServerConfiguration, logger: Logger) async throws -> ParleyApplication {
        var tls: TLSProvider?
        if configuration.usesTLS {
            let provider = try TLSProvider(
                source: configuration.certificate, dataDirectory: configuration.dataDirectory, serverName: configuration.serverName
            )
            logger.notice(
                "TLS certificate",
                metadata: ["sha256": "\(provider.fingerprint)", "certificate": "\(provider.description)", "file": "\(provider.certificatePath)"]
            )
            tls = provider
        }
        let motd = try configuration.motdFile.map(MessageOfTheDay.read) ?? []
        guard configuration.storesMessages else {
            let application = ParleyApplication(
                configuration: configuration, logger: logger, store: NoStore(), accounts: MemoryAccountStore(), rooms: NoStore(), lastID: 0,
                tls: tls
            ) {}
            application.hub.motd = motd
            return application
        }
        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.cannotOpen(path: configuration.dataDirectory, reason: error.localizedDescription)
        }
        // Held while the server runs: a second server on the same folder is refused here, naming the first.
        let lock = try ServerLock.acquire(directory: configuration.dataDirectory)
        let store: SQLiteStore
        do {
            store = try await SQLiteStore.open(directory: configuration.dataDirectory)
        } catch {
            lock.release()
            throw error
        }
        let lastID: Int64
        let accounts: [Account]
        let policies: [RoomPolicy]
        do {
            lastID = try await store.lastMessageID()
            accounts = try await store.accounts()
            policies = try await store.roomPolicies()
        } catch {
            await store.close()
            lock.release()
            throw error
        }
        let application = ParleyApplication(
            configuration: configuration, logger: logger, store: store, accounts: store, rooms: store, lastID: lastID, tls: tls
        ) {
            await store.close()
            lock.release()
        }
        application.hub.setAccounts(accounts)
        application.hub.setRoomPolicies(policies)
        application.hub.motd = motd
        return application
    }

    private init(
        configuration: ServerConfiguration, logger: Logger, store: any MessageStore, accounts: any AccountStore,
        rooms: any RoomStore, lastID: Int64, tls: TLSProvider?, closeStore: @escaping @Sendable () async -> Void
    ) {
        self.tls = tls
        self.configuration = configuration
        self.logger = logger
        let metrics = ServerMetrics()
        self.metrics = metrics
        self.store = store
        self.accountStore = accounts
        self.roomStore = rooms
        self.closeStore = closeStore
        self.hub = ChatHub(
            serverName: configuration.serverName, sink: Fanout(flushInterval: configuration.flushInterval, metrics: metrics), firstMessageID: lastID + 1,
            historyOnJoin: configuration.historyOnJoin, roomLimits: configuration.roomLimits
        )
    }

    /// The services in start order; a group stops them in reverse: the console and the listener first (so no
    /// new work arrives), then the publisher (which drains what is queued), then the store.
    /// `reread` gives the settings as they are now, for SIGHUP (the executable reads its configuration file
    /// again); without it SIGHUP reloads only the certificate and the message of the day.
    public func services(
        console: Bool, terminal: ConsoleTerminal? = nil, reread: (@Sendable () -> ServerConfiguration?)? = nil,
        onListening: @escaping @Sendable (Endpoint, SocketAddress) -> Void = { _, _ in }
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var accountLimits = AccountLimits()
        accountLimits.passwordCost = configuration.passwordCost
        let operatorLog = OperatorLog()
        let desk = AccountDesk(
            store: accountStore, hub: hub, limits: accountLimits, hashing: hashing, metrics: metrics, logger: logger, operatorLog: operatorLog
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: StoreService(close: { [closeStore] in
                await closeStore()
                try? await desk.hashing.pool.shutdownGracefully()
            })),
            // Measured where the publisher commits and reads history: the store itself counts nothing.
            .init(service: PublisherService(publisher: Publisher(hub: hub, store: MeasuredStore(store: store, metrics: metrics), rooms: roomStore) { [logger] error in
                operatorLog.log(.storeFailure, .error, "storing failed; nothing that needed it was delivered", metadata: ["error": "\(error)"], to: logger)
            })),
            .init(service: AccountWatcher(store: accountStore, hub: hub, logger: logger)),
            .init(service: RestrictionTimer(hub: hub)),
            .init(service: MemoryTrimmer(hub: hub, logger: logger)),
        ]
        let addressLimits = AddressLimits(configuration.addressLimits)
        let liveLimits = LiveLimits(configuration.limits)
        services.append(
            .init(service: Reloader(
                provider: tls, motd: configuration.motdFile, hub: hub, limits: liveLimits, addressLimits: addressLimits, reread: reread, logger: logger
            ))
        )
        let directory = PortDirectory()
        for (endpoint, port) in configuration.endpoints where port != 0 { directory.record(endpoint, port: port) }
        var listeners: [ChatListener] = []
        let site = WebSite(
            serverName: configuration.serverName, metrics: metrics, metricsAllowed: configuration.metricsAllowed,
            allowedOrigins: Set(configuration.allowedOrigins.map(WebSite.normalizedOrigin)),
            trustedProxies: configuration.trustedProxies, health: HealthProbe(store: store)
        )
        for (endpoint, port) in configuration.endpoints {
            let door: any FrontDoor =
                switch endpoint.door {
                case .lines: LinesDoor()
                case .irc: IRCDoor()
                case .http: HTTPDoor(site: site)
                }
            let security = PortSecurity(
                endpoint: endpoint, directory: directory,
                // A door's plaintext port refuses passwords when the same door has a TLS port to send them to.
                acceptsPasswords: endpoint.tls || configuration.allowPlaintextPasswords
                    || !configuration.endpoints.contains { $0.endpoint == Endpoint(door: endpoint.door, tls: true) },
                // Only IRC's own ports advertise it: it names the IRC TLS port, no port for IRC over WebSocket.
                strictTransportDuration: tls.map(\.selfIssued) ?? true || configuration.ircTLSPort == nil || endpoint.door != .irc
                    ? nil : configuration.strictTransportDuration
            )
            let listener = ChatListener(
                endpoint: endpoint, door: door, port: port, tls: endpoint.tls ? tls : nil, security: security, addressLimits: addressLimits,
                liveLimits: liveLimits, operatorLog: operatorLog, configuration: configuration,
                hub: hub, accounts: desk, logger: logger
            ) { address in
                if let bound = address.port { directory.record(endpoint, port: bound) }
                onListening(endpoint, address)
            }
            listeners.append(listener)
        }
        services.append(.init(service: Listeners(listeners: listeners)))
        if console {
            // The console returning (after `exit`) shuts the whole server down gracefully.
            services.append(
                .init(service: AdminConsole(hub: hub, terminal: terminal, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup)
            )
        }
        return services
    }

    /// SIGINT and SIGTERM shut down gracefully; a shutdown stuck past the grace period is cancelled.
    public func serviceGroupConfiguration(
        console: Bool, terminal: ConsoleTerminal? = nil, reread: (@Sendable () -> ServerConfiguration?)? = nil,
        onListening: @escaping @Sendable (Endpoint, SocketAddress) -> Void = { _, _ in }
    ) -> ServiceGroupConfiguration {
        var group = ServiceGroupConfiguration(
            services: services(console: console, terminal: terminal, reread: reread, onListening: onListening),
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = configuration.limits.shutdownGrace + .seconds(5)
        return group
    }
}

/// Every port, as one service: a group stops its services one after another, and each listener's shutdown
/// takes up to the grace period, so four of them in turn would outlast the group's deadline. Together they
/// say goodbye at once. The first that fails (a port in use) stops the others.
struct Listeners: Service {
    let listeners: [ChatListener]

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for listener in listeners { group.addTask { try await listener.run() } }
        }
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

/// Notices account changes made by another process (`parley account …`) and tells the hub, so a running
/// server needs no restart. The store keeps a version of its accounts (a trigger moves it on every change); asking for
/// it once a second is cheaper than any notification channel.
struct AccountWatcher: Service {
    let store: any AccountStore
    let hub: ChatHub<Fanout>
    let logger: Logger

    func run() async throws {
        var seen = (try? await store.changeCounter()) ?? 0
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .seconds(1)) })) != nil {
            guard let now = try? await store.changeCounter(), now != seen else { continue }
            seen = now
            if let accounts = try? await store.accounts() {
                hub.setAccounts(accounts)
                logger.info("accounts reloaded", metadata: ["count": "\(accounts.count)"])
            }
        }
    }
}

/// Lifts bans and mutes when they run out, and says so in their rooms. Once a second: durations are typed in
/// seconds at the finest, and a join or message is checked against the clock anyway, so a late tick never
/// keeps anyone out.
struct RestrictionTimer: Service {
    let hub: ChatHub<Fanout>

    func run() async throws {
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: .seconds(1)) })) != nil {
            hub.expireRestrictions()
        }
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
