@testable import ParleyServer
import Testing

@Suite("Memory trimmer")
struct MemoryTrimmerTests {
    @Test("servers sharing one process trim at most once per interval between them: a trim holds the others off")
    func oneTrimPerProcess() {
        // Whether this first one may go depends on the suite's other servers (they trim too); after it, nobody
        // may within the hour, whoever asks.
        _ = MemoryTrimmer.mayTrim(every: .seconds(3600))
        #expect(!MemoryTrimmer.mayTrim(every: .seconds(3600)))
        #expect(MemoryTrimmer.mayTrim(every: .zero))
    }
}
