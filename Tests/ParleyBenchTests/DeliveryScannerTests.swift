import Testing

@testable import ParleyBench

/// The bench's reader: exact counts however the stream is cut into reads, probes parsed, pings found, other runs
/// and other lines ignored.
@Suite("Delivery scanner")
struct DeliveryScannerTests {
    static func stream(run: UInt32 = 7) -> (bytes: [UInt8], deliveries: Int, probes: [Payload]) {
        var text = ":parley 001 me :Welcome\r\nPING :parley\r\n"
        var deliveries = 0
        var probes: [Payload] = []
        for sequence in 0..<40 {
            let payload = Payload(run: run, sender: sequence % 3, sequence: sequence, sentNanoseconds: 1_000_000 + UInt64(sequence))
            text += ":s\(sequence % 3)!s@127.0.0.1 PRIVMSG #r :\(payload.text(size: 80))\r\n"
            deliveries += 1
            if payload.isProbe { probes.append(payload) }
            if sequence % 10 == 5 {
                // Another run's message, a notice that mentions PING mid-line, a ping of its own.
                text += ":s9!s@h PRIVMSG #r :\(Payload(run: run + 1, sender: 9, sequence: 0, sentNanoseconds: 1).text(size: 60))\r\n"
                text += ":parley NOTICE me :say PING to it\r\nPING :again\r\n"
            }
        }
        return (Array(text.utf8), deliveries, probes)
    }

    static func scan(_ bytes: [UInt8], cuts: [Int], parsesAll: Bool = false) throws -> (deliveries: Int, payloads: [Payload], pings: [String]) {
        var scanner = DeliveryScanner(run: 7, answersPings: true, parsesAll: parsesAll)
        var (deliveries, payloads, pings) = (0, [Payload](), [String]())
        var start = 0
        for end in (cuts + [bytes.count]).map({ min($0, bytes.count) }) where end >= start {
            let found = try bytes[start..<end].withUnsafeBytes { raw in
                try scanner.scan(raw, payload: { payloads.append($0) }, ping: { pings.append(String(decoding: $0, as: UTF8.self)) })
            }
            deliveries += found
            start = end
        }
        return (deliveries, payloads, pings)
    }

    @Test("counts every delivery of its run, parses only probes, finds pings at line starts; the same for every cut of the stream")
    func everyCut() throws {
        let (bytes, deliveries, probes) = Self.stream()
        #expect(probes.count == 6, "one in eight, offset by sender")
        let whole = try Self.scan(bytes, cuts: [])
        #expect(whole.deliveries == deliveries)
        #expect(whole.payloads == probes)
        #expect(whole.pings == ["PING :parley", "PING :again", "PING :again", "PING :again", "PING :again"])
        for cut in stride(from: 1, to: bytes.count, by: 7) {
            let split = try Self.scan(bytes, cuts: [cut, cut + 1, cut + 50])
            #expect(split.deliveries == deliveries && split.payloads == probes && split.pings == whole.pings, "cut at \(cut)")
        }
        // A byte at a time.
        let bytewise = try Self.scan(bytes, cuts: Array(1..<bytes.count))
        #expect(bytewise.deliveries == deliveries && bytewise.payloads == probes && bytewise.pings == whole.pings)
    }

    @Test("the observer's scanner parses every payload; a line longer than 64 KiB is an error")
    func observerAndLimit() throws {
        let (bytes, deliveries, _) = Self.stream()
        let all = try Self.scan(bytes, cuts: [100, 2000], parsesAll: true)
        #expect(all.payloads.count == deliveries && all.payloads.map(\.sequence).sorted() == Array(0..<40))
        #expect(throws: BenchError.self) { try Self.scan(Array(repeating: UInt8(ascii: "x"), count: 70_000), cuts: [30_000]) }
    }

    @Test("probes are one message in eight of each sender, offset by the sender, marked PL:, and still found by Payload.find")
    func probes() {
        let probe = Payload(run: 1, sender: 2, sequence: 14, sentNanoseconds: 5)
        #expect(probe.isProbe && probe.text(size: 0) == "PL:1:2:14:5:")
        #expect(Payload.find(in: Array("<bob> PL:1:2:14:5:xxx".utf8)) == probe)
        #expect(!Payload(run: 1, sender: 2, sequence: 16, sentNanoseconds: 5).isProbe)
        // Senders in step probe at different moments.
        #expect((0..<8).map { Payload(run: 1, sender: $0, sequence: 8, sentNanoseconds: 0).isProbe }.filter { $0 }.count == 1)
    }

    @Test("a line is one delivery at most, even when it quotes the marker again (an echo, a relay)")
    func oneDeliveryPerLine() throws {
        let twice = Payload(run: 7, sender: 1, sequence: 1, sentNanoseconds: 9).text(size: 0)
        let json = "{\"type\":\"message\",\"text\":\"\(twice)\",\"raw\":\"\(twice)\"}\n"
        let lines = Array(json.utf8) + Array("<a> \(twice)\n".utf8)
        #expect(try Self.scan(lines, cuts: []).deliveries == 2)
    }
}
