import Foundation
import Logging
import NIOCore
import ParleyCore
import ParleySQLite
import ParleyServer
import ServiceLifecycle
import Synchronization

/// A real Parley server on 127.0.0.1, port 0, run the way `parley serve` runs it (one ServiceGroup), and
/// always ended by a graceful shutdown.
struct TestServer: Sendable {
    /// Every port it listens on, as bound.
    let ports: [Endpoint: Int]
    let application: ParleyApplication

    var port: Int { ports[.lines] ?? 0 }
    var ircPort: Int { ports[.irc] ?? 0 }
    var tlsPort: Int { ports[.linesTLS] ?? 0 }
    var ircTLSPort: Int { ports[.ircTLS] ?? 0 }
    var httpPort: Int { ports[.http] ?? 0 }
    var httpsPort: Int { ports[.https] ?? 0 }

    /// Runs `body` against a fresh server on `port` (0: any free port).
    static func run(
        port: Int = 0,
        dataDirectory: String? = nil,
        log: LogLines? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        storage openStorage: ((ServerConfiguration) async throws -> any ChatStorage)? = nil,
        _ body: (TestServer) async throws -> Void
    ) async throws {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = port
        configuration.serverName = "test.parley"
        configuration.limits.shutdownGrace = .seconds(2)
        // Long enough that a JSON test client is never slower than it, even on a loaded CI machine; text
        // users type their nickname at once (below), so they do not wait for it either.
        configuration.limits.greetingWindow = .seconds(1)
        configuration.ircPort = 0
        configuration.httpPort = 0
        // Tests create rooms in bursts from one address; the limit has its own test.
        configuration.roomLimits.createdPerMinute = 10_000
        // Real scrypt, at a sixteenth of the work: the suite runs hundreds of them on two cores.
        configuration.passwordCost = 1024
        configuration.dataDirectory = dataDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("parley-test-\(UUID().uuidString)").path
        configure(&configuration)
        let logger = Logger(label: "parley-test") { label in
            guard let log else { return SwiftLogNoOpLogHandler() }
            return ParleyLogHandler(label: label, level: .info) { line in log.append(line) }
        }
        let storage: any ChatStorage =
            if let openStorage { try await openStorage(configuration) } else { try await SQLiteStore.open(directory: configuration.dataDirectory, serving: true) }
        let application = try await ParleyApplication.open(configuration: configuration, storage: storage, logger: logger)
        let (addresses, listening) = AsyncStream.makeStream(of: (Endpoint, SocketAddress).self)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: application.services(console: false, onListening: { listening.yield(($0, $1)) }),
                logger: logger
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports: [Endpoint: Int] = [:]
            for await (endpoint, address) in addresses {
                ports[endpoint] = address.port
                if ports.count == configuration.endpoints.count { break }
            }
            guard ports.count == configuration.endpoints.count else { throw TestFailure("the server did not start listening") }
            let server = TestServer(ports: ports, application: application)
            do {
                try await body(server)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Connects a text-mode client and registers `nick`, waiting until it is in #general.
    func textUser(_ nick: String, options: TestClient.Options = .init()) async throws -> TestClient {
        try await Self.textUser(nick, port: port, options: options)
    }

    /// Connects a JSON-lines client and says hello as `nick`, waiting for its membership list.
    func jsonUser(_ nick: String) async throws -> TestClient {
        try await Self.jsonUser(nick, port: port)
    }

    static func textUser(_ nick: String, port: Int, options: TestClient.Options = .init()) async throws -> TestClient {
        let client = try await TestClient.connect(port: port, options: options)
        try await client.send(nick)
        try await client.waitFor { $0.hasPrefix("*** In #general") }
        return client
    }

    static func jsonUser(_ nick: String, port: Int) async throws -> TestClient {
        let client = try await TestClient.connect(port: port)
        try await client.send(#"{"type":"hello","version":1,"nick":"\#(nick)"}"#)
        try await client.waitFor { $0.contains(#""type":"members""#) }
        return client
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The log lines of a `TestServer` that was given one, as `ParleyLogHandler` writes them.
final class LogLines: Sendable {
    private let store = Mutex<[String]>([])

    func append(_ line: String) { store.withLock { $0.append(line) } }

    var lines: [String] { store.withLock { $0 } }
}

/// Writes `text` to a new file of its own in the temporary folder (a settings file, a message of the day, a
/// unit) and returns its path.
func temporaryFile(_ text: String, suffix: String = "") throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(UUID().uuidString)\(suffix)").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
