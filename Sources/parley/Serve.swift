import ArgumentParser
import Foundation
import Logging
import ParleyCore
import ParleyProtocols
import ParleyServer
import ParleySettings
import ServiceLifecycle
import Synchronization

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the chat server.",
        discussion: """
            Plain-text users connect with `nc HOST PORT` or `telnet HOST PORT`; programs speak JSON lines on the \
            same port (docs/PROTOCOL.md); IRC clients connect to --irc-port; a browser opens http://HOST:8080/ \
            (--http-port), which also serves WebSocket for programs (/ws) and web IRC clients (/irc), /healthz and \
            /metrics. With --tls the same doors open over TLS too (5001, 6697 and https on 8443); the certificate's SHA-256 fingerprint is logged at every start, and passwords \
            sent over a door's plaintext port are then refused (they belong on its TLS port). Each address may \
            open 32 connections at most, 20 a minute (loopback exempt). When standard input is a terminal, what you type there is announced \
            to everyone; /help lists the console commands and `exit` stops the server. SIGINT and SIGTERM stop \
            it gracefully too: clients are told, queues are flushed, and it exits 0. Every flag is also a key of the --config file and a PARLEY_ variable (docs/DEPLOY.md); SIGHUP reads the file again and applies the settings marked [SIGHUP applies it], and reloads the TLS certificate and the message of the day.
            """
    )

    @Option(help: "A TOML file of settings: each key is a flag's name without its dashes (port = 5000). Or set PARLEY_CONFIG. A flag beats the environment (PARLEY_PORT, …), which beats the file, which beats the default; SIGHUP reads it again.")
    var config: String?

    @Flag(help: "Print the settings it would run with, and where each comes from, then exit.")
    var printConfig = false

    @Option(help: .init(ServeKey.host.help)) var host: String?
    @Option(help: .init(ServeKey.port.help)) var port: Int?
    @Option(help: .init(ServeKey.ircPort.help)) var ircPort: Int?
    // --no-irc, and --irc to open it when the file or environment closed it.
    @Flag(inversion: .prefixedNo, help: .init(ServeKey.noIRC.help)) var irc: Bool?
    @Option(help: .init(ServeKey.httpPort.help)) var httpPort: Int?
    @Flag(inversion: .prefixedNo, help: .init(ServeKey.noHTTP.help)) var http: Bool?
    @Flag(inversion: .prefixedNo, help: .init(ServeKey.tls.help)) var tls: Bool?
    @Option(help: .init(ServeKey.tlsPort.help)) var tlsPort: Int?
    @Option(name: .customLong("irc-tls-port"), help: .init(ServeKey.ircTLSPort.help)) var ircTLSPort: Int?
    @Option(help: .init(ServeKey.httpsPort.help)) var httpsPort: Int?
    @Option(help: .init(ServeKey.allowedOrigin.help)) var allowedOrigin: [String] = []
    @Option(help: .init(ServeKey.metricsAllow.help)) var metricsAllow: [String] = []
    @Option(help: .init(ServeKey.motd.help)) var motd: String?
    @Option(help: .init(ServeKey.trustedProxy.help)) var trustedProxy: [String] = []
    @Option(help: .init(ServeKey.tlsCert.help)) var tlsCert: String?
    @Option(help: .init(ServeKey.tlsKey.help)) var tlsKey: String?
    @Flag(inversion: .prefixedNo, help: .init(ServeKey.noPlaintext.help)) var plaintext: Bool?
    @Flag(inversion: .prefixedNo, help: .init(ServeKey.allowPlaintextPasswords.help)) var allowPlaintextPasswords: Bool?
    @Option(name: .customLong("max-connections-per-ip"), help: .init(ServeKey.maxConnectionsPerIP.help)) var maxConnectionsPerIP: Int?
    @Option(name: .customLong("connect-rate-per-ip"), help: .init(ServeKey.connectRatePerIP.help)) var connectRatePerIP: Int?
    @Option(name: .customLong("exempt-ip"), help: .init(ServeKey.exemptIP.help)) var exemptIP: [String] = []
    @Option(name: .customLong("data-dir"), help: .init(ServeKey.dataDir.help)) var dataDirectory: String?
    @Option(help: .init(ServeKey.serverName.help)) var serverName: String?
    @Option(help: .init(ServeKey.serverPassword.help)) var serverPassword: String?
    @Option(help: .init(ServeKey.pingInterval.help)) var pingInterval: Double?
    @Option(help: .init(ServeKey.flushInterval.help)) var flushInterval: Double?
    @Option(help: .init(ServeKey.logLevel.help)) var logLevel: String?
    @Option(help: .init(ServeKey.logFormat.help)) var logFormat: String?
    @Option(help: .init(ServeKey.maxLineBytes.help)) var maxLineBytes: Int?
    @Option(help: .init(ServeKey.floodBurst.help)) var floodBurst: Int?
    @Option(help: .init(ServeKey.floodRate.help)) var floodRate: Double?
    @Option(help: .init(ServeKey.sendQueueBytes.help)) var sendQueueBytes: Int?
    @Option(help: .init(ServeKey.roomsPerMinute.help)) var roomsPerMinute: Int?
    @Option(help: .init(ServeKey.registrationTimeout.help)) var registrationTimeout: Double?
    @Option(help: .init(ServeKey.shutdownGrace.help)) var shutdownGrace: Double?
    @Option(help: .init(ServeKey.history.help)) var history: Int?
    @Option(help: .init(ServeKey.store.help)) var store: String?
    @Option(name: .customLong("database-url"), help: .init(ServeKey.databaseURL.help)) var databaseURL: String?
    @Option(help: .init(ServeKey.databaseTimeout.help)) var databaseTimeout: Double?
    @Option(help: .init(ServeKey.nodeName.help)) var nodeName: String?
    @Option(help: .init(ServeKey.nodeTimeout.help)) var nodeTimeout: Double?
    @Option(help: .init(ServeKey.nodeURL.help)) var nodeURL: [String] = []
    @Option(help: .init(ServeKey.console.help)) var console: String?

    /// The flags given on the command line, as the settings' top layer.
    private var flags: [ServeKey: SettingValue] {
        func no(_ flag: Bool?) -> SettingValue? { flag.map { .bool(!$0) } }
        func list(_ values: [String]) -> SettingValue? { values.isEmpty ? nil : .strings(values) }
        let given: [ServeKey: SettingValue?] = [
            .host: host.map(SettingValue.string), .port: port.map(SettingValue.int), .ircPort: ircPort.map(SettingValue.int),
            .noIRC: no(irc), .httpPort: httpPort.map(SettingValue.int), .noHTTP: no(http), .tls: tls.map(SettingValue.bool),
            .tlsPort: tlsPort.map(SettingValue.int), .ircTLSPort: ircTLSPort.map(SettingValue.int), .httpsPort: httpsPort.map(SettingValue.int),
            .allowedOrigin: list(allowedOrigin), .metricsAllow: list(metricsAllow), .motd: motd.map(SettingValue.string),
            .trustedProxy: list(trustedProxy), .tlsCert: tlsCert.map(SettingValue.string), .tlsKey: tlsKey.map(SettingValue.string),
            .noPlaintext: no(plaintext), .allowPlaintextPasswords: allowPlaintextPasswords.map(SettingValue.bool),
            .maxConnectionsPerIP: maxConnectionsPerIP.map(SettingValue.int), .connectRatePerIP: connectRatePerIP.map(SettingValue.int),
            .exemptIP: list(exemptIP), .dataDir: dataDirectory.map(SettingValue.string), .serverName: serverName.map(SettingValue.string),
            .serverPassword: serverPassword.map(SettingValue.string), .pingInterval: pingInterval.map(SettingValue.double),
            .flushInterval: flushInterval.map(SettingValue.double), .logLevel: logLevel.map(SettingValue.string),
            .logFormat: logFormat.map(SettingValue.string), .maxLineBytes: maxLineBytes.map(SettingValue.int),
            .floodBurst: floodBurst.map(SettingValue.int), .floodRate: floodRate.map(SettingValue.double),
            .sendQueueBytes: sendQueueBytes.map(SettingValue.int), .registrationTimeout: registrationTimeout.map(SettingValue.double),
            .shutdownGrace: shutdownGrace.map(SettingValue.double), .history: history.map(SettingValue.int),
            .store: store.map(SettingValue.string), .databaseURL: databaseURL.map(SettingValue.string),
            .databaseTimeout: databaseTimeout.map(SettingValue.double), .console: console.map(SettingValue.string),
            .roomsPerMinute: roomsPerMinute.map(SettingValue.int), .nodeName: nodeName.map(SettingValue.string), .nodeTimeout: nodeTimeout.map(SettingValue.double), .nodeURL: list(nodeURL),
        ]
        return given.compactMapValues { $0 }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let (flags, file) = (flags, config ?? environment["PARLEY_CONFIG"].flatMap { $0.isEmpty ? nil : $0 })
        let settings: Settings
        do {
            settings = try Settings.serve(flags: flags, file: file, environment: environment)
        } catch {
            // Said without the usage ArgumentParser would add: the mistake is in a value, often in the file.
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(64)
        }
        if printConfig {
            print(settings.printed(command: "parley serve"), terminator: "")
            return
        }
        let console = settings.string(.console)
        let consoleOn = console == "on" || (console == "auto" && isatty(STDIN_FILENO) == 1)
        // An interactive console keeps its input line below the log when both share the terminal.
        let terminal = consoleOn && ConsoleTerminal.isAvailable ? ConsoleTerminal() : nil
        let write: @Sendable (String) -> Void =
            if let terminal, isatty(STDERR_FILENO) == 1 { { terminal.print([$0]) } } else { ParleyLogHandler.standardError }
        let dial = LogLevelDial(settings.logLevel)
        let format = ParleyLogHandler.Format(rawValue: settings.string(.logFormat) ?? "text") ?? .text
        LoggingSystem.bootstrap { label in ParleyLogHandler(label: label, dial: dial, format: format, write: write) }
        let logger = Logger(label: "parley")
        if let file { logger.notice("settings read", metadata: ["file": "\(file)"]) }
        if let descriptors = DescriptorLimit.raise() { logger.info("file descriptors", metadata: ["limit": "\(descriptors)"]) }
        let configuration = settings.serverConfiguration
        // SIGHUP: the file read again under the same flags and environment. What changed is logged; what only
        // a restart changes is named each time, until it is restarted or the file says the old value again.
        let applied = Mutex(settings)
        let reread: @Sendable () -> ServerConfiguration? = {
            guard file != nil else {
                logger.notice("no settings file (--config) to read again: the settings stay as they started")
                return nil
            }
            let next: Settings
            do {
                next = try Settings.serve(flags: flags, file: file, environment: environment)
            } catch {
                logger.error("settings not reloaded; still running with the previous ones", metadata: ["error": "\(error)"])
                return nil
            }
            let previousFile = applied.withLock { previous in
                defer { previous = next }
                return previous
            }
            let live = next.changes(since: previousFile).filter(\.setting.live)
            let waiting = next.changes(since: settings).filter { !$0.setting.live }
            let overridden = next.overriddenFileChanges(since: previousFile)
            // A level made more verbose is turned first, one made quieter after: either way its own change is logged.
            if next.logLevel < dial.level { dial.level = next.logLevel }
            for change in live { logger.notice("setting changed", metadata: ["change": "\(change.description)"]) }
            for change in waiting { logger.warning("setting changed, but only a restart applies it", metadata: ["change": "\(change.description)"]) }
            for (setting, by) in overridden {
                logger.warning("setting changed in the file, but \(by) sets it and wins", metadata: ["key": "\(setting.key)"])
            }
            if live.isEmpty && waiting.isEmpty && overridden.isEmpty { logger.notice("settings reloaded; unchanged") }
            dial.level = next.logLevel
            return next.serverConfiguration
        }

        let application: ParleyApplication
        do {
            let storage = try await settings.storage().open(serving: true, logger: logger)
            logger.notice("storage opened", metadata: ["store": "\(settings.string(.store) ?? "")", "at": "\(storage.location)"])
            application = try await ParleyApplication.open(configuration: configuration, storage: storage, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(3)
        }
        // A SIGHUP before the reloader traps it (a certbot hook right after a start) must not end the server,
        // as the signal does by default.
        signal(SIGHUP, SIG_IGN)
        // Under systemd (Type=notify), ready once every port listens.
        let ports = configuration.endpoints.count
        let listening = Mutex(0)
        let group = ServiceGroup(
            configuration: application.serviceGroupConfiguration(console: consoleOn, terminal: terminal, reread: reread) { _, _ in
                let all = listening.withLock { count in
                    count += 1
                    return count == ports
                }
                if all { SystemdNotify.send("READY=1\nSTATUS=Serving \(ports) ports\nMAINPID=\(getpid())") }
            }
        )
        // The console's NIO channel makes the terminal non-blocking; the shell gets it back as it was.
        let terminalFlags = fcntl(STDIN_FILENO, F_GETFL)
        defer { if terminalFlags >= 0 { _ = fcntl(STDIN_FILENO, F_SETFL, terminalFlags) } }
        do {
            try await group.run()
        } catch is ListenerError {
            throw ExitCode(2)  // already said in the log, in words; ArgumentParser would repeat NIO's
        }
    }
}

extension Settings {
    var logLevel: Logger.Level { string(.logLevel).flatMap(Logger.Level.init(rawValue:)) ?? .info }
}
