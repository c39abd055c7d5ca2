import Foundation

/// CPU time and memory of a process, read from /proc (Linux), and the bench's own CPU time.
public struct ProcessSample: Sendable, Equatable {
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double
    /// Resident set size now, and its peak, in bytes (0 when unknown).
    public var residentBytes: Int
    public var peakResidentBytes: Int

    /// The process `pid`, or nil when it cannot be read (no such process, not Linux).
    public static func of(pid: Int32) -> ProcessSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let cpu = cpuSeconds(stat: stat)
        else { return nil }
        return ProcessSample(cpuSeconds: cpu, residentBytes: kibibytes("VmRSS:", in: status) * 1024, peakResidentBytes: kibibytes("VmHWM:", in: status) * 1024)
    }

    /// The processes `pids` together (nodes of one chat); nil when there are none or one cannot be read.
    public static func of(pids: [Int32]) -> ProcessSample? {
        let samples = pids.compactMap(of(pid:))
        guard !samples.isEmpty, samples.count == pids.count else { return nil }
        return ProcessSample(
            cpuSeconds: samples.map(\.cpuSeconds).reduce(0, +), residentBytes: samples.map(\.residentBytes).reduce(0, +),
            peakResidentBytes: samples.map(\.peakResidentBytes).reduce(0, +)
        )
    }

    /// This process, from getrusage.
    public static func current() -> ProcessSample {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return ProcessSample(cpuSeconds: cpu, residentBytes: 0, peakResidentBytes: Int(usage.ru_maxrss) * 1024)
    }

    /// Fields 14 and 15 of /proc/PID/stat (utime, stime) in clock ticks; the command name (field 2) may hold
    /// spaces, so counting starts after its closing parenthesis.
    public static func cpuSeconds(stat: String) -> Double? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")": field 3 (state) is fields[0], so utime (14) is fields[11] and stime (15) fields[12].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    public static func kibibytes(_ key: String, in status: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return 0 }
        return Int(line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
    }
}
