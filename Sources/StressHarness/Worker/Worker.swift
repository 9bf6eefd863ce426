import CNUMA
import PageAllocator
import Topology

/// A worker: its plan compiled into raw memory, and the loop that runs it.
/// Everything the loop touches per operation is a field of this struct or
/// plain memory behind a pointer: no class instances, closures or
/// existentials per operation. Made, run and torn down on the worker's
/// thread; its raw memory (`mem`) is freed when the worker goes out of scope.
///
/// Files: Worker+Task (the task's lifecycle and exit), +Prefill, +Loop (the
/// loop, housekeeping, time series), +Pacing (open loop), +Operations
/// (allocations, transactions, the caller loop, damage), +Lifetimes (pools
/// and frees), +Handoff (rings), +Locks, +Patterns (touch and verify),
/// +Clock, +Output; WorkerMemory (the raw memory, read as `mem.ops` etc.),
/// WorkerRecord (what the output hands over), HotOp, WorkerCounters, WorkerTiming.
struct Worker<B: AllocatorBackend>: ~Copyable {
    typealias H = Held<B.Block>

    let backend: B
    let control: RunControl
    let index: Int
    /// This worker's slot in `control` (progress, call sequence, phase...).
    let slot: RunControl.WorkerSlot
    /// The worker's task id (the allocator's `owner`); a new one after a restart.
    var owner: UInt16
    let group: Int
    /// The allocator task it registers as (its name never empty: "worker<i>" by default).
    let task: TaskSpec
    let cpu: CPUID?
    /// The group's memory policy (nil: local) and this task's interleave position.
    let policy: MemPolicy?
    var cursor = InterleaveCursor()
    let timing: WorkerTiming
    let harness: HarnessSpec
    let consumeOnly: Bool
    /// Pages the worker holds (pools, a transaction in progress): its RSS for the OOM killer.
    var heldPages = 0
    var publishedRSS = -1
    /// The last allocation call returned .killed: die at the next safe point.
    var pendingDeath = false
    /// The allocator was shut down: stop.
    var aborted = false
    var groupStopped = false
    /// Allocation calls started and ended (odd while inside one) and successes, published for the stall tracker and the watchdog.
    var callSeq = 0
    var successes = 0
    /// Counting prefill allocations after a restart separately.
    var inRestartPrefill = false
    /// A caller loop gave up because the run ended: the loop ends too.
    var loopAbandoned = false

    /// The raw memory: operations, histograms, class counters, pools, ring lists, lock counters.
    let mem: WorkerMemory<H>
    /// For messages only.
    let opNames: [String]

    let rings: UnsafeMutablePointer<HandoffRing<H>>
    var nextInbound = 0
    var emptyStreak = 0

    let locks: NamedLocks

    var rng: SplitMix64
    /// Closed loop: operations until the next timed one (random, mean sample_every).
    var sampleCountdown = 0
    var tagSeq: UInt64 = 0
    var c = WorkerCounters()

    // Time.
    var runStart: UInt64 = 0
    var warmupEnd: UInt64 = 0
    var deadline: UInt64 = .max
    var paceK: Double = 0
    var producingDone = false
    /// Ops mode, once measuring: the op count (checked every operation, so it is exact).
    var opsLimit = Int.max
    var creditedCalls = 0
    var creditedFailures = 0
    var creditedAllocs = 0
    /// `[harness] stall_once_ms`: worker 0 has not stalled yet.
    var stallPending = false
    /// The measuring window, time series, stop reason and the task's fate: handed whole to `WorkerOutput`.
    var record = WorkerRecord()

    init(plan: WorkerPlan, backend: B, control: RunControl, timing: WorkerTiming, rings: UnsafeMutablePointer<HandoffRing<H>>,
         locks: NamedLocks, lockCount: Int, seed: UInt64, harness: HarnessSpec = HarnessSpec(), ringConsumers: [Int] = []) {
        self.backend = backend
        self.control = control
        self.timing = timing
        self.harness = harness
        index = plan.index
        slot = control.slot(plan.index)
        stallPending = (harness.stallOnceMs ?? 0) > 0 && plan.index == 0 && timing.intervalTicks > 0
        group = plan.group
        var task = plan.task
        if task.name.isEmpty { task.name = "worker\(plan.index)" }
        self.task = task
        owner = UInt16(truncatingIfNeeded: plan.index)
        cpu = plan.allocatorCPU.map(CPUID.init)
        policy = plan.policy
        consumeOnly = plan.consumeOnly
        self.rings = rings
        self.locks = locks
        rng = SplitMix64(seed: seed ^ (UInt64(plan.index) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        opNames = plan.ops.map(\.spec.name)
        mem = WorkerMemory(plan: plan, lockCount: lockCount, ringConsumers: ringConsumers)
    }
}
