import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) and context switches (getrusage RUSAGE_THREAD).
public struct ThreadUsage: Sendable, Equatable {
    public var cpuNs: UInt64 = 0
    public var voluntary: Int = 0
    public var involuntary: Int = 0

    public init() {}

    /// The calling thread's usage so far (zeros where RUSAGE_THREAD is unavailable).
    public static func now() -> ThreadUsage {
        var u = ThreadUsage()
        #if os(Linux)
        var ru = rusage()
        // RUSAGE_THREAD = 1 (Linux; Swift's Glibc does not export the name).
        if getrusage(__rusage_who_t(1), &ru) == 0 {
            u.cpuNs = UInt64(ru.ru_utime.tv_sec) * 1_000_000_000 + UInt64(ru.ru_utime.tv_usec) * 1000
                + UInt64(ru.ru_stime.tv_sec) * 1_000_000_000 + UInt64(ru.ru_stime.tv_usec) * 1000
            u.voluntary = Int(ru.ru_nvcsw)
            u.involuntary = Int(ru.ru_nivcsw)
        }
        // The CPU time itself from the thread's CPU clock: the scheduler's exact
        // runtime in ns. getrusage's utime/stime may be sampled at the timer tick
        // (4 ms at HZ=250), too coarse for 100 ms windows.
        var ts = timespec()
        if clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0 {
            u.cpuNs = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }
        #endif
        return u
    }
}

/// The machine's CPU time split (/proc/stat, the "cpu" line, in ticks) and load average.
public struct MachineSample: Sendable, Equatable {
    public var total: UInt64 = 0
    public var idle: UInt64 = 0
    public var steal: UInt64 = 0
    public var loadavg1: Double = 0
    public var runnable: Int = 0
    public var available = false

    public init() {}

    public static func now() -> MachineSample {
        var s = MachineSample()
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
           let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) {
            let f = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            // user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
            if f.count >= 8 {
                s.total = f.prefix(8).reduce(0, +)
                s.idle = f[3] + f[4]
                s.steal = f[7]
                s.available = true
            }
        }
        if let la = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) {
            let parts = la.split(separator: " ")
            if parts.count >= 4 {
                s.loadavg1 = Double(parts[0]) ?? 0
                s.runnable = Int(parts[3].split(separator: "/").first ?? "") ?? 0
            }
        }
        return s
    }
}

/// One worker's share of the CPU over its measured window.
public struct WorkerNoise: Codable, Sendable, Equatable {
    public var index: Int
    /// CPU time (user + system) the worker thread got in its measured window.
    public var cpuNs: Int
    /// The window's wall time.
    public var wallNs: Int
    /// cpuNs / wallNs: 1.0 = it ran the whole window.
    public var cpuShare: Double
    public var voluntarySwitches: Int
    public var involuntarySwitches: Int
}

/// How much the run was disturbed: per-worker CPU shares, machine steal and
/// load. `untrustworthy` (as stress-ng's "metrics untrustworthy") when a
/// worker got less than `minCPUShare` of its wall time, or steal was above
/// `maxStealPercent`: its timings measure the machine, not the allocator.
public struct NoiseReport: Codable, Sendable, Equatable {
    public static let minCPUShare = 0.8
    public static let maxStealPercent = 10.0

    public var workers: [WorkerNoise]
    /// The lowest worker CPU share.
    public var minCPUShare: Double
    /// Machine-wide, over the run: steal time and busy time (all CPUs, this run included), percent of all CPU time.
    public var stealPercent: Double?
    public var busyPercent: Double?
    /// /proc/loadavg's 1-minute load at the start and end, and runnable threads at the end.
    public var loadavgStart: Double
    public var loadavgEnd: Double
    public var runnableAtEnd: Int
    public var untrustworthy: Bool
    public var reason: String?

    public static func build(workers: [(index: Int, start: ThreadUsage, end: ThreadUsage, wallNs: Int)],
                             machineStart: MachineSample, machineEnd: MachineSample) -> NoiseReport {
        let ws = workers.map { w -> WorkerNoise in
            let cpu = Int(w.end.cpuNs &- w.start.cpuNs)
            return WorkerNoise(index: w.index, cpuNs: cpu, wallNs: w.wallNs, cpuShare: w.wallNs > 0 ? min(Double(cpu) / Double(w.wallNs), 9.99) : 1,
                               voluntarySwitches: w.end.voluntary - w.start.voluntary, involuntarySwitches: w.end.involuntary - w.start.involuntary)
        }
        var steal: Double? = nil, busy: Double? = nil
        if machineStart.available && machineEnd.available && machineEnd.total > machineStart.total {
            let dt = Double(machineEnd.total - machineStart.total)
            steal = Double(machineEnd.steal &- machineStart.steal) / dt * 100
            busy = 100 - Double(machineEnd.idle &- machineStart.idle) / dt * 100
        }
        // Windows shorter than 20 ms are too short for getrusage's resolution to judge.
        let judged = ws.filter { $0.wallNs >= 20_000_000 }
        let minShare = judged.map(\.cpuShare).min() ?? 1
        var reasons: [String] = []
        if let w = judged.min(by: { $0.cpuShare < $1.cpuShare }), w.cpuShare < minCPUShare {
            reasons.append("worker \(w.index) got \(Int((w.cpuShare * 100).rounded()))% of the wall time on its CPU (\(w.involuntarySwitches) involuntary context switches)")
        }
        if let s = steal, s > maxStealPercent { reasons.append("steal time was \(String(format: "%.1f", s))% of the machine's CPU time") }
        return NoiseReport(workers: ws, minCPUShare: minShare, stealPercent: steal, busyPercent: busy, loadavgStart: machineStart.loadavg1,
                           loadavgEnd: machineEnd.loadavg1, runnableAtEnd: machineEnd.runnable, untrustworthy: !reasons.isEmpty,
                           reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
    }

    /// The summary's `noise:` line.
    public var summaryLine: String {
        var s = "noise: workers got \(Int((minCPUShare * 100).rounded()))%+ of the wall time"
        let inv = workers.reduce(0) { $0 + $1.involuntarySwitches }, vol = workers.reduce(0) { $0 + $1.voluntarySwitches }
        s += "; context switches \(vol) voluntary, \(inv) involuntary"
        if let st = stealPercent { s += String(format: "; machine steal %.1f%%, busy %.0f%%", st, busyPercent ?? 0) }
        s += String(format: "; load %.2f -> %.2f", loadavgStart, loadavgEnd)
        if untrustworthy { s += "\nnoise: metrics untrustworthy: \(reason ?? "")" }
        return s
    }
}
