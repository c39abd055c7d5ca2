import NIOCore
import ParleyCore
@testable import ParleyClient
import Synchronization
import Testing

@Suite("Connector")
struct ConnectorTests {
    @Test("the hello carries the account's password only with the nick it opens (any case), not with a nick taken since")
    func helloPassword() throws {
        let connector = Connector(addresses: [try ServerAddress(parsing: "127.0.0.1:1")], trust: nil, nick: "ivan", password: "pw-1")
        #expect(String(buffer: connector.hello()).contains(#""password":"pw-1""#))
        connector.nick.withLock { $0 = "IVAN" }
        #expect(String(buffer: connector.hello()).contains(#""password":"pw-1""#))
        connector.nick.withLock { $0 = "other" }
        #expect(!String(buffer: connector.hello()).contains("password"))
    }

    @Test("the wait before a retry is counted down one second at a time")
    func countdown() {
        #expect(Connector.countdown(from: .seconds(3)) == [.seconds(3), .seconds(2), .seconds(1)])
        #expect(Connector.countdown(from: .milliseconds(2500)) == [.milliseconds(2500), .milliseconds(1500), .milliseconds(500)])
        #expect(Connector.countdown(from: .milliseconds(400)) == [.milliseconds(400)])
        #expect(Connector.countdown(from: .zero) == [.zero])
    }

    @Test("given several servers, the client fails over to the next when its server goes away, and says so")
    func failover() async throws {
        let reports = Mutex<[String]>([])
        let record: @Sendable (Connector.Report) -> Void = { report in
            var line = "event"
            switch report {
            case .connected: line = "connected"
            case .connecting: line = "connecting"
            case .disconnected: line = "disconnected"
            case .event(let event): if case .notice(let text) = event { line = "notice: \(text)" }
            case .failedOver(let to, let from): line = "failed over to \(to) from \(from)"
            }
            reports.withLock { $0.append(line) }
        }
        try await TestServer.run { standIn in
            let second = try ServerAddress(parsing: "127.0.0.1:\(standIn.port)")
            var running: Task<Void, Never>?
            var first: ServerAddress?
            try await TestServer.run { server in
                first = try ServerAddress(parsing: "127.0.0.1:\(server.port)")
                let connector = Connector(addresses: [first!, second], trust: nil, nick: "ivan")
                let channel = try await ServerLink.connect(first!, trust: nil)
                running = Task { await connector.run(first: channel, report: record) }
                try await eventually("connected to the first server") { reports.withLock { $0.contains("connected") } }
            }
            // The first server has shut down: the client reaches the second without waiting out a backoff round.
            let said = "failed over to \(second) from \(first!)"
            try await eventually("failed over", timeout: .seconds(40)) { reports.withLock { $0.contains(said) } }
            try await eventually("welcomed by the second", timeout: .seconds(40)) {
                reports.withLock { lines in lines.lastIndex(of: "connected").map { $0 > lines.firstIndex(of: said)! } ?? false }
            }
            let watcher = try await standIn.textUser("watcher")
            try await isOnline("ivan", askedBy: watcher)
            running?.cancel()
            await running?.value
        }
    }

    @Test("a server that accepts but never welcomes is passed over for the next after the welcome deadline")
    func silentServerPassedOver() async throws {
        // Answers the hello with a line that is no event at all, then says nothing: a frozen server, or a proxy in
        // front of a dead one.
        let silent = try await FakeServer.start(reply: "# nothing here")
        let reports = Mutex<[String]>([])
        let record: @Sendable (Connector.Report) -> Void = { report in
            if case .failedOver(let to, let from) = report { reports.withLock { $0.append("failed over to \(to) from \(from)") } }
        }
        try await TestServer.run { server in
            let real = try ServerAddress(parsing: "127.0.0.1:\(server.port)")
            let quiet = try ServerAddress(parsing: "127.0.0.1:\(silent.port)")
            let connector = Connector(addresses: [quiet, real], trust: nil, nick: "ivan")
            let channel = try await ServerLink.connect(quiet, trust: nil)
            let running = Task { await connector.run(first: channel, report: record) }
            try await eventually("passed over after the welcome deadline", timeout: .seconds(60)) {
                reports.withLock { $0.contains("failed over to \(real) from \(quiet)") }
            }
            let watcher = try await server.textUser("watcher")
            try await isOnline("ivan", askedBy: watcher)
            running.cancel()
            await running.value
        }
        try await silent.close()
    }

    @Test("server lists: comma-separated, each with its own port or the default; an empty entry is a mistake")
    func addressLists() throws {
        let list = try ServerAddress.list(parsing: "a.lan, b.lan:6000,[::1]:7000", defaultPort: 5001)
        #expect(list.map(\.description) == ["a.lan:5001", "b.lan:6000", "[::1]:7000"])
        #expect(throws: (any Error).self) { try ServerAddress.list(parsing: "a.lan,,b.lan") }
        #expect(throws: (any Error).self) { try ServerAddress.list(parsing: "a.lan:99999") }
    }
}

/// Asks `/who` until `nick` is in the answer: a client that was welcomed (or failed over) joins its rooms a moment
/// later, and a single `/who` can come first.
private func isOnline(_ nick: String, askedBy watcher: TestClient) async throws {
    try await eventually("\(nick) is online", timeout: .seconds(60)) {
        try await watcher.send("/who")
        return try await watcher.waitFor { $0.hasPrefix("*** Online") }.contains(nick)
    }
}
