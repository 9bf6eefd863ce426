import CNUMA
import Histogram
import PageAllocator
import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// A block a worker holds, with what it needs to check the block's pattern.
struct Held<Block> {
    var block: Block
    /// Tag the touched words were written from (0: not touched).
    var tag: UInt64
    /// Words touched at the start of each page.
    var words: Int
}

/// A deque of held blocks in raw memory (one per operation that holds blocks).
struct Pool<E> {
    let buf: UnsafeMutablePointer<E>
    let cap: Int
    var head = 0
    var count = 0

    init(capacity: Int) {
        cap = max(capacity, 1)
        buf = .allocate(capacity: cap)
    }

    @inline(__always) func slot(_ j: Int) -> UnsafeMutablePointer<E> {
        var i = head &+ j
        if i >= cap { i &-= cap }
        return buf + i
    }
    @inline(__always) mutating func pushBack(_ e: E) {
        slot(count).initialize(to: e)
        count &+= 1
    }
    @inline(__always) mutating func popBack() -> E {
        count &-= 1
        return slot(count).move()
    }
    @inline(__always) mutating func popFront() -> E {
        let e = (buf + head).move()
        head &+= 1
        if head == cap { head = 0 }
        count &-= 1
        return e
    }
    /// Removes the element at logical index `j` (the last one takes its place).
    @inline(__always) mutating func remove(at j: Int) -> E {
        let last = count &- 1
        if j != last { swap(&slot(j).pointee, &slot(last).pointee) }
        return popBack()
    }
}

/// One operation in the form the hot loop reads (trivial, no ARC).
struct HotOp {
    var kind: OpKind
    var lifetime: Lifetime
    var isBatch: Bool
    var prefill: Bool
    var need: Int
    var flags: GFP
    var count: Int
    /// batch or live N (alloc), blocks per consume (consume).
    var limit: Int
    var lockIndex: Int
    var touchWords: Int
    var node: NodeID?
    var ring: Int
    var pool: Int
    var orders: AliasTable
    var allocClass: UnsafeMutablePointer<Int32>
    /// ReclaimableKind raw value, or -1: the worker holds its blocks.
    var reclaimKind: Int
    /// Reclaimable ops: blocks created before the start (and after a restart).
    var initial: Int
    /// Pages reserved before the operation (0: no reservation).
    var reserve: Int
    /// The caller-side NOFAIL loop (flags without __GFP_NOFAIL).
    var callerLoop: Bool
}

/// Plain counters of one worker (merged on read, as mimalloc's stats.c).
struct WorkerCounters {
    var draws = 0
    /// Allocator calls: every allocation (failed ones too) and free.
    var calls: Int { allocs &+ failures &+ frees &+ remoteFrees }
    var allocs = 0
    var frees = 0
    var remoteFrees = 0
    var failures = 0
    var failuresByLevel = (0, 0, 0, 0)
    var corruptions = 0
    var freeErrors = 0
    var handoffSent = 0
    var handoffWaits = 0
    var handoffAbandoned = 0
    var consumeEmpty = 0
    var lockAbandoned = 0
    var latencyOverflows = 0
    var timedCalls = 0
    var maxLagTicks: UInt64 = 0
    // The slow path as the worker saw it.
    /// Times this worker's task was killed by the OOM killer and exited.
    var kills = 0
    /// New tasks started after a kill ([[group]] restart = true).
    var restarts = 0
    /// Restarts refused because the allocator's task table was full.
    var restartFailures = 0
    /// Allocations a restarted worker made to rebuild its prefill pools and initial page cache (not in `allocs`).
    var restartAllocs = 0
    /// Allocation calls that returned .killed (the caller was the OOM victim).
    var killedCalls = 0
    /// Allocation calls ended by the allocator's shutdown (watchdog, or the end of the run).
    var abortedCalls = 0
    /// Failures by cause: out of memory, injected (fail_page_alloc), memory-group limit, max_stall_ms, reservation refused.
    var failOOM = 0
    var failInjected = 0
    var failGroupLimit = 0
    var failTimedOut = 0
    var failReservation = 0
    /// Damage by level of need: 0 optimisations skipped, 1 errors returned
    /// safely, 2 pages of lost data, 3 subsystem failures (this worker's group stopped).
    var skipped = 0
    var safeErrors = 0
    var lostPages = 0
    var subsystemFailures = 0
    /// Caller-side NOFAIL loop: failed tries, "possible memory allocation
    /// deadlock" lines, the most tries one allocation needed, loops given up when the run ended.
    var callerRetries = 0
    var callerWarnings = 0
    var callerMaxTries = 0
    var callerAbandoned = 0
    /// Pages handed to the allocator's LRU: clean, dirty, anon.
    var lruClean = 0
    var lruDirty = 0
    var lruAnon = 0
    /// Transactions that reserved, and reservations refused (the transaction did not start).
    var reservedTransactions = 0
    /// Hand-offs to a consumer that was killed for good (freed by the producer).
    var handoffToGone = 0
}

/// Lock counters of one worker for one lock.
struct LockCounters {
    var acquisitions = 0
    var contended = 0
    var waitTicks: UInt64 = 0
    var maxWaitTicks: UInt64 = 0
    var abandoned = 0
}

/// Run-wide timing a worker needs, in cycle-counter ticks.
struct WorkerTiming {
    var opsMode: Bool
    var opsTarget: Int
    var warmupTicks: UInt64
    var durationTicks: UInt64
    var bucketTicks: UInt64
    var maxBuckets: Int
    /// Open loop: ticks between intended starts (0: closed loop).
    var intervalTicks: Double
    /// ns = ticks * mulQ32 >> 32.
    var mulQ32: UInt64
    var nsPerTick: Double
    /// Closed loop: time an operation when (random & mask) == 0.
    var sampleMask: UInt64
    var pageSize: Int
}

/// What a worker is doing, beyond its allocation calls (published for the watchdog's report).
enum WorkerPhase: Int, CaseIterable {
    case starting = 0, running, dying, restartDelay, rebuilding, lockWait, handoffWait, callerBackoff, finished, gone
    var text: String {
        ["starting (prefill)", "running operations", "dying (freeing what it holds)", "waiting to restart", "rebuilding its pools after a restart",
         "waiting for a lock", "waiting for a full hand-off queue", "in a caller loop's backoff", "finished its loop", "gone (killed for good or its group stopped)"][rawValue]
    }
}

/// A worker: its plan compiled into raw memory, and the loop that runs it.
/// Everything the loop touches per operation is a field of this struct or
/// plain memory behind a pointer: no class instances, closures or
/// existentials per operation. Made, run and torn down on the worker's thread.
struct Worker<B: AllocatorBackend> {
    typealias H = Held<B.Block>

    let backend: B
    let control: RunControl
    let index: Int
    /// The worker's task id (the allocator's `owner`); a new one after a restart.
    var owner: UInt16
    let group: Int
    let taskName: String
    let oomScoreAdj: Int
    let restartAfterKill: Bool
    let restartDelayNs: UInt64
    let memoryGroup: Int
    let cpu: CPUID?
    let timing: WorkerTiming
    let harness: HarnessSpec
    let consumeOnly: Bool
    /// The consumer worker of each global ring (a gone consumer's blocks are freed by the producer).
    let ringConsumer: UnsafeMutablePointer<Int>
    let ringCount: Int
    /// Pages the worker holds (pools, a transaction in progress): its RSS for the OOM killer.
    var heldPages = 0
    var publishedRSS = -1
    /// Tasks this worker has been (1 + restarts over the whole run).
    var generation = 1
    /// The last allocation call returned .killed: die at the next safe point.
    var pendingDeath = false
    /// The allocator was shut down: stop.
    var aborted = false
    /// Killed and not restarted, or its group stopped: no more operations.
    var dead = false
    var groupStopped = false
    /// Allocation calls started and ended (odd while inside one) and successes, published for the stall tracker and the watchdog.
    var callSeq = 0
    var successes = 0
    /// Counting prefill allocations after a restart separately.
    var inRestartPrefill = false
    /// A caller loop gave up because the run ended: the loop ends too.
    var loopAbandoned = false

    let opCount: Int
    let ops: UnsafeMutablePointer<HotOp>
    /// For messages only.
    let opNames: [String]
    let opTable: AliasTable

    let classCount: Int
    let hist: UnsafeMutablePointer<LatencyCounts>
    let classCalls: UnsafeMutablePointer<Int>
    /// classCount x 4 levels of need.
    let classFailures: UnsafeMutablePointer<Int>
    let opDraws: UnsafeMutablePointer<Int>
    let freeClass: UnsafeMutablePointer<Int32>
    let remoteFreeClass: UnsafeMutablePointer<Int32>

    let poolCount: Int
    let pools: UnsafeMutablePointer<Pool<H>>
    let scratch: UnsafeMutablePointer<H>

    let rings: UnsafeMutablePointer<HandoffRing<H>>
    let inbound: UnsafeMutablePointer<Int>
    let inboundCount: Int
    let producers: UnsafeMutablePointer<Int>
    let producerCount: Int
    var nextInbound = 0
    var emptyStreak = 0

    let locks: NamedLocks
    let lockStats: UnsafeMutablePointer<LockCounters>

    var rng: SplitMix64
    /// Closed loop: operations until the next timed one (random, mean sample_every).
    var sampleCountdown = 0
    var tagSeq: UInt64 = 0
    var c = WorkerCounters()
    var firstProblem: String? = nil

    // Time.
    var runStart: UInt64 = 0
    var warmupEnd: UInt64 = 0
    var deadline: UInt64 = .max
    var measuring = false
    var measureStart: UInt64 = 0
    var loopEnd: UInt64 = 0
    var paceK: Double = 0
    var producingDone = false
    /// Ops mode, once measuring: the op count (checked every operation, so it is exact).
    var opsLimit = Int.max
    var buckets: [UInt64] = []
    var failureBuckets: [UInt64] = []
    var creditedCalls = 0
    var creditedFailures = 0
    var stopReason = "duration"

    init(plan: WorkerPlan, backend: B, control: RunControl, timing: WorkerTiming, rings: UnsafeMutablePointer<HandoffRing<H>>,
         locks: NamedLocks, lockCount: Int, seed: UInt64, harness: HarnessSpec = HarnessSpec(), ringConsumers: [Int] = []) {
        self.backend = backend
        self.control = control
        self.timing = timing
        self.harness = harness
        index = plan.index
        group = plan.group
        taskName = plan.taskName.isEmpty ? "worker\(plan.index)" : plan.taskName
        oomScoreAdj = plan.oomScoreAdj
        restartAfterKill = plan.restart
        restartDelayNs = UInt64(plan.restartDelayMs) * 1_000_000
        memoryGroup = plan.memoryGroup
        owner = UInt16(truncatingIfNeeded: plan.index)
        ringCount = ringConsumers.count
        ringConsumer = .allocate(capacity: max(ringConsumers.count, 1))
        for (i, c) in ringConsumers.enumerated() { ringConsumer[i] = c }
        cpu = plan.allocatorCPU.map(CPUID.init)
        consumeOnly = plan.consumeOnly
        self.rings = rings
        self.locks = locks
        rng = SplitMix64(seed: seed ^ (UInt64(plan.index) &+ 1) &* 0x9E37_79B9_7F4A_7C15)

        classCount = plan.classes.count
        hist = .allocate(capacity: max(classCount, 1))
        for i in 0..<classCount { (hist + i).initialize(to: LatencyCounts()) }
        classCalls = .allocate(capacity: max(classCount, 1))
        classCalls.initialize(repeating: 0, count: max(classCount, 1))
        classFailures = .allocate(capacity: max(classCount, 1) * 4)
        classFailures.initialize(repeating: 0, count: max(classCount, 1) * 4)
        freeClass = .allocate(capacity: Order.count)
        remoteFreeClass = .allocate(capacity: Order.count)
        for o in 0..<Order.count {
            freeClass[o] = Int32(plan.freeClassByOrder[o])
            remoteFreeClass[o] = Int32(plan.remoteFreeClassByOrder[o])
        }

        opCount = plan.ops.count
        opNames = plan.ops.map(\.spec.name)
        ops = .allocate(capacity: opCount)
        opDraws = .allocate(capacity: opCount)
        opDraws.initialize(repeating: 0, count: opCount)
        var poolSizes: [Int] = []
        var maxCount = 1
        for (i, p) in plan.ops.enumerated() {
            let s = p.spec
            var pool = -1
            if s.kind == .alloc && s.free != .immediate {
                pool = poolSizes.count
                poolSizes.append(s.batch ?? s.live ?? 1)
            }
            maxCount = max(maxCount, s.count)
            let cls = UnsafeMutablePointer<Int32>.allocate(capacity: Order.count)
            for o in 0..<Order.count { cls[o] = Int32(p.allocClassByOrder[o]) }
            let orders = s.kind == .alloc ? AliasTable(weights: s.orders.map(\.weight), values: s.orders.map(\.order))
                                          : AliasTable(weights: [1], values: [0])
            (ops + i).initialize(to: HotOp(
                kind: s.kind, lifetime: s.free, isBatch: s.batch != nil && s.kind == .alloc, prefill: s.prefill, need: s.need,
                flags: p.gfp, count: s.count, limit: s.kind == .consume ? (s.batch ?? 16) : (s.batch ?? s.live ?? 1),
                lockIndex: p.lockIndex, touchWords: s.touch / 8, node: s.node.map(NodeID.init), ring: p.ring, pool: pool,
                orders: orders, allocClass: cls,
                reclaimKind: s.reclaimable.flatMap { r in ["clean", "dirty", "anon"].firstIndex(of: r) } ?? -1,
                initial: s.initial, reserve: p.reserve, callerLoop: p.callerLoop))
        }
        opTable = AliasTable(weights: plan.ops.map(\.spec.weight), values: Array(0..<plan.ops.count))
        poolCount = poolSizes.count
        pools = .allocate(capacity: max(poolCount, 1))
        for (i, n) in poolSizes.enumerated() { (pools + i).initialize(to: Pool(capacity: n)) }
        scratch = .allocate(capacity: maxCount)

        inboundCount = plan.inbound.count
        inbound = .allocate(capacity: max(inboundCount, 1))
        for (i, r) in plan.inbound.enumerated() { inbound[i] = r }
        producerCount = plan.producers.count
        producers = .allocate(capacity: max(producerCount, 1))
        for (i, p) in plan.producers.enumerated() { producers[i] = p }
        lockStats = .allocate(capacity: max(lockCount, 1))
        lockStats.initialize(repeating: LockCounters(), count: max(lockCount, 1))
    }

    /// Frees the worker's memory (its pools must be empty).
    func destroy() {
        for i in 0..<classCount { hist[i].destroy() }
        hist.deallocate()
        classCalls.deallocate()
        classFailures.deallocate()
        freeClass.deallocate()
        remoteFreeClass.deallocate()
        for i in 0..<opCount {
            ops[i].allocClass.deallocate()
            ops[i].orders.destroy()
        }
        ops.deallocate()
        opDraws.deallocate()
        opTable.destroy()
        for i in 0..<poolCount { pools[i].buf.deallocate() }
        pools.deallocate()
        scratch.deallocate()
        inbound.deallocate()
        producers.deallocate()
        lockStats.deallocate()
        ringConsumer.deallocate()
    }

    // MARK: clock

    @inline(__always) func now() -> UInt64 { cnuma_cycles() }

    @inline(__always)
    func nanoseconds(_ ticks: UInt64) -> UInt64 {
        let m = ticks.multipliedFullWidth(by: timing.mulQ32)
        return (m.high << 32) | (m.low >> 32)
    }

    @inline(__always)
    mutating func record(_ cls: Int, from t0: UInt64) {
        let t1 = now()
        let ns = t1 > t0 ? nanoseconds(t1 &- t0) : 0
        c.timedCalls &+= 1
        if !hist[cls].record(ns) { c.latencyOverflows &+= 1 }
    }

    // MARK: the task

    /// Registers the worker's task (on its own thread, before the prefill).
    mutating func startTask() {
        let name = generation == 1 ? taskName : "\(taskName)#\(generation)"
        if let id = backend.registerTask(name: name, oomScoreAdj: oomScoreAdj, memoryGroup: memoryGroup) {
            owner = id
        } else {
            owner = 0
            if firstProblem == nil { firstProblem = "worker \(index): the allocator's task table is full; it runs without a task (no OOM kills, no memory group)" }
        }
        control.task(index).pointee.store(Int(owner), ordering: .relaxed)
        publishedRSS = -1
    }

    /// Publishes the pages held (the task's RSS for the OOM killer's badness) when they changed.
    @inline(__always)
    mutating func publishRSS() {
        if heldPages != publishedRSS {
            publishedRSS = heldPages
            backend.setTaskRSS(owner, pages: heldPages)
        }
    }

    /// The OOM killer chose this task, and it is at a safe point: it frees
    /// everything it holds (pools, blocks others handed to it), exits, and,
    /// if its group says so, starts again as a new task with fresh pools.
    @inline(__always) func setPhase(_ p: WorkerPhase) { control.phase(index).pointee.store(p.rawValue, ordering: .relaxed) }

    @inline(never)
    mutating func die() {
        setPhase(.dying)
        defer { setPhase(dead ? .gone : .running) }
        pendingDeath = false
        c.kills &+= 1
        _ = freeEverything()
        heldPages = 0
        backend.setTaskRSS(owner, pages: 0)
        backend.setTaskActivity(owner, .running, target: 0)
        backend.taskExited(owner)
        control.task(index).pointee.store(0, ordering: .relaxed)
        if restartAfterKill && restartDelayNs > 0 {
            // The service manager's restart delay, bounded by the end of the run.
            setPhase(.restartDelay)
            let until = cnuma_monotonic_ns() &+ restartDelayNs
            while cnuma_monotonic_ns() < until && !waitMustEnd() { usleep(1000) }
        }
        if restartAfterKill && !waitMustEnd() && !aborted && !control.groupStopped(group) {
            generation &+= 1
            startTask()
            if owner != 0 {
                c.restarts &+= 1
                inRestartPrefill = true
                setPhase(.rebuilding)
                prefill()
                inRestartPrefill = false
                return
            }
            c.restartFailures &+= 1
        }
        goneForGood()
    }

    /// No more operations from this worker (killed and not restarted, or a
    /// level-3 failure stopped its group): consumers stop waiting for it and
    /// producers stop handing it blocks.
    mutating func goneForGood() {
        dead = true
        control.gone(index).pointee.store(1, ordering: .relaxed)
        control.producingDone(index).pointee.store(1, ordering: .releasing)
    }

    // MARK: set-up before the barrier (and after a restart)

    /// Fills each `prefill` pool to its `live` size and creates each
    /// reclaimable op's `initial` blocks (not measured). Gives up on a pool
    /// after as many failures as its size, and at once when the task is
    /// killed, the allocator shuts down or the run is told to stop.
    mutating func prefill() {
        for i in 0..<opCount where ops[i].prefill && ops[i].pool >= 0 {
            let op = ops[i]
            var failures = 0
            while pools[op.pool].count < op.limit && failures < op.limit {
                guard let b = prefillOne(op) else {
                    if pendingDeath || aborted || control.stop.load(ordering: .relaxed) { publishRSS(); return }
                    failures += 1
                    continue
                }
                let tag = touch(b, words: op.touchWords)
                pools[op.pool].pushBack(H(block: b, tag: tag, words: op.touchWords))
                heldPages &+= 1 &<< backend.order(of: b)
            }
        }
        for i in 0..<opCount where ops[i].reclaimKind >= 0 && ops[i].initial > 0 {
            let op = ops[i]
            var made = 0, failures = 0
            while made < op.initial && failures < op.initial {
                guard let b = prefillOne(op) else {
                    if pendingDeath || aborted || control.stop.load(ordering: .relaxed) { publishRSS(); return }
                    failures += 1
                    continue
                }
                _ = touch(b, words: op.touchWords)
                lru(b, kind: op.reclaimKind)
                made += 1
            }
        }
        publishRSS()
    }

    mutating func prefillOne(_ op: HotOp) -> B.Block? {
        if control.stop.load(ordering: .relaxed) { return nil }
        let order = op.orders.draw(rng.next())
        do {
            let b = try backend.allocate(order: Order(unchecked: order), flags: op.flags, node: op.node, cpu: cpu, owner: owner)
            successes &+= 1
            control.successes(index).pointee.store(successes, ordering: .relaxed)
            if inRestartPrefill { c.restartAllocs &+= 1 }
            return b
        } catch {
            switch error {
            case .killed: pendingDeath = true
            case .aborted: aborted = true
            default: break
            }
            return nil
        }
    }

    /// Hands a block to the allocator's LRU, charged to this task.
    @inline(__always)
    mutating func lru(_ b: B.Block, kind: Int) {
        backend.addReclaimable(b, kind: ReclaimableKind(rawValue: kind) ?? .clean, owner: owner)
        let pages = 1 &<< backend.order(of: b)
        switch kind {
        case 0: c.lruClean &+= pages
        case 1: c.lruDirty &+= pages
        default: c.lruAnon &+= pages
        }
    }

    // MARK: the loop

    /// Runs until the deadline, the op count, or a stop request.
    @inline(never)
    mutating func run(go: UInt64) {
        setPhase(.running)
        defer { setPhase(dead ? .gone : .finished) }
        runStart = go
        warmupEnd = go &+ timing.warmupTicks
        if timing.warmupTicks == 0 { startMeasuring(go) }
        let open = timing.intervalTicks > 0
        let hkMask = open ? 0 : 63
        var n = 0
        while true {
            if (n & hkMask == 0 || c.draws >= opsLimit) && housekeeping() { break }
            // Safe point: between operations.
            if pendingDeath || backend.taskShouldDie(owner) {
                die()
                if dead { stopReason = "killed"; break }
            }
            if aborted { stopReason = "aborted"; break }
            if groupStopped { stopGroupWorker(); break }
            if loopAbandoned { stopReason = control.stop.load(ordering: .relaxed) ? "stopped" : "duration"; break }
            n &+= 1
            var intended: UInt64 = 0
            if open { intended = pace() }
            let opi = opTable.n == 1 ? opTable.single : opTable.draw(rng.next())
            let op = ops + opi
            var timed = open || timing.sampleMask == 0
            if !timed {
                if sampleCountdown == 0 {
                    timed = true
                    sampleCountdown = Int(truncatingIfNeeded: rng.next().multipliedFullWidth(by: timing.sampleMask &<< 1 | 1).high)
                } else {
                    sampleCountdown &-= 1
                }
            }
            if op.pointee.kind == .alloc {
                allocOp(op, timed: timed, intended: intended)
                c.draws &+= 1
                opDraws[opi] &+= 1
            } else {
                let freed = consume(max: op.pointee.limit, timed: timed, intended: intended)
                if freed > 0 {
                    c.draws &+= 1
                    opDraws[opi] &+= 1
                    emptyStreak = 0
                } else {
                    c.consumeEmpty &+= 1
                    emptyStreak &+= 1
                    if emptyStreak & 15 == 0 { sched_yield() }
                }
            }
        }
        if stopReason == "ops" { drainUntilProducersDone() }
        publishRSS()
        loopEnd = now()
        creditBuckets(loopEnd)
        control.progress(index).pointee.store(c.calls, ordering: .relaxed)
    }

    mutating func startMeasuring(_ t: UInt64) {
        measuring = true
        measureStart = t
        // Forget the warm-up, except what went wrong in it.
        let corruptions = c.corruptions, freeErrors = c.freeErrors
        c = WorkerCounters()
        c.corruptions = corruptions
        c.freeErrors = freeErrors
        for i in 0..<classCount { hist[i].reset(); classCalls[i] = 0 }
        classFailures.update(repeating: 0, count: max(classCount, 1) * 4)
        opDraws.update(repeating: 0, count: opCount)
        for l in 0..<max(locksCount, 1) { lockStats[l] = LockCounters() }
        creditedCalls = 0
        creditedFailures = 0
        if timing.opsMode == false { deadline = t &+ timing.durationTicks } else { opsLimit = timing.opsTarget }
    }

    var locksCount: Int { locks.count }

    /// A level-3 failure stopped this worker's group (a file system gone
    /// read-only): the worker frees what it holds, its task exits, and it
    /// runs no more operations.
    mutating func stopGroupWorker() {
        stopReason = "group-stopped"
        _ = freeEverything()
        heldPages = 0
        backend.setTaskRSS(owner, pages: 0)
        backend.taskExited(owner)
        control.task(index).pointee.store(0, ordering: .relaxed)
        goneForGood()
    }

    /// After its loop, until the main thread's counter snapshot: a task that
    /// is still alive stays at a safe point, so an OOM kill in the last
    /// moments of the run is answered (it frees everything and exits; no restart).
    mutating func waitForCleanup(deadlineNs: UInt64) {
        while !control.cleanupGo.load(ordering: .acquiring) && cnuma_monotonic_ns() < deadlineNs {
            if !dead && backend.taskShouldDie(owner) {
                c.kills &+= 1
                _ = freeEverything()
                heldPages = 0
                backend.setTaskRSS(owner, pages: 0)
                backend.taskExited(owner)
                control.task(index).pointee.store(0, ordering: .relaxed)
                goneForGood()
            }
            usleep(200)
        }
    }

    /// At clean-up: the task frees what it still holds and exits (its anonymous LRU pages go with it).
    mutating func exitTask() -> Int {
        let n = freeEverything()
        heldPages = 0
        if !dead && owner != 0 {
            backend.setTaskRSS(owner, pages: 0)
            backend.taskExited(owner)
        }
        control.task(index).pointee.store(0, ordering: .relaxed)
        return n
    }

    /// Every 64 operations (every one in open loop): the clock, the stop
    /// flag, warm-up, the time series, progress and the op count. Returns
    /// true when the loop must end.
    @inline(never)
    mutating func housekeeping() -> Bool {
        let t = now()
        if control.stop.load(ordering: .relaxed) { stopReason = "stopped"; return true }
        // A timed run measures every worker over the same window, from the
        // end of the warm-up, even one that was off the CPU when it ended (a
        // few calls of its own after warmupEnd count as warm-up). An op-count
        // run measures each worker's own operations from when it starts them.
        if !measuring && t >= warmupEnd { startMeasuring(timing.opsMode ? t : warmupEnd) }
        control.progress(index).pointee.store(c.calls, ordering: .relaxed)
        publishRSS()
        if control.groupStopped(group) { groupStopped = true }
        guard measuring else { return false }
        creditBuckets(t)
        if !timing.opsMode {
            if t >= deadline { stopReason = "duration"; return true }
            return false
        }
        if !producingDone && c.draws >= timing.opsTarget {
            producingDone = true
            control.producingDone(index).pointee.store(1, ordering: .releasing)
            stopReason = "ops"
            return true
        }
        if consumeOnly && allProducersDone() && inboxEmpty() {
            producingDone = true
            control.producingDone(index).pointee.store(1, ordering: .releasing)
            stopReason = "ops"
            return true
        }
        return false
    }

    mutating func creditBuckets(_ t: UInt64) {
        guard measuring, t >= measureStart else { return }
        var i = Int((t &- measureStart) / max(timing.bucketTicks, 1))
        if i >= timing.maxBuckets { i = timing.maxBuckets - 1 }
        if i >= buckets.count {
            buckets.append(contentsOf: repeatElement(0, count: i + 1 - buckets.count))
            failureBuckets.append(contentsOf: repeatElement(0, count: i + 1 - failureBuckets.count))
        }
        buckets[i] &+= UInt64(c.calls &- creditedCalls)
        failureBuckets[i] &+= UInt64(c.failures &- creditedFailures)
        creditedCalls = c.calls
        creditedFailures = c.failures
    }

    func allProducersDone() -> Bool {
        for i in 0..<producerCount where control.producingDone(producers[i]).pointee.load(ordering: .acquiring) == 0 { return false }
        return true
    }

    func inboxEmpty() -> Bool {
        for i in 0..<inboundCount where rings[inbound[i]].count > 0 { return false }
        return true
    }

    /// Op-count runs: after its own operations, a worker that receives blocks
    /// keeps freeing them until every producer is done and its rings are empty.
    mutating func drainUntilProducersDone() {
        guard inboundCount > 0 else { return }
        var idle = 0
        while true {
            if allProducersDone() && inboxEmpty() { return }
            if control.stop.load(ordering: .relaxed) { stopReason = "stopped"; return }
            let timed = timing.sampleMask == 0 || rng.next() & timing.sampleMask == 0
            if consume(max: 64, timed: timed, intended: 0) == 0 {
                idle &+= 1
                if idle & 7 == 0 { sched_yield() } else { cnuma_cpu_relax() }
            }
            if idle & 255 == 0 { creditBuckets(now()); control.progress(index).pointee.store(c.calls, ordering: .relaxed) }
        }
    }

    /// Should a wait (full ring, busy lock) give up? When the run is over.
    func waitMustEnd() -> Bool {
        control.stop.load(ordering: .relaxed) || (measuring && !timing.opsMode && now() >= deadline)
    }

    /// Open loop: waits for the next intended start and returns it. Sleeps
    /// when the start is more than 200 us away, then spins.
    @inline(never)
    mutating func pace() -> UInt64 {
        let intended = runStart &+ UInt64(paceK * timing.intervalTicks)
        paceK += 1
        var t = now()
        if t >= intended {
            let lag = t &- intended
            if measuring && lag > c.maxLagTicks { c.maxLagTicks = lag }
            return intended
        }
        while t < intended {
            let leftNs = Double(intended &- t) * timing.nsPerTick
            if leftNs > 200_000 {
                var ts = timespec(tv_sec: 0, tv_nsec: Int(min(leftNs - 100_000, 10_000_000)))
                nanosleep(&ts, nil)
                if control.stop.load(ordering: .relaxed) { return intended }
            } else {
                cnuma_cpu_relax()
            }
            t = now()
        }
        return intended
    }

    // MARK: operations

    @inline(__always)
    mutating func allocOp(_ op: UnsafeMutablePointer<HotOp>, timed: Bool, intended: UInt64) {
        // The common case: one allocation, no lock, no reservation.
        if op.pointee.count == 1 && op.pointee.lockIndex < 0 && op.pointee.reserve == 0 {
            if let h = allocOne(op, timed: timed, start: intended) {
                // Alloc+free at once, freed here: no call into the lifetime machinery.
                if op.pointee.lifetime == .immediate && op.pointee.ring < 0 { freeLocal(h, timed: timed) } else { dispose(op, h, timed: timed) }
            }
            return
        }
        transaction(op, timed: timed, intended: intended)
    }

    /// `count` allocations under the op's lock, inside its reservation if it
    /// has one (reserved before the lock is taken, committed after it is released).
    @inline(never)
    mutating func transaction(_ op: UnsafeMutablePointer<HotOp>, timed: Bool, intended: UInt64) {
        var reservation: Reservation? = nil
        if op.pointee.reserve > 0 {
            do {
                reservation = try backend.reserve(pages: op.pointee.reserve, owner: owner, cpu: cpu)
                c.reservedTransactions &+= 1
            } catch {
                // A reservation refused before the transaction starts is an
                // error returned safely (nothing is half done): level 1.
                switch error {
                case .aborted: aborted = true
                case .killed: pendingDeath = true
                default:
                    c.failures &+= 1
                    c.failReservation &+= 1
                    c.safeErrors &+= 1
                    let cls = Int(op.pointee.allocClass[op.pointee.orders.draw(rng.next())])
                    classFailures[cls &* 4 &+ 1] &+= 1
                }
                return
            }
        }
        let li = op.pointee.lockIndex
        if li >= 0 && !acquire(li) {
            if let r = reservation { backend.commit(r) }
            return
        }
        var got = 0
        for j in 0..<op.pointee.count {
            if let h = allocOne(op, timed: timed, start: j == 0 ? intended : 0) {
                scratch[got] = h
                got &+= 1
            }
            if pendingDeath || aborted || groupStopped || loopAbandoned { break } // the transaction is abandoned
        }
        if li >= 0 { locks.release(li) }
        if let r = reservation { backend.commit(r) }
        for j in 0..<got { dispose(op, scratch[j], timed: timed) }
    }

    /// One allocation of the operation's flags at a drawn order. `start`
    /// (open loop: the intended start) replaces the call's own start time.
    /// Returns the block to hold, or nil (failed, or handed to the LRU).
    @inline(__always)
    mutating func allocOne(_ op: UnsafeMutablePointer<HotOp>, timed: Bool, start: UInt64) -> H? {
        let order = op.pointee.orders.n == 1 ? op.pointee.orders.single : op.pointee.orders.draw(rng.next())
        let cls = Int(op.pointee.allocClass[order])
        if op.pointee.callerLoop { return allocLooping(op, order: order, cls: cls, timed: timed, start: start) }
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        classCalls[cls] &+= 1
        beginCall()
        do {
            let b = op.pointee.reserve > 0
                ? try backend.allocateReserved(order: Order(unchecked: order), flags: op.pointee.flags, node: op.pointee.node, cpu: cpu, owner: owner)
                : try backend.allocate(order: Order(unchecked: order), flags: op.pointee.flags, node: op.pointee.node, cpu: cpu, owner: owner)
            endCall(succeeded: true)
            if timed { record(cls, from: t0) }
            c.allocs &+= 1
            return got(op, b)
        } catch {
            endCall(succeeded: false)
            if timed { record(cls, from: t0) }
            allocError(error, cls: cls, need: op.pointee.need, order: order)
            return nil
        }
    }

    /// A block just allocated: written (touch), then held, or handed to the LRU.
    @inline(__always)
    mutating func got(_ op: UnsafeMutablePointer<HotOp>, _ b: B.Block) -> H? {
        let words = op.pointee.touchWords
        let kind = op.pointee.reclaimKind
        if kind >= 0 {
            if words > 0 { _ = touch(b, words: words) }
            lru(b, kind: kind)
            return nil
        }
        heldPages &+= 1 &<< backend.order(of: b)
        return H(block: b, tag: words > 0 ? touch(b, words: words) : 0, words: words)
    }

    @inline(__always)
    mutating func beginCall() {
        callSeq &+= 1
        control.callSeq(index).pointee.store(callSeq, ordering: .relaxed)
    }

    @inline(__always)
    mutating func endCall(succeeded: Bool) {
        callSeq &+= 1
        control.callSeq(index).pointee.store(callSeq, ordering: .relaxed)
        if succeeded {
            successes &+= 1
            control.successes(index).pointee.store(successes, ordering: .relaxed)
        }
    }

    /// The caller-side NOFAIL loop (XFS's kmem_alloc): retry until the
    /// allocation succeeds, sleeping `caller_loop_backoff_ms` between tries
    /// and printing "possible memory allocation deadlock" every
    /// `caller_loop_warn_every` tries. Like XFS, it does not stop for the OOM
    /// killer (an OOM victim retries with the victim's reserves and dies at
    /// its next safe point); it stops only when the run ends or the allocator
    /// shuts down. Timed as one call: the latency its caller sees.
    @inline(never)
    mutating func allocLooping(_ op: UnsafeMutablePointer<HotOp>, order: Int, cls: Int, timed: Bool, start: UInt64) -> H? {
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        classCalls[cls] &+= 1
        var tries = 0
        while true {
            beginCall()
            do {
                let b = try backend.allocate(order: Order(unchecked: order), flags: op.pointee.flags, node: op.pointee.node, cpu: cpu, owner: owner)
                endCall(succeeded: true)
                if timed { record(cls, from: t0) }
                c.allocs &+= 1
                if tries > c.callerMaxTries { c.callerMaxTries = tries }
                if tries > 0 { backend.setTaskActivity(owner, .running, target: 0) }
                return got(op, b)
            } catch {
                endCall(succeeded: false)
                switch error {
                case .aborted:
                    c.abortedCalls &+= 1
                    aborted = true
                case .killed:
                    c.killedCalls &+= 1
                    pendingDeath = true
                default: break
                }
                if aborted {
                    if timed { record(cls, from: t0) }
                    return nil
                }
                tries &+= 1
                c.callerRetries &+= 1
                if tries % harness.callerLoopWarnEvery == 0 {
                    c.callerWarnings &+= 1
                    control.message("\(taskName)(\(owner)): possible memory allocation deadlock size \(timing.pageSize << order) in \(opName(op)) (mode:\(op.pointee.flags.hex)) after \(tries) tries")
                }
                if waitMustEnd() {
                    loopAbandoned = true
                    c.callerAbandoned &+= 1
                    if tries > c.callerMaxTries { c.callerMaxTries = tries }
                    backend.setTaskActivity(owner, .running, target: 0)
                    if timed { record(cls, from: t0) }
                    return nil
                }
                // Seen by the watchdog as a retry in the allocator.
                backend.setTaskActivity(owner, .retryingInAllocator, target: 0)
                setPhase(.callerBackoff)
                defer { setPhase(.running) }
                if harness.callerLoopBackoffMs > 0 { usleep(UInt32(harness.callerLoopBackoffMs) * 1000) } else { sched_yield() }
            }
        }
    }

    func opName(_ op: UnsafeMutablePointer<HotOp>) -> String { opNames.count > op - ops ? opNames[op - ops] : "op" }

    /// A failed allocation call: a kill, the allocator's shutdown, or a
    /// failure charged as damage at the operation's level of need.
    @inline(never)
    mutating func allocError(_ e: AllocError, cls: Int, need: Int, order: Int) {
        switch e {
        case .killed:
            c.killedCalls &+= 1
            pendingDeath = true
            return
        case .aborted:
            c.abortedCalls &+= 1
            aborted = true
            return
        case .injectedFailure: c.failInjected &+= 1
        case .groupLimit: c.failGroupLimit &+= 1
        case .timedOut: c.failTimedOut &+= 1
        case .reservationTimeout, .reservationTooLarge, .reservationActive, .reservationNeedsTask: c.failReservation &+= 1
        default: c.failOOM &+= 1
        }
        c.failures &+= 1
        classFailures[cls &* 4 &+ need] &+= 1
        switch need {
        case 0: c.skipped &+= 1
        case 1: c.safeErrors &+= 1
        case 2: c.lostPages &+= 1 &<< order
        default:
            // Level 3: the subsystem fails; the whole group stops (read-only).
            c.subsystemFailures &+= 1
            groupStopped = true
            control.stopGroup(group, atNs: Int(cnuma_monotonic_ns()))
        }
    }

    /// Applies the operation's lifetime to a block just allocated.
    @inline(__always)
    mutating func dispose(_ op: UnsafeMutablePointer<HotOp>, _ h: H, timed: Bool) {
        let pool = pools + op.pointee.pool
        switch op.pointee.lifetime {
        case .immediate:
            release(op, h, timed: timed)
        case .keep:
            if pool.pointee.count < op.pointee.limit { pool.pointee.pushBack(h) } else { release(op, h, timed: timed) }
        case .lifo, .fifo, .random:
            if op.pointee.isBatch {
                pool.pointee.pushBack(h)
                if pool.pointee.count >= op.pointee.limit { flush(op, pool, timed: timed) }
            } else {
                if pool.pointee.count >= op.pointee.limit {
                    let victim = take(op, pool)
                    if op.pointee.ring < 0 { freeLocal(victim, timed: timed) } else { handoff(op.pointee.ring, victim) }
                }
                pool.pointee.pushBack(h)
            }
        }
    }

    /// Frees a whole batch in the operation's order.
    @inline(never)
    mutating func flush(_ op: UnsafeMutablePointer<HotOp>, _ pool: UnsafeMutablePointer<Pool<H>>, timed: Bool) {
        let local = op.pointee.ring < 0
        switch op.pointee.lifetime {
        case .fifo:
            if local { while pool.pointee.count > 0 { freeLocal(pool.pointee.popFront(), timed: timed) } }
            else { while pool.pointee.count > 0 { release(op, pool.pointee.popFront(), timed: timed) } }
        case .lifo:
            if local { while pool.pointee.count > 0 { freeLocal(pool.pointee.popBack(), timed: timed) } }
            else { while pool.pointee.count > 0 { release(op, pool.pointee.popBack(), timed: timed) } }
        default:
            while pool.pointee.count > 0 { release(op, take(op, pool), timed: timed) }
        }
    }

    /// The next block to free from an operation's pool, by its lifetime.
    @inline(__always)
    mutating func take(_ op: UnsafeMutablePointer<HotOp>, _ pool: UnsafeMutablePointer<Pool<H>>) -> H {
        switch op.pointee.lifetime {
        case .fifo: return pool.pointee.popFront()
        case .random:
            let j = Int(rng.next().multipliedFullWidth(by: UInt64(pool.pointee.count)).high)
            return pool.pointee.remove(at: j)
        default: return pool.pointee.popBack()
        }
    }

    @inline(__always)
    mutating func release(_ op: UnsafeMutablePointer<HotOp>, _ h: H, timed: Bool) {
        let ring = op.pointee.ring
        if ring >= 0 { handoff(ring, h) } else { freeLocal(h, timed: timed) }
    }

    @inline(__always)
    mutating func freeLocal(_ h: H, timed: Bool) {
        if h.words > 0 { verify(h) }
        heldPages &-= 1 &<< backend.order(of: h.block)
        let cls = Int(freeClass[backend.order(of: h.block)])
        let t0: UInt64 = timed ? now() : 0
        do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
        if cls >= 0 {
            if timed { record(cls, from: t0) }
            classCalls[cls] &+= 1
        }
        c.frees &+= 1
    }

    @inline(__always)
    mutating func freeRemote(_ h: H, timed: Bool, from start: UInt64) {
        if h.words > 0 { verify(h) }
        let cls = Int(remoteFreeClass[backend.order(of: h.block)])
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
        if cls >= 0 {
            if timed { record(cls, from: t0) }
            classCalls[cls] &+= 1
        }
        c.remoteFrees &+= 1
    }

    @inline(never)
    mutating func freeFailed(_ e: AllocError) {
        c.freeErrors += 1
        if firstProblem == nil { firstProblem = "worker \(index): free failed: \(e)" }
    }

    /// Frees up to `max` blocks from the inbound rings, round-robin. The first
    /// is timed from `intended` in open loop.
    @inline(__always)
    mutating func consume(max: Int, timed: Bool, intended: UInt64) -> Int {
        guard inboundCount > 0 else { return 0 }
        var freed = 0
        var misses = 0
        while freed < max && misses < inboundCount {
            if let h = rings[inbound[nextInbound]].tryPop() {
                freeRemote(h, timed: timed, from: freed == 0 ? intended : 0)
                freed &+= 1
            } else {
                misses &+= 1
                nextInbound &+= 1
                if nextInbound == inboundCount { nextInbound = 0 }
            }
        }
        return freed
    }

    /// Hands a block to its consumer. A full ring is waited on (backpressure),
    /// freeing this worker's own inbound blocks meanwhile so that workers
    /// handing to each other cannot wait on each other forever; the wait ends
    /// with the run (the block is then freed here and counted as abandoned).
    @inline(__always)
    mutating func handoff(_ ring: Int, _ h: H) {
        if rings[ring].tryPush(h) {
            heldPages &-= 1 &<< backend.order(of: h.block)
            c.handoffSent &+= 1
            return
        }
        handoffSlow(ring, h)
    }

    @inline(never)
    mutating func handoffSlow(_ ring: Int, _ h: H) {
        setPhase(.handoffWait)
        defer { setPhase(.running) }
        c.handoffWaits &+= 1
        var spins = 0
        heldPages &-= 1 &<< backend.order(of: h.block)
        let consumer = ring < ringCount ? ringConsumer[ring] : -1
        while true {
            if consumer >= 0 && control.gone(consumer).pointee.load(ordering: .relaxed) != 0 {
                // The consumer was killed for good: nobody will free this block but us.
                c.handoffToGone &+= 1
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                return
            }
            if inboundCount > 0 { _ = consume(max: 16, timed: false, intended: 0) }
            spins &+= 1
            if spins & 7 == 0 { sched_yield() } else { cnuma_cpu_relax() }
            if rings[ring].tryPush(h) {
                c.handoffSent &+= 1
                return
            }
            if spins & 63 == 0 && waitMustEnd() {
                c.handoffAbandoned &+= 1
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                return
            }
        }
    }

    /// Takes a named lock; false when the run ended while waiting.
    @inline(__always)
    mutating func acquire(_ li: Int) -> Bool {
        if locks.tryAcquire(li, worker: Int(owner)) {
            lockStats[li].acquisitions &+= 1
            return true
        }
        return acquireSlow(li)
    }

    /// Waits for a named lock, as an uninterruptible mutex_lock(): not a
    /// safe point (an OOM victim waiting here cannot die). The wait is
    /// published to the watchdog and ends with the run.
    @inline(never)
    mutating func acquireSlow(_ li: Int) -> Bool {
        let t0 = now()
        var spins = 0
        backend.setTaskActivity(owner, .waitingForLock, target: li)
        setPhase(.lockWait)
        defer { backend.setTaskActivity(owner, .running, target: 0); setPhase(.running) }
        while true {
            while locks.holder(li) != nil {
                spins &+= 1
                if spins & 63 == 0 {
                    sched_yield()
                    if spins & 1023 == 0 && waitMustEnd() {
                        lockStats[li].abandoned &+= 1
                        c.lockAbandoned &+= 1
                        return false
                    }
                } else {
                    cnuma_cpu_relax()
                }
            }
            if locks.tryAcquire(li, worker: Int(owner)) { break }
        }
        let w = now() &- t0
        lockStats[li].acquisitions &+= 1
        lockStats[li].contended &+= 1
        lockStats[li].waitTicks &+= w
        if w > lockStats[li].maxWaitTicks { lockStats[li].maxWaitTicks = w }
        return true
    }

    // MARK: touching memory

    /// Writes `words` 64-bit words of a pattern at the start of every page of
    /// the block; returns the pattern's tag (unique per allocation).
    @inline(__always)
    mutating func touch(_ b: B.Block, words: Int) -> UInt64 {
        guard words > 0 else { return 0 }
        tagSeq &+= 1
        let tag = (UInt64(truncatingIfNeeded: index) << 40) ^ tagSeq
        let key = tag &* 0x9E37_79B9_7F4A_7C15
        let base = backend.address(of: b)
        let pages = backend.byteCount(of: b) / timing.pageSize
        for p in 0..<pages {
            let w = (base + p &* timing.pageSize).assumingMemoryBound(to: UInt64.self)
            for k in 0..<words { w[k] = key ^ UInt64(truncatingIfNeeded: p &<< 13 | k) }
        }
        return tag
    }

    /// Checks the pattern of a held block before it is freed.
    @inline(__always)
    mutating func verify(_ h: H) {
        let key = h.tag &* 0x9E37_79B9_7F4A_7C15
        let base = backend.address(of: h.block)
        let pages = backend.byteCount(of: h.block) / timing.pageSize
        for p in 0..<pages {
            let w = (base + p &* timing.pageSize).assumingMemoryBound(to: UInt64.self)
            for k in 0..<h.words where w[k] != key ^ UInt64(truncatingIfNeeded: p &<< 13 | k) {
                corrupted(h, page: p, word: k, found: w[k], expected: key ^ UInt64(truncatingIfNeeded: p &<< 13 | k))
                return
            }
        }
    }

    @inline(never)
    mutating func corrupted(_ h: H, page: Int, word: Int, found: UInt64, expected: UInt64) {
        c.corruptions += 1
        if firstProblem == nil {
            firstProblem = "worker \(index): pattern corrupted in a block of order \(backend.order(of: h.block)) at \(backend.address(of: h.block)), page \(page), word \(word): found 0x\(String(found, radix: 16)), expected 0x\(String(expected, radix: 16))"
        }
    }

    // MARK: clean-up

    /// Frees every block still held (pools and inbound rings), checking
    /// patterns. Not measured. Returns the blocks freed.
    mutating func freeEverything() -> Int {
        var n = 0
        for i in 0..<poolCount {
            while pools[i].count > 0 {
                let h = pools[i].popBack()
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                n += 1
            }
        }
        for i in 0..<inboundCount {
            while let h = rings[inbound[i]].tryPop() {
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                n += 1
            }
        }
        return n
    }
}
