import CNUMA
import PageAllocator

/// The harness's own cost per allocator call: the worker loop of this run's
/// first allocating worker (same mix, lifetimes, locks, random draws and
/// latency bookkeeping) driven against `NullBackend`, whose calls do nothing,
/// on the main thread before the workers start. Hand-offs become local frees
/// and touching memory is left out (both are the workload's own work, not
/// bookkeeping). Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so
/// a shared, oversubscribed machine does not inflate it; each figure is the
/// fastest of 7 interleaved rounds.
enum HarnessOverhead {
    static func measure(plan: RunPlan, workload: Workload, timing: WorkerTiming, draws: Int = 100_000, rounds: Int = 7) -> OverheadReport {
        let method = "worker loop against empty allocator calls (NullBackend), \(draws) operations x \(rounds) interleaved rounds, fastest, thread CPU time; hand-offs as local frees, no touch"
        guard var p = plan.workers.first(where: { $0.ops.contains { $0.spec.kind == .alloc && $0.spec.weight > 0 } }) else {
            return OverheadReport(method: method + " (no allocating worker)", nsPerCallTimed: 0, nsPerCallUntimed: 0, nsPerCallAsRun: 0, calls: 0)
        }
        p.ops = p.ops.filter { $0.spec.kind == .alloc && $0.spec.weight > 0 }.map { op in
            var o = op
            o.ring = -1
            o.spec.touch = 0
            o.spec.freeOn = nil
            return o
        }
        // Every order an op can draw gets a local free class, as a local free would.
        for op in p.ops {
            for ow in op.spec.orders where ow.weight > 0 && p.freeClassByOrder[ow.order] < 0 {
                p.classes.append(0)
                p.freeClassByOrder[ow.order] = p.classes.count - 1
            }
        }
        p.index = 0
        p.inbound = []
        p.producers = []
        p.consumeOnly = false
        p.intervalNs = nil
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { scratch.deallocate() }
        let locks = NamedLocks(count: workload.locks.count)
        defer { locks.destroy() }
        let rings = UnsafeMutablePointer<HandoffRing<Held<NullBlock>>>.allocate(capacity: 1)
        defer { rings.deallocate() }

        func once(sampleMask: UInt64) -> (ns: Double, calls: Int) {
            var t = timing
            t.opsMode = true
            t.opsTarget = draws
            t.warmupTicks = 0
            t.intervalTicks = 0
            t.sampleMask = sampleMask
            t.maxBuckets = 16
            t.bucketTicks = .max / 4
            let control = RunControl(workers: 1)
            var w = Worker<NullBackend>(plan: p, backend: NullBackend(scratch: scratch), control: control, timing: t,
                                        rings: rings, locks: locks, lockCount: workload.locks.count, seed: workload.run.seed)
            w.prefill()
            let t0 = threadCPUNanoseconds()
            w.run(go: cnuma_cycles())
            let t1 = threadCPUNanoseconds()
            let calls = w.c.calls
            _ = w.freeEverything()
            return (Double(t1 - t0) / Double(max(calls, 1)), calls)
        }
        // Interleaved rounds, fastest of each: interference from other
        // processes only ever adds time.
        var best: [(ns: Double, calls: Int)] = Array(repeating: (.infinity, 0), count: 3)
        let masks: [UInt64] = [0, .max, timing.sampleMask]
        for _ in 0..<rounds {
            for (i, m) in masks.enumerated() where i < 2 || m != 0 {
                let r = once(sampleMask: m)
                if r.ns < best[i].ns { best[i] = r }
            }
        }
        if timing.sampleMask == 0 { best[2] = best[0] }
        let timed = (best[0].ns, best[0].calls), untimed = (best[1].ns, best[1].calls), asRun = (best[2].ns, best[2].calls)
        return OverheadReport(method: method, nsPerCallTimed: timed.0, nsPerCallUntimed: untimed.0, nsPerCallAsRun: asRun.0, calls: timed.1)
    }
}

/// CPU time of the calling thread, in ns.
func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

#if canImport(Glibc)
import Glibc
#endif
