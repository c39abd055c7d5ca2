import ArgumentParser
import Foundation
import ParleySQLite

/// `parley backup`: a consistent copy of the database, taken while the server runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database to a file, while the server runs or not.",
        discussion: """
            The copy is the database as it was at one moment (SQLite's VACUUM INTO, in one read transaction): \
            everything acknowledged before the backup began is in it. It is checked after it is written. \
            Put it back with `parley restore --from FILE` while the server is stopped. For the SQLite store only: \
            a server on PostgreSQL (--store postgres) is backed up with pg_dump.
            """
    )

    @Option(help: "The file to write; it must not exist yet.") var to: String
    @Option(name: .customLong("data-dir"), help: "The server's data folder.") var dataDirectory = "./parley-data"

    func run() async throws {
        do {
            let contents = try await SQLiteStore.backup(directory: dataDirectory, to: to)
            print("backed up \(contents) to \(to)")
        } catch {
            FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
            throw ExitCode(3)
        }
    }
}

/// `parley restore`: puts a backup back, with the server stopped.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup back as the database (stop the server first).",
        discussion: """
            The backup is checked first (intact, and from a Parley this one can read). The database it replaces \
            is kept beside it as parley.sqlite3.before-restore-TIME. Refused while a server runs on the data folder.
            """
    )

    @Option(help: "The backup to put back (made by parley backup).") var from: String
    @Option(name: .customLong("data-dir"), help: "The server's data folder.") var dataDirectory = "./parley-data"

    func run() async throws {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            let lock = try ServerLock.acquire(directory: dataDirectory)
            defer { lock.release() }
            let (contents, kept) = try await SQLiteStore.restore(directory: dataDirectory, from: from, holding: lock)
            print("restored \(contents) from \(from)" + (kept.map { "; the database it replaced is kept as \($0)" } ?? ""))
        } catch {
            FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
            throw ExitCode(3)
        }
    }
}
