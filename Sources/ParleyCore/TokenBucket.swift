/// Flood control: a token bucket that lets a burst through and then paces to a steady rate.
///
/// Parley delays a flooding reader instead of dropping its lines (as ergo's "fakelag" does): nothing is lost,
/// and because the connection stops reading, TCP pushes back on the sender at no memory cost to the server.
/// `take(now:)` reserves a token and says how long to wait before acting on the line.
public struct TokenBucket: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How many lines may arrive at once (a human pasting a dozen lines is not a flood).
        public var burst: Int
        /// How many lines per second are let through once the burst is spent.
        public var perSecond: Double

        public init(burst: Int = 15, perSecond: Double = 2) {
            self.burst = max(1, burst)
            self.perSecond = max(0.001, perSecond)
        }
    }

    public let configuration: Configuration
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    public init(_ configuration: Configuration, now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.tokens = Double(configuration.burst)
        self.updated = now
    }

    /// Takes `count` tokens (one a line, more for a line that causes more work) and returns how long the caller
    /// must wait before using them (`.zero` when they were there).
    public mutating func take(_ count: Int = 1, now: ContinuousClock.Instant) -> Duration {
        let elapsed = updated.duration(to: now)
        if elapsed > .zero {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            tokens = min(Double(configuration.burst), tokens + seconds * configuration.perSecond)
            updated = now
        }
        tokens -= Double(max(0, count))
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / configuration.perSecond * 1e9).rounded(.up)))
    }
}
