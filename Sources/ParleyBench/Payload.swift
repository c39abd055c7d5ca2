/// What a bench message carries, so any receiver can tell which run, sender and message it is and how long
/// it took: `PB:<run>:<sender>:<seq>:<sent-nanoseconds>:` padded with `x` to the payload size. Plain ASCII, so
/// it crosses every wire format (text, JSON, IRC) unchanged, and the same whatever server relays it.
///
/// One message in `probeEvery` of each sender is a probe (which ones is offset by the sender), marked `PL:`
/// instead of `PB:`: receivers count every
/// delivery by its marker alone and read the time only from probes (`DeliveryScanner`), so latency is sampled
/// from a fixed share of the traffic while the count stays exact.
public struct Payload: Equatable, Sendable {
    public let run: UInt32
    public let sender: Int
    public let sequence: Int
    /// A monotonic clock reading of the bench process when it was sent.
    public let sentNanoseconds: UInt64

    public init(run: UInt32, sender: Int, sequence: Int, sentNanoseconds: UInt64) {
        self.run = run
        self.sender = sender
        self.sequence = sequence
        self.sentNanoseconds = sentNanoseconds
    }

    static let deliveryMarker = "PB:"
    static let probeMarker = "PL:"
    /// One message in this many of each sender's is a probe (the first is one).
    public static let probeEvery = 8

    /// Offset by the sender, so that senders that keep in step (a fixed rate each) do not all probe in the same
    /// slot of every `probeEvery` messages: the probes spread over the whole run.
    public var isProbe: Bool { (sequence + sender) % Self.probeEvery == 0 }

    /// The payload text, padded to `size` bytes when it is shorter.
    public func text(size: Int) -> String {
        let head = "\(isProbe ? Self.probeMarker : Self.deliveryMarker)\(run):\(sender):\(sequence):\(sentNanoseconds):"
        return head.utf8.count >= size ? head : head + String(repeating: "x", count: size - head.utf8.count)
    }

    /// Finds a payload anywhere in a received line (after a nick, inside JSON, after an IRC prefix).
    public static func find<Bytes: Collection<UInt8>>(in line: Bytes) -> Payload? where Bytes.Index == Int {
        guard let start = firstMarker(in: line) else { return nil }
        var fields: [UInt64] = []
        fields.reserveCapacity(4)
        var value: UInt64 = 0
        var digits = 0
        var index = start + 3
        while index < line.endIndex, fields.count < 4 {
            let byte = line[index]
            if byte == UInt8(ascii: ":") {
                guard digits > 0 else { return nil }
                fields.append(value)
                (value, digits) = (0, 0)
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"), digits < 20 {
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { return nil }
                value = sum
                digits += 1
            } else {
                return nil
            }
            index += 1
        }
        guard fields.count == 4, fields[0] <= UInt32.max, fields[1] <= Int.max, fields[2] <= Int.max else { return nil }
        return Payload(run: UInt32(fields[0]), sender: Int(fields[1]), sequence: Int(fields[2]), sentNanoseconds: fields[3])
    }

    /// Where the first `PB:` or `PL:` is.
    private static func firstMarker<Bytes: Collection<UInt8>>(in haystack: Bytes) -> Int? where Bytes.Index == Int {
        guard haystack.count >= 3 else { return nil }
        var index = haystack.startIndex
        let last = haystack.endIndex - 3
        while index <= last {
            if haystack[index] == UInt8(ascii: "P") && (haystack[index + 1] == UInt8(ascii: "B") || haystack[index + 1] == UInt8(ascii: "L"))
                && haystack[index + 2] == UInt8(ascii: ":")
            {
                return index
            }
            index += 1
        }
        return nil
    }
}

/// Fixed-rate sending without drift: how many messages are due by a moment, counted from the start, so a
/// late timer catches up instead of lowering the rate.
public struct Pacer: Sendable {
    public let perSecond: Double
    public private(set) var sent = 0

    public init(perSecond: Double) {
        self.perSecond = perSecond
    }

    /// How many to send now, `elapsed` after the start; never more than `limit` at once, so a stalled
    /// process does not answer with a burst that measures itself.
    public mutating func due(elapsed: Duration, limit: Int = 1000) -> Int {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let total = Int((seconds * perSecond).rounded(.down)) + 1
        let now = max(0, min(total - sent, limit))
        sent += now
        return now
    }
}

/// Deliveries expected and received: every message sent to a room of `n` members should reach the `n - 1`
/// others (none of the front doors measured echoes a sender's own message).
public struct Tally: Sendable, Equatable {
    public var sent = 0
    public var expected = 0
    public var received = 0

    public init() {}

    public mutating func sent(toRoomOf members: Int) {
        sent += 1
        expected += max(0, members - 1)
    }

    public var lost: Int { max(0, expected - received) }
    public var lossRatio: Double { expected == 0 ? 0 : Double(lost) / Double(expected) }
}
