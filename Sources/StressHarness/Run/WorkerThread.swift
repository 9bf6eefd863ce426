import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// What a worker thread needs from the run's set-up (raw parts the caller
/// keeps alive until the thread exits). One type for every backend: the
/// buddy allocator's run (`StressRun`) and a peer allocator's (`PeerRun`).
struct WorkerThreadArgs<B: AllocatorBackend>: @unchecked Sendable {
    let plans: [WorkerPlan]
    let topology: Topology
    let timing: WorkerTiming
    /// The backend worker `i` allocates through (made on its own thread).
    let backend: (Int) -> B
    let control: RunControl
    let rings: UnsafeMutablePointer<HandoffRing<Held<B.Block>>>
    let locks: NamedLocks
    let lockCount: Int
    let seed: UInt64
    let harness: HarnessSpec
    let ringConsumers: [Int]
    let outputs: UnsafeMutablePointer<WorkerOutput?>
}

extension WorkerThreadArgs where B == BuddyBackend {
    init(_ s: RunSetup) {
        let backend = s.backend
        self.init(plans: s.plan.workers, topology: s.topology, timing: s.timing, backend: { _ in backend },
                  control: s.control, rings: s.rings, locks: s.locks, lockCount: s.workload.locks.count,
                  seed: s.workload.run.seed, harness: s.harness, ringConsumers: s.plan.rings.map(\.consumer),
                  outputs: s.outputs)
    }
}

/// The body of worker thread `i`: pin, build the worker, register its task,
/// prefill, wait at the barrier, run, wait for the counter snapshot
/// (answering a late OOM kill), exit the task and leave the output.
/// Every wait is bounded. A nonisolated free function (a pthread body).
func workerThread<B: AllocatorBackend>(_ i: Int, _ a: WorkerThreadArgs<B>) {
    let p = a.plans[i]
    let control = a.control
    var pinError: String? = nil
    do {
        switch p.pin {
        case .cpu(let c): try Affinity.pinCurrentThread(to: CPUID(c), in: a.topology)
        case .node(let node): try Affinity.pinCurrentThread(toNode: NodeID(node), in: a.topology)
        case .none: break
        }
    } catch { pinError = "\(error)" }
    var t = a.timing
    if let ns = p.intervalNs { t.intervalTicks = ns * (1 / t.nsPerTick) }
    var w = Worker<B>(plan: p, backend: a.backend(i), control: control, timing: t, rings: a.rings,
                      locks: a.locks, lockCount: a.lockCount, seed: a.seed, harness: a.harness,
                      ringConsumers: a.ringConsumers)
    w.startTask()
    w.prefill()
    control.ready.wrappingAdd(1, ordering: .releasing)
    var go: UInt64 = 0
    var spins = 0
    while true {
        go = control.goTicks.load(ordering: .acquiring)
        if go != 0 || control.stop.load(ordering: .relaxed) { break }
        spins += 1
        if spins & 63 == 0 { sched_yield() } else { cnuma_cpu_relax() }
    }
    if go != 0 { w.run(go: go) } else { w.record.stopReason = .stopped }
    control.stopped.wrappingAdd(1, ordering: .releasing)
    // Clean-up waits for the main thread's counter snapshot (bounded),
    // answering a late OOM kill meanwhile.
    w.waitForCleanup(deadlineNs: cnuma_monotonic_ns() + 120_000_000_000)
    let measured = w.c
    let freed = w.exitTask(reason: .runEnded)
    a.outputs[i] = w.output(plan: p, pinError: pinError, measured: measured, freedAtCleanup: freed)
    _ = consume w // frees the worker's raw memory before the exit is counted
    control.exited.wrappingAdd(1, ordering: .releasing)
}
