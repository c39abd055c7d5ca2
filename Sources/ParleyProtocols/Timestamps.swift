import Foundation

/// The two ways Parley writes a time: `HH:MM` in the server's local time for people, ISO 8601 in UTC with
/// milliseconds for machines. Built on the C calendar functions: both run once per event, on the hot path.
public enum Timestamps {
    static func localClock(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&seconds, &parts)
        return twoDigits(parts.tm_hour) + ":" + twoDigits(parts.tm_min)
    }

    /// `MM-DD HH:MM` in local time, for replayed history, which may be from another day.
    static func localDateAndClock(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&seconds, &parts)
        return twoDigits(parts.tm_mon + 1) + "-" + twoDigits(parts.tm_mday) + " " + twoDigits(parts.tm_hour) + ":" + twoDigits(parts.tm_min)
    }

    public static func iso8601(_ date: Date) -> String {
        // Whole milliseconds first (floored, like the seconds): splitting the Double into seconds and a
        // fraction would lose the last millisecond to binary rounding.
        let total = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var (wholeSeconds, milliseconds) = total.quotientAndRemainder(dividingBy: 1000)
        if milliseconds < 0 {
            wholeSeconds -= 1
            milliseconds += 1000
        }
        var seconds = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(parts.tm_year + 1900)-\(twoDigits(parts.tm_mon + 1))-\(twoDigits(parts.tm_mday))T"
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec))."
            + String(repeating: "0", count: milliseconds < 10 ? 2 : milliseconds < 100 ? 1 : 0) + "\(milliseconds)Z"
    }

    /// Reads what `iso8601` writes (`2026-11-21T14:02:07.120Z`; the fraction is optional). Untrusted input
    /// (IRC's CHATHISTORY): anything but years 1970–9999 with fields in range is nil, never a trap.
    public static func parseISO8601(_ text: String) -> Date? {
        let fields = text.utf8.split(whereSeparator: { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        guard (6...7).contains(fields.count), text.hasSuffix("Z"), fields.prefix(6).map(\.count) == [4, 2, 2, 2, 2, 2],
            fields.dropFirst(6).allSatisfy({ (1...9).contains($0.count) })
        else { return nil }
        let numbers = fields.prefix(6).map { Int32(String(decoding: $0, as: UTF8.self))! }
        guard numbers[0] >= 1970, (1...12).contains(numbers[1]), (1...31).contains(numbers[2]), numbers[3] < 24, numbers[4] < 60,
            numbers[5] < 61
        else { return nil }
        var parts = tm()
        parts.tm_year = numbers[0] - 1900
        parts.tm_mon = numbers[1] - 1
        parts.tm_mday = numbers[2]
        parts.tm_hour = numbers[3]
        parts.tm_min = numbers[4]
        parts.tm_sec = numbers[5]
        let seconds = timegm(&parts)
        // The fraction is a decimal fraction: `.5` is 500 ms.
        let fraction = fields.dropFirst(6).first.map { Double("0." + String(decoding: $0, as: UTF8.self)) ?? 0 } ?? 0
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func twoDigits(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
