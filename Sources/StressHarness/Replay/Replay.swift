import CNUMA
import Histogram
import PageAllocator
import Synchronization
import Topology

/// How a replay runs.
public struct ReplayOptions: Sendable, Equatable {
    public enum Timing: String, Sendable, Codable, CaseIterable {
        /// As fast as possible: each CPU's events in order, a free waits only
        /// for its allocation on another CPU.
        case fast
        /// Honour the trace's timestamps (divided by `speed`): each op starts
        /// no earlier than its time since the trace's first event.
        case trace
    }

    public var timing: Timing = .fast
    /// --timing=trace only: 2 replays twice as fast as traced, 0.5 half as fast.
    public var speed: Double = 1
    /// How long a free waits for its allocation on another CPU before it
    /// gives up (counted as a wait timeout; the block is freed at cleanup).
    public var waitTimeoutNs: UInt64 = 10_000_000_000
    /// Pin each worker to the real CPU behind its allocator CPU.
    public var pin: Bool = true
    /// The watchdog: when one `allocate` has run this long (an allocation
    /// that loops in the slow path, e.g. __GFP_NOFAIL in a full arena), the
    /// replay calls `allocator.shutdown()`, so every looping allocation ends
    /// with `.aborted`, and the verdict is `livelock`. 0 = no watchdog.
    public var stallTimeoutNs: UInt64 = 10_000_000_000

    public init(timing: Timing = .fast, speed: Double = 1, waitTimeoutNs: UInt64 = 10_000_000_000, pin: Bool = true,
                stallTimeoutNs: UInt64 = 10_000_000_000) {
        self.timing = timing
        self.speed = speed
        self.waitTimeoutNs = waitTimeoutNs
        self.pin = pin
        self.stallTimeoutNs = stallTimeoutNs
    }
}

/// Replays a kernel page-allocation trace on a `PageAllocator`: one pthread
/// per traced CPU, each replaying that CPU's events in order, allocating and
/// freeing on the allocator CPU `traceCPU % allocator.cpuCount` with the
/// traced order and gfp_flags. A free frees the block that the replay got
/// for the traced allocation of the same pfn (paired by `ReplayPlan`), on
/// the freeing CPU, so cross-CPU frees happen as they did in the kernel.
///
/// At the end it frees whatever is still allocated (what the trace never
/// freed, and blocks whose wait timed out), runs `validate()` and reports
/// the page accounting. Usable as a library call (the run harness's
/// `trace` workload kind): `try TraceReplay(trace:allocator:options:).run()`.
public struct TraceReplay {
    public let plan: ReplayPlan
    public let allocator: PageAllocator
    public var options: ReplayOptions

    public init(trace: Trace, allocator: PageAllocator, options: ReplayOptions = ReplayOptions()) {
        self.init(plan: ReplayPlan(trace: trace), allocator: allocator, options: options)
    }

    public init(plan: ReplayPlan, allocator: PageAllocator, options: ReplayOptions = ReplayOptions()) {
        self.plan = plan
        self.allocator = allocator
        self.options = options
    }

    /// What one worker hands back.
    private struct WorkerOut: @unchecked Sendable {
        var stats: ReplayCPUStats
        var alloc: Histogram<UInt64>
        var free: Histogram<UInt64>
        var failuresByReason: [String: Int]
        var failuresByOrder: [Int: Int]
        var freeErrors: [String]
        var endNs: UInt64
    }

    /// Replays the plan. Never hangs: a free's wait for its allocation is
    /// bounded by `options.waitTimeoutNs`, and an allocation that loops in the
    /// slow path longer than `options.stallTimeoutNs` makes the watchdog shut
    /// the allocator down (verdict `livelock`; the allocator stays shut down).
    /// Never throws: failures are in the result.
    public func run() -> ReplayResult {
        let a = allocator
        let plan = self.plan
        let opts = options
        let clock = CycleClock.calibrate(milliseconds: 10)
        let slots = ReplaySlots(count: plan.slotCount)
        let workers = plan.activeCPUs
        let barrier = StartBarrier(parties: max(workers.count, 1))
        let startNs = Atomic<UInt64>(0)
        let outs = Mutex<[WorkerOut?]>([WorkerOut?](repeating: nil, count: workers.count))
        let speed = opts.speed > 0 ? opts.speed : 1
        let timed = opts.timing == .trace
        let watch = ReplayWatch(workers: workers.count)

        let threads = Threads.start(count: workers.count) { w in
            let traceCPU = workers[w]
            let cpu = CPUID(traceCPU % a.cpuCount)
            if opts.pin { try? Affinity.pinCurrentThread(to: cpu, in: a.topology) }
            var st = ReplayCPUStats(traceCPU: traceCPU, allocatorCPU: cpu.rawValue)
            var allocH = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 1 << 44, numberOfSignificantValueDigits: .three)
            var freeH = allocH
            var byReason: [String: Int] = [:]
            var byOrder: [Int: Int] = [:]
            var freeErrors: [String] = []
            let ops = plan.ops[traceCPU]
            barrier.arriveAndWait()
            _ = startNs.compareExchange(expected: 0, desired: cnuma_monotonic_ns(), ordering: .relaxed)
            let start = startNs.load(ordering: .relaxed)
            for op in ops {
                if timed {
                    let target = start &+ UInt64(Double(op.offsetNs) / speed)
                    var now = cnuma_monotonic_ns()
                    if now < target {
                        // Sleep to within 1 ms of the op's time (nanosleep
                        // overshoots by ~0.1-0.8 ms on a loaded machine), then spin.
                        if target - now > 2_000_000 {
                            let sleep = target - now - 1_000_000
                            sleepNanoseconds(sleep)
                        }
                        now = cnuma_monotonic_ns()
                        while now < target { cnuma_cpu_relax(); now = cnuma_monotonic_ns() }
                    }
                    let lag = now - target
                    if lag > 1_000_000 { st.lateOps += 1 }
                    if lag > st.maxLagNs { st.maxLagNs = lag }
                }
                let slot = Int(op.slot)
                switch op.kind {
                case .alloc:
                    let t0 = CycleClock.now()
                    watch.enter(w, at: t0)
                    defer { watch.leave(w) }
                    do throws(AllocError) {
                        let b = try a.allocate(order: Order(unchecked: Int(op.order)), flags: op.gfp, cpu: cpu)
                        let t1 = CycleClock.now()
                        _ = allocH.record(min(t1 &- t0, 1 << 44))
                        slots.publish(slot, b)
                        st.allocs += 1
                    } catch {
                        slots.markFailed(slot)
                        st.allocsFailed += 1
                        byReason[TraceReplay.reason(error), default: 0] += 1
                        byOrder[Int(op.order), default: 0] += 1
                    }
                case .free, .freeBatched:
                    var s = slots.state(slot)
                    if s == ReplaySlots.pending {
                        let w0 = cnuma_monotonic_ns()
                        s = slots.waitForState(slot, deadlineNs: w0 &+ opts.waitTimeoutNs)
                        st.crossCPUWaits += 1
                        st.crossCPUWaitNs &+= cnuma_monotonic_ns() &- w0
                    }
                    switch s {
                    case ReplaySlots.live:
                        let b = slots.take(slot)
                        let t0 = CycleClock.now()
                        do {
                            try a.free(b, cpu: cpu)
                            let t1 = CycleClock.now()
                            _ = freeH.record(min(t1 &- t0, 1 << 44))
                            if op.kind == .free { st.frees += 1 } else { st.freesBatched += 1 }
                        } catch {
                            st.freeErrors += 1
                            if freeErrors.count < 5 { freeErrors.append("trace cpu \(traceCPU): free of \(b): \(error)") }
                        }
                    case ReplaySlots.failed:
                        st.freesOfFailedAllocs += 1
                    default:
                        st.waitTimeouts += 1
                    }
                }
            }
            let out = WorkerOut(stats: st, alloc: allocH, free: freeH, failuresByReason: byReason, failuresByOrder: byOrder,
                                freeErrors: freeErrors, endNs: cnuma_monotonic_ns())
            outs.withLock { $0[w] = out }
            watch.finished.wrappingAdd(1, ordering: .releasing)
        }

        // The watchdog: this thread polls every 5 ms until the workers finish.
        var watchdog = "ok"
        let stallTicks = opts.stallTimeoutNs == 0 ? UInt64.max : UInt64(Double(opts.stallTimeoutNs) / clock.nsPerTick)
        while watch.finished.load(ordering: .acquiring) < workers.count {
            sleepNanoseconds(5_000_000)
            guard watchdog == "ok" else { continue }
            let now = CycleClock.now()
            for w in 0..<workers.count {
                let since = watch.entered(w)
                if since != 0 && now > since && now - since > stallTicks {
                    watchdog = "trace cpu \(workers[w]): one allocation made no progress for \(fmt(clock.nanoseconds(now - since) / 1e6, 0)) ms; "
                        + "the allocator was shut down (looping allocations ended with 'aborted')"
                    a.shutdown()
                    break
                }
            }
        }
        Threads.join(threads)

        // Merge what the workers saw.
        let results = outs.withLock { $0.compactMap { $0 } }
        var totals = ReplayCPUStats(traceCPU: -1, allocatorCPU: -1)
        var allocH = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 1 << 44, numberOfSignificantValueDigits: .three)
        var freeH = allocH
        var byReason: [String: Int] = [:]
        var byOrder: [String: Int] = [:]
        var freeErrors: [String] = []
        var endNs = startNs.load(ordering: .relaxed)
        for r in results {
            totals = totals + r.stats
            allocH.add(r.alloc)
            freeH.add(r.free)
            for (k, v) in r.failuresByReason { byReason[k, default: 0] += v }
            for (k, v) in r.failuresByOrder { byOrder["order\(k)", default: 0] += v }
            freeErrors += r.freeErrors
            endNs = max(endNs, r.endNs)
        }
        let wall = Double(endNs &- startNs.load(ordering: .relaxed)) / 1e9

        // Cleanup: free what is still allocated (the workers are joined).
        var cleanupBlocks = 0, cleanupPages = 0
        for slot in 0..<slots.count where slots.state(slot) == ReplaySlots.live {
            let b = slots.take(slot)
            do {
                try a.free(b, cpu: CPUID(0))
                cleanupBlocks += 1
                cleanupPages += b.pages
            } catch {
                totals.freeErrors += 1
                if freeErrors.count < 5 { freeErrors.append("cleanup: free of \(b): \(error)") }
            }
        }

        var validation = "ok"
        var accounting: ReplayAccounting?
        do {
            accounting = ReplayAccounting(try a.validate())
        } catch {
            validation = error.description
        }
        let verdict: String
        if validation != "ok" || totals.freeErrors > 0 {
            verdict = "toolFailed"
        } else if watchdog != "ok" {
            verdict = "livelock"
        } else if totals.allocsFailed > 0 {
            verdict = "failures"
        } else {
            verdict = "ok"
        }
        let stats = results.map(\.stats).sorted { $0.traceCPU < $1.traceCPU }
        return ReplayResult(
            verdict: verdict, timing: opts.timing.rawValue, speed: opts.timing == .trace ? speed : 0,
            plan: plan.summary, traceCPUs: plan.events.filter { $0.total > 0 }, perCPU: stats, totals: totals,
            allocFailuresByReason: byReason, allocFailuresByOrder: byOrder, freeErrorExamples: freeErrors,
            wallSeconds: wall, opsPerSecond: wall > 0 ? Double(totals.replayedOps) / wall : 0,
            latencyNs: ["alloc": ReplayLatency(allocH, clock: clock), "free": ReplayLatency(freeH, clock: clock)],
            cleanupBlocks: cleanupBlocks, cleanupPages: cleanupPages, watchdog: watchdog, validation: validation, accounting: accounting,
            vmstat: Dictionary(a.vmstat().map { ($0.name, $0.value) }, uniquingKeysWith: { x, _ in x }))
    }

    /// The AllocError case name (`outOfMemory`, `noEligibleZone`, ...), for
    /// the failure table. Read by reflection so new cases need no edit here.
    static func reason(_ e: AllocError) -> String {
        if let label = Mirror(reflecting: e).children.first?.label { return label }
        let d = String(describing: e)
        return d.split(separator: "(").first.map(String.init) ?? d
    }
}

#if canImport(Glibc)
import Glibc
#endif
