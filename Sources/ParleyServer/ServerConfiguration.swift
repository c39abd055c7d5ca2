import Foundation
import NIOCore
import ParleyCore
import ParleyProtocols
import Synchronization

/// Everything `parley serve` can be told, with the defaults documented in `--help` and the README.
public struct ServerConfiguration: Sendable {
    public var host = "0.0.0.0"
    public var port = 5000
    /// The IRC port; nil: no IRC front door.
    public var ircPort: Int? = 6667
    /// The text/JSON-lines port over TLS; nil: none.
    public var tlsPort: Int?
    /// IRC over TLS (6697 by convention); nil: none.
    public var ircTLSPort: Int?
    /// The browser's port (the web client, WebSocket, health and metrics); nil: none.
    public var httpPort: Int? = 8080
    /// The browser's port over TLS; nil: none.
    public var httpsPort: Int?
    /// Origins besides the server's own whose pages may open its WebSockets (`https://chat.example.org`).
    public var allowedOrigins: [String] = []
    /// The WebSocket addresses of the other nodes of this chat (`--node-url`): the web client fails over to them,
    /// and pages they serve may connect here.
    public var nodeURLs: [String] = []
    /// Who may read `/metrics`.
    public var metricsAllowed = Network.loopback
    /// A text file whose lines every client is shown after its welcome (the message of the day); SIGHUP reads
    /// it again.
    public var motdFile: String?
    /// Proxies in front of the HTTP port whose `X-Forwarded-For` names the client.
    public var trustedProxies: [Network] = []
    /// The certificate of the TLS ports.
    public var certificate = CertificateSource.generated
    /// False closes the plaintext ports of every door (`--no-plaintext`).
    public var plaintext = true
    /// With a TLS port on, passwords sent over a plaintext port are refused unless this is set (a trusted LAN).
    public var allowPlaintextPasswords = false
    /// IRC's strict transport security: how long (seconds) clients that reached the IRC TLS port keep using
    /// it. Advertised only with a certificate from files: a client that upgrades must verify the certificate,
    /// which a self-signed one fails, and it would then be locked out of the plaintext port for this long.
    public var strictTransportDuration = 2_592_000
    /// Connections per address over every door: open at once, new a minute, and who is exempt.
    public var addressLimits = AddressLimits.Configuration()
    public var dataDirectory = "./parley-data"
    /// The name the server gives itself in greetings.
    public var serverName = ServerConfiguration.hostName()
    /// Messages replayed to whoever joins a room (0: none).
    public var historyOnJoin = 50
    /// When set, every front door asks for it before registration (IRC's PASS).
    public var serverPassword: String?
    /// How often, at most, a busy event loop writes to each of its connections; 0 writes at the end of every
    /// publisher batch. See `LoopDrainer`.
    public var flushInterval: Duration = .milliseconds(5)
    public var limits = Limits()
    /// Rooms one account may own, and one address create a minute.
    public var roomLimits = ChatState<Client>.RoomLimits()
    /// scrypt's N for passwords set from now on (the default is 2^14; tests lower it to spare their machine).
    public var passwordCost = 16_384

    public struct Limits: Sendable {
        public var line = LineFramer.Limits()
        public var flood = TokenBucket.Configuration()
        /// Whether clients are told when flood control starts to delay their lines; nil: as their door does
        /// (`FrontDoor.explainsDelays`: text users are told, IRC clients are not).
        public var explainDelays: Bool?
        /// Lines of one client whose effects may wait in the publisher's queue at once; past them the server
        /// reads no more from that client until the oldest is carried out (`ProgressWindow`). A flood then
        /// waits in its sender's socket, not in front of everyone else's messages.
        public var linesAhead = 32
        /// Bytes queued for one client before it is dropped as too slow.
        public var sendQueueBytes = 128 * 1024
        /// The kernel send buffer of each client socket. Pinned because Linux would let each grow to 4 MiB,
        /// which would both unbound memory per client and hide a stalled reader for megabytes.
        public var socketSendBufferBytes = 64 * 1024
        /// IRC: after this long without a line from a client the server sends PING, and after as long again
        /// without an answer it closes the connection (a half-open connection is found out).
        public var pingInterval: Duration = .seconds(120)
        /// How long a new connection may take to choose a nickname.
        public var registrationTimeout: Duration = .seconds(60)
        /// How long an HTTP connection may take to send a whole request, and to take its answer.
        public var httpRequestTimeout: Duration = .seconds(30)
        /// How long the server waits for a JSON client's first byte before greeting in plain text.
        public var greetingWindow: Duration = .milliseconds(300)
        /// On shutdown, how long clients get to receive what is queued before their connections are cut.
        public var shutdownGrace: Duration = .seconds(3)
        /// After /quit or end of input, how long the goodbye may take to drain.
        public var linger: Duration = .seconds(2)

        public init() {}
    }

    public init() {}

    public var usesTLS: Bool { tlsPort != nil || ircTLSPort != nil || httpsPort != nil }

    /// The ports to open, each with the port number asked for.
    public var endpoints: [(endpoint: Endpoint, port: Int)] {
        var endpoints: [(Endpoint, Int)] = []
        if plaintext {
            endpoints.append((.lines, port))
            if let ircPort { endpoints.append((.irc, ircPort)) }
            if let httpPort { endpoints.append((.http, httpPort)) }
        }
        if let tlsPort { endpoints.append((.linesTLS, tlsPort)) }
        if let ircTLSPort { endpoints.append((.ircTLS, ircTLSPort)) }
        if let httpsPort { endpoints.append((.https, httpsPort)) }
        return endpoints
    }

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "parley" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "parley" : name
    }
}

/// The per-connection limits in force: each new connection starts with the current ones; SIGHUP replaces them
/// (`Reloader`). A connection keeps the limits it started with, so nothing changes under a client mid-line.
public final class LiveLimits: Sendable {
    private let limits: Mutex<ServerConfiguration.Limits>

    public init(_ limits: ServerConfiguration.Limits) {
        self.limits = Mutex(limits)
    }

    public var current: ServerConfiguration.Limits {
        get { limits.withLock { $0 } }
        set { limits.withLock { $0 = newValue } }
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension SocketAddress {
    /// `127.0.0.1:5000` or `[::1]:5000`, for logs.
    var display: String {
        switch (ipAddress, port) {
        case (let ip?, let port?): self.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        default: description
        }
    }
}
