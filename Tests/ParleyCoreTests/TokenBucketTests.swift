import ParleyCore
import Testing

@Suite("TokenBucket")
struct TokenBucketTests {
    @Test("a burst passes at once, then lines are paced at the rate")
    func burstThenPace() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 3, perSecond: 2), now: t0)
        for _ in 0..<3 { #expect(bucket.take(now: t0) == .zero) }
        #expect(bucket.take(now: t0) == .milliseconds(500))
        // Each further token is reserved one interval later.
        #expect(bucket.take(now: t0) == .seconds(1))
    }

    @Test("the wait is about 1/rate for other rates")
    func waitIsInverseRate() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 1, perSecond: 3), now: t0)
        #expect(bucket.take(now: t0) == .zero)
        let wait = bucket.take(now: t0)
        #expect(wait >= .milliseconds(333) && wait <= .milliseconds(334))
    }

    @Test("tokens refill with time")
    func refill() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 2, perSecond: 2), now: t0)
        #expect(bucket.take(now: t0) == .zero)
        #expect(bucket.take(now: t0) == .zero)
        #expect(bucket.take(now: t0) > .zero)
        // One second later two tokens have come in, one of them owed to the previous take.
        let t1 = t0.advanced(by: .seconds(1))
        #expect(bucket.take(now: t1) == .zero)
        #expect(bucket.take(now: t1) == .milliseconds(500))
    }

    @Test("half a token's time pays half the wait")
    func partialRefill() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 1, perSecond: 1), now: t0)
        #expect(bucket.take(now: t0) == .zero)
        #expect(bucket.take(now: t0.advanced(by: .milliseconds(250))) == .milliseconds(750))
    }

    @Test("a long pause refills to the burst and no further")
    func neverAboveBurst() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 4, perSecond: 10), now: t0)
        #expect(bucket.take(now: t0) == .zero)
        let later = t0.advanced(by: .seconds(3600))
        for _ in 0..<4 { #expect(bucket.take(now: later) == .zero) }
        #expect(bucket.take(now: later) == .milliseconds(100))
    }

    @Test("an instant earlier than the last one adds no tokens")
    func clockGoingBackwards() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(.init(burst: 1, perSecond: 1), now: t0)
        #expect(bucket.take(now: t0) == .zero)
        #expect(bucket.take(now: t0.advanced(by: .seconds(-5))) == .seconds(1))
    }

    @Test("the configuration is clamped to sane values")
    func configurationClamped() {
        let configuration = TokenBucket.Configuration(burst: 0, perSecond: 0)
        #expect(configuration.burst == 1)
        #expect(configuration.perSecond == 0.001)
        let defaults = TokenBucket.Configuration()
        #expect(defaults == TokenBucket.Configuration(burst: 15, perSecond: 2))
    }
}
