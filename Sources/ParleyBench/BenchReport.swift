import Foundation

/// What a run measured, as a table for people and as JSON for scripts.
public struct BenchReport: Sendable, Codable, Equatable {
    public struct Latency: Sendable, Codable, Equatable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
    }

    public struct Connect: Sendable, Codable, Equatable {
        /// From the first connect to the last client in its room.
        public var seconds: Double
        /// Per client, connect to joined, in milliseconds.
        public var p50: Double
        public var p99: Double
        public var max: Double
    }

    public struct Usage: Sendable, Codable, Equatable {
        public var cpuSeconds: Double
        /// CPU seconds per second of the measured window (1.0: one core busy).
        public var cores: Double
        public var rssMiB: Double?
        public var peakRssMiB: Double?
    }

    /// What the hostile client of `--attack` did while the load ran.
    public struct Attack: Sendable, Codable, Equatable {
        public var kind: String
        /// Lines the server's socket took from it.
        public var lines: Int
        /// Connections it opened: each time the server dropped it, it came back.
        public var connections: Int
    }

    public var wire: String
    public var target: String
    public var clients: Int
    public var rooms: Int
    public var senders: Int
    /// Per sender; nil in windowed mode.
    public var rate: Double?
    public var window: Int?
    public var durationSeconds: Double
    public var payloadBytes: Int
    public var connect: Connect
    public var sent: Int
    public var expected: Int
    public var received: Int
    public var lost: Int
    public var lossPercent: Double
    public var deliveriesPerSecond: Double
    /// Milliseconds, end to end (sender's write to receiver's read, both in the bench), from the probes.
    public var latencyMs: Latency
    /// Probe deliveries the latency was measured on (every `Payload.probeEvery`th message is a probe).
    public var latencySamples: Int
    public var server: Usage?
    public var serverDeliveriesPerCPUSecond: Double?
    public var bench: Usage
    /// The bench's own CPU time per delivery it read (its senders' work included), in nanoseconds: how far
    /// it is from being what limits the measurement.
    public var benchNanosecondsPerDelivery: Double?
    public var attack: Attack?

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    public var table: String {
        func number(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        let load = rate.map { "\(senders) senders × \(number($0, $0 < 10 ? 1 : 0)) msg/s" } ?? "\(senders) senders, window \(window ?? 0)"
        var lines = [
            "parley bench: \(wire) to \(target), \(clients) clients in \(rooms) room\(rooms == 1 ? "" : "s"), \(load), \(payloadBytes)-byte payloads, \(number(durationSeconds, 1)) s",
            "connect+join   \(clients) clients in \(number(connect.seconds, 2)) s; per client p50 \(number(connect.p50, 1)) ms, p99 \(number(connect.p99, 1)) ms, max \(number(connect.max, 1)) ms",
            "sent           \(sent) messages",
            "deliveries     \(received) of \(expected) expected; lost \(lost) (\(number(lossPercent, 3)) %)",
            "deliveries/s   \(number(deliveriesPerSecond))",
            "latency (ms)   p50 \(number(latencyMs.p50, 2))  p90 \(number(latencyMs.p90, 2))  p99 \(number(latencyMs.p99, 2))  p99.9 \(number(latencyMs.p999, 2))  max \(number(latencyMs.max, 2))  (\(latencySamples) probe deliveries)",
        ]
        if let server {
            let memory = server.rssMiB.map { ", RSS \(number($0, 1)) MiB (peak \(number(server.peakRssMiB ?? 0, 1)) MiB)" } ?? ""
            let efficiency = serverDeliveriesPerCPUSecond.map { ", \(number($0)) deliveries per CPU-second" } ?? ""
            lines.append("server         CPU \(number(server.cpuSeconds, 2)) s (\(number(server.cores, 2)) cores)\(memory)\(efficiency)")
        }
        if let attack {
            lines.append("attack         \(attack.kind): \(attack.lines) lines sent over \(attack.connections) connection\(attack.connections == 1 ? "" : "s")")
        }
        let perDelivery = benchNanosecondsPerDelivery.map { ", \(number($0, 1)) ns per delivery" } ?? ""
        lines.append("bench          CPU \(number(bench.cpuSeconds, 2)) s (\(number(bench.cores, 2)) cores)\(perDelivery)")
        return lines.joined(separator: "\n")
    }
}
