import Foundation
import ParleyCore
import Synchronization

/// An address range, `192.0.2.0/24` or `2001:db8::/32` (a bare address is the range of itself).
public struct Network: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let bytes = Self.bytes(of: first) else { return nil }
        if parts.count == 2, parts[1].isEmpty || !parts[1].allSatisfy(\.isASCII) || !parts[1].allSatisfy(\.isNumber) { return nil }
        let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let length, (0...bytes.count * 8).contains(length) else { return nil }
        self.bytes = bytes
        self.prefixLength = length
        self.description = text
    }

    public static let loopback = [Network("127.0.0.0/8")!, Network("::1/128")!]

    public func contains(_ address: String) -> Bool {
        guard let other = Self.bytes(of: address), other.count == bytes.count else { return false }
        let (whole, rest) = (prefixLength / 8, prefixLength % 8)
        guard other.prefix(whole) == bytes.prefix(whole) else { return false }
        guard rest > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - rest)
        return other[whole] & mask == bytes[whole] & mask
    }

    /// An address's bytes: 4 for IPv4 (an IPv4 address written as IPv6 too), 16 for IPv6.
    static func bytes(of address: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        let bare = address.split(separator: "%").first.map(String.init) ?? address
        guard inet_pton(AF_INET6, bare, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes.suffix(4)) }
        return bytes
    }
}

/// Connections per address, over every door (ergo's defaults): at most `maximumOpen` open at once and
/// `perMinute` new ones a minute from one address (an IPv4 address, or an IPv6 /64), except from the exempt
/// networks (loopback by default: a local bouncer or the bench; a NATed classroom is added with --exempt-ip).
/// A refusal is logged once a minute per address at most, never once per attempt.
public final class AddressLimits: Sendable {
    public struct Configuration: Sendable {
        /// 0: no limit.
        public var maximumOpen = 32
        /// 0: no limit.
        public var perMinute = 20
        public var exempt = Network.loopback

        public init() {}
    }

    public enum Verdict: Equatable, Sendable {
        case admitted(key: String?)
        /// Refused, with the reason for the client; `log` is true for the first refusal of a minute.
        case refused(reason: String, key: String, log: Bool)
    }

    private struct Entry {
        var open = 0
        /// Connections allowed right now from the rate (a token bucket of `perMinute`, refilled continuously).
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var lastLogged: ContinuousClock.Instant?
    }

    private struct Table {
        var configuration: Configuration
        var entries: [String: Entry] = [:]
        var lastPruned: ContinuousClock.Instant?
    }

    /// Addresses tracked at once: past it, idle ones are forgotten (at most every few seconds, since that walks
    /// the table); if that is not enough, new addresses are refused until it is.
    static let tableLimit = 10_000
    static let hardLimit = 100_000

    private let table: Mutex<Table>

    public init(_ configuration: Configuration) {
        table = Mutex(Table(configuration: configuration))
    }

    /// The limits in force; `update` changes them for the connections that come next (SIGHUP). Connections
    /// already counted stay counted.
    public var configuration: Configuration { table.withLock { $0.configuration } }

    public func update(_ configuration: Configuration) {
        table.withLock { $0.configuration = configuration }
    }

    /// A new connection from `address`: admitted (and counted until `release`) or refused.
    public func admit(_ address: String, now: ContinuousClock.Instant = .now) -> Verdict {
        let key = addressKey(address)
        return table.withLock { table in
            let configuration = table.configuration
            guard configuration.maximumOpen > 0 || configuration.perMinute > 0,
                !configuration.exempt.contains(where: { $0.contains(address) })
            else { return .admitted(key: nil) }
            let (maximumOpen, perMinute) = (configuration.maximumOpen, Double(configuration.perMinute))
            if table.entries.count > Self.tableLimit, table.lastPruned.map({ $0.duration(to: now) > .seconds(5) }) ?? true {
                table.lastPruned = now
                Self.prune(&table.entries, now: now)
            }
            if table.entries[key] == nil, table.entries.count >= Self.hardLimit {
                return .refused(reason: "The server is busy. Try again in a minute.", key: key, log: false)
            }
            var entry = table.entries[key] ?? Entry(tokens: perMinute, refilled: now)
            defer { table.entries[key] = entry }
            if perMinute > 0 {
                let (seconds, attoseconds) = entry.refilled.duration(to: now).components
                // Clamped: `now` is read before the lock, so another thread's may be later.
                let elapsed = max(0, Double(seconds) + Double(attoseconds) / 1e18)
                entry.tokens = min(perMinute, entry.tokens + elapsed * perMinute / 60)
                entry.refilled = now
            }
            let reason: String
            if maximumOpen > 0, entry.open >= maximumOpen {
                reason = "Too many connections from your address (at most \(maximumOpen) at once). Close one and try again."
            } else if perMinute > 0, entry.tokens < 1 {
                reason = "Too many new connections from your address (\(configuration.perMinute) a minute). Try again in a minute."
            } else {
                entry.open += 1
                if perMinute > 0 { entry.tokens -= 1 }
                return .admitted(key: key)
            }
            let log = entry.lastLogged.map { $0.duration(to: now) >= .seconds(60) } ?? true
            if log { entry.lastLogged = now }
            return .refused(reason: reason, key: key, log: log)
        }
    }

    /// An admitted connection closed.
    public func release(_ key: String?) {
        guard let key else { return }
        table.withLock { table in
            table.entries[key]?.open -= 1
        }
    }

    /// Forgets addresses with nothing open whose rate has refilled and that were not refused lately.
    private static func prune(_ entries: inout [String: Entry], now: ContinuousClock.Instant) {
        entries = entries.filter { _, entry in
            entry.open > 0 || entry.refilled.duration(to: now) < .seconds(60)
                || entry.lastLogged.map { $0.duration(to: now) < .seconds(60) } ?? false
        }
    }
}
