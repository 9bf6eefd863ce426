import CNUMA
import Foundation
import PageAllocator
#if canImport(Glibc)
import Glibc
#endif

/// After the supervisor: what the workers left (counters, the slow path's
/// record, fragmentation) read before clean-up, then clean-up (bounded),
/// leftovers freed, every page checked (validate), and the results built.
struct Teardown {
    let s: RunSetup

    func finish(_ sup: Supervisor, threads: [pthread_t]) -> RunResult {
        var sup = sup
        let allocator = s.allocator, control = s.control, n = s.n
        s.watchdog?.stop()
        var watchdogReport = s.watchdog?.report
        if watchdogReport != nil { watchdogReport!.workers = s.firedWorkers.lines.withLock { $0 } }
        if let wr = watchdogReport { sup.reason = StopReason(wr.verdict) }
        let endNs = cnuma_monotonic_ns()
        sup.stalls.finish(now: endNs, control: control, allocator: allocator)
        if endNs > sup.goNs { sup.freePages.sample(elapsedNs: endNs - sup.goNs, allocator: allocator) }
        let slowEnd = allocator.slowPathCounters()
        let oomEvents = allocator.oomEvents()
        let endSnapshot = StressRun.snapshot(allocator)
        // Memory as the workers left it, before clean-up frees it.
        let reclaimableAtEnd = allocator.reclaimablePages()
        let fragmentation = (0..<allocator.zoneCount).map { z in
            let d = allocator.zoneDescription(z)
            return ZoneFragmentation(zone: z, node: d.node.rawValue, type: d.type.name, freePages: allocator.freePages(zone: z),
                                     unusableFreeIndex: allocator.unusableFreeIndex(zone: z), fragmentationIndex: allocator.fragmentationIndex(zone: z))
        }
        let vmstatAtEnd = Dictionary(allocator.vmstat().map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let numastatAtEnd = allocator.numastat()
        let startSnapshot = sup.startSnapshot ?? endSnapshot // stopped before warm-up ended: an empty window

        // Clean-up: every worker's task frees what it holds and exits (bounded).
        control.cleanupGo.store(true, ordering: .releasing)
        if !sup.stuck {
            let exitDeadline = cnuma_monotonic_ns() + UInt64(s.options.stopGraceMs) * 1_000_000
            while control.exited.load(ordering: .acquiring) < n {
                if cnuma_monotonic_ns() > exitDeadline {
                    sup.stuck = true
                    sup.problems.append("\(n - control.exited.load(ordering: .acquiring)) of \(n) workers did not finish clean-up within \(s.options.stopGraceMs) ms")
                    break
                }
                usleep(1000)
            }
        }
        if sup.stuck {
            sup.reason = .stuck
            for t in threads { pthread_detach(t) }
        } else {
            Threads.join(threads)
        }

        // Clean-up leftovers, then check every page. Page cache outlives its
        // tasks: it is dropped (drop_caches) once kswapd has stopped.
        allocator.stopBackgroundThreads()
        var memory = MemoryCheck(corruptions: 0, freeErrors: 0, freedAtCleanup: 0, validate: "skipped", accounting: nil)
        var leftover = 0
        var outs: [WorkerOutput] = []
        if !sup.stuck {
            leftover = freeLeftovers()
            validate(&memory, problems: &sup.problems)
            memory.placement = allocator.checkPlacement()
            s.options.afterRun?(allocator)
            outs = (0..<n).compactMap { s.outputs[$0] }
            s.outputs.deinitialize(count: max(n, 1))
            s.outputs.deallocate()
        } // else: stuck workers may still write to the rings, locks and outputs; leave them (the process ends soon).

        memory.freedAtCleanup = outs.reduce(leftover) { $0 + $1.freedAtCleanup }
        memory.corruptions = outs.reduce(0) { $0 + $1.totalCorruptions }
        memory.freeErrors = outs.reduce(0) { $0 + $1.totalFreeErrors }
        for o in outs { if let p = o.firstProblem { sup.problems.append(p) } }
        if memory.corruptions > 0 { sup.problems.insert("\(memory.corruptions) touched block(s) did not hold their pattern", at: 0) }
        let harness = s.harness
        if sup.endAborted && watchdogReport == nil {
            sup.problems.append("workers were still inside the allocator \(harness.endAbortMs) ms after the end of the run; the allocator was shut down to end their slow-path loops")
        }
        let slow = SlowInputs(
            start: sup.slowWindowStart ?? s.slowStart, end: slowEnd, total: slowEnd, oomEvents: oomEvents, goNs: sup.goNs,
            watchdog: watchdogReport, stalls: sup.stalls.report(pollMs: min(5, harness.pollMs), goNs: sup.goNs), messages: control.messages.withLock { $0 },
            reclaimableAtEnd: reclaimableAtEnd, fragmentation: fragmentation,
            warnings: allocator.allocationWarnings(), memoryGroups: allocator.memoryGroupStats(), injected: allocator.injectedFailures,
            groupStops: (0..<s.workload.groups.count).map { g in control.groupStopNs(g) }, endAborted: sup.endAborted)
        var result = ResultBuilder(workload: s.workload, plan: s.plan, outputs: outs, clock: s.clock, backend: s.backend.name).build(
            startedAt: s.startedAt, options: s.options, overhead: s.overhead, memory: memory, problems: sup.problems,
            stopReason: sup.reason, interrupted: sup.interrupted, stuck: sup.stuck,
            counters: (start: startSnapshot, end: endSnapshot, vmstatAtEnd: vmstatAtEnd), allocator: allocator, slow: slow)
        let clock = s.clock
        result.noise = NoiseReport.build(
            workers: outs.filter(\.measuring).map { o in (o.index, o.usageStart, o.usageEnd, o.loopEnd > o.measureStart ? Int(clock.nanoseconds(o.loopEnd - o.measureStart)) : 0) },
            machineStart: sup.machineStart, machineEnd: MachineSample.now())
        result.numastat = numastatAtEnd
        result.freePages = sup.freePages.report()
        return result
    }

    /// Blocks still in the hand-off rings (their consumers have exited): freed here. Frees the rings and locks.
    private func freeLeftovers() -> Int {
        var leftover = 0
        for i in 0..<s.plan.rings.count {
            while let h = s.rings[i].tryPop() { try? s.allocator.free(h.block); leftover += 1 }
            s.rings[i].destroy()
        }
        s.rings.deallocate()
        s.locks.destroy()
        s.allocator.dropAllReclaimable()
        return leftover
    }

    /// validate(): every page accounted for, none still allocated.
    private func validate(_ memory: inout MemoryCheck, problems: inout [String]) {
        do {
            let a = try s.allocator.validate()
            memory.validate = "ok"
            memory.accounting = AccountingReport(managed: a.managed, buddyFree: a.buddyFree, perCPU: a.perCPU,
                                                 allocated: a.allocated, allocatedBlocks: a.allocatedBlocks)
            if a.allocated != 0 { problems.append("\(a.allocated) pages in \(a.allocatedBlocks) blocks are still allocated after the run freed everything") }
        } catch {
            memory.validate = error.description
            problems.append(error.description)
        }
    }
}
