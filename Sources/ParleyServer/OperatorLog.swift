import Logging
import Synchronization

/// The log lines an operator acts on — a client dropped for reading too slowly, a connection refused by the
/// per-address limits, a client held back by flood control, a failed login, a store that failed — each kind at
/// most `burst` at once and then one every `interval`, so that an attack from many addresses cannot fill the
/// disk with them. What is held back is counted, and the next line of its kind says how many (`suppressed=N`).
/// One budget per kind, not per address: a log-watching tool (fail2ban) sees a sample of failed logins in a
/// flood, not each one; `/metrics` counts every one.
public final class OperatorLog: Sendable {
    enum Kind: CaseIterable {
        /// A connection's lines first held back by flood control.
        case limitHit
        case slowClient, refused, failedLogin, storeFailure
    }

    private struct Bucket {
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var suppressed = 0
    }

    let burst: Int
    let interval: Duration
    private let buckets: Mutex<[Kind: Bucket]>

    /// Ten lines of a kind at once, then one every six seconds: 600 lines an hour at most per kind.
    public init(burst: Int = 10, interval: Duration = .seconds(6)) {
        self.burst = burst
        self.interval = interval
        let now = ContinuousClock.now
        buckets = Mutex(Dictionary(uniqueKeysWithValues: Kind.allCases.map { ($0, Bucket(tokens: Double(burst), refilled: now)) }))
    }

    /// Logs the line through `logger` (which carries the connection's metadata), unless its kind is over its rate.
    func log(
        _ kind: Kind, _ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: Logger.Metadata = [:], to logger: Logger,
        now: ContinuousClock.Instant = .now
    ) {
        guard logger.logLevel <= level else { return }
        let perSecond = 1 / (Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
        let suppressed = buckets.withLock { buckets -> Int? in
            var bucket = buckets[kind]!
            defer { buckets[kind] = bucket }
            let (seconds, attoseconds) = bucket.refilled.duration(to: now).components
            let elapsed = max(0, Double(seconds) + Double(attoseconds) / 1e18)
            bucket.tokens = min(Double(burst), bucket.tokens + elapsed * perSecond)
            bucket.refilled = max(bucket.refilled, now)
            guard bucket.tokens >= 1 else {
                bucket.suppressed += 1
                return nil
            }
            bucket.tokens -= 1
            defer { bucket.suppressed = 0 }
            return bucket.suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.log(level: level, message(), metadata: metadata)
    }
}
