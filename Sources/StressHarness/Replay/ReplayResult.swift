import Foundation
import Histogram
import PageAllocator

/// What one replay worker did: the traced CPU it replayed, on which of the
/// allocator's CPUs, and the outcome of each kind of op.
public struct ReplayCPUStats: Codable, Sendable, Equatable {
    /// The trace's CPU column (-1 in totals).
    public var traceCPU: Int
    /// The allocator CPU index used for allocate/free (-1 in totals).
    public var allocatorCPU: Int
    /// Allocations made, and those our allocator refused.
    public var allocs = 0
    public var allocsFailed = 0
    /// Frees made (mm_page_free, mm_page_free_batched).
    public var frees = 0
    public var freesBatched = 0
    /// Frees of a block whose allocation had failed here: nothing to free.
    public var freesOfFailedAllocs = 0
    /// Frees that waited for another CPU's worker to make the allocation,
    /// the time spent waiting, and waits that ran into the timeout (the block
    /// then stays allocated until cleanup).
    public var crossCPUWaits = 0
    public var crossCPUWaitNs: UInt64 = 0
    public var waitTimeouts = 0
    /// Frees the allocator refused (a bug: the replay frees only what it allocated).
    public var freeErrors = 0
    /// --timing=trace: ops started more than 1 ms after their trace time, and the worst lag.
    public var lateOps = 0
    public var maxLagNs: UInt64 = 0

    public init(traceCPU: Int, allocatorCPU: Int) {
        self.traceCPU = traceCPU
        self.allocatorCPU = allocatorCPU
    }

    public var replayedOps: Int { allocs + frees + freesBatched }

    static func + (a: ReplayCPUStats, b: ReplayCPUStats) -> ReplayCPUStats {
        var r = ReplayCPUStats(traceCPU: -1, allocatorCPU: -1)
        r.allocs = a.allocs + b.allocs
        r.allocsFailed = a.allocsFailed + b.allocsFailed
        r.frees = a.frees + b.frees
        r.freesBatched = a.freesBatched + b.freesBatched
        r.freesOfFailedAllocs = a.freesOfFailedAllocs + b.freesOfFailedAllocs
        r.crossCPUWaits = a.crossCPUWaits + b.crossCPUWaits
        r.crossCPUWaitNs = a.crossCPUWaitNs + b.crossCPUWaitNs
        r.waitTimeouts = a.waitTimeouts + b.waitTimeouts
        r.freeErrors = a.freeErrors + b.freeErrors
        r.lateOps = a.lateOps + b.lateOps
        r.maxLagNs = max(a.maxLagNs, b.maxLagNs)
        return r
    }
}

/// Latency percentiles of one operation class, in nanoseconds (from the
/// cycle counter, HDR histogram with 3 significant digits).
public struct ReplayLatency: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    init(_ h: Histogram<UInt64>, clock: CycleClock) {
        count = Int(h.totalCount)
        mean = count == 0 ? 0 : h.mean * clock.nsPerTick
        p50 = clock.nanoseconds(count == 0 ? 0 : h.valueAtPercentile(50))
        p90 = clock.nanoseconds(count == 0 ? 0 : h.valueAtPercentile(90))
        p99 = clock.nanoseconds(count == 0 ? 0 : h.valueAtPercentile(99))
        p999 = clock.nanoseconds(count == 0 ? 0 : h.valueAtPercentile(99.9))
        max = clock.nanoseconds(count == 0 ? 0 : h.max)
    }
}

/// Where every page of the allocator was after cleanup (validate()'s count).
public struct ReplayAccounting: Codable, Sendable, Equatable {
    public var managed: Int
    public var buddyFree: Int
    public var perCPU: Int
    public var allocated: Int
    public var allocatedBlocks: Int

    init(_ a: PageAccounting) {
        managed = a.managed
        buddyFree = a.buddyFree
        perCPU = a.perCPU
        allocated = a.allocated
        allocatedBlocks = a.allocatedBlocks
    }
}

/// The outcome of `TraceReplay.run()`.
public struct ReplayResult: Codable, Sendable {
    /// "ok": every replayed allocation succeeded and the allocator is intact;
    /// "failures": some allocations failed here (see allocFailuresByReason);
    /// "livelock": an allocation looped past the stall timeout (see watchdog);
    /// "toolFailed": validate() failed or a free was refused (a bug).
    public var verdict: String
    public var timing: String
    public var speed: Double
    /// The pre-pass: what the trace holds and what could be paired.
    public var plan: ReplayPlan.Summary
    /// Events per traced CPU (as in the trace).
    public var traceCPUs: [ReplayPlan.CPUEvents]
    /// What each worker did, and the sum.
    public var perCPU: [ReplayCPUStats]
    public var totals: ReplayCPUStats
    /// Allocations our allocator refused: by AllocError case, and by order.
    public var allocFailuresByReason: [String: Int]
    public var allocFailuresByOrder: [String: Int]
    /// The first refused frees, as the allocator described them.
    public var freeErrorExamples: [String]
    /// From the first worker's start to the last worker's end.
    public var wallSeconds: Double
    /// Replayed allocations and frees per second of wall time.
    public var opsPerSecond: Double
    /// "alloc" and "free" latency percentiles (ns).
    public var latencyNs: [String: ReplayLatency]
    /// Blocks (and pages) still allocated when the workers finished, freed by cleanup.
    public var cleanupBlocks: Int
    public var cleanupPages: Int
    /// "ok", or what the watchdog saw and did.
    public var watchdog: String
    /// "ok", or validate()'s problems.
    public var validation: String
    /// Page accounting after cleanup (nil when validate() failed).
    public var accounting: ReplayAccounting?
    /// The allocator's /proc/vmstat-style counters after the replay.
    public var vmstat: [String: Int]

    /// Exit status for the CLI: ok 0, failures 1, toolFailed 3, livelock 4.
    public var exitStatus: ExitStatus {
        switch verdict {
        case "ok": return .ok
        case "failures": return .failures
        case "livelock": return .livelock
        default: return .toolFailed
        }
    }
}

/// The `pagestorm replay` results file, schema "pagestorm.replay/1".
public struct ReplayReport: Codable, Sendable {
    public static let schema = "pagestorm.replay/1"

    /// What the trace held besides the page events.
    public struct TraceFacts: Codable, Sendable {
        public var source: TraceSource
        public var style: String
        public var lines: Int
        public var declaredCPUs: Int?
        public var cpus: Int
        public var entriesInBuffer: Int?
        public var entriesWritten: Int?
        public var lostEvents: [String: Int]
        public var otherEvents: [String: Int]
        public var unmodelledGFPFlags: [String: Int]
    }

    /// The allocator the trace was replayed on.
    public struct AllocatorFacts: Codable, Sendable {
        public var topology: String
        public var zones: [String]
        public var pageSize: Int
        public var totalPages: Int
        public var minFreeKbytes: Int
        /// "trace peak" (sized from the pre-pass) or "flags".
        public var arenaSizedFrom: String
    }

    public var schemaVersion = ReplayReport.schema
    public var startedAt: String
    public var machine: MachineInfo
    public var trace: TraceFacts
    public var allocator: AllocatorFacts
    public var waitTimeoutMs: Int
    public var stallTimeoutMs: Int
    public var result: ReplayResult

    public init(startedAt: String, machine: MachineInfo, trace: Trace, source: TraceSource, allocator a: PageAllocator,
                arenaSizedFrom: String, options: ReplayOptions, result: ReplayResult) {
        self.startedAt = startedAt
        self.machine = machine
        self.trace = TraceFacts(source: source, style: trace.style, lines: trace.lineCount, declaredCPUs: trace.declaredCPUs,
                                cpus: trace.cpuCount, entriesInBuffer: trace.entriesInBuffer, entriesWritten: trace.entriesWritten,
                                lostEvents: Dictionary(uniqueKeysWithValues: trace.lostEvents.map { ("cpu\($0.key)", $0.value) }),
                                otherEvents: trace.otherEvents, unmodelledGFPFlags: trace.unmodelledGFPFlags)
        self.allocator = AllocatorFacts(topology: a.topology.description, zones: a.config.zones.map(\.description),
                                        pageSize: a.pageSize, totalPages: a.totalPages, minFreeKbytes: a.minFreeKbytes,
                                        arenaSizedFrom: arenaSizedFrom)
        self.waitTimeoutMs = Int(options.waitTimeoutNs / 1_000_000)
        self.stallTimeoutMs = Int(options.stallTimeoutNs / 1_000_000)
        self.result = result
    }
}
