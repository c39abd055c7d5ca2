import Foundation
import Logging
import ParleyPostgres
import PostgresNIO
import Synchronization

/// A private PostgreSQL server for the tests, made with the system's own binaries (scripts/test installs them):
/// `initdb` into a temporary folder, listening on a Unix socket in that folder only (no TCP port, so nothing to
/// clash with), run as `nobody` when the tests run as root (PostgreSQL refuses root). A watchdog stops it when
/// the test process ends, however it ends.
///
/// Most tests share one cluster (`shared`), each in a database of its own (`newDatabase()`); a test that stops
/// and starts the server makes its own.
final class PostgresCluster: Sendable {
    let folder: URL
    private let binaries: URL
    /// Runs a command as the cluster's owner: `runuser -u nobody --` under root, nothing otherwise.
    private let asOwner: [String]
    private let watchdog = Mutex<Spawned?>(nil)
    private let databases = Atomic<Int>(0)

    var data: String { folder.appendingPathComponent("data").path }

    /// The cluster every test may use: started once, on first use.
    static let shared = Task { try await PostgresCluster.start() }

    /// A fresh, empty database on the shared cluster.
    static func newDatabase() async throws -> PostgresAddress {
        try await shared.value.newDatabase()
    }

    static func start() async throws -> PostgresCluster {
        let cluster = try PostgresCluster()
        try await cluster.initialize()
        try await cluster.startServer()
        try await cluster.execute("CREATE ROLE \(passwordRole.user) LOGIN PASSWORD '\(passwordRole.password)'")
        return cluster
    }

    /// How long a test's store gives one operation: a loaded machine running hundreds of tests beside the
    /// database can stall a query for seconds; tests of the deadline itself set a short one.
    static let patience: Duration = .seconds(30)

    /// Logs nothing: the stores' own notices (a schema made) would fill the test output.
    static let quiet = Logger(label: "test.postgres") { _ in SwiftLogNoOpLogHandler() }

    private init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.compactMap(Int.init).max() else {
            throw TestFailure("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin); scripts/test installs it (apt-get install postgresql)")
        }
        binaries = URL(fileURLWithPath: "/usr/lib/postgresql/\(version)/bin")
        // Short: a Unix socket's path has a limit of about 100 bytes.
        folder = URL(fileURLWithPath: "/tmp/pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        if geteuid() == 0 {
            asOwner = ["/usr/sbin/runuser", "-u", "nobody", "--"]
            guard let nobody = getpwnam("nobody") else { throw TestFailure("no user nobody to run PostgreSQL as") }
            chown(folder.path, nobody.pointee.pw_uid, nobody.pointee.pw_gid)
        } else {
            asOwner = []
        }
    }

    /// A role that must give its password (`stranger`, password `letmein`): what a wrong password is tested on.
    /// Every other login is trusted; the socket is in a folder of the test's own.
    static let passwordRole = (user: "stranger", password: "letmein")

    private func initialize() async throws {
        let status = try await run([binaries.appendingPathComponent("initdb").path, "-D", data, "-U", "parley", "-A", "trust", "-E", "UTF8", "--no-sync"])
        guard status == 0 else {
            throw TestFailure("initdb failed (\(status)): \((try? String(contentsOf: folder.appendingPathComponent("commands.log"), encoding: .utf8)) ?? "")")
        }
        let rules = URL(fileURLWithPath: data).appendingPathComponent("pg_hba.conf")
        let trusted = try String(contentsOf: rules, encoding: .utf8)
        try ("local all \(Self.passwordRole.user) scram-sha-256\n" + trusted).write(to: rules, atomically: false, encoding: .utf8)
    }

    /// Starts the server and waits (with a deadline) until it takes connections. `pg_ctl -w` waits for that.
    func startServer() async throws {
        let options = "-c listen_addresses='' -k \(folder.path) -c max_connections=300 -c shared_buffers=32MB"
        let status = try await run([
            binaries.appendingPathComponent("pg_ctl").path, "-D", data, "-o", options, "-l", folder.appendingPathComponent("log").path, "-w", "-t", "60", "start",
        ])
        guard status == 0 else {
            let log = (try? String(contentsOf: folder.appendingPathComponent("log"), encoding: .utf8)) ?? ""
            throw TestFailure("PostgreSQL did not start (\(status)): \(log)")
        }
        if watchdog.withLock({ $0 == nil }) { try startWatchdog() }
    }

    /// Stops the server at once (`immediate`: as a crash or a pulled plug would, what is committed survives).
    func stopServer() async throws {
        let status = try await run([binaries.appendingPathComponent("pg_ctl").path, "-D", data, "-m", "immediate", "-w", "stop"])
        guard status == 0 else { throw TestFailure("pg_ctl stop failed (\(status))") }
    }

    /// A process holding a pipe from this one: when the test process ends, the pipe closes, `read` returns, and
    /// it stops the server and removes the folder, so no PostgreSQL and no data outlive the tests.
    private func startWatchdog() throws {
        let stop = "\(binaries.appendingPathComponent("pg_ctl").path) -D \(data) -m immediate stop >/dev/null 2>&1"
        let script = "read _; " + (asOwner.isEmpty ? stop : "\(asOwner.joined(separator: " ")) sh -c '\(stop)'") + "; rm -rf \(folder.path)"
        let pipe = try ClosingPipe()
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard null >= 0 else { throw TestFailure("cannot open /dev/null") }
        defer { close(null) }
        let process = try Spawned.start("/bin/sh", ["-c", script], input: pipe.reading.fileDescriptor, output: null, error: null)
        try pipe.reading.close()
        // The write end stays open in this process for as long as the cluster runs.
        watchdog.withLock { $0 = process }
        Self.pipes.withLock { $0.append(pipe.writing) }
    }

    private static let pipes = Mutex<[FileHandle]>([])

    /// The URL of database `name` on this cluster, over its socket.
    func address(database name: String) throws -> PostgresAddress {
        try PostgresAddress("postgres://parley@/\(name)?host=\(folder.path)")
    }

    func newDatabase() async throws -> PostgresAddress {
        let name = "test_\(getpid())_\(databases.wrappingAdd(1, ordering: .relaxed).newValue)"
        try await execute("CREATE DATABASE \(name)")
        return try address(database: name)
    }

    /// The number the query gives (its first row's first column), as the superuser, in `database`.
    func number(database: String = "postgres", _ sql: String) async throws -> Int {
        let logger = Self.quiet
        let connection = try await PostgresConnection.connect(
            configuration: .init(unixSocketPath: "\(folder.path)/.s.PGSQL.5432", username: "parley", password: nil, database: database),
            id: 1, logger: logger
        )
        var found = 0
        do {
            for try await (value) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int.self) { found = value }
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        return found
    }

    /// Runs one statement as the superuser, in `database`.
    func execute(database: String = "postgres", _ sql: String) async throws {
        let logger = Self.quiet
        let connection = try await PostgresConnection.connect(
            configuration: .init(unixSocketPath: "\(folder.path)/.s.PGSQL.5432", username: "parley", password: nil, database: database),
            id: 1, logger: logger
        )
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// Runs a command as the cluster's owner and gives its exit status; what it says goes to `commands.log` in
    /// the folder.
    private func run(_ command: [String]) async throws -> Int32 {
        let log = folder.appendingPathComponent("commands.log")
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        output.seekToEndOfFile()
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { throw TestFailure("cannot open /dev/null") }
        defer { close(null) }
        let command = asOwner + command
        let process = try Spawned.start(
            command[0], Array(command.dropFirst()), directory: folder.path, input: null, output: output.fileDescriptor, error: output.fileDescriptor
        )
        return try await process.exit().get().status
    }
}
