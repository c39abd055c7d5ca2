import Foundation
import Histogram
import NIOCore
import NIOPosix

/// The load generator behind `parley bench`: connects the clients (paced), joins them to their rooms, lets
/// the senders talk for the configured time, waits for the last deliveries, and reports.
public enum Bench {
    public static func run(
        _ configuration: BenchConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        progress: @Sendable (String) -> Void = { _ in }
    ) async throws -> BenchReport {
        try configuration.validate()
        let run = UInt32.random(in: 1...999_999)
        let stats = try await LoopStatsRegistry.make(for: group)
        let connectStart = NIODeadline.now()
        var registration = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

        // Senders first, so the observers that confirm their messages can know them.
        progress("connecting \(configuration.clients) clients")
        let senderChannels = try await connect(0..<configuration.senders, configuration, run: run, stats: stats, group: group, registration: &registration) { _ in nil }
        var senders: [Sender] = []
        for (index, channel) in senderChannels.enumerated() {
            senders.append(
                try await Sender(index: index, room: configuration.room(of: index), channel: channel, dialect: configuration.wire, run: run, payloadBytes: configuration.payloadBytes)
            )
        }
        let table = senders
        let observers: Set<Int> = configuration.rate == nil ? Set((0..<configuration.rooms).map { configuration.senders + $0 }) : []
        let others = try await connect(configuration.senders..<configuration.clients, configuration, run: run, stats: stats, group: group, registration: &registration) { index in
            guard observers.contains(index) else { return nil }
            return { payload in if payload.sender < table.count { table[payload.sender].confirmed() } }
        }
        let connectSeconds = seconds(since: connectStart)
        progress("\(configuration.clients) clients joined in \(String(format: "%.2f", connectSeconds)) s; sending for \(configuration.duration)")

        let benchBefore = ProcessSample.current()
        let serverBefore = ProcessSample.of(pids: configuration.serverPIDs)
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(configuration.duration.components.seconds) * 1_000_000_000 + configuration.duration.components.attoseconds / 1_000_000_000)
        let mode: Sender.Mode = configuration.rate.map { .rate($0) } ?? .window(configuration.window)
        // Rate mode: the senders take turns, evenly spaced, instead of all sending at the same instants: the
        // load is `senders × rate` messages a second, not bursts of `senders` messages `rate` times a second.
        let spacing = configuration.rate.map { 1e9 / ($0 * Double(senders.count)) } ?? 0
        for (index, sender) in senders.enumerated() {
            sender.start(mode, at: start + .nanoseconds(Int64(spacing * Double(index))), until: end)
        }
        let attacker = configuration.attack.map {
            Attacker($0, host: configuration.host, port: configuration.attackPort ?? configuration.port, room: configuration.room(of: 0), group: group)
        }
        if let attack = configuration.attack { progress("attacking: \(attack.rawValue)") }
        // Runs beside the senders until `end` and is awaited below, before the counts are taken.
        let attackReport = Task { await attacker?.run(until: end) }
        try await Task.sleep(for: configuration.duration)
        // Senders stop by the event loops' clock; once it has passed `end`, no send can follow the counts below.
        while NIODeadline.now() < end { try await Task.sleep(for: .milliseconds(5)) }
        let attack = await attackReport.value

        // Wait for the stragglers: until everything expected arrived, or the drain time is up.
        var tally = Tally()
        for sender in senders {
            let count = try await sender.sentCount()
            for _ in 0..<count { tally.sent(toRoomOf: configuration.members(ofRoomOf: sender.index)) }
        }
        let drainEnd = ContinuousClock.now + configuration.drain
        while try await stats.received() < tally.expected, ContinuousClock.now < drainEnd {
            try await Task.sleep(for: .milliseconds(50))
        }
        let snapshot = try await stats.merged()
        let benchAfter = ProcessSample.current()
        let serverAfter = ProcessSample.of(pids: configuration.serverPIDs)
        tally.received = snapshot.received
        let window = snapshot.lastReceived > start.uptimeNanoseconds ? Double(snapshot.lastReceived - start.uptimeNanoseconds) / 1e9 : seconds(since: start)
        let measured = seconds(since: start)

        for channel in senderChannels + others { channel.close(promise: nil) }

        func milliseconds(_ percentile: Double) -> Double { Double(snapshot.latency.valueAtPercentile(percentile)) / 1000 }
        func usage(_ before: ProcessSample, _ after: ProcessSample, memory: Bool) -> BenchReport.Usage {
            let cpu = after.cpuSeconds - before.cpuSeconds
            return BenchReport.Usage(
                cpuSeconds: cpu, cores: cpu / measured,
                rssMiB: memory ? Double(after.residentBytes) / 1_048_576 : nil, peakRssMiB: memory ? Double(after.peakResidentBytes) / 1_048_576 : nil
            )
        }
        let server = serverBefore.flatMap { before in serverAfter.map { usage(before, $0, memory: true) } }
        let bench = usage(benchBefore, benchAfter, memory: false)
        return BenchReport(
            wire: configuration.wire.rawValue, target: "\(configuration.host):" + configuration.ports.map(String.init).joined(separator: ","), clients: configuration.clients,
            rooms: configuration.rooms, senders: configuration.senders, rate: configuration.rate,
            window: configuration.rate == nil ? configuration.window : nil,
            durationSeconds: Double(configuration.duration.components.seconds) + Double(configuration.duration.components.attoseconds) / 1e18,
            payloadBytes: configuration.payloadBytes,
            connect: .init(
                seconds: connectSeconds, p50: Double(registration.valueAtPercentile(50)) / 1000, p99: Double(registration.valueAtPercentile(99)) / 1000,
                max: Double(registration.max) / 1000
            ),
            sent: tally.sent, expected: tally.expected, received: tally.received, lost: tally.lost, lossPercent: tally.lossRatio * 100,
            deliveriesPerSecond: window > 0 ? Double(tally.received) / window : 0,
            latencyMs: .init(p50: milliseconds(50), p90: milliseconds(90), p99: milliseconds(99), p999: milliseconds(99.9), max: Double(snapshot.latency.max) / 1000),
            latencySamples: Int(snapshot.latency.totalCount),
            server: server, serverDeliveriesPerCPUSecond: server.flatMap { $0.cpuSeconds > 0 ? Double(tally.received) / $0.cpuSeconds : nil },
            bench: bench, benchNanosecondsPerDelivery: tally.received > 0 ? bench.cpuSeconds * 1e9 / Double(tally.received) : nil,
            attack: attack
        )
    }

    /// Connects and joins clients `indices`, at most `connectRate` new connections a second, all in flight
    /// together; returns their channels in index order, recording each one's connect-to-joined time (µs).
    private static func connect(
        _ indices: Range<Int>, _ configuration: BenchConfiguration, run: UInt32, stats: LoopStatsRegistry, group: any EventLoopGroup,
        registration: inout Histogram<UInt64>, observer: (Int) -> (@Sendable (Payload) -> Void)?
    ) async throws -> [any Channel] {
        let begin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: (Int, any Channel, UInt64).self) { tasks in
            for (offset, index) in indices.enumerated() {
                try await Task.sleep(until: begin + .seconds(Double(offset) / configuration.connectRate))
                let observe = observer(index)
                tasks.addTask {
                    let loop = group.next()
                    let ready = loop.makePromise(of: Void.self)
                    let started = NIODeadline.now()
                    let timeout = loop.scheduleTask(in: .seconds(30)) { ready.fail(BenchError("client \(index) did not get into its room within 30 s")) }
                    let channel: any Channel
                    do {
                        channel = try await ClientBootstrap(group: loop)
                            .channelOption(.socketOption(.tcp_nodelay), value: 1)
                            .channelInitializer { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandlers([
                                        BenchClientHandler(
                                            dialect: configuration.wire, nick: "\(configuration.nickPrefix)\(index)", room: configuration.room(of: index),
                                            run: run, stats: stats.local(channel.eventLoop), ready: ready, observe: observe
                                        ),
                                    ])
                                }
                            }
                            .connect(host: configuration.host, port: configuration.port(of: index)).get()
                    } catch {
                        ready.fail(error)
                        timeout.cancel()
                        throw BenchError("client \(index) could not connect to \(configuration.host):\(configuration.port(of: index)): \(error)")
                    }
                    defer { timeout.cancel() }
                    do {
                        try await ready.futureResult.get()
                    } catch {
                        channel.close(promise: nil)
                        throw error
                    }
                    return (index, channel, (NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1000)
                }
            }
            var channels: [(Int, any Channel)] = []
            channels.reserveCapacity(indices.count)
            for try await (index, channel, microseconds) in tasks {
                channels.append((index, channel))
                registration.record(microseconds)
            }
            return channels.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private static func seconds(since start: NIODeadline) -> Double {
        Double(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
