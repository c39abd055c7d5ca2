import Foundation
import Logging
import ParleyCore
import ParleyPostgres
import ParleySQLite

/// Where the chat's data lives: the one place in Parley that knows the storage engines. Everything else sees
/// `ChatStorage`.
enum StorageChoice: Sendable, Equatable {
    /// One SQLite file in the data folder: the embedded default.
    case sqlite(directory: String)
    /// A PostgreSQL database, how long one operation on it may take, and this server's name when it is one of
    /// several nodes serving it.
    case postgres(PostgresAddress, timeout: Duration = .seconds(5), node: String? = nil, nodeTimeout: Duration = .seconds(15))
    /// Nothing kept (`--store none`).
    case memory

    /// Opens it. A server opens it `serving` (it then owns the data folder or the database until it closes it);
    /// only `creating` commands make an SQLite database where there is none. Errors say what to do.
    func open(serving: Bool, creating: Bool = true, logger: Logger) async throws -> any ChatStorage {
        switch self {
        case .sqlite(let directory): try await SQLiteStore.open(directory: directory, creating: creating, serving: serving, logger: logger)
        case .postgres(let address, let timeout, let node, let nodeTimeout):
            try await PostgresStore.open(
                address, creating: creating, serving: serving, node: node, timeout: timeout, nodeTimeout: nodeTimeout, logger: logger
            )
        case .memory: MemoryStorage()
        }
    }
}
