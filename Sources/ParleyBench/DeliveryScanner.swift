#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Reads what a bench client receives without making a `String`, an array or a pipeline event per line, so that
/// the bench is never what limits a measurement (it must read far faster than a server can send).
///
/// A read is scanned in place: deliveries are counted by finding this run's payload marker (`memchr` for its first byte, then the rest compared), across
/// all the whole lines of the read at once; only probes (a fixed share of the messages, `Payload.probeEvery`) are
/// parsed, for their timestamps; an IRC `PING` at the start of a line is handed back to be answered. The
/// unfinished line at the end of a read is kept (at most `maximumLine` bytes) and finished by the next read.
public struct DeliveryScanner {
    public static let maximumLine = 64 * 1024

    private let marker: [UInt8]
    private let probeMarker: [UInt8]
    private let answersPings: Bool
    /// Every payload parsed, not only probes: for the one client per room that confirms deliveries to senders.
    private let parsesAll: Bool
    private var carry: [UInt8] = []

    public init(run: UInt32, answersPings: Bool, parsesAll: Bool = false) {
        marker = Array("\(Payload.deliveryMarker)\(run):".utf8)
        probeMarker = Array("\(Payload.probeMarker)\(run):".utf8)
        self.answersPings = answersPings
        self.parsesAll = parsesAll
    }

    /// Scans one read; returns how many of this run's payloads it held (plain ones and probes). `payload` gets
    /// each probe's payload (every payload with `parsesAll`), `ping` each whole `PING` line (without its line end).
    public mutating func scan(
        _ bytes: UnsafeRawBufferPointer, payload probe: (Payload) -> Void, ping: (UnsafeRawBufferPointer) -> Void
    ) throws(BenchError) -> Int {
        var found = 0
        guard let base = bytes.baseAddress, bytes.count > 0 else { return found }
        var start = 0
        if !carry.isEmpty {
            // The line the last read left unfinished: completed with this read's first line, scanned on its own.
            guard let newline = memchr(base, 0x0A, bytes.count) else {
                try keep(UnsafeRawBufferPointer(rebasing: bytes[...]))
                return found
            }
            let end = base.distance(to: UnsafeRawPointer(newline)) + 1
            try keep(UnsafeRawBufferPointer(rebasing: bytes[..<end]))
            // Scanned from its own storage, then emptied in place: no allocation per read.
            carry.withUnsafeBytes { scanLines($0, into: &found, probe: probe, ping: ping) }
            carry.removeAll(keepingCapacity: true)
            start = end
        }
        // Everything up to the last line end is whole lines.
        var last = bytes.count - 1
        while last >= start && bytes[last] != 0x0A { last -= 1 }
        if last >= start {
            scanLines(UnsafeRawBufferPointer(rebasing: bytes[start...last]), into: &found, probe: probe, ping: ping)
        }
        if last + 1 < bytes.count { try keep(UnsafeRawBufferPointer(rebasing: bytes[(last + 1)...])) }
        return found
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer) throws(BenchError) {
        guard carry.count + bytes.count <= Self.maximumLine else { throw BenchError("the server sent a line longer than 64 KiB") }
        carry.append(contentsOf: bytes)
    }

    /// Whole lines: counts the payloads, parses the probes, finds the pings.
    private func scanLines(_ region: UnsafeRawBufferPointer, into found: inout Int, probe: (Payload) -> Void, ping: (UnsafeRawBufferPointer) -> Void) {
        let parse = { (offset: Int) in
            if let payload = Payload.find(in: UnsafeRawBufferPointer(rebasing: region[offset...]).bindMemory(to: UInt8.self)) { probe(payload) }
        }
        found += parsesAll ? Self.occurrences(of: marker, in: region, parse) : Self.occurrences(of: marker, in: region) { _ in }
        found += Self.occurrences(of: probeMarker, in: region, parse)
        guard answersPings else { return }
        _ = Self.occurrences(of: Self.pingWord, in: region) { offset in
            guard offset == 0 || region[offset - 1] == 0x0A else { return }
            var end = offset
            while end < region.count && region[end] != 0x0A { end += 1 }
            if end > offset && region[end - 1] == 0x0D { end -= 1 }
            ping(UnsafeRawBufferPointer(rebasing: region[offset..<end]))
        }
    }

    private static let pingWord = Array("PING ".utf8)

    /// How many lines of `haystack` hold `needle`, calling `each` with the offset of its first place in each: a
    /// line is one delivery at most, even if the text quotes the marker again.
    private static func occurrences(of needle: [UInt8], in haystack: UnsafeRawBufferPointer, _ each: (Int) -> Void) -> Int {
        guard let base = haystack.baseAddress else { return 0 }
        var count = 0
        var offset = 0
        needle.withUnsafeBytes { needle in
            let first = Int32(needle[0])
            // memchr (vectorised) finds each candidate first byte; memcmp checks the rest.
            while offset + needle.count <= haystack.count, let hit = memchr(base + offset, first, haystack.count - offset - needle.count + 1) {
                let at = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(hit, needle.baseAddress!, needle.count) == 0 {
                    each(at)
                    count += 1
                    // On to the next line.
                    let rest = at + needle.count
                    guard rest < haystack.count, let newline = memchr(base + rest, 0x0A, haystack.count - rest) else { break }
                    offset = base.distance(to: UnsafeRawPointer(newline)) + 1
                } else {
                    offset = at + 1
                }
            }
        }
        return count
    }
}

extension DeliveryScanner {
    /// How fast the reader itself goes: deliveries like a server's (IRC PRIVMSG lines with `payloadBytes`-byte
    /// payloads, one in `Payload.probeEvery` a probe) scanned from reads of 65,000 bytes, which end mid-line as
    /// real reads do, for `seconds` of this thread's CPU time. Returns deliveries per CPU-second of one core;
    /// `parley bench --reader-speed` prints it.
    public static func measureSpeed(payloadBytes: Int = 100, seconds: Double = 1) throws(BenchError) -> Double {
        var text = ""
        var sequence = 0
        while text.utf8.count < 1 << 20 {
            let payload = Payload(run: 1, sender: sequence % 20, sequence: sequence, sentNanoseconds: 1_234_567_890_123)
            text += ":sender\(sequence % 20)!sender@127.0.0.1 PRIVMSG #room0 :\(payload.text(size: payloadBytes))\r\n"
            sequence += 1
        }
        let stream = Array(text.utf8)
        let perPass = sequence
        var scanner = DeliveryScanner(run: 1, answersPings: true)
        var deliveries = 0
        var passes = 0
        let start = threadCPUSeconds()
        var elapsed = 0.0
        while elapsed < seconds {
            let pass = stream.withUnsafeBytes { raw in
                Result { () throws(BenchError) -> Int in
                    var (offset, counted) = (0, 0)
                    while offset < raw.count {
                        let read = UnsafeRawBufferPointer(rebasing: raw[offset..<min(offset + 65_000, raw.count)])
                        counted += try scanner.scan(read, payload: { _ in }, ping: { _ in })
                        offset += read.count
                    }
                    return counted
                }
            }
            deliveries += try pass.get()
            passes += 1
            elapsed = threadCPUSeconds() - start
        }
        guard deliveries == passes * perPass else { throw BenchError("the reader counted \(deliveries), not \(passes * perPass)") }
        return Double(deliveries) / elapsed
    }

    private static func threadCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
