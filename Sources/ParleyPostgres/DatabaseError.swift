import PostgresNIO

/// What went wrong with the PostgreSQL database, in words an operator can act on (postgres-nio's own errors
/// say little on purpose, lest a log leak a query; the server's message and SQLSTATE are read out here).
public enum DatabaseError: Error, Equatable, CustomStringConvertible {
    case badURL(String)
    case unreachable(address: String, reason: String)
    case refused(address: String, reason: String)
    case missingDatabase(address: String)
    case noSchema(address: String)
    case newerSchema(address: String, found: Int, known: Int)
    case migrationFailed(address: String, version: Int, reason: String)
    case timedOut(address: String, after: Duration)
    /// `node`: the node name that was wanted, when that is what another server holds.
    case inUse(address: String, by: String, node: String? = nil)
    case failed(address: String, reason: String)

    public var description: String {
        switch self {
        case .badURL(let reason): "the database URL is not usable: \(reason)"
        case .unreachable(let address, let reason): "cannot reach the database \(address): \(reason); is PostgreSQL running there?"
        case .refused(let address, let reason): "the database \(address) refused the login: \(reason); check the user and password"
        case .missingDatabase(let address): "the database \(address) does not exist; create it (createdb) or fix the URL"
        case .noSchema(let address):
            "the database \(address) holds no Parley data yet; parley serve or parley account add makes it (is the URL right?)"
        case .newerSchema(let address, let found, let known):
            "the database \(address) has schema version \(found), but this parley knows only up to \(known); run a newer parley"
        case .migrationFailed(let address, let version, let reason):
            "upgrading the database \(address) to schema version \(version) failed: \(reason); nothing was changed"
        case .timedOut(let address, let after): "the database \(address) did not answer within \(after)"
        case .inUse(let address, let holder, let node?):
            "the database \(address) already has a node called \(node) (\(holder)); give each node a name of its own"
        case .inUse(let address, let holder, nil):
            "the database \(address) is in use by \(holder); one parley serve per database, or give every server --node-name to run them as nodes sharing it"
        case .failed(let address, let reason): "the database \(address) failed: \(reason)"
        }
    }

    /// `error`, as said about `address`.
    static func describe(_ error: any Error, address: PostgresAddress) -> DatabaseError {
        if let error = error as? DatabaseError { return error }
        let at = address.description
        guard let error = error as? PSQLError else { return .failed(address: at, reason: "\(error)") }
        if let info = error.serverInfo {
            let state = info[.sqlState] ?? ""
            let message = info[.message] ?? "\(error.code)"
            // Class 28: invalid authorization; 3D000: no such database.
            if state.hasPrefix("28") { return .refused(address: at, reason: message) }
            if state == "3D000" { return .missingDatabase(address: at) }
            return .failed(address: at, reason: "\(message) (SQLSTATE \(state))")
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .sslUnsupported:
            return .unreachable(address: at, reason: error.underlying.map { "\($0)" } ?? "\(error.code)")
        case .authMechanismRequiresPassword, .unsupportedAuthMechanism, .saslError:
            return .refused(address: at, reason: "\(error.code)")
        default:
            return .failed(address: at, reason: error.underlying.map { "\(error.code): \($0)" } ?? "\(error.code)")
        }
    }
}
