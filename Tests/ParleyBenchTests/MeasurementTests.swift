import Foundation
import Histogram
@testable import ParleyBench
import Testing

@Suite("Bench measurement")
struct MeasurementTests {
    @Test("a payload is found wherever a front door puts it, padded to size, and foreign ones are not")
    func payload() {
        let payload = Payload(run: 4711, sender: 3, sequence: 99, sentNanoseconds: 123_456_789_012)
        let text = payload.text(size: 64)
        #expect(text.utf8.count == 64)
        #expect(text.hasPrefix("PB:4711:3:99:123456789012:xxx"))
        for line in ["[14:02] <pb3> \(text)", ##"{"type":"message","id":7,"room":"#bench","from":"pb3","kind":"normal","text":"\##(text)"}"##, ":pb3!pb3@127.0.0.1 PRIVMSG #bench :\(text)"] {
            #expect(Payload.find(in: Array(line.utf8)) == payload, "\(line)")
        }
        #expect(Payload(run: 1, sender: 2, sequence: 3, sentNanoseconds: 4).text(size: 4) == "PB:1:2:3:4:")
        for line in ["hello", "PB:", "PB:1:2:3", "PB:1:2:x:4:", "PB:99999999999:1:1:1:", "PB:1::3:4:", "PB:1:2:3:99999999999999999999999:"] {
            #expect(Payload.find(in: Array(line.utf8)) == nil, "\(line)")
        }
    }

    @Test("the pacer sends at the rate without drift, catches up after a stall, and caps the catch-up")
    func pacer() {
        var pacer = Pacer(perSecond: 50)
        #expect(pacer.due(elapsed: .zero) == 1)
        #expect(pacer.due(elapsed: .milliseconds(10)) == 0)
        #expect(pacer.due(elapsed: .milliseconds(20)) == 1)
        #expect(pacer.due(elapsed: .milliseconds(100)) == 4)
        #expect(pacer.due(elapsed: .seconds(1)) == 45)
        #expect(pacer.sent == 51, "one at the start plus 50 a second")
        var stalled = Pacer(perSecond: 10_000)
        #expect(stalled.due(elapsed: .seconds(1), limit: 1000) == 1000)
    }

    @Test("loss: every message should reach the other members of its room")
    func tally() {
        var tally = Tally()
        for _ in 0..<10 { tally.sent(toRoomOf: 200) }
        tally.sent(toRoomOf: 1)
        #expect(tally.sent == 11)
        #expect(tally.expected == 1990)
        tally.received = 1985
        #expect(tally.lost == 5)
        #expect(abs(tally.lossRatio - 5.0 / 1990) < 1e-12)
        tally.received = 2000
        #expect(tally.lost == 0)
    }

    @Test("latency percentiles from the histogram, to three significant digits")
    func histogram() {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        for value in 1...1000 { histogram.record(UInt64(value) * 100) }
        #expect(histogram.valueAtPercentile(50) >= 49_950 && histogram.valueAtPercentile(50) <= 50_050)
        #expect(histogram.valueAtPercentile(99) >= 98_900 && histogram.valueAtPercentile(99) <= 99_100)
        #expect(histogram.max >= 99_950)
    }

    @Test("CPU time and memory from /proc")
    func processStats() throws {
        let stat = "1234 (parley serve) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 150 0 0 20 0 4 0 100 1000 200"
        let seconds = try #require(ProcessSample.cpuSeconds(stat: stat))
        #expect(abs(seconds - 400 / Double(sysconf(Int32(_SC_CLK_TCK)))) < 1e-9)
        #expect(ProcessSample.kibibytes("VmRSS:", in: "Name:\tparley\nVmRSS:\t   51200 kB\n") == 51200)
        let me = try #require(ProcessSample.of(pid: getpid()))
        #expect(me.residentBytes > 0 && me.peakResidentBytes >= me.residentBytes)
        #expect(ProcessSample.of(pid: -1) == nil)
    }

    @Test("configurations that cannot run are refused with the flag to fix")
    func validation() {
        var configuration = BenchConfiguration()
        configuration.senders = 200
        #expect(throws: BenchError.self) { try configuration.validate() }
        configuration = BenchConfiguration()
        configuration.rate = nil
        configuration.clients = 10
        configuration.senders = 10
        #expect(throws: BenchError.self) { try configuration.validate() }
        configuration.clients = 11
        #expect(throws: Never.self) { try configuration.validate() }
    }
}

@Suite("Bench protocol: recognising a server's answers")
struct BenchProtocolTests {
    @Test("IRC: only the end of NAMES of the bench's own room means joined; 422 (no MOTD) is no refusal")
    func ircAnswers() {
        let irc = BenchProtocol.irc
        #expect(irc.isJoined(":srv 366 pb0 #Bench :End of /NAMES list.", room: "#bench"))
        #expect(!irc.isJoined(":srv 366 pb0 #general :End of /NAMES list.", room: "#bench"))
        #expect(!irc.isJoined(":srv 353 pb0 = #bench :pb0", room: "#bench"))
        #expect(!irc.isError(":srv 422 pb0 :MOTD File is missing"))
        #expect(irc.isError(":srv 433 * pb0 :Nickname is already in use"))
        #expect(irc.isError("ERROR :Closing link"))
        #expect(!irc.isError(":srv 001 pb0 :Welcome"))
    }
}
