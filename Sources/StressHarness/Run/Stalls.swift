import CNUMA
import PageAllocator

/// Finds stalls: allocation calls longer than `[harness] stall_ms`.
///
/// Timing every call would cost two cycle-counter reads per call (about
/// 25 ns on the machine this was built on), so the workers only publish a
/// call sequence number (odd while inside a call). The run's main thread
/// looks every few ms: a worker seen inside the same call on consecutive looks
/// has been in it at least that long. A stall's length is measured from the
/// first look that saw the call to the first look that saw it over, so it is
/// exact to within one look (`pollMs`, 5 ms or less).
///
/// With `stall_warnings`, a call still going after each `stall_ms` is printed
/// as kernels 4.9-4.14 printed it (warn_alloc from the slow path):
/// `<task>: page allocation stalls for 10012ms, order:0, mode:0x...(GFP_...), nodemask=(null)`.
struct StallTracker {
    let thresholdNs: UInt64
    let warnings: Bool
    /// Per worker: the call being watched (sequence, first seen, next report at).
    var watching: [(seq: Int, start: UInt64, nextReport: UInt64)?]
    var durationsMs: [Int] = []
    /// When each stall began (monotonic ns) and its length, the first `maxEvents`.
    var events: [(start: UInt64, ms: Int)] = []
    static let maxEvents = 1000
    var unfinished = 0
    var printed = 0
    var lines: [String] = []

    init(thresholdMs: Int, warnings: Bool, workers: Int) {
        thresholdNs = UInt64(thresholdMs) * 1_000_000
        self.warnings = warnings
        watching = Array(repeating: nil, count: workers)
    }

    mutating func observe(now: UInt64, control: RunControl, allocator: PageAllocator?) {
        for w in 0..<watching.count {
            let seq = control.callSeq(w).pointee.load(ordering: .relaxed)
            if let cur = watching[w], cur.seq == seq {
                if now >= cur.nextReport {
                    watching[w]!.nextReport = cur.nextReport + thresholdNs
                    if warnings { report(worker: w, ms: Int((now - cur.start) / 1_000_000), control: control, allocator: allocator) }
                }
                continue
            }
            if let cur = watching[w] { ended(cur.start, now) }
            watching[w] = seq & 1 == 1 ? (seq, now, now + thresholdNs) : nil
            control.callSeenAt(w).pointee.store(seq & 1 == 1 ? Int(now) : 0, ordering: .relaxed)
        }
    }

    mutating func ended(_ start: UInt64, _ now: UInt64) {
        let d = now - start
        if d >= thresholdNs {
            durationsMs.append(Int(d / 1_000_000))
            if events.count < StallTracker.maxEvents { events.append((start, Int(d / 1_000_000))) }
        }
    }

    /// At the end of the run: calls still going (a hang the watchdog ended, or
    /// the end of the run) count as stalls if they are long enough.
    mutating func finish(now: UInt64, control: RunControl, allocator: PageAllocator?) {
        observe(now: now, control: control, allocator: allocator)
        for w in 0..<watching.count {
            guard let cur = watching[w] else { continue }
            if now - cur.start >= thresholdNs { unfinished += 1 }
            ended(cur.start, now)
            watching[w] = nil
        }
    }

    mutating func report(worker w: Int, ms: Int, control: RunControl, allocator: PageAllocator?) {
        let id = control.task(w).pointee.load(ordering: .relaxed)
        let t = allocator?.taskSnapshots(aliveOnly: true).first { Int($0.id) == id }
        let name = t?.name ?? "worker\(w)"
        let flags = t?.flags ?? []
        let line = "\(name): page allocation stalls for \(ms)ms, order:\(t?.order ?? 0), mode:\(flags.hex)(\(flags)), nodemask=(null)"
        printed += 1
        if lines.count < 100 { lines.append(line) }
        control.sink?(line)
    }

    /// Bucket upper bounds of the stall histogram, in ms.
    static let bucketsMs = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 60_000, 300_000]

    /// `goNs`: when the workers were released (event times are ms after it).
    func report(pollMs: Int, goNs: UInt64) -> StallReport {
        var counts = [Int](repeating: 0, count: StallTracker.bucketsMs.count + 1)
        for d in durationsMs {
            let i = StallTracker.bucketsMs.firstIndex { d <= $0 } ?? StallTracker.bucketsMs.count
            counts[i] += 1
        }
        let hist = counts.enumerated().compactMap { i, c -> StallBucket? in
            c == 0 ? nil : StallBucket(leMs: i < StallTracker.bucketsMs.count ? StallTracker.bucketsMs[i] : nil, count: c)
        }
        return StallReport(thresholdMs: Int(thresholdNs / 1_000_000), resolutionMs: pollMs, count: durationsMs.count, unfinished: unfinished,
                           totalMs: durationsMs.reduce(0, +), maxMs: durationsMs.max() ?? 0, histogram: hist,
                           printed: printed, lines: lines,
                           events: events.map { StallEvent(atMs: (Double($0.start) - Double(goNs)) / 1e6, ms: $0.ms) })
    }
}

/// Stalls of a run (`slowPath.stalls` in the results).
public struct StallReport: Codable, Sendable, Equatable {
    /// `[harness] stall_ms`.
    public var thresholdMs: Int
    /// Lengths are exact to within this (the tracker's look interval).
    public var resolutionMs: Int
    /// Allocation calls that took stall_ms or longer (unfinished ones included).
    public var count: Int
    /// Of those, calls still going when the run ended (a hang ended by the watchdog, or the end of the run).
    public var unfinished: Int
    public var totalMs: Int
    public var maxMs: Int
    /// Stalls by length: `leMs` is the bucket's upper bound (inclusive; nil: longer than 300 s).
    public var histogram: [StallBucket]
    /// Kernel-form lines printed (`stall_warnings`), and the first 100 of them.
    public var printed: Int
    public var lines: [String]
    /// When each stall began (ms after the workers were released, to within
    /// `resolutionMs`) and how long it lasted, the first 1000. Absent in
    /// results written before it was recorded.
    public var events: [StallEvent]? = nil
}

public struct StallEvent: Codable, Sendable, Equatable {
    public var atMs: Double
    public var ms: Int
}

public struct StallBucket: Codable, Sendable, Equatable {
    public var leMs: Int?
    public var count: Int
}
