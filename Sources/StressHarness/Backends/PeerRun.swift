import CNUMA
import Foundation
import PageAllocator
import Synchronization
import Topology

/// What a peer allocator's run adds to its results (`peer` in the results file).
public struct PeerReport: Codable, Sendable, Equatable {
    /// "jemalloc", "mimalloc", "tcmalloc", "glibc" or "kernel".
    public var name: String
    /// The library it was loaded from ("libc" for glibc, "mmap" for the kernel).
    public var library: String
    public var version: String
    /// How a block is allocated and freed.
    public var entryPoints: String
    /// The pagestorm-only parts of the workload that a peer does not have and that were off in this run.
    public var off: [String]
    /// Blocks and pages allocated and freed through the peer, counted by the
    /// backend itself (every worker, the clean-up): the peer's validate().
    public var allocatedBlocks: Int
    public var allocatedPages: Int
    public var freedBlocks: Int
    public var freedPages: Int
    /// Blocks whose address was not a multiple of their size (must be 0).
    public var misaligned: Int
    /// Allocations the peer returned NULL for.
    public var refused: Int
}

/// Which parts of a workload a peer allocator can run.
public struct PeerSupport: Equatable, Sendable {
    /// Parts the workload needs that only pagestorm has: the run is refused (exit 2).
    public var refused: [String]
    /// pagestorm-only settings that only tune pagestorm: the run goes on with them off, and says so.
    public var off: [String]
}

extension Workload {
    /// The allocator this workload measures ("pagestorm" unless `[run] allocator` or `--allocator` says otherwise).
    public var allocatorName: AllocatorName { run.allocator.flatMap { AllocatorName(parsing: $0) } ?? .pagestorm }

    /// What a peer can and cannot do of this workload. The rule: a part that
    /// changes what the workers do or what the run means (the slow-path
    /// policy, reclaimable memory, reservations, memory groups, fault
    /// injection, OOM kills and restarts, NUMA placement of allocations, memory
    /// policies) is
    /// refused; a part that only configures pagestorm (the arena, zones and
    /// watermarks, per-CPU lists, GFP flags, counters, /proc output, the
    /// watchdog) is off and listed.
    public func peerSupport() -> PeerSupport {
        var refused: [String] = []
        let nonDefault = Policy.keys.filter { policy[$0] != nil && Policy.defaults[$0] != policy[$0] }
        if !nonDefault.isEmpty {
            refused.append("[policy] " + nonDefault.map { "\($0) = \(policy[$0]!)" }.joined(separator: ", ") + " (the slow-path policy)")
        }
        if !memoryGroups.isEmpty { refused.append("[[memory_group]] \(memoryGroups.map(\.name).joined(separator: ", ")) (memory-group limits and OOM)") }
        if failPageAlloc.probability > 0 && failPageAlloc.times != 0 { refused.append("[fail_page_alloc] (fault injection)") }
        for g in groups {
            if g.restart { refused.append("group \(g.name): restart = true (OOM kills and restarts)") }
            if g.oomScoreAdj != 0 { refused.append("group \(g.name): oom_score_adj = \(g.oomScoreAdj) (the OOM killer)") }
            if let m = g.mempolicy { refused.append("group \(g.name): mempolicy = \"\(m)\" (memory policies: a peer has no NUMA nodes)") }
            for op in g.ops {
                if let r = op.reclaimable { refused.append("group \(g.name) op \(op.name): reclaimable = \"\(r)\" (reclaim and the LRU)") }
                if let r = op.reserve { refused.append("group \(g.name) op \(op.name): reserve = \(r) (reservations)") }
                if op.node != nil || op.nodeOffset != nil { refused.append("group \(g.name) op \(op.name): node (NUMA placement of allocations)") }
            }
        }
        var off = [
            "[memory] arena, zones and watermarks (memory comes from the peer, with no arena limit)",
            "per-CPU page lists",
            "GFP flags (a malloc takes none; levels of need still count failures)",
            "vmstat/NUMA counters and /proc output",
            "the watchdog (no allocator tasks to watch; every wait is still bounded)",
        ]
        if harness.callerLoop { off.append("[harness] caller NOFAIL loop (kept: it retries a NULL like any failure)") }
        if groups.contains(where: { $0.pin == "node" }) || topology.kind == "declared" {
            off.append("node pinning binds threads only (a peer places memory itself)")
        }
        return PeerSupport(refused: refused, off: off)
    }
}

/// Runs a workload on a peer allocator: the same workers, pinning, mix,
/// lifetimes, hand-offs, touch-and-verify and timing as StressRun, with the
/// peer's aligned allocation and free behind `PeerBackend`. Instead of
/// validate(), every block allocated through the peer must have been freed
/// (the backend counts both), every block must be aligned to its size, and
/// every touched word must hold its pattern.
public enum PeerRun {
    public static func run(_ workloadIn: Workload, peer name: AllocatorName, options: RunOptions = RunOptions()) throws(RunFailure) -> RunResult {
        var workload = workloadIn
        let startedAt = Date()
        cnuma_init()
        let support = workload.peerSupport()
        if !support.refused.isEmpty {
            throw RunFailure(message: "workload \(workload.name) asks for allocator \(name.rawValue), but needs parts only pagestorm has: "
                             + support.refused.joined(separator: "; ") + ". Run it on pagestorm, or remove them.", status: .badInput)
        }
        var peer: PeerAllocator
        do { peer = try PeerAllocator.load(name) } catch { throw RunFailure(message: error.message, status: .badInput) }

        let topology: Topology
        if let given = options.allocatorConfig {
            topology = given.topology
            workload = workload.describing(config: given)
        } else {
            do { topology = try workload.topology.build() } catch { throw RunFailure(message: "topology: \(error)", status: .badInput) }
        }
        peer = peer.withPageSize(workload.memory.pageSize)
        let plan = RunPlan(workload, topology: topology)
        let n = plan.workers.count

        let clock = CycleClock.calibrate(milliseconds: 20)
        let ticksPerNs = 1 / clock.nsPerTick
        func ticks(ms: Int) -> UInt64 { UInt64(Double(ms) * 1e6 * ticksPerNs) }
        let r = workload.run
        let opsMode = r.mode == "ops"
        let timing = WorkerTiming(
            opsMode: opsMode, opsTarget: r.ops ?? .max, warmupTicks: ticks(ms: r.warmupMs), durationTicks: ticks(ms: r.durationMs ?? 0),
            bucketTicks: max(1, ticks(ms: r.bucketMs)),
            maxBuckets: max(2, min(1_000_000, (opsMode ? r.timeoutMs : (r.durationMs ?? 0)) / max(r.bucketMs, 1) + 2)),
            intervalTicks: 0, mulQ32: UInt64((clock.nsPerTick * 4_294_967_296.0).rounded()), nsPerTick: clock.nsPerTick,
            sampleMask: UInt64(r.sampleEvery - 1), pageSize: peer.pageSize)
        let overhead = options.measureOverhead ? HarnessOverhead.measure(plan: plan, workload: workload, timing: timing) : nil

        // Shared state; slot n of the counts is the clean-up's.
        let control = RunControl(workers: n, groups: workload.groups.count, sink: options.warningSink)
        let harness = workload.harness
        let rings = UnsafeMutablePointer<HandoffRing<Held<PeerBlock>>>.allocate(capacity: max(plan.rings.count, 1))
        for i in 0..<plan.rings.count { (rings + i).initialize(to: .make(capacity: 4096)) }
        let locks = NamedLocks(count: workload.locks.count)
        let outputs = UnsafeMutablePointer<WorkerOutput?>.allocate(capacity: max(n, 1))
        outputs.initialize(repeating: nil, count: max(n, 1))
        let slots = PeerCountSlots(count: n + 1)
        let sendPeer = UnsafeSendable(peer)
        let args = WorkerThreadArgs<PeerBackend>(
            plans: plan.workers, topology: topology, timing: timing,
            backend: { i in PeerBackend(peer: sendPeer.value, counts: slots.slot(i)) },
            control: control, rings: rings, locks: locks, lockCount: workload.locks.count, seed: r.seed,
            harness: harness, ringConsumers: plan.rings.map(\.consumer), outputs: outputs)

        if options.handleInterrupts { Interrupt.install() }
        defer { if options.handleInterrupts { Interrupt.uninstall() } }
        var stalls = StallTracker(thresholdMs: harness.stallMs, warnings: false, workers: n)

        let threads = Threads.start(count: n) { i in workerThread(i, args) }

        // Barrier, then go.
        var problems: [String] = []
        var stopReason: StopReason = opsMode ? .ops : .duration
        var interrupted = false
        var stuck = false
        let readyDeadline = cnuma_monotonic_ns() + 600_000_000_000
        while control.ready.load(ordering: .acquiring) < n {
            if options.handleInterrupts && Interrupt.requested { interrupted = true; break }
            if cnuma_monotonic_ns() > readyDeadline { problems.append("workers did not get ready (prefill) within 600 s"); stuck = true; break }
            usleep(1000)
        }
        if interrupted || stuck {
            control.stop.store(true, ordering: .relaxed)
            stopReason = interrupted ? .interrupted : .stuck
        } else {
            control.goTicks.store(cnuma_cycles(), ordering: .releasing)
        }
        let goNs = cnuma_monotonic_ns()
        let warmupNs = UInt64(r.warmupMs) * 1_000_000
        let runNs = warmupNs + UInt64(opsMode ? r.timeoutMs : (r.durationMs ?? 0)) * 1_000_000
        let tty = options.progress && isatty(1) != 0
        var lastPrint = goNs
        var lastCalls = 0
        var stopAskedAt: UInt64? = interrupted || stuck ? goNs : nil
        let grace = UInt64(options.stopGraceMs) * 1_000_000

        // Watch: progress, Ctrl-C, timeout, stalls, stop grace.
        while control.stopped.load(ordering: .acquiring) < n {
            usleep(UInt32(min(5, harness.pollMs)) * 1000)
            let now = cnuma_monotonic_ns()
            let elapsed = now - goNs
            stalls.observe(now: now, control: control, allocator: nil)
            if stopAskedAt == nil {
                let ctrlC = (options.handleInterrupts && Interrupt.requested) || (options.interruptAfterMs.map { elapsed >= UInt64($0) * 1_000_000 } ?? false)
                if ctrlC {
                    interrupted = true
                    stopReason = .interrupted
                } else if opsMode && elapsed >= runNs {
                    stopReason = .timeout
                    problems.append("the run did not finish its \(r.ops ?? 0) operations per worker within timeout_ms = \(r.timeoutMs)")
                } else if !opsMode && elapsed >= runNs + grace {
                    stopReason = .stuck
                    problems.append("workers did not stop at the deadline")
                }
                if ctrlC || stopReason == .timeout || stopReason == .stuck {
                    control.stop.store(true, ordering: .relaxed)
                    stopAskedAt = now
                }
            } else if now - stopAskedAt! > grace {
                stuck = true
                problems.append("\(n - control.stopped.load(ordering: .acquiring)) of \(n) workers did not stop within \(options.stopGraceMs) ms of being told to")
                break
            }
            if tty && now - lastPrint >= 250_000_000 {
                let calls = control.totalProgress()
                let rate = Double(calls - lastCalls) / (Double(now - lastPrint) / 1e9)
                let phase = elapsed < warmupNs ? " (warm-up)" : ""
                let total = opsMode ? "" : String(format: " / %.1f s", Double(runNs) / 1e9)
                print(String(format: "\r\u{1B}[K  %.1f s%@%@  %@ calls  %@ calls/s", Double(elapsed) / 1e9, total, phase,
                             human(Double(calls)), human(rate)), terminator: "")
                fflush(nil)
                lastPrint = now
                lastCalls = calls
            }
        }
        if tty { print("\r\u{1B}[K", terminator: ""); fflush(nil) }
        stalls.finish(now: cnuma_monotonic_ns(), control: control, allocator: nil)
        control.cleanupGo.store(true, ordering: .releasing)
        if !stuck {
            let exitDeadline = cnuma_monotonic_ns() + grace
            while control.exited.load(ordering: .acquiring) < n {
                if cnuma_monotonic_ns() > exitDeadline {
                    stuck = true
                    problems.append("\(n - control.exited.load(ordering: .acquiring)) of \(n) workers did not finish clean-up within \(options.stopGraceMs) ms")
                    break
                }
                usleep(1000)
            }
        }
        if stuck {
            stopReason = .stuck
            for t in threads { pthread_detach(t) }
        } else {
            Threads.join(threads)
        }

        // Clean-up leftovers, then the peer's accounting.
        var leftover = 0
        var memory = MemoryCheck(corruptions: 0, freeErrors: 0, freedAtCleanup: 0, validate: "skipped", accounting: nil)
        let counts: PeerCounts
        if !stuck {
            let cleanup = PeerBackend(peer: peer, counts: slots.slot(n))
            for i in 0..<plan.rings.count {
                while let h = rings[i].tryPop() { try? cleanup.free(h.block, cpu: nil); leftover += 1 }
                rings[i].destroy()
            }
            rings.deallocate()
            locks.destroy()
            counts = slots.total
            var broken: [String] = []
            if counts.allocatedBlocks != counts.freedBlocks || counts.allocatedPages != counts.freedPages {
                broken.append("\(counts.allocatedBlocks) blocks (\(counts.allocatedPages) pages) allocated through \(name.rawValue) but \(counts.freedBlocks) blocks (\(counts.freedPages) pages) freed")
            }
            if counts.misaligned > 0 { broken.append("\(counts.misaligned) blocks from \(name.rawValue) were not aligned to their size") }
            memory.validate = broken.isEmpty ? "ok" : broken.joined(separator: "; ")
            problems.append(contentsOf: broken)
        } else {
            counts = slots.total
        }
        let outs: [WorkerOutput] = stuck ? [] : (0..<n).compactMap { outputs[$0] }
        if !stuck {
            outputs.deinitialize(count: max(n, 1))
            outputs.deallocate()
        }
        memory.freedAtCleanup = outs.reduce(leftover) { $0 + $1.freedAtCleanup }
        memory.corruptions = outs.reduce(0) { $0 + $1.totalCorruptions }
        memory.freeErrors = outs.reduce(0) { $0 + $1.totalFreeErrors }
        for o in outs { if let p = o.firstProblem { problems.append(p) } }
        if memory.corruptions > 0 { problems.insert("\(memory.corruptions) touched block(s) did not hold their pattern", at: 0) }

        let slow = SlowInputs(
            start: [], end: [], total: [], oomEvents: [], goNs: goNs, watchdog: nil, stalls: stalls.report(pollMs: min(5, harness.pollMs), goNs: goNs),
            messages: control.messages.withLock { $0 }, reclaimableAtEnd: [:], fragmentation: [], warnings: AllocWarningStats(),
            memoryGroups: [], injected: 0, groupStops: (0..<workload.groups.count).map { g in control.groupStopNs(g) }, endAborted: false)
        var result = ResultBuilder(workload: workload, plan: plan, outputs: outs, clock: clock, backend: name.resultsName).build(
            startedAt: startedAt, options: options, overhead: overhead, memory: memory, problems: problems,
            stopReason: stopReason, interrupted: interrupted, stuck: stuck,
            counters: (start: [], end: [], vmstatAtEnd: [:]), allocator: nil, topology: topology, slow: slow)
        result.peer = PeerReport(name: name.rawValue, library: peer.library, version: peer.version, entryPoints: peer.entryPoints,
                                 off: support.off, allocatedBlocks: counts.allocatedBlocks, allocatedPages: counts.allocatedPages,
                                 freedBlocks: counts.freedBlocks, freedPages: counts.freedPages, misaligned: counts.misaligned,
                                 refused: counts.refused)
        // The allocator is torn down before this returns: keep `slots` alive until here.
        withExtendedLifetime(slots) {}
        return result
    }
}
