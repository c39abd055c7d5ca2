import Foundation
import Logging
import NIOCore
import NIOPosix
import ParleyCore
import ServiceLifecycle
import UnixSignals

/// Assembles a server from its configuration and its storage: the chat hub and the services that run them, in
/// one group. The CLI runs it; tests run the same assembly on port 0 with a temporary data folder.
public struct ParleyApplication: Sendable {
    public let configuration: ServerConfiguration
    public let hub: ChatHub<Fanout>
    /// Messages, accounts and rooms: SQLite, PostgreSQL or memory, as the executable chose; the server sees
    /// only the seam.
    public let storage: any ChatStorage
    /// What `/metrics` shows.
    public let metrics: ServerMetrics
    let logger: Logger
    /// The server's one pool of password-hashing threads.
    let hashing = PasswordHashing()
    /// The TLS ports' certificate, when there are TLS ports.
    public let tls: TLSProvider?

    /// Prepares the hub to carry on from what `storage` holds (its message ids, accounts and room policies).
    /// The application owns the storage from here: it closes it when the services stop, or at once when this
    /// throws.
    public static func open(configuration: ServerConfiguration, storage: any ChatStorage, logger: Logger) async throws -> ParleyApplication {
        let tls: TLSProvider?
        let motd: [String]
        let lastID: Int64
        let accounts: [Account]
        let policies: [RoomPolicy]
        let present: [PresenceEntry]
        do {
            tls = try configuration.usesTLS ? TLSProvider(
                source: configuration.certificate, dataDirectory: configuration.dataDirectory, serverName: configuration.serverName
            ) : nil
            motd = try configuration.motdFile.map(MessageOfTheDay.read) ?? []
            lastID = try await storage.lastMessageID()
            accounts = try await storage.accounts()
            policies = try await storage.roomPolicies()
            present = try await storage.presence()
        } catch {
            await storage.close()
            throw error
        }
        if let tls {
            logger.notice(
                "TLS certificate",
                metadata: ["sha256": "\(tls.fingerprint)", "certificate": "\(tls.description)", "file": "\(tls.certificatePath)"]
            )
        }
        let application = ParleyApplication(configuration: configuration, logger: logger, storage: storage, lastID: lastID, tls: tls)
        application.hub.setAccounts(accounts)
        application.hub.setRoomPolicies(policies)
        application.hub.motd = motd
        // The other nodes' users, before anyone here is there to be told of them.
        _ = application.hub.apply(others: present)
        return application
    }

    private init(configuration: ServerConfiguration, logger: Logger, storage: any ChatStorage, lastID: Int64, tls: TLSProvider?) {
        self.tls = tls
        self.configuration = configuration
        self.logger = logger
        let metrics = ServerMetrics()
        self.metrics = metrics
        self.storage = storage
        self.hub = ChatHub(
            serverName: configuration.serverName, sink: Fanout(flushInterval: configuration.flushInterval, metrics: metrics), firstMessageID: lastID + 1,
            historyOnJoin: configuration.historyOnJoin, roomLimits: configuration.roomLimits, sharedLog: storage.sharesLog,
            nodeName: storage.nodeName
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
            store: storage, hub: hub, limits: accountLimits, hashing: hashing, metrics: metrics, logger: logger, operatorLog: operatorLog
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: StoreService(close: { [storage] in
                await storage.close()
                try? await desk.hashing.pool.shutdownGracefully()
            })),
            // Measured where the publisher commits and reads history: the store itself counts nothing.
            .init(service: PublisherService(publisher: Publisher(hub: hub, store: MeasuredStore(store: storage, metrics: metrics), rooms: storage) { [logger] error in
                operatorLog.log(.storeFailure, .error, "storing failed; nothing that needed it was delivered", metadata: ["error": "\(error)"], to: logger)
            })),
            .init(service: ChangeWatcher(storage: storage, hub: hub, logger: logger)),
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
            allowedOrigins: Set(configuration.allowedOrigins.map(WebSite.normalizedOrigin) + configuration.nodeURLs.compactMap(WebSite.pageOrigin)),
            trustedProxies: configuration.trustedProxies, health: HealthProbe(store: storage), nodeURLs: configuration.nodeURLs
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

/// Notices changes made by someone else and tells the hub: account changes (`parley account …` in another
/// process), so a running server needs no restart, and other nodes' entries in the log, which the publisher then
/// reads and delivers. How a change is noticed is the storage's business.
struct ChangeWatcher: Service {
    let storage: any ChatStorage
    let hub: ChatHub<Fanout>
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await change in storage.changes() {
                switch change {
                case .log:
                    hub.wake()
                case .presenceLost:
                    logger.warning("the other nodes ended this node's sessions (its lease ran out); telling them again who is here")
                    hub.tellPresenceAgain()
                    // And learning again who is there: entries it missed may be forgotten by now.
                    if let present = try? await storage.othersPresent() { hub.resync(with: present) }
                case .accounts:
                    guard let accounts = try? await storage.accounts() else { continue }
                    hub.setAccounts(accounts)
                    logger.info("accounts reloaded", metadata: ["count": "\(accounts.count)"])
                }
            }
        }
        // A storage that nobody else can change (memory) ends its sequence at once; a service that returns
        // early would stop the whole group, so this one waits for the shutdown like the rest.
        try? await gracefulShutdown()
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
