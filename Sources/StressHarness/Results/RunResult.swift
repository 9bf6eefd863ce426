import PageAllocator

/// The results file of one `pagestorm run` (schema "pagestorm.run/1"),
/// documented field by field in docs/harness.md.
///
/// Built so later work fits without a rewrite: `shard` places a run in a
/// sweep; `allocator` names what was measured, so peer allocators can sit
/// side by side; histograms are stored losslessly (EncodedHistogram), so runs
/// and shards merge exactly and a CI gate or an HTML report can recompute any
/// percentile; `workload` is fully resolved, so a run can be repeated.
public struct RunResult: Codable, Sendable, Equatable {
    public static let schemaName = "pagestorm.run/1"

    public var schema: String = RunResult.schemaName
    /// What was measured: "pagestorm-buddy", or a peer: "glibc", "jemalloc", "mimalloc", "tcmalloc", "kernel".
    public var allocator: String
    /// "<workload>-<UTC timestamp>", also the default file name.
    public var runID: String
    public var startedAt: String
    public var finishedAt: String
    /// The workload file, or nil for the built-in default.
    public var workloadFile: String?
    public var workload: Workload
    public var shard: ShardInfo
    public var machine: MachineInfo
    public var status: RunStatus
    public var timing: TimingReport
    public var throughput: ThroughputReport
    /// One entry per operation class, in first-seen order.
    public var latency: [ClassLatency]
    public var failures: FailureReport
    public var counters: CounterReport
    public var locks: [LockReport]
    public var handoff: HandoffReport
    public var memoryCheck: MemoryCheck
    public var workers: [WorkerReport]
    public var operations: [OperationReport]
    /// The slow path: watchdog, OOM kills, tasks, stalls, damage by level, warnings, groups, fragmentation.
    public var slowPath: SlowPathReport
    /// Open loop: target and achieved rates, schedule lag, and whether some
    /// worker fell behind (nil when no group runs an open loop).
    public var openLoop: OpenLoopReport? = nil
    /// A peer allocator's run (nil on pagestorm): its library and version, the
    /// pagestorm-only parts that were off, and its block accounting.
    public var peer: PeerReport? = nil
    /// How much the machine disturbed the run (per-worker CPU share and context switches, steal, load); see docs/gate.md.
    public var noise: NoiseReport? = nil
    /// numastat of every node when the workers stopped: the six counters since
    /// the allocator was made (prefill and warm-up included, as /sys counts
    /// since boot) and each node's memory. The window's counters are in
    /// `counters.numaByNode`.
    public var numastat: NumaStat? = nil
    /// Free pages of every zone against its min/low/high watermarks, once per
    /// `run.bucket_ms` from the workers' release to their stop (nil: a peer
    /// allocator's run, or results written before it was recorded).
    public var freePages: FreePagesSeries? = nil
    /// Latency and failures per worker group and class (`key`: the group's
    /// name), groups in order; only when the workload has two or more groups
    /// (one group's rows are `latency`). `latency` keeps the totals.
    public var latencyByGroup: [KeyedLatency]? = nil
    /// Latency and failures of labelled alloc ops (`label = "..."`) per label
    /// and class (`key`: the label; ops sharing a label, in any group, share a
    /// row); only when some op has a label.
    public var latencyByLabel: [KeyedLatency]? = nil
}

/// One class's latency and failures within a worker group or an op label.
public struct KeyedLatency: Codable, Sendable, Equatable {
    /// The group's name (latencyByGroup) or the label (latencyByLabel).
    public var key: String
    public var name: String
    public var opClass: OpClass
    public var calls: Int
    public var failures: Int
    public var summary: LatencySummary
    public var histogram: EncodedHistogram
}

/// Where a run sits in a sweep (a single run: index 0 of 1, no sweep).
public struct ShardInfo: Codable, Sendable, Equatable {
    public var sweep: String?
    public var index: Int
    public var count: Int
    /// The sweep's parameters for this shard (name -> value as written).
    public var parameters: [String: String]

    public init(sweep: String? = nil, index: Int = 0, count: Int = 1, parameters: [String: String] = [:]) {
        self.sweep = sweep
        self.index = index
        self.count = count
        self.parameters = parameters
    }
}

public struct RunStatus: Codable, Sendable, Equatable {
    /// "ok", "failures" (allocation failures happened), "livelock" or
    /// "deadlock" (the watchdog ended the run), or "error" (the tool failed:
    /// corruption, a lost page, a broken invariant, stuck workers).
    public var verdict: String
    public var exitCode: Int32
    /// True when the run did not finish as asked (Ctrl-C, timeout, stuck workers).
    public var partial: Bool
    /// "duration", "ops", "interrupted" (SIGINT), "terminated" (SIGTERM), "timeout", "stuck", "livelock" or "deadlock".
    public var stopReason: String
    /// What went wrong, if anything (first problems found).
    public var problems: [String]
}

public struct OverheadReport: Codable, Sendable, Equatable {
    /// How it was measured.
    public var method: String
    /// Harness ns per allocator call with every operation timed.
    public var nsPerCallTimed: Double
    /// Harness ns per allocator call with no operation timed.
    public var nsPerCallUntimed: Double
    /// Harness ns per allocator call at this run's sampling (sample_every).
    public var nsPerCallAsRun: Double
    public var calls: Int
}

public struct TimingReport: Codable, Sendable, Equatable {
    /// "rdtsc" (x86-64), "cntvct" (arm64) or "monotonic".
    public var clock: String
    /// Calibrated against CLOCK_MONOTONIC at the start of the run.
    public var nsPerTick: Double
    public var warmupNs: Int
    /// From the end of warm-up to the last worker's stop.
    public var measuredNs: Int
    /// 1 in sampleEvery operations is timed in closed loop (every one in open loop).
    public var sampleEvery: Int
    public var timedCalls: Int
    /// Calls slower than the histogram's highest value (1 h), recorded as 1 h.
    public var latencyOverflows: Int
    public var harnessOverhead: OverheadReport?
    /// The counter's measured step between two different readings, in ticks
    /// and in ns: the clock's resolution (AMD Zen's TSC: about 24.5 ticks,
    /// 10 ns). Absent in results written before it was measured.
    public var clockStepTicks: Double? = nil
    public var clockStepNs: Double? = nil
    /// The finest latency difference the results can show: the larger of
    /// the clock's step and the histogram's 1 ns buckets (values to 2,047
    /// ns are kept to the ns, larger ones to 3 significant digits).
    public var resolutionNs: Double? = nil
}

public struct ThroughputReport: Codable, Sendable, Equatable {
    /// Allocator calls (allocations, failed ones included, and frees).
    public var calls: Int
    public var callsPerSecond: Double
    /// Operations: draws from the workers' mixes.
    public var operations: Int
    public var operationsPerSecond: Double
    public var allocs: Int
    public var frees: Int
    public var remoteFrees: Int
    public var failedAllocs: Int
    public var series: SeriesReport
}

public struct SeriesReport: Codable, Sendable, Equatable {
    public var bucketMs: Int
    /// Allocator calls completed in each bucket, all workers.
    public var calls: [UInt64]
    public var failures: [UInt64]
    /// Successful allocations completed in each bucket, all workers (absent in
    /// results written before it was recorded). Bucket 0 starts at the end of
    /// the warm-up, as for `calls`.
    public var allocs: [UInt64]? = nil
}

public struct ClassLatency: Codable, Sendable, Equatable {
    public var name: String
    public var opClass: OpClass
    /// All calls of this class (timed or not).
    public var calls: Int
    public var failures: Int
    public var summary: LatencySummary
    public var histogram: EncodedHistogram
}

public struct FailureEntry: Codable, Sendable, Equatable {
    public var order: Int
    public var flags: String
    public var level: Int
    public var count: Int
}

public struct FailureReport: Codable, Sendable, Equatable {
    public var total: Int
    /// Keys are decimal orders / levels as strings (JSON object keys).
    public var byOrder: [String: Int]
    public var byFlags: [String: Int]
    public var byLevel: [String: Int]
    public var entries: [FailureEntry]
}

public struct CounterReport: Codable, Sendable, Equatable {
    /// Event counters (/proc/vmstat names) over the measured window: the
    /// difference between snapshots at the end of warm-up and after the
    /// workers stopped (clean-up frees not included).
    public var vmstatDelta: [String: Int]
    /// Every vmstat line (gauges and totals since the allocator was made) when the workers stopped.
    public var vmstatAtEnd: [String: Int]
    /// pcp_alloc_hit / (pcp_alloc_hit + pcp_refill) over the window; nil when neither happened.
    public var pcpHitRate: Double?
    public var zoneLockAcquisitions: Int
    public var zoneLockContended: Int
    public var pcpLockContended: Int
    /// numa_hit, numa_miss, numa_foreign, numa_interleave (interleave_hit), numa_local, numa_other over the window, per node (its zones summed).
    public var numaByNode: [[String: Int]]? = nil
    /// How the per-CPU lists were owned: "rseq" or "trylock" (policy pcp_lock as built).
    public var pcpLock: String? = nil
    /// Why pcp_lock = auto fell back to trylock; nil when it did not.
    public var pcpLockNote: String? = nil
}

public struct LockReport: Codable, Sendable, Equatable {
    public var name: String
    public var acquisitions: Int
    /// Acquisitions that found the lock held.
    public var contended: Int
    public var waitNsTotal: Double
    public var waitNsMax: Double
    /// Waits given up because the run ended.
    public var abandoned: Int
}

public struct HandoffReport: Codable, Sendable, Equatable {
    /// Blocks pushed to a consumer's ring.
    public var sent: Int
    /// Blocks freed by a worker other than the one that allocated them.
    public var freedRemotely: Int
    /// Pushes that found the ring full and waited.
    public var fullWaits: Int
    /// Waits given up because the run ended (the producer freed the block).
    public var abandoned: Int
    /// Consume operations that found nothing to free.
    public var emptyPolls: Int
    /// Blocks still queued to a consumer when its task exited during the run
    /// (an OOM kill, a group stop), freed by that exit. Optional: results
    /// files written before it was counted lack it.
    public var freedAtExit: Int? = nil
}

public struct AccountingReport: Codable, Sendable, Equatable {
    public var managed: Int
    public var buddyFree: Int
    public var perCPU: Int
    public var allocated: Int
    public var allocatedBlocks: Int
}

public struct MemoryCheck: Codable, Sendable, Equatable {
    /// Touched words that did not hold their pattern when checked.
    public var corruptions: Int
    /// Frees the allocator refused (double free, wrong order: a bug).
    public var freeErrors: Int
    /// Blocks still held when the workers stopped, freed at clean-up.
    public var freedAtCleanup: Int
    /// validate() after clean-up: "ok", the violations, or "skipped".
    public var validate: String
    public var accounting: AccountingReport?
    /// Where each node's arena is (binding, policy, move_pages of sampled pages), checked after the run.
    public var placement: [ArenaPlacement]? = nil
}

public struct WorkerReport: Codable, Sendable, Equatable {
    public var index: Int
    public var group: String
    /// "cpu1", "node0" or "unpinned"; pinError says when pinning failed.
    public var pinnedTo: String
    public var pinError: String?
    /// The CPU passed to the allocator (nil: the one the thread runs on).
    public var allocatorCPU: Int?
    public var calls: Int
    public var callsPerSecond: Double
    public var operations: Int
    public var failures: Int
    public var measuredNs: Int
    /// "duration", "ops", "stopped", "killed" (not restarted), "group-stopped" or "aborted".
    public var stopReason: String
    /// Open loop: the latest an operation started after its intended time.
    public var maxLagNs: Double?
    /// OOM kills of this worker's tasks, and restarts.
    public var kills: Int
    public var restarts: Int
}

public struct OperationReport: Codable, Sendable, Equatable {
    public var group: String
    public var op: String
    public var kind: String
    /// Times the operation was drawn (consume: only those that freed something).
    public var draws: Int
}
