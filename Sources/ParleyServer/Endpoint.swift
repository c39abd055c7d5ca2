import ParleyCore
import Synchronization

/// One listening port: a door, plain or over TLS.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public enum Door: String, Sendable {
        case lines
        case irc
        /// The browser's port: the web client, WebSocket (JSON and IRC), health and metrics.
        case http
    }

    public let door: Door
    public let tls: Bool

    public static let lines = Endpoint(door: .lines, tls: false)
    public static let irc = Endpoint(door: .irc, tls: false)
    public static let linesTLS = Endpoint(door: .lines, tls: true)
    public static let ircTLS = Endpoint(door: .irc, tls: true)
    public static let http = Endpoint(door: .http, tls: false)
    public static let https = Endpoint(door: .http, tls: true)

    public var description: String { tls ? "\(door.rawValue)-tls" : door.rawValue }

    /// The `parley serve` flag that sets its port, for the message when the port cannot be opened.
    var portFlag: String {
        switch (door, tls) {
        case (.lines, false): "--port"
        case (.irc, false): "--irc-port"
        case (.lines, true): "--tls-port"
        case (.irc, true): "--irc-tls-port"
        case (.http, false): "--http-port"
        case (.http, true): "--https-port"
        }
    }
}

/// The ports the server listens on, as bound (a port asked as 0 is known once it is open): what a plaintext
/// session names when it refuses a password, and what IRC's STS points to.
final class PortDirectory: Sendable {
    private let ports = Mutex<[Endpoint: Int]>([:])

    func record(_ endpoint: Endpoint, port: Int) {
        ports.withLock { $0[endpoint] = port }
    }

    func port(of endpoint: Endpoint) -> Int? {
        ports.withLock { $0[endpoint] }
    }
}

/// What a port's sessions must know about its encryption.
struct PortSecurity: Sendable {
    let endpoint: Endpoint
    let directory: PortDirectory
    /// Passwords may cross this port: it is TLS, no port is, or the operator allowed it.
    let acceptsPasswords: Bool
    /// IRC's `sts` duration, when it is advertised.
    let strictTransportDuration: Int?

    var encrypted: Bool { endpoint.tls }

    /// The error a password sent here gets, or nil when passwords are welcome.
    var passwordRefusal: ChatError? {
        guard !acceptsPasswords else { return nil }
        let port = directory.port(of: Endpoint(door: endpoint.door, tls: true))
        let instead = port.map { "connect with TLS to port \($0)" } ?? "connect with TLS"
        return ChatError(.insecureConnection, "This connection is not encrypted, so it takes no passwords: \(instead). Your password was not checked.")
    }

    /// IRC's `sts` capability value for this port: the TLS port on a plaintext one, the duration on TLS.
    var strictTransport: String? {
        guard let duration = strictTransportDuration else { return nil }
        if encrypted { return "duration=\(duration)" }
        return directory.port(of: .ircTLS).map { "port=\($0)" }
    }
}
