import ParleyTerminal
import Testing

@Suite("Backoff")
struct BackoffTests {
    private func expectClose(_ actual: Duration, _ seconds: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(actual.seconds - seconds) < 1e-9, "\(actual) is not \(seconds)s", sourceLocation: sourceLocation)
    }

    @Test("Defaults: 500 ms doubling up to 30 s")
    func defaults() {
        let backoff = Backoff()
        #expect(backoff.initial == .milliseconds(500))
        #expect(backoff.maximum == .seconds(30))
        #expect(backoff.attempt == 0)
    }

    @Test("With random = 1 the delays are the full steps: doubling, then capped")
    func growthAndCap() {
        var backoff = Backoff()
        let delays = (0..<9).map { _ in backoff.next(random: 1) }
        for (delay, expected) in zip(delays, [0.5, 1, 2, 4, 8, 16, 30, 30, 30]) {
            expectClose(delay, expected)
        }
        #expect(backoff.attempt == 9)
    }

    @Test("In the first minute of an outage the delays stay within a few seconds; later they grow to the maximum")
    func earlyCap() {
        var backoff = Backoff()
        let early = (0..<8).map { _ in backoff.next(random: 1, elapsed: .seconds(20)) }
        for (delay, expected) in zip(early, [0.5, 1, 2, 3, 3, 3, 3, 3]) {
            expectClose(delay, expected)
        }
        expectClose(backoff.next(random: 1, elapsed: .seconds(61)), 30)
    }

    @Test("With random = 0 the delays are half the steps")
    func lowerBound() {
        var backoff = Backoff(initial: .seconds(1), maximum: .seconds(10))
        let delays = (0..<6).map { _ in backoff.next(random: 0) }
        for (delay, expected) in zip(delays, [0.5, 1, 2, 4, 5, 5]) {
            expectClose(delay, expected)
        }
    }

    @Test("The jitter is linear between half and all of the step")
    func jitterLinear() {
        var backoff = Backoff(initial: .seconds(2), maximum: .seconds(60))
        expectClose(backoff.next(random: 0.5), 1.5)
        expectClose(backoff.next(random: 0.25), 2.5)
    }

    @Test("Every delay lies within [step/2, step] whatever the random value", arguments: [0.0, 0.1, 0.5, 0.9, 1.0])
    func jitterBounds(random: Double) {
        var backoff = Backoff()
        var step = 0.5
        for _ in 0..<12 {
            let delay = backoff.next(random: random).seconds
            #expect(delay >= step / 2 - 1e-9 && delay <= step + 1e-9)
            step = min(30, step * 2)
        }
    }

    @Test("The default random source stays within the bounds")
    func defaultRandom() {
        for _ in 0..<50 {
            var backoff = Backoff()
            let first = backoff.next().seconds
            #expect(first >= 0.25 && first <= 0.5)
            for _ in 0..<10 { _ = backoff.next() }
            let late = backoff.next().seconds
            #expect(late >= 15 && late <= 30)
        }
    }

    @Test("Many attempts neither overflow nor exceed the maximum")
    func manyAttempts() {
        var backoff = Backoff()
        for _ in 0..<200 { _ = backoff.next(random: 1) }
        expectClose(backoff.next(random: 1), 30)
        expectClose(backoff.next(random: 0), 15)
        #expect(backoff.attempt == 202)
    }

    @Test("reset starts again from the initial delay")
    func reset() {
        var backoff = Backoff()
        for _ in 0..<5 { _ = backoff.next(random: 1) }
        backoff.reset()
        #expect(backoff.attempt == 0)
        expectClose(backoff.next(random: 1), 0.5)
        expectClose(backoff.next(random: 1), 1)
    }

    @Test("A maximum below the initial delay caps the first step too")
    func maximumBelowInitial() {
        var backoff = Backoff(initial: .seconds(5), maximum: .seconds(2))
        expectClose(backoff.next(random: 1), 2)
        expectClose(backoff.next(random: 0), 1)
    }
}
