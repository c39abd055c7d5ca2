import Foundation
import Glibc
import Logging
import NIOPosix
import SQLiteNIO

/// Copies of the database: `parley backup` (while a server runs) and `parley restore` (while none does).
extension SQLiteStore {
    /// What a copy holds, as checked after it is written or before it is put back.
    public struct Contents: Sendable, CustomStringConvertible {
        public let messages: Int
        public let accounts: Int
        public let schemaVersion: Int
        public let bytes: Int

        public var description: String {
            "\(messages) messages, \(accounts) accounts, schema version \(schemaVersion), \(bytes / 1024) KiB"
        }
    }

    /// Writes a consistent copy of the data folder's database to `destination` with `VACUUM INTO`: one read
    /// transaction, so the copy is the database as it was at one moment, whatever a running server writes
    /// meanwhile (WAL lets the server go on writing; the copy is compacted, with no WAL of its own). Everything
    /// acknowledged before the backup began is in it. Then the copy is checked.
    public static func backup(directory: String, to destination: String) async throws -> Contents {
        let source = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: source) else { throw StoreError.missing(path: source) }
        // Made empty first, readable by its owner only (it holds password hashes and private messages), and
        // exclusively: a backup never overwrites, and two at once cannot write one file. VACUUM INTO fills an
        // empty file.
        let created = Glibc.open(destination, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard created >= 0 else {
            let reason = errno == EEXIST ? "it exists already; choose a new file name (a backup never overwrites)" : String(cString: strerror(errno))
            throw StoreError.failed(path: destination, reason: reason)
        }
        Glibc.close(created)
        do {
            // Not while a Parley process sets the folder up or upgrades it: the copy would be of a half-done step.
            let setup = try await SetupLock.acquire(on: directory)
            defer { setup.release() }
            try await withConnection(source) { connection in
                _ = try await connection.query("PRAGMA busy_timeout = 5000")
                do {
                    _ = try await connection.query("VACUUM INTO ?", [.text(destination)])
                } catch {
                    throw StoreError.failed(path: destination, reason: "\(error)")
                }
            }
            try synchronize(destination)
            return try await check(destination)
        } catch {
            // A failed backup leaves nothing behind that could pass for one, or block a retry under its name.
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
    }

    /// fsync: VACUUM INTO does not, and a backup that a power cut can leave half on disk is no backup.
    private static func synchronize(_ path: String) throws {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.failed(path: path, reason: String(cString: strerror(errno))) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StoreError.failed(path: path, reason: String(cString: strerror(errno))) }
    }

    /// Puts the copy at `source` back as the data folder's database, once it checks out (an intact SQLite
    /// database of Parley's, of a schema this binary knows). The database it replaces is kept beside it as
    /// `parley.sqlite3.before-restore-TIME` (with its WAL files), so a restore can be undone. Only while no
    /// server runs on the folder: the caller holds its `ServerLock`.
    public static func restore(directory: String, from source: String, holding lock: ServerLock) async throws -> (Contents, kept: String?) {
        guard FileManager.default.fileExists(atPath: source) else { throw StoreError.missing(path: source) }
        let files = FileManager.default
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let target = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        // Copied next to its place first, checked there (what is checked is what goes in), then renamed over
        // it: the database is never half written.
        let incoming = target + ".restoring"
        try? files.removeItem(atPath: incoming)
        try files.copyItem(atPath: source, toPath: incoming)
        let contents: Contents
        do {
            contents = try await check(incoming)
            // Owned like the folder (a restore run as root for a server that runs as its own user), and private.
            var folder = stat()
            if stat(directory, &folder) == 0 { _ = chown(incoming, folder.st_uid, folder.st_gid) }
            _ = chmod(incoming, 0o600)
            try synchronize(incoming)
        } catch {
            try? files.removeItem(atPath: incoming)
            throw error
        }
        // The database replaced, and any WAL or journal beside it (even without it: a WAL left over would be
        // replayed onto the restored file), moved aside together, WAL first.
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let aside = target + ".before-restore-" + stamp
        var kept: String?
        for suffix in ["-wal", "-shm", "-journal", ""] where files.fileExists(atPath: target + suffix) {
            try files.moveItem(atPath: target + suffix, toPath: aside + suffix)
            if suffix.isEmpty { kept = aside }
        }
        guard rename(incoming, target) == 0 else {
            throw StoreError.failed(path: target, reason: String(cString: strerror(errno)))
        }
        return (contents, kept)
    }

    /// Opens a copy read-only and checks it: intact (`integrity_check`), Parley's, and not from a newer Parley.
    public static func check(_ path: String) async throws -> Contents {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.missing(path: path) }
        return try await withConnection(path) { connection in
            do {
                _ = try await connection.query("PRAGMA query_only = 1")
                let integrity = try await connection.query("PRAGMA integrity_check").first?.columns.first?.data.string
                guard integrity == "ok" else { throw StoreError.corrupt(path: path, detail: integrity ?? "no answer") }
                let version = Int(try await connection.query("PRAGMA user_version").first?.columns.first?.data.integer ?? 0)
                guard version > 0 else { throw StoreError.failed(path: path, reason: "this is no Parley database") }
                guard version <= schemaVersion else { throw StoreError.newerSchema(path: path, found: version, known: schemaVersion) }
                let messages = try await connection.query("SELECT count(*) FROM messages").first?.columns.first?.data.integer ?? 0
                let accounts = try await connection.query("SELECT count(*) FROM accounts").first?.columns.first?.data.integer ?? 0
                let bytes = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
                return Contents(messages: messages, accounts: accounts, schemaVersion: version, bytes: bytes)
            } catch let error as StoreError {
                throw error
            } catch {
                throw describe(error, path: path)
            }
        }
    }

    /// One connection of its own, on a thread of its own, closed whatever happens.
    private static func withConnection<T: Sendable>(_ path: String, _ body: (SQLiteConnection) async throws -> T) async throws -> T {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let result: Result<T, any Error>
        do {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: pool, logger: Logger(label: "parley.backup"), on: MultiThreadedEventLoopGroup.singleton.any()
            ).get()
            do {
                result = .success(try await body(connection))
            } catch {
                result = .failure(error)
            }
            try? await connection.close().get()
        } catch {
            result = .failure(StoreError.cannotOpen(path: path, reason: "\(error)"))
        }
        try? await pool.shutdownGracefully()
        return try result.get()
    }
}
