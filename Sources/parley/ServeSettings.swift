import Foundation
import ParleyCore
import ParleyPostgres
import ParleyProtocols
import ParleyServer
import ParleySettings

/// Every setting of `parley serve`: its key (the flag's name, the key in the file, and after `PARLEY_` the
/// environment variable), its values, its default, and whether SIGHUP applies it (docs/DEPLOY.md).
enum ServeKey: String, CaseIterable {
    case host, port
    case ircPort = "irc-port", noIRC = "no-irc", httpPort = "http-port", noHTTP = "no-http"
    case tls, tlsPort = "tls-port", ircTLSPort = "irc-tls-port", httpsPort = "https-port"
    case tlsCert = "tls-cert", tlsKey = "tls-key", noPlaintext = "no-plaintext", allowPlaintextPasswords = "allow-plaintext-passwords"
    case allowedOrigin = "allowed-origin", metricsAllow = "metrics-allow", trustedProxy = "trusted-proxy", motd
    case maxConnectionsPerIP = "max-connections-per-ip", connectRatePerIP = "connect-rate-per-ip", exemptIP = "exempt-ip"
    case dataDir = "data-dir", serverName = "server-name", serverPassword = "server-password"
    case pingInterval = "ping-interval", flushInterval = "flush-interval", logLevel = "log-level", logFormat = "log-format"
    case maxLineBytes = "max-line-bytes", floodBurst = "flood-burst", floodRate = "flood-rate", sendQueueBytes = "send-queue-bytes"
    case roomsPerMinute = "rooms-per-minute"
    case registrationTimeout = "registration-timeout", shutdownGrace = "shutdown-grace", history, store, databaseURL = "database-url", databaseTimeout = "database-timeout", nodeName = "node-name", nodeTimeout = "node-timeout", nodeURL = "node-url", console

    static let schema = allCases.map(\.setting)

    var help: String { setting.help }

    var setting: Setting {
        let port = SettingKind.int(0...65535)
        let key = rawValue
        return switch self {
        case .host: Setting(key, .string, default: .string("0.0.0.0"), "The address to listen on.")
        case .port: Setting(key, port, default: .int(5000), "The port for plain-text and JSON-lines clients.")
        case .ircPort: Setting(key, port, default: .int(6667), "The port for IRC clients.")
        case .noIRC: Setting(key, .bool, default: .bool(false), "--no-irc: do not open the IRC port (--irc opens it where the file or environment says no-irc).")
        case .httpPort:
            Setting(key, port, default: .int(8080), "The port for browsers: the web client at /, WebSocket at /ws (JSON) and /irc (IRC), /healthz and /metrics.")
        case .noHTTP: Setting(key, .bool, default: .bool(false), "--no-http: do not open the HTTP port (--http opens it where the file or environment says no-http).")
        case .tls:
            Setting(key, .bool, default: .bool(false), "Open the TLS ports, at 5001, 6697 and 8443 (https) unless --tls-port, --irc-tls-port or --https-port says otherwise.")
        case .tlsPort:
            Setting(key, port, "A port for text and JSON-lines clients over TLS (openssl s_client -quiet -connect HOST:PORT is the nc of TLS); off unless given or --tls.")
        case .ircTLSPort: Setting(key, port, "A port for IRC over TLS (6697 by convention); off unless given or --tls.")
        case .httpsPort: Setting(key, port, "The HTTP port over TLS (https, wss); off unless given or --tls.")
        case .tlsCert:
            Setting(key, .string, "The TLS certificate, a PEM file (its chain may follow it). Without it, a self-signed one is made for the server name in --data-dir/tls on first start. SIGHUP reads the file again.")
        case .tlsKey: Setting(key, .string, "The TLS certificate's private key, a PEM file.")
        case .noPlaintext: Setting(key, .bool, default: .bool(false), "--no-plaintext: close the plaintext ports of every door, TLS only (--plaintext opens them where the file or environment says no-plaintext).")
        case .allowPlaintextPasswords:
            Setting(key, .bool, default: .bool(false), "Accept passwords (logins, registrations, SASL) on plaintext ports even when TLS is on; for a trusted LAN.")
        case .allowedOrigin:
            Setting(key, .strings, default: .strings([]), "An origin besides the server's own (e.g. https://chat.example.org) whose pages may open the WebSockets; repeatable. Pages from other origins are refused.")
        case .metricsAllow:
            Setting(key, .strings, default: .strings([]), "An address or network (CIDR) that may read /metrics; repeatable. Default: loopback only.")
        case .trustedProxy:
            Setting(key, .strings, default: .strings([]), "A reverse proxy (address or CIDR) in front of the HTTP port whose X-Forwarded-For names the client: its address is then what login limits, /metrics and the logs see. Repeatable.")
        case .motd:
            Setting(key, .string, live: true, "A text file whose lines everyone is shown after the welcome, at every door (IRC's MOTD); SIGHUP reads it again.")
        case .maxConnectionsPerIP:
            Setting(key, .int(0...1_000_000), default: .int(32), live: true, "Connections one address (an IPv6 /64) may have open at once, over every door (0: no limit).")
        case .connectRatePerIP: Setting(key, .int(0...1_000_000), default: .int(20), live: true, "New connections one address may open a minute (0: no limit).")
        case .exemptIP:
            Setting(key, .strings, default: .strings([]), live: true, "An address or network (CIDR, e.g. 10.0.0.0/8) exempt from the two limits above: a NATed classroom, a bouncer. Repeatable; loopback is always exempt.")
        case .dataDir: Setting(key, .string, default: .string("./parley-data"), "Where Parley keeps its data; created if missing.")
        case .serverName: Setting(key, .string, "The name the server greets with (default: the host name).")
        case .serverPassword:
            Setting(key, .string, secret: true, "A password every client must give before choosing a nickname, on every port (IRC: PASS). Better set PARLEY_SERVER_PASSWORD or the file, which other users cannot see in ps.")
        case .pingInterval:
            Setting(key, .double(0.05...86_400), default: .double(120), live: true, "IRC: seconds of silence before the server sends PING; as long again without an answer closes the connection.")
        case .flushInterval:
            Setting(key, .double(0...100), default: .double(5), "Milliseconds a busy server may hold messages to a client so it writes several at once (0: write at once). Costs at most that much latency, only under load; saves CPU.")
        case .logLevel:
            Setting(key, .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]), default: .string("info"), live: true, "Log level: trace, debug, info, notice, warning, error or critical.")
        case .logFormat:
            Setting(key, .choice(["text", "json"]), default: .string("text"), "How log lines are written to standard error: text, or json (one object per line, for journald, Loki or Elastic).")
        case .maxLineBytes: Setting(key, .int(64...1 << 20), default: .int(4096), live: true, "The longest line a client may send, in bytes; longer lines are refused with an error.")
        case .floodBurst: Setting(key, .int(1...1_000_000), default: .int(15), live: true, "Lines a client may send at once before flood control paces it.")
        case .floodRate: Setting(key, .double(0.001...1_000_000), default: .double(2), live: true, "Lines per second a client is paced to once its burst is spent.")
        case .roomsPerMinute:
            Setting(key, .int(1...1_000_000), default: .int(20), "New rooms one address may create a minute (everyone behind one NAT shares it; raise it for a class or a LAN).")
        case .sendQueueBytes: Setting(key, .int(4096...1 << 30), default: .int(128 * 1024), live: true, "Bytes queued for one client before it is disconnected as too slow.")
        case .registrationTimeout: Setting(key, .double(0.001...86_400), default: .double(60), live: true, "Seconds a new connection has to choose a nickname.")
        case .shutdownGrace: Setting(key, .double(0...3600), default: .double(3), "Seconds clients get to receive their last messages at shutdown.")
        case .history: Setting(key, .int(0...1000), default: .int(50), "Messages replayed to whoever joins a room (0: none).")
        case .store:
            Setting(key, .choice(["sqlite", "postgres", "none"]), default: .string("sqlite"), "sqlite: keep history, accounts and moderation in --data-dir. postgres: keep them in the PostgreSQL database of --database-url. none: keep nothing (no history, accounts only in memory); for measuring what storage costs.")
        case .databaseURL:
            Setting(key, .string, secret: true, "The database for --store postgres: postgres://USER:PASSWORD@HOST:PORT/DATABASE (?sslmode=disable|prefer|require|verify-full), or postgres://USER@/DATABASE?host=/run/postgresql for a Unix socket. Better set PARLEY_DATABASE_URL, which other users cannot see in ps.")
        case .databaseTimeout:
            Setting(key, .double(0.1...600), default: .double(5), "Seconds one PostgreSQL operation may take (--store postgres); past it, it is given up: messages get not_stored, and the chat goes on without the database until it answers again.")
        case .nodeName:
            Setting(key, .string, "This server's name among several serving one chat from the same --store postgres database (a, b, or the host's name): users of every node share rooms, messages, history, private messages, nicknames and who is online (docs/ARCHITECTURE.md, \"Several nodes on one PostgreSQL\").")
        case .nodeTimeout:
            Setting(key, .double(1...3600), default: .double(15), "Seconds a node (--node-name) may go without renewing its lease in the database; past it, another node tells its users that the node's users left, and frees their nicknames.")
        case .nodeURL:
            Setting(key, .strings, default: .strings([]), "The WebSocket address of another node of this chat (wss://b.lan:8443/ws), repeatable: the web client moves to it when this node goes, and pages it serves may connect here.")
        case .console: Setting(key, .choice(["auto", "on", "off"]), default: .string("auto"), "The operator console on standard input: auto (on when it is a terminal), on or off.")
        }
    }
}

extension Settings {
    func bool(_ key: ServeKey) -> Bool { bool(key.rawValue) }
    func int(_ key: ServeKey) -> Int? { int(key.rawValue) }
    func double(_ key: ServeKey) -> Double? { double(key.rawValue) }
    func string(_ key: ServeKey) -> String? { string(key.rawValue) }
    func strings(_ key: ServeKey) -> [String] { strings(key.rawValue) }
    func origin(_ key: ServeKey) -> String { origin(key.rawValue) }

    /// Reads the file and the environment under the flags given, and checks what no single setting can: ports
    /// that clash, a certificate without its key, networks and origins that do not parse.
    static func serve(flags: [ServeKey: SettingValue], file path: String?, environment: [String: String]) throws(SettingsError) -> Settings {
        let file = try path.map { (path) throws(SettingsError) in try SettingsFile.read(path, settings: ServeKey.schema) }
        let settings = try Settings(
            schema: ServeKey.schema, flags: Dictionary(uniqueKeysWithValues: flags.map { ($0.rawValue, $1) }), environment: environment, file: file
        )
        try settings.checkServe()
        return settings
    }

    private func checkServe() throws(SettingsError) {
        let tls = bool(.tls)
        guard (string(.tlsCert) == nil) == (string(.tlsKey) == nil) else {
            throw SettingsError("\(origin(.tlsCert)) and \(origin(.tlsKey)) go together.")
        }
        let usesTLS = tls || int(.tlsPort) != nil || int(.ircTLSPort) != nil || int(.httpsPort) != nil
        guard usesTLS || string(.tlsCert) == nil else {
            throw SettingsError("\(origin(.tlsCert)) is for the TLS ports: add --tls (or --tls-port / --irc-tls-port / --https-port).")
        }
        guard usesTLS || !bool(.noPlaintext) else { throw SettingsError("\(origin(.noPlaintext)) would leave no port open: add --tls.") }
        let asked: [(ServeKey, Int)] = [
            (.port, int(.port) ?? 0), (.ircPort, bool(.noIRC) ? 0 : int(.ircPort) ?? 0), (.httpPort, bool(.noHTTP) ? 0 : int(.httpPort) ?? 0),
            (.tlsPort, int(.tlsPort) ?? (tls ? 5001 : 0)), (.ircTLSPort, int(.ircTLSPort) ?? (tls && !bool(.noIRC) ? 6697 : 0)),
            (.httpsPort, int(.httpsPort) ?? (tls && !bool(.noHTTP) ? 8443 : 0)),
        ]
        .filter { $0.1 != 0 }
        for (index, (key, number)) in asked.enumerated() {
            if let other = asked[..<index].first(where: { $0.1 == number }) {
                throw SettingsError("\(origin(other.0)) and \(origin(key)) are both \(number): each port serves one door.")
            }
        }
        for key in [ServeKey.exemptIP, .trustedProxy, .metricsAllow] {
            for network in strings(key) where Network(network) == nil {
                throw SettingsError("\(origin(key)) \(network): not an address or a network like 10.0.0.0/8 or 2001:db8::/32.")
            }
        }
        for origin in strings(.allowedOrigin) {
            guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.isEmpty || url.path == "/" else {
                throw SettingsError("\(self.origin(.allowedOrigin)) \(origin): an origin is a scheme and a host, like https://chat.example.org (a port may follow).")
            }
        }
        switch (string(.store), string(.databaseURL)) {
        case ("postgres", nil): throw SettingsError("\(origin(.store)) postgres needs the database: set PARLEY_DATABASE_URL (or --database-url).")
        case ("postgres", _?): _ = try storage()
        case (_, _?): throw SettingsError("\(origin(.databaseURL)) is for --store postgres.")
        default: break
        }
        for url in strings(.nodeURL) where !(URL(string: url).map { ["ws", "wss"].contains($0.scheme?.lowercased() ?? "") && $0.host != nil } ?? false) {
            throw SettingsError("\(origin(.nodeURL)) \(url): a node's address is a WebSocket URL, like wss://b.example.org:8443/ws.")
        }
        if let node = string(.nodeName) {
            guard string(.store) == "postgres" else { throw SettingsError("\(origin(.nodeName)) is for --store postgres: nodes share one PostgreSQL database.") }
            guard !node.isEmpty, node.count <= 64, node.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw SettingsError("\(origin(.nodeName)) \(node): a node's name is 1–64 letters, digits, '-', '_' or '.'.")
            }
        }
        guard string(.serverPassword).map({ !$0.isEmpty && !$0.contains(" ") }) ?? true else {
            throw SettingsError("\(origin(.serverPassword)) must be one word (IRC's PASS takes no spaces).")
        }
    }

    /// The server's configuration from these settings.
    var serverConfiguration: ServerConfiguration {
        let tls = bool(.tls)
        var configuration = ServerConfiguration()
        configuration.host = string(.host)!
        configuration.port = int(.port)!
        configuration.ircPort = bool(.noIRC) ? nil : int(.ircPort)
        configuration.tlsPort = int(.tlsPort) ?? (tls ? 5001 : nil)
        configuration.ircTLSPort = int(.ircTLSPort) ?? (tls && !bool(.noIRC) ? 6697 : nil)
        configuration.httpPort = bool(.noHTTP) ? nil : int(.httpPort)
        configuration.httpsPort = int(.httpsPort) ?? (tls && !bool(.noHTTP) ? 8443 : nil)
        configuration.allowedOrigins = strings(.allowedOrigin)
        configuration.nodeURLs = strings(.nodeURL)
        if !strings(.metricsAllow).isEmpty { configuration.metricsAllowed = strings(.metricsAllow).compactMap(Network.init) }
        configuration.trustedProxies = strings(.trustedProxy).compactMap(Network.init)
        configuration.motdFile = string(.motd)
        if let certificate = string(.tlsCert), let key = string(.tlsKey) { configuration.certificate = .files(certificate: certificate, key: key) }
        configuration.plaintext = !bool(.noPlaintext)
        configuration.allowPlaintextPasswords = bool(.allowPlaintextPasswords)
        configuration.addressLimits.maximumOpen = int(.maxConnectionsPerIP)!
        configuration.addressLimits.perMinute = int(.connectRatePerIP)!
        configuration.addressLimits.exempt += strings(.exemptIP).compactMap(Network.init)
        configuration.dataDirectory = string(.dataDir)!
        if let serverName = string(.serverName) { configuration.serverName = serverName }
        configuration.serverPassword = string(.serverPassword)
        configuration.limits.pingInterval = .milliseconds(Int64(double(.pingInterval)! * 1000))
        configuration.flushInterval = .microseconds(Int64(double(.flushInterval)! * 1000))
        configuration.limits.line = .init(maximumLineBytes: int(.maxLineBytes)!)
        configuration.limits.flood = .init(burst: int(.floodBurst)!, perSecond: double(.floodRate)!)
        configuration.limits.sendQueueBytes = int(.sendQueueBytes)!
        configuration.roomLimits.createdPerMinute = int(.roomsPerMinute)!
        configuration.limits.registrationTimeout = .milliseconds(Int64(double(.registrationTimeout)! * 1000))
        configuration.limits.shutdownGrace = .milliseconds(Int64(double(.shutdownGrace)! * 1000))
        configuration.historyOnJoin = int(.history)!
        return configuration
    }

    /// Where the server keeps its data.
    func storage() throws(SettingsError) -> StorageChoice {
        switch string(.store) {
        case "postgres":
            do throws(DatabaseError) {
                return .postgres(
                    try PostgresAddress(string(.databaseURL) ?? ""), timeout: .milliseconds(Int64(double(.databaseTimeout)! * 1000)), node: string(.nodeName),
                    nodeTimeout: .milliseconds(Int64(double(.nodeTimeout)! * 1000))
                )
            } catch {
                throw SettingsError("\(origin(.databaseURL)): \(error)")
            }
        case "none": return .memory
        default: return .sqlite(directory: string(.dataDir)!)
        }
    }
}
