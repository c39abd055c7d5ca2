import Logging
import Testing

@testable import ParleyServer

/// The lines an operator acts on are rate-limited per kind, so an attack from many addresses cannot fill the disk,
/// and what was held back is counted on the next line.
@Suite("Operator log")
struct OperatorLogTests {
    @Test("a burst of ten per kind, then one per interval, with how many were held back; kinds apart; below the level, nothing")
    func rateLimited() {
        let log = LogLines()
        let logger = Logger(label: "test") { label in ParleyLogHandler(label: label, level: .info) { log.append($0) } }
        let operatorLog = OperatorLog(burst: 10, interval: .seconds(6))
        let start = ContinuousClock.now
        for attempt in 0..<1000 {
            operatorLog.log(.failedLogin, .notice, "failed login", metadata: ["n": "\(attempt)"], to: logger, now: start)
        }
        #expect(log.lines.count == 10)
        operatorLog.log(.storeFailure, .error, "storing failed", to: logger, now: start)
        #expect(log.lines.count == 11, "another kind has a bucket of its own")
        operatorLog.log(.failedLogin, .notice, "failed login", to: logger, now: start + .seconds(3))
        #expect(log.lines.count == 11, "half an interval later: still held back")
        operatorLog.log(.failedLogin, .notice, "failed login", to: logger, now: start + .seconds(6))
        #expect(log.lines.count == 12)
        #expect(log.lines.last?.contains("suppressed=991") == true, "\(log.lines.last ?? "")")
        operatorLog.log(.failedLogin, .notice, "failed login", to: logger, now: start + .seconds(12))
        #expect(log.lines.last?.contains("suppressed") == false)
        // A line below the logger's level spends nothing.
        var quiet = logger
        quiet.logLevel = .error
        for _ in 0..<100 { operatorLog.log(.slowClient, .notice, "client dropped", to: quiet, now: start) }
        operatorLog.log(.slowClient, .notice, "client dropped", to: logger, now: start)
        #expect(log.lines.last?.contains("client dropped") == true && log.lines.last?.contains("suppressed") == false)
    }
}
