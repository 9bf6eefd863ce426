import PageAllocator

/// What happened in the slow path during a run (`slowPath` in the results
/// file): the verdict's evidence, the OOM killer's work, tasks and restarts,
/// stalls, the caller-side NOFAIL loop, damage by level of need, reclaim,
/// allocation-failure warnings, memory groups and fragmentation.
public struct SlowPathReport: Codable, Sendable, Equatable {
    /// `ok`, `failures`, `livelock`, `deadlock` or `error` (the same as status.verdict).
    public var verdict: String
    /// What the watchdog saw when it ended the run (nil: it did not fire).
    public var watchdog: WatchdogReport?
    /// Slow-path counters (allocstall, pgscan_*, pgsteal_*, kswapd_wakeups,
    /// pswpout, pgwriteback, oom_kill, oom_reaped, ...) over the measured window.
    public var counters: [String: Int]
    /// The same since the allocator was built (prefill and clean-up included).
    public var countersTotal: [String: Int]
    /// Every OOM-killer decision (kill, reap, victim-timeout), at most 1000.
    public var oomEvents: [OOMEventReport]
    public var tasks: TaskReport
    public var stalls: StallReport
    public var callerLoop: CallerLoopReport
    /// Failed allocations by cause.
    public var failureCauses: FailureCauses
    /// The damage the failures did, by Ts'o's levels of need.
    public var damage: DamageReport
    public var reclaim: ReclaimReport
    public var reservations: ReservationReport
    /// warn_alloc: failures by "order:N mode:FLAGS", printed and suppressed lines.
    public var warnings: AllocWarningStats
    /// fail_page_alloc failures injected (the allocator's count, clean-up included).
    public var injectedFailures: Int
    public var memoryGroups: [MemoryGroupStats]
    /// Per zone, when the workers stopped: the kernel's unusable-free-space and fragmentation indices by order.
    public var fragmentation: [ZoneFragmentation]
    /// Lines workers printed (the caller loop's "possible memory allocation deadlock"), the first 200.
    public var messages: [String]
    /// Workers were still inside the allocator `end_abort_ms` after the end
    /// of the run and the allocator was shut down to end them: a hang the
    /// watchdog did not call (too short a run for its thresholds).
    public var endAborted: Bool
}

public struct OOMEventReport: Codable, Sendable, Equatable {
    /// Milliseconds since the workers were released (negative: during prefill).
    public var atMs: Double
    /// "kill", "reap" or "victim-timeout".
    public var kind: String
    public var victim: Int
    public var victimName: String
    /// oom_badness at the kill (reap: pages reaped).
    public var badness: Int
    /// The task whose allocation invoked the killer (0: the reaper).
    public var triggeredBy: Int
    public var order: Int
    public var flags: String
}

public struct TaskReport: Codable, Sendable, Equatable {
    /// Tasks registered over the run (workers plus restarts).
    public var registered: Int
    /// Worker tasks killed by the OOM killer that freed everything and exited (measured window).
    public var kills: Int
    /// Killed workers started again as new tasks ([[group]] restart = true).
    public var restarts: Int
    /// Restarts refused: the allocator's task table was full.
    public var restartFailures: Int
    /// Allocations restarted workers made to rebuild their prefill pools and initial page cache (not in throughput).
    public var restartAllocs: Int
    /// Allocation calls that returned .killed.
    public var killedCalls: Int
    /// Allocation calls ended by the allocator's shutdown (the watchdog, or the end of the run).
    public var abortedCalls: Int
    /// Workers killed for good, by the end.
    public var deadWorkers: Int
    /// Blocks a producer freed itself because their consumer had died for good.
    public var handoffToGone: Int
}

public struct CallerLoopReport: Codable, Sendable, Equatable {
    /// `[harness] nofail = "caller-loop"` and some operation has __GFP_NOFAIL.
    public var enabled: Bool
    /// Failed tries inside caller loops.
    public var retries: Int
    /// "possible memory allocation deadlock" lines (one per caller_loop_warn_every tries).
    public var deadlockWarnings: Int
    /// The most tries one allocation needed.
    public var maxTries: Int
    /// Loops still going when the run ended.
    public var abandoned: Int
}

public struct FailureCauses: Codable, Sendable, Equatable {
    public var outOfMemory: Int
    public var injected: Int
    public var groupLimit: Int
    public var timedOut: Int
    public var reservation: Int
}

/// Ts'o's levels of need, as damage.
public struct DamageReport: Codable, Sendable, Equatable {
    /// Level 0: an optimisation was skipped.
    public var skipped: Int
    /// Level 1: an error was returned safely.
    public var errorsReturned: Int
    /// Level 2: the error reached an application that mishandled it: the pages it "wrote" are lost.
    public var lostDataPages: Int
    /// Level 3: failures that took a subsystem down (the worker group stopped).
    public var subsystemFailures: Int
    /// Groups stopped by a level-3 failure, and when.
    public var groupsStopped: [GroupStop]
}

public struct GroupStop: Codable, Sendable, Equatable {
    public var group: String
    /// Milliseconds after the workers were released.
    public var atMs: Double
}

public struct ReclaimReport: Codable, Sendable, Equatable {
    /// Pages operations handed to the LRU (measured window).
    public var createdClean: Int
    public var createdDirty: Int
    public var createdAnon: Int
    /// On the LRUs when the workers stopped.
    public var atEndClean: Int
    public var atEndDirty: Int
    public var atEndAnon: Int
}

public struct ReservationReport: Codable, Sendable, Equatable {
    /// `[harness] reservations`, and whether an operation declares `reserve`.
    public var enabled: Bool
    /// Transactions that got their reservation.
    public var transactions: Int
    /// Reservations refused (the transaction did not start: a level-1 error).
    public var refused: Int
}

public struct ZoneFragmentation: Codable, Sendable, Equatable {
    public var zone: Int
    public var node: Int
    public var type: String
    public var freePages: Int
    /// Per order 0...10: the share of free pages in blocks too small for that order (debugfs extfrag/unusable_index).
    public var unusableFreeIndex: [Double]
    /// Per order: -1 when a block of that order is free; toward 1 a failure would be for fragmentation (extfrag_index).
    public var fragmentationIndex: [Double]
}

/// What StressRun hands ResultBuilder about the slow path.
struct SlowInputs {
    var start: [(name: String, value: Int)]
    var end: [(name: String, value: Int)]
    var total: [(name: String, value: Int)]
    var oomEvents: [OOMEvent]
    var goNs: UInt64
    var watchdog: WatchdogReport?
    var stalls: StallReport
    var messages: [String]
    var reclaimableAtEnd: [ReclaimableKind: Int]
    var fragmentation: [ZoneFragmentation]
    var warnings: AllocWarningStats
    var memoryGroups: [MemoryGroupStats]
    var injected: Int
    /// Per worker group: monotonic ns of its level-3 stop, or 0.
    var groupStops: [Int]
    var endAborted: Bool
}
