/// When to try reconnecting: exponential from `initial`, capped at `maximum`, with "full jitter" (a random
/// delay between half and all of the step) so that clients dropped together do not return together. For the
/// first minute of an outage the cap is a few seconds: a server restarting on a LAN is back in seconds, and a
/// user should not wait half a minute for it.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// The cap while the outage is younger than `earlyPeriod`.
    public var earlyMaximum: Duration = .seconds(3)
    public var earlyPeriod: Duration = .seconds(60)
    public private(set) var attempt = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt, `elapsed` into the outage; `random` is in 0...1 (injected for tests).
    public mutating func next(random: Double = Double.random(in: 0...1), elapsed: Duration = .seconds(3600)) -> Duration {
        let cap = elapsed < earlyPeriod ? min(maximum, earlyMaximum) : maximum
        let step = min(cap, initial * (1 << min(attempt, 20)))
        attempt += 1
        return step * (0.5 + 0.5 * random)
    }

    public mutating func reset() {
        attempt = 0
    }
}
