import ArgumentParser
import Foundation
import Logging
import ParleyCore
import ParleyProtocols
import ParleyServer
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
            it gracefully too: clients are told, queues are flushed, and it exits 0. SIGHUP reloads the TLS certificate and the message of the day (--motd).
            """
    )

    enum ConsoleMode: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off
    }

    @Option(help: "The address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "The port for plain-text and JSON-lines clients.")
    var port = 5000

    @Option(help: "The port for IRC clients.")
    var ircPort = 6667

    @Flag(help: "Do not open the IRC port.")
    var noIRC = false

    @Option(help: "The port for browsers: the web client at /, WebSocket at /ws (JSON) and /irc (IRC), /healthz and /metrics.")
    var httpPort = 8080

    @Flag(help: "Do not open the HTTP port.")
    var noHTTP = false

    @Flag(help: "Open the TLS ports, at 5001, 6697 and 8443 (https) unless --tls-port, --irc-tls-port or --https-port says otherwise.")
    var tls = false

    @Option(help: "A port for text and JSON-lines clients over TLS (openssl s_client -quiet -connect HOST:PORT is the nc of TLS); off unless given or --tls.")
    var tlsPort: Int?

    @Option(name: .customLong("irc-tls-port"), help: "A port for IRC over TLS (6697 by convention); off unless given or --tls.")
    var ircTLSPort: Int?

    @Option(help: "The HTTP port over TLS (https, wss); off unless given or --tls.")
    var httpsPort: Int?

    @Option(help: "An origin besides the server's own (e.g. https://chat.example.org) whose pages may open the WebSockets; repeatable. Pages from other origins are refused.")
    var allowedOrigin: [String] = []

    @Option(help: "An address or network (CIDR) that may read /metrics; repeatable. Default: loopback only.")
    var metricsAllow: [String] = []

    @Option(help: "A text file whose lines everyone is shown after the welcome, at every door (IRC's MOTD); SIGHUP reads it again.")
    var motd: String?

    @Option(help: "A reverse proxy (address or CIDR) in front of the HTTP port whose X-Forwarded-For names the client: its address is then what login limits, /metrics and the logs see. Repeatable.")
    var trustedProxy: [String] = []

    @Option(help: "The TLS certificate, a PEM file (its chain may follow it). Without it, a self-signed one is made for the server name in --data-dir/tls on first start. SIGHUP reloads it.")
    var tlsCert: String?

    @Option(help: "The TLS certificate's private key, a PEM file.")
    var tlsKey: String?

    @Flag(help: "Close the plaintext ports of every door: TLS only.")
    var noPlaintext = false

    @Flag(help: "Accept passwords (logins, registrations, SASL) on plaintext ports even when TLS is on; for a trusted LAN.")
    var allowPlaintextPasswords = false

    @Option(name: .customLong("max-connections-per-ip"), help: "Connections one address (an IPv6 /64) may have open at once, over every door (0: no limit).")
    var maxConnectionsPerIP = 32

    @Option(name: .customLong("connect-rate-per-ip"), help: "New connections one address may open a minute (0: no limit).")
    var connectRatePerIP = 20

    @Option(name: .customLong("exempt-ip"), help: "An address or network (CIDR, e.g. 10.0.0.0/8) exempt from the two limits above: a NATed classroom, a bouncer. Repeatable; loopback is always exempt.")
    var exemptIP: [String] = []

    @Option(name: .customLong("data-dir"), help: "Where Parley keeps its data; created if missing.")
    var dataDirectory = "./parley-data"

    @Option(help: "The name the server greets with (default: the host name).")
    var serverName: String?

    @Option(help: "A password every client must give before choosing a nickname, on every port (IRC: PASS). Or set PARLEY_SERVER_PASSWORD, which other users cannot see in ps.")
    var serverPassword: String?

    @Option(help: "IRC: seconds of silence before the server sends PING; as long again without an answer closes the connection.")
    var pingInterval = 120.0

    @Option(help: "Milliseconds a busy server may hold messages to a client so it writes several at once (0: write at once). Costs at most that much latency, only under load; saves CPU.")
    var flushInterval = 5.0

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "How log lines are written to standard error: text, or json (one object per line, for journald, Loki or Elastic).")
    var logFormat: ParleyLogHandler.Format = .text

    @Option(help: "The longest line a client may send, in bytes; longer lines are refused with an error.")
    var maxLineBytes = 4096

    @Option(help: "Lines a client may send at once before flood control paces it.")
    var floodBurst = 15

    @Option(help: "Lines per second a client is paced to once its burst is spent.")
    var floodRate = 2.0

    @Option(help: "Bytes queued for one client before it is disconnected as too slow.")
    var sendQueueBytes = 128 * 1024

    @Option(help: "Seconds a new connection has to choose a nickname.")
    var registrationTimeout = 60.0

    @Option(help: "Seconds clients get to receive their last messages at shutdown.")
    var shutdownGrace = 3.0

    @Option(help: "Messages replayed to whoever joins a room (0: none).")
    var history = 50

    enum StoreMode: String, ExpressibleByArgument, CaseIterable {
        case sqlite, none
    }

    @Option(help: "sqlite: keep history, accounts and moderation in --data-dir. none: keep nothing (no history, accounts only in memory); for measuring what storage costs.")
    var store: StoreMode = .sqlite

    @Option(help: "The operator console on standard input: auto (on when it is a terminal), on or off.")
    var console: ConsoleMode = .auto

    func validate() throws {
        guard [port, ircPort, httpPort, tlsPort ?? 0, ircTLSPort ?? 0, httpsPort ?? 0].allSatisfy((0...65535).contains) else {
            throw ValidationError("--port, --irc-port, --http-port, --tls-port, --irc-tls-port and --https-port must be between 0 and 65535.")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together.") }
        let usesTLS = tls || tlsPort != nil || ircTLSPort != nil || httpsPort != nil
        guard usesTLS || tlsCert == nil else {
            throw ValidationError("--tls-cert is for the TLS ports: add --tls (or --tls-port / --irc-tls-port / --https-port).")
        }
        guard usesTLS || !noPlaintext else { throw ValidationError("--no-plaintext would leave no port open: add --tls.") }
        let asked = [
            ("--port", port), ("--irc-port", noIRC ? 0 : ircPort), ("--http-port", noHTTP ? 0 : httpPort),
            ("--tls-port", tlsPort ?? (tls ? 5001 : 0)), ("--irc-tls-port", ircTLSPort ?? (tls && !noIRC ? 6697 : 0)),
            ("--https-port", httpsPort ?? (tls && !noHTTP ? 8443 : 0)),
        ]
        .filter { $0.1 != 0 }
        for (index, (flag, number)) in asked.enumerated() {
            if let other = asked[..<index].first(where: { $0.1 == number }) {
                throw ValidationError("\(other.0) and \(flag) are both \(number): each port serves one door.")
            }
        }
        guard maxConnectionsPerIP >= 0, connectRatePerIP >= 0 else {
            throw ValidationError("--max-connections-per-ip and --connect-rate-per-ip must be 0 (no limit) or more.")
        }
        for network in exemptIP where Network(network) == nil {
            throw ValidationError("--exempt-ip \(network): not an address or a network like 10.0.0.0/8 or 2001:db8::/32.")
        }
        for network in trustedProxy where Network(network) == nil {
            throw ValidationError("--trusted-proxy \(network): not an address or a network like 10.0.0.0/8 or 2001:db8::/32.")
        }
        for network in metricsAllow where Network(network) == nil {
            throw ValidationError("--metrics-allow \(network): not an address or a network like 10.0.0.0/8 or 2001:db8::/32.")
        }
        for origin in allowedOrigin {
            guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.isEmpty || url.path == "/" else {
                throw ValidationError("--allowed-origin \(origin): an origin is a scheme and a host, like https://chat.example.org (a port may follow).")
            }
        }
        guard (64...1 << 20).contains(maxLineBytes) else { throw ValidationError("--max-line-bytes must be 64 to 1048576.") }
        guard (1...1_000_000).contains(floodBurst), floodRate > 0, floodRate <= 1_000_000 else {
            throw ValidationError("--flood-burst and --flood-rate must be positive (at most 1000000).")
        }
        guard (4096...1 << 30).contains(sendQueueBytes) else {
            throw ValidationError("--send-queue-bytes must be 4096 to 1073741824.")
        }
        guard (0...1000).contains(history) else { throw ValidationError("--history must be 0 to 1000.") }
        guard (0...100).contains(flushInterval) else { throw ValidationError("--flush-interval must be 0-100 milliseconds.") }
        guard pingInterval >= 0.05, pingInterval <= 86_400 else { throw ValidationError("--ping-interval must be 0.05-86400 seconds.") }
        guard serverPassword.map({ !$0.isEmpty && !$0.contains(" ") }) ?? true else {
            throw ValidationError("--server-password must be one word (IRC's PASS takes no spaces).")
        }
        guard registrationTimeout > 0, registrationTimeout <= 86_400, shutdownGrace >= 0, shutdownGrace <= 3600 else {
            throw ValidationError("--registration-timeout must be 0-86400 seconds and --shutdown-grace 0-3600.")
        }
    }

    func run() async throws {
        let level = logLevel
        let consoleOn = console == .on || (console == .auto && isatty(STDIN_FILENO) == 1)
        // An interactive console keeps its input line below the log when both share the terminal.
        let terminal = consoleOn && ConsoleTerminal.isAvailable ? ConsoleTerminal() : nil
        let write: @Sendable (String) -> Void =
            if let terminal, isatty(STDERR_FILENO) == 1 { { terminal.print([$0]) } } else { ParleyLogHandler.standardError }
        let format = logFormat
        LoggingSystem.bootstrap { label in ParleyLogHandler(label: label, level: level, format: format, write: write) }
        let logger = Logger(label: "parley")

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.ircPort = noIRC ? nil : ircPort
        configuration.tlsPort = tlsPort ?? (tls ? 5001 : nil)
        configuration.ircTLSPort = ircTLSPort ?? (tls && !noIRC ? 6697 : nil)
        configuration.httpPort = noHTTP ? nil : httpPort
        configuration.httpsPort = httpsPort ?? (tls && !noHTTP ? 8443 : nil)
        configuration.allowedOrigins = allowedOrigin
        if !metricsAllow.isEmpty { configuration.metricsAllowed = metricsAllow.compactMap(Network.init) }
        configuration.trustedProxies = trustedProxy.compactMap(Network.init)
        configuration.motdFile = motd
        if let tlsCert, let tlsKey { configuration.certificate = .files(certificate: tlsCert, key: tlsKey) }
        configuration.plaintext = !noPlaintext
        configuration.allowPlaintextPasswords = allowPlaintextPasswords
        configuration.addressLimits.maximumOpen = maxConnectionsPerIP
        configuration.addressLimits.perMinute = connectRatePerIP
        configuration.addressLimits.exempt += exemptIP.compactMap(Network.init)
        configuration.dataDirectory = dataDirectory
        if let serverName { configuration.serverName = serverName }
        configuration.serverPassword = serverPassword ?? ProcessInfo.processInfo.environment["PARLEY_SERVER_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.limits.pingInterval = .milliseconds(Int64(pingInterval * 1000))
        configuration.flushInterval = .microseconds(Int64(flushInterval * 1000))
        configuration.limits.line = .init(maximumLineBytes: maxLineBytes)
        configuration.limits.flood = .init(burst: floodBurst, perSecond: floodRate)
        configuration.limits.sendQueueBytes = sendQueueBytes
        configuration.limits.registrationTimeout = .milliseconds(Int64(registrationTimeout * 1000))
        configuration.limits.shutdownGrace = .milliseconds(Int64(shutdownGrace * 1000))

        configuration.historyOnJoin = history
        configuration.storesMessages = store == .sqlite

        let application: ParleyApplication
        do {
            application = try await ParleyApplication.open(configuration: configuration, logger: logger)
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
            configuration: application.serviceGroupConfiguration(console: consoleOn, terminal: terminal) { _, _ in
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

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension ParleyLogHandler.Format: ExpressibleByArgument {}
