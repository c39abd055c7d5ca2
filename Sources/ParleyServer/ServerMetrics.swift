import CoreMetrics
import Foundation
import ParleyCore
import Prometheus
import Synchronization

/// What `/metrics` shows, in the Prometheus text format: swift-metrics' types made by a factory over this
/// server's own registry (not the process-wide `MetricsSystem`, so that the servers a test process runs count
/// apart). Every update is an atomic add, and the hot path — deliveries — adds once per event, not per client.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    private let registrations: CoreMetrics.Counter
    private let messagesStored: CoreMetrics.Counter
    private let deliveries: CoreMetrics.Counter
    private let deliveriesDropped: CoreMetrics.Counter
    private let slowClientsDropped: CoreMetrics.Counter
    private let storeCommit: CoreMetrics.Timer
    private let historyReads: CoreMetrics.Counter
    private let loginFailures: CoreMetrics.Counter
    /// Per door (and TLS), made on first use.
    private let perDoor = Mutex<[String: (opened: CoreMetrics.Counter, open: CoreMetrics.Meter)]>([:])
    /// HTTP requests answered, per status code, made on first use.
    private let perStatus = Mutex<[UInt: CoreMetrics.Counter]>([:])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Commits take from well under a millisecond (one small batch, page cache) to seconds (a slow disk).
        factory.durationHistogramBuckets["parley_store_commit_seconds"] = [
            .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        registrations = CoreMetrics.Counter(label: "parley_registrations_total", factory: factory)
        messagesStored = CoreMetrics.Counter(label: "parley_messages_stored_total", factory: factory)
        deliveries = CoreMetrics.Counter(label: "parley_deliveries_total", factory: factory)
        deliveriesDropped = CoreMetrics.Counter(label: "parley_deliveries_dropped_total", factory: factory)
        slowClientsDropped = CoreMetrics.Counter(label: "parley_clients_dropped_slow_total", factory: factory)
        storeCommit = CoreMetrics.Timer(label: "parley_store_commit_seconds", factory: factory)
        historyReads = CoreMetrics.Counter(label: "parley_history_reads_total", factory: factory)
        loginFailures = CoreMetrics.Counter(label: "parley_login_failures_total", factory: factory)
    }

    func registered() { registrations.increment() }
    func loginFailed() { loginFailures.increment() }
    func slowClientDropped() { slowClientsDropped.increment() }
    func historyRead() { historyReads.increment() }

    /// One event's fan-out: frames queued and frames its recipients' outboxes dropped.
    func delivered(_ count: Int, dropped: Int) {
        if count > 0 { deliveries.increment(by: count) }
        if dropped > 0 { deliveriesDropped.increment(by: dropped) }
    }

    /// One commit of `messages`, which took from `start` until now.
    func committed(_ messages: Int, since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = start.duration(to: .now).components
        storeCommit.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        messagesStored.increment(by: messages)
    }

    /// A plain HTTP request answered with `status` (WebSocket upgrades are connections of their doors).
    func httpRequest(status: UInt) {
        let counter = perStatus.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = CoreMetrics.Counter(label: "parley_http_requests_total", dimensions: [("code", "\(status)")], factory: factory)
            counters[status] = counter
            return counter
        }
        counter.increment()
    }

    /// A connection opened through `door` (its name, `-tls` added on a TLS port).
    func connectionOpened(door: String) {
        let metrics = doorMetrics(door)
        metrics.opened.increment()
        metrics.open.increment()
    }

    func connectionClosed(door: String) {
        doorMetrics(door).open.decrement()
    }

    private func doorMetrics(_ door: String) -> (opened: CoreMetrics.Counter, open: CoreMetrics.Meter) {
        perDoor.withLock { doors in
            if let metrics = doors[door] { return metrics }
            let metrics = (
                CoreMetrics.Counter(label: "parley_connections_total", dimensions: [("door", door)], factory: factory),
                CoreMetrics.Meter(label: "parley_connections_open", dimensions: [("door", door)], factory: factory)
            )
            doors[door] = metrics
            return metrics
        }
    }

    /// Everything, in the Prometheus text exposition format.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// The message store, measured: commits (their latency and how many messages they stored) and history reads.
/// The publisher and the history lookups see only `MessageStore`, so they count nothing themselves.
struct MeasuredStore: MessageStore {
    let store: any MessageStore
    let metrics: ServerMetrics

    func append(_ messages: [ChatMessage]) async throws {
        let start = ContinuousClock.now
        try await store.append(messages)
        metrics.committed(messages.count, since: start)
    }

    func commit(_ messages: [ChatMessage], ids: Range<Int64>) async throws -> LogCommit {
        try await commit(messages, presence: [], ids: ids)
    }

    func commit(_ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>) async throws -> LogCommit {
        try await commit(messages, presence: presence, ids: ids) { _ in true }
    }

    func commit(
        _ messages: [ChatMessage], presence: [PresenceEntry], ids: Range<Int64>, whenRead: @escaping @Sendable (LogCommit) -> Bool
    ) async throws -> LogCommit {
        let start = ContinuousClock.now
        let commit = try await store.commit(messages, presence: presence, ids: ids, whenRead: whenRead)
        if !messages.isEmpty { metrics.committed(messages.count, since: start) }
        return commit
    }

    func presence() async throws -> [PresenceEntry] {
        try await store.presence()
    }

    func othersPresent() async throws -> [PresenceEntry] {
        try await store.othersPresent()
    }

    func catchUp() async throws -> LogCommit {
        try await store.catchUp()
    }

    func history(room: String, _ query: HistoryQuery, below: Int64) async throws -> [ChatMessage] {
        metrics.historyRead()
        return try await store.history(room: room, query, below: below)
    }

    func history(room: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        metrics.historyRead()
        return try await store.history(room: room, query, below: below, withTags: withTags)
    }

    func conversation(account: String, with nick: String, _ query: HistoryQuery, below: Int64, withTags: Bool) async throws -> [ChatMessage] {
        metrics.historyRead()
        return try await store.conversation(account: account, with: nick, query, below: below, withTags: withTags)
    }

    func targets(rooms: [String], account: String?, after: Date, before: Date, count: Int, newest: Bool) async throws -> [HistoryTarget] {
        metrics.historyRead()
        return try await store.targets(rooms: rooms, account: account, after: after, before: before, count: count, newest: newest)
    }

    func lastMessageID() async throws -> Int64 {
        try await store.lastMessageID()
    }

    var concurrentReads: Int { store.concurrentReads }
}
