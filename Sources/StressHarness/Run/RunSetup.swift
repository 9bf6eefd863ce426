import CNUMA
import Foundation
import PageAllocator
import Synchronization
import Topology

/// Everything a run builds before its workers start: the allocator and its
/// backend, the compiled plan, the clock, the shared state the workers and
/// the supervisor read (run control, rings, locks, the outputs' slots), the
/// watchdog and the stall tracker. Made on the main thread; the raw parts
/// are handed to the worker threads through `WorkerThreadArgs`.
struct RunSetup {
    let startedAt: Date
    let options: RunOptions
    /// As run (with the topology and memory of `options.allocatorConfig` when given).
    let workload: Workload
    let topology: Topology
    let allocator: PageAllocator
    /// The allocator as the workers call it.
    let backend: BuddyBackend
    /// Each worker's CPU, group, operations and latency classes.
    let plan: RunPlan
    /// Workers.
    let n: Int
    /// Ticks to ns, calibrated at set-up.
    let clock: CycleClock
    let timing: WorkerTiming
    /// The harness's own cost per call (nil with `--no-overhead`).
    let overhead: OverheadReport?
    /// Stop flag, start barrier, and each worker's slot of progress atomics.
    let control: RunControl
    /// The hand-off rings between producer and consumer workers.
    let rings: UnsafeMutablePointer<HandoffRing<Held<PageBlock>>>
    /// The workload's named locks.
    let locks: NamedLocks
    /// One slot per worker, written by its thread at its exit.
    let outputs: UnsafeMutablePointer<WorkerOutput?>
    let watchdog: Watchdog?
    /// What each worker was doing when the watchdog fired.
    let firedWorkers: FiredWorkers
    let slowStart: [(name: String, value: Int)]

    var opsMode: Bool { workload.run.mode == "ops" }
    var harness: HarnessSpec { workload.harness }

    /// Builds the allocator and the plan (bad input: `.badInput`; an arena that cannot be mapped: `.toolFailed`).
    init(_ workloadIn: Workload, options: RunOptions) throws(RunFailure) {
        var workload = workloadIn
        startedAt = Date()
        self.options = options
        cnuma_init()
        // The hook for other kinds of workload (trace replay adds its case here).
        switch workload.kind {
        case .ops: break // worker groups drawing operations from their mixes
        }

        // Topology and allocator.
        let config: AllocatorConfig
        if var given = options.allocatorConfig {
            topology = given.topology
            workload = workload.describing(config: given)
            try workload.applySlowPath(to: &given)
            config = given
        } else {
            do { topology = try workload.topology.build() } catch { throw RunFailure(message: "topology: \(error)", status: .badInput) }
            config = try workload.allocatorConfig(topology: topology)
        }
        do { allocator = try PageAllocator(config, warningSink: options.warningSink) } catch {
            if case .mapFailed = error { throw RunFailure(message: "allocator: \(error)", status: .toolFailed) }
            throw RunFailure(message: "allocator configuration: \(error)", status: .badInput)
        }
        self.workload = workload
        // Held sets that cannot fit are refused before any worker starts (unless `[memory] pressure = true`).
        try workload.checkArenaFits(allocator)
        backend = BuddyBackend(allocator)
        do { try workload.checkMemPoliciesSupported(by: backend.name, supported: backend.supportsMemPolicy) } catch {
            throw RunFailure(message: "\(error)", status: .badInput)
        }
        plan = RunPlan(workload, topology: topology)
        n = plan.workers.count
        for w in plan.workers {
            if let c = w.allocatorCPU, c >= allocator.cpuCount {
                throw RunFailure(message: "worker \(w.index) uses cpu \(c) but the allocator has \(allocator.cpuCount) CPUs", status: .badInput)
            }
        }

        // Clock and timing.
        clock = CycleClock.calibrate(milliseconds: 20)
        let ticksPerNs = 1 / clock.nsPerTick
        func ticks(ms: Int) -> UInt64 { UInt64(Double(ms) * 1e6 * ticksPerNs) }
        let r = workload.run
        let opsMode = r.mode == "ops"
        timing = WorkerTiming(
            opsMode: opsMode, opsTarget: r.ops ?? .max, warmupTicks: ticks(ms: r.warmupMs), durationTicks: ticks(ms: r.durationMs ?? 0),
            bucketTicks: max(1, ticks(ms: r.bucketMs)),
            maxBuckets: max(2, min(1_000_000, (opsMode ? r.timeoutMs : (r.durationMs ?? 0)) / max(r.bucketMs, 1) + 2)),
            intervalTicks: 0, mulQ32: UInt64((clock.nsPerTick * 4_294_967_296.0).rounded()), nsPerTick: clock.nsPerTick,
            sampleMask: UInt64(r.sampleEvery - 1), pageSize: allocator.pageSize)

        overhead = options.measureOverhead ? HarnessOverhead.measure(plan: plan, workload: workload, timing: timing) : nil
        if let o = overhead {
            options.log?("harness overhead: \(fmt(o.nsPerCallTimed, 1)) ns/call timing every call, \(fmt(o.nsPerCallUntimed, 1)) ns/call untimed, \(fmt(o.nsPerCallAsRun, 1)) ns/call at sample_every \(r.sampleEvery)")
        }

        // Shared state.
        control = RunControl(workers: n, groups: workload.groups.count, sink: options.warningSink)
        rings = .allocate(capacity: max(plan.rings.count, 1))
        for i in 0..<plan.rings.count { (rings + i).initialize(to: .make(capacity: 4096)) }
        locks = NamedLocks(count: workload.locks.count)
        outputs = .allocate(capacity: max(n, 1))
        outputs.initialize(repeating: nil, count: max(n, 1))

        // The slow path's threads (kswapd per node, the oom_reaper if the policy
        // has it) and the watchdog run for the whole run, prefill included.
        allocator.startBackgroundThreads()
        slowStart = allocator.slowPathCounters()
        firedWorkers = FiredWorkers()
        watchdog = RunSetup.makeWatchdog(workload: workload, allocator: allocator, control: control, locks: locks,
                                         plans: plan.workers, firedWorkers: firedWorkers)
        watchdog?.start()
    }

    /// The watchdog (if `[harness] watchdog`): when it fires it records what
    /// each worker was doing, tells the workers to stop and shuts the allocator down.
    static func makeWatchdog(workload: Workload, allocator: PageAllocator, control: RunControl, locks: NamedLocks,
                             plans: [WorkerPlan], firedWorkers: FiredWorkers) -> Watchdog? {
        let harness = workload.harness
        guard harness.watchdog else { return nil }
        let n = plans.count
        let lockNames = workload.locks.map(\.name)
        let sendLocks = UnsafeSendable(locks)
        var s = Watchdog.Settings()
        s.livelockAfterMs = harness.livelockMs
        s.deadlockAfterMs = harness.deadlockMs
        s.pollMs = harness.pollMs
        return Watchdog(
            allocator: allocator,
            settings: s,
            progress: { control.totalSuccesses() },
            lockHolder: { li in li >= 0 && li < lockNames.count ? sendLocks.value.holder(li).map { UInt16(truncatingIfNeeded: $0) } : nil },
            lockName: { li in li >= 0 && li < lockNames.count ? lockNames[li] : "lock\(li)" },
            onFire: { _ in
                // What each worker was doing, before the run is ended.
                let now = cnuma_monotonic_ns()
                let lines = (0..<n).map { w in
                    let task = control.task(w).pointee.load(ordering: .relaxed)
                    let inCall = control.callSeq(w).pointee.load(ordering: .relaxed) & 1 == 1
                    let seen = control.callSeenAt(w).pointee.load(ordering: .relaxed)
                    let phase = WorkerPhase(rawValue: control.phase(w).pointee.load(ordering: .relaxed))?.text ?? "?"
                    let call = inCall ? "inside an allocation call" + (seen > 0 && now > UInt64(seen) ? " for \((now - UInt64(seen)) / 1_000_000) ms" : "") : phase
                    return "worker \(w) (\(plans[w].task.name)): task \(task == 0 ? "none" : String(task)), \(call)"
                }
                firedWorkers.lines.withLock { $0 = lines }
                // End the run: every wait in the harness checks `stop`, every
                // slow-path loop in the allocator returns .aborted.
                control.stop.store(true, ordering: .relaxed)
                allocator.shutdown()
            },
            callStartNs: { id in control.callStart(task: id) })
    }
}

/// What each worker was doing when the watchdog fired (written by its thread, read at the end).
final class FiredWorkers: Sendable {
    let lines = Mutex<[String]>([])
}
