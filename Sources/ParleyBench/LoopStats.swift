import Histogram
import NIOCore

/// What the receivers on one event loop measured. Each loop has its own, touched only on that loop, so
/// recording a delivery takes no lock; the run merges them at the end.
final class LoopStats {
    /// End-to-end latency in microseconds, up to a minute.
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var received = 0
    var firstReceived: UInt64 = .max
    var lastReceived: UInt64 = 0

    /// `deliveries` arrived in one read.
    func count(_ deliveries: Int, at now: UInt64) {
        guard deliveries > 0 else { return }
        received += deliveries
        firstReceived = min(firstReceived, now)
        lastReceived = max(lastReceived, now)
    }

    /// A probe's latency (probes are counted with the rest by `count`).
    func sample(_ payload: Payload, at now: UInt64) {
        // Clamped, not dropped: a delivery later than the histogram's range still counts at its top.
        latency.record(min(now > payload.sentNanoseconds ? (now - payload.sentNanoseconds) / 1000 : 0, latency.highestTrackableValue))
    }

    var snapshot: Snapshot { Snapshot(latency: latency, received: received, firstReceived: firstReceived, lastReceived: lastReceived) }

    struct Snapshot: Sendable {
        var latency: Histogram<UInt64>
        var received: Int
        var firstReceived: UInt64
        var lastReceived: UInt64

        static var empty: Snapshot {
            Snapshot(latency: Histogram(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three), received: 0, firstReceived: .max, lastReceived: 0)
        }

        mutating func add(_ other: Snapshot) {
            latency.add(other.latency)
            received += other.received
            firstReceived = min(firstReceived, other.firstReceived)
            lastReceived = max(lastReceived, other.lastReceived)
        }
    }
}

/// One `LoopStats` per event loop of the group, created on its loop.
struct LoopStatsRegistry: Sendable {
    private let stats: [ObjectIdentifier: NIOLoopBound<LoopStats>]

    static func make(for group: any EventLoopGroup) async throws -> LoopStatsRegistry {
        var stats: [ObjectIdentifier: NIOLoopBound<LoopStats>] = [:]
        for loop in group.makeIterator() {
            stats[ObjectIdentifier(loop)] = try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get()
        }
        return LoopStatsRegistry(stats: stats)
    }

    /// The stats of `loop`; call on that loop.
    func local(_ loop: any EventLoop) -> LoopStats { stats[ObjectIdentifier(loop)]!.value }

    /// Every loop's stats, merged.
    func merged() async throws -> LoopStats.Snapshot {
        var total = LoopStats.Snapshot.empty
        for bound in stats.values {
            total.add(try await bound.eventLoop.submit { bound.value.snapshot }.get())
        }
        return total
    }

    func received() async throws -> Int {
        var total = 0
        for bound in stats.values { total += try await bound.eventLoop.submit { bound.value.received }.get() }
        return total
    }
}
