import Foundation
import Logging
import ParleyCore
import ServiceLifecycle
import Synchronization

/// Gives memory back to the system after a crowd leaves, or after a storm of transient work.
///
/// glibc's allocator keeps what it freed for reuse: after 5,000 connections come and go the server holds some
/// 150 MB it no longer needs (measured: 151 MB before `malloc_trim`, 38 MB after); while 2,000 clients stay, the
/// garbage of their joining (each is sent every other's join and a 2,000-nick NAMES) keeps RSS at 34 KiB per
/// connection where 12 are in use. Every few seconds this looks at how many are online and at the process's
/// RSS. It asks glibc to return its free pages when at least a hundred have left and fewer than half of the
/// most seen since the last trim remain, or when RSS has grown by `growth` since the last trim. Rarely, and
/// only then: a trim walks the heap.
struct MemoryTrimmer: Service {
    let hub: ChatHub<Fanout>
    let logger: Logger
    var interval: Duration = .seconds(5)
    var growth = 32 << 20

    func run() async throws {
        var peak = 0
        var baseline = Self.residentBytes() ?? 0
        while (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: interval) })) != nil {
            // The hub counts the peak between looks, so a crowd that came and went within one is seen too.
            let counts = hub.takePeak()
            peak = max(peak, counts.peak)
            let resident = Self.residentBytes() ?? 0
            // Growth is counted from the lowest point since the last trim (glibc gives some back by itself).
            baseline = min(baseline, resident)
            let left = peak - counts.now >= 100 && counts.now < peak / 2
            guard left || resident > baseline + growth else { continue }
            guard Self.mayTrim(every: interval) else {
                // Another server in this process trimmed just now: what it gave back is given back for all.
                baseline = resident
                continue
            }
            let started = ContinuousClock.now
            Self.trim()
            baseline = Self.residentBytes() ?? resident
            logger.debug(
                "memory trimmed",
                metadata: [
                    "online": "\(counts.now)", "peak": "\(peak)", "rss before": "\(resident >> 10) KiB",
                    "rss after": "\(baseline >> 10) KiB", "took": "\(started.duration(to: .now))",
                ]
            )
            peak = counts.now
        }
    }

    /// This process's resident memory, from /proc (nil where there is none).
    static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// When the last trim in this process was, by any server in it. RSS and the heap belong to the process, so
    /// where several servers share one (the tests run dozens), each saw the same growth and trimmed the same
    /// heap, one after another: a trim walks the heap and holds malloc's locks while it does.
    private static let lastTrim = Mutex<ContinuousClock.Instant?>(nil)

    /// Whether this server may trim now: no other server of the process did within `interval`.
    static func mayTrim(every interval: Duration) -> Bool {
        lastTrim.withLock { last in
            let now = ContinuousClock.now
            if let last, last.duration(to: now) < interval { return false }
            last = now
            return true
        }
    }

    static func trim() {
        _ = mallocTrim?(0)
    }

    /// glibc's `malloc_trim`, looked up at run time: its header is not part of Swift's view of glibc, and other
    /// C libraries (macOS) have none.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()
}
