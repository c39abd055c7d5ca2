import Foundation
@testable import ParleyProtocols
import Testing

@Suite("Timestamps: reading untrusted ISO 8601")
struct TimestampsTests {
    @Test("what iso8601 writes reads back; a fraction is a decimal fraction")
    func roundTrip() throws {
        let time = Date(timeIntervalSince1970: 1_795_356_127.120)
        #expect(Timestamps.parseISO8601(Timestamps.iso8601(time)) == time)
        let half = try #require(Timestamps.parseISO8601("2026-11-21T14:02:07.5Z"))
        let whole = try #require(Timestamps.parseISO8601("2026-11-21T14:02:07Z"))
        #expect(half.timeIntervalSince(whole) == 0.5)
    }

    @Test("out of range or malformed is nil, never a trap", arguments: [
        "99999999999-01-01T00:00:00.000Z", "2000000000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-32T00:00:00Z",
        "1969-12-31T23:59:59Z", "2026-11-21T24:00:00Z", "2026-11-21T14:02:07", "now", "", "2026-11-21T14:02:07.1234567890Z",
    ])
    func refused(_ text: String) {
        #expect(Timestamps.parseISO8601(text) == nil)
    }
}
