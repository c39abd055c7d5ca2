import Foundation
import NIOSSL
import PostgresNIO

/// Where the database is and who logs in, from a URL in libpq's form:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]`, or over a Unix socket,
/// `postgres://USER@/DATABASE?host=/run/postgresql` (the folder holding `.s.PGSQL.PORT`). The form every
/// PostgreSQL tool takes, so an operator can paste the same URL into `psql`.
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The socket file itself (folder + `.s.PGSQL.PORT`).
        case socket(path: String)
    }

    /// libpq's `sslmode`, the values that mean something to a client without a client certificate.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plaintext.
        case disable
        /// TLS when the server offers it, unverified (libpq's default).
        case prefer
        /// TLS always, unverified, like libpq's `require`.
        case require
        /// TLS always, the certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    public let endpoint: Endpoint
    public let user: String
    public let password: String?
    public let database: String
    public let tls: TLSMode

    /// Parses `text`; the error says what is wrong without repeating the password.
    public init(_ text: String) throws(DatabaseError) {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme?.lowercased() ?? "") else {
            throw .badURL("it must start postgres:// (postgres://USER:PASSWORD@HOST:PORT/DATABASE)")
        }
        // URLComponents' `user`, `password` and `path` are decoded already: decoding again would turn a literal
        // `%41` in a password into `A`.
        guard let user = components.user, !user.isEmpty else {
            throw .badURL("it names no user (postgres://USER@HOST/DATABASE)")
        }
        let database = String(components.path.dropFirst())
        guard !database.isEmpty, !database.contains("/") else { throw .badURL("it names no database (postgres://USER@HOST/DATABASE)") }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        for name in query.keys where !["sslmode", "host", "port"].contains(name) {
            throw .badURL("it has a parameter \(name); Parley knows sslmode, host (a socket folder) and port")
        }
        var port = components.port ?? 5432
        if let given = query["port"] {
            guard let number = Int(given), (1...65535).contains(number) else { throw .badURL("its port \(given) is not a port") }
            port = number
        }
        if let folder = query["host"], folder.hasPrefix("/") {
            endpoint = .socket(path: "\(folder)/.s.PGSQL.\(port)")
        } else if let host = components.host.flatMap({ $0.isEmpty ? nil : $0 }) ?? query["host"] {
            // URLComponents keeps an IPv6 literal's brackets; a socket address wants it bare.
            endpoint = .tcp(host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port)
        } else {
            endpoint = .tcp(host: "localhost", port: port)
        }
        guard let mode = TLSMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw .badURL("its sslmode \(query["sslmode"] ?? "") is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.user = user
        self.password = components.password
        self.database = database
        self.tls = mode
    }

    /// The URL without its password: what logs and errors show.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port):
            "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
        case .socket(let path):
            "postgres://\(user)@/\(database)?host=\((path as NSString).deletingLastPathComponent)"
        }
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        switch endpoint {
        case .tcp(let host, let port):
            PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: try connectionTLS())
        case .socket(let path):
            PostgresConnection.Configuration(unixSocketPath: path, username: user, password: password, database: database)
        }
    }

    var clientConfiguration: PostgresClient.Configuration {
        switch endpoint {
        case .tcp(let host, let port):
            PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: clientTLS)
        case .socket(let path):
            PostgresClient.Configuration(unixSocketPath: path, username: user, password: password, database: database)
        }
    }

    private var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if tls != .verifyFull { configuration.certificateVerification = .none }
        return configuration
    }

    private func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: tlsConfiguration))
        case .require, .verifyFull: .require(try NIOSSLContext(configuration: tlsConfiguration))
        }
    }

    private var clientTLS: PostgresClient.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration)
        case .require, .verifyFull: .require(tlsConfiguration)
        }
    }
}
