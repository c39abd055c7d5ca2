/// When to try reconnecting: exponential from `initial`, capped at `maximum`, with "full jitter" (a random
/// delay between half and all of the step) so that clients dropped together do not return together.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public private(set) var attempt = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt; `random` is in 0...1 (injected for tests).
    public mutating func next(random: Double = Double.random(in: 0...1)) -> Duration {
        let step = min(maximum, initial * (1 << min(attempt, 20)))
        attempt += 1
        return step * (0.5 + 0.5 * random)
    }

    public mutating func reset() {
        attempt = 0
    }
}
