import CNUMA
import Foundation
import Histogram
import PageAllocator
import Synchronization
import Topology

/// How a run is carried out (not what it runs: that is the workload).
public struct RunOptions: Sendable {
    /// The file the workload came from (nil: built-in), recorded in the results.
    public var workloadFile: String?
    /// Use this allocator configuration instead of the workload's topology and memory (smoke's flags).
    public var allocatorConfig: AllocatorConfig?
    /// Print a live progress line (only on a terminal).
    public var progress = false
    /// Stop cleanly on SIGINT (the CLI); off in tests that run in parallel.
    public var handleInterrupts = false
    /// Time the harness loop against the null backend first.
    public var measureOverhead = true
    public var shard = ShardInfo()
    /// Tests: behave as if Ctrl-C came this many ms after the start.
    public var interruptAfterMs: Int?
    /// How long workers get to stop once told to, and to finish clean-up.
    public var stopGraceMs = 10_000
    /// Status lines (progress goes to stdout separately).
    public var log: (@Sendable (String) -> Void)?
    /// Called with the allocator after the clean-up and validate(), before it
    /// is torn down (smoke prints its zoneinfo).
    public var afterRun: (@Sendable (PageAllocator) -> Void)?
    /// Where warning lines go as they happen: warn_alloc's allocation-failure
    /// warnings, stalls in the kernel's form, the caller loop's "possible
    /// memory allocation deadlock" (the CLI: stderr). nil: kept in the results only.
    public var warningSink: (@Sendable (String) -> Void)?

    public init() {}
}

/// The run could not be carried out at all (no results to write).
public struct RunFailure: Error, CustomStringConvertible {
    public let message: String
    public let status: ExitStatus
    public var description: String { message }
}

/// Runs a workload: builds the allocator, starts one pinned pthread per
/// worker behind a barrier, watches the clock, Ctrl-C and progress, stops
/// the workers (every wait bounded), frees everything, validates, and
/// returns the results.
public enum StressRun {
    public static func run(_ workloadIn: Workload, options: RunOptions = RunOptions()) throws(RunFailure) -> RunResult {
        var workload = workloadIn
        let startedAt = Date()
        cnuma_init()
        // The hook for other kinds of workload (trace replay adds its case here).
        switch workload.kind {
        case .ops: break // worker groups drawing operations from their mixes: the rest of this function
        }

        // Topology and allocator.
        let topology: Topology
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
        let allocator: PageAllocator
        do { allocator = try PageAllocator(config, warningSink: options.warningSink) } catch {
            if case .mapFailed = error { throw RunFailure(message: "allocator: \(error)", status: .toolFailed) }
            throw RunFailure(message: "allocator configuration: \(error)", status: .badInput)
        }
        let backend = BuddyBackend(allocator)
        let plan = RunPlan(workload, topology: topology)
        let n = plan.workers.count
        for w in plan.workers {
            if let c = w.allocatorCPU, c >= allocator.cpuCount {
                throw RunFailure(message: "worker \(w.index) uses cpu \(c) but the allocator has \(allocator.cpuCount) CPUs", status: .badInput)
            }
        }

        // Clock and timing.
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
            sampleMask: UInt64(r.sampleEvery - 1), pageSize: allocator.pageSize)

        let overhead = options.measureOverhead ? HarnessOverhead.measure(plan: plan, workload: workload, timing: timing) : nil
        if let o = overhead {
            options.log?("harness overhead: \(fmt(o.nsPerCallTimed, 1)) ns/call timing every call, \(fmt(o.nsPerCallUntimed, 1)) ns/call untimed, \(fmt(o.nsPerCallAsRun, 1)) ns/call at sample_every \(r.sampleEvery)")
        }

        // Shared state.
        let control = RunControl(workers: n, groups: workload.groups.count, sink: options.warningSink)
        let harness = workload.harness
        let ringConsumers = plan.rings.map(\.consumer)
        let rings = UnsafeMutablePointer<HandoffRing<Held<PageBlock>>>.allocate(capacity: max(plan.rings.count, 1))
        for i in 0..<plan.rings.count { (rings + i).initialize(to: .make(capacity: 4096)) }
        let locks = NamedLocks(count: workload.locks.count)
        let outputs = UnsafeMutablePointer<WorkerOutput?>.allocate(capacity: max(n, 1))
        outputs.initialize(repeating: nil, count: max(n, 1))
        let sendRings = UnsafeSendable(rings), sendLocks = UnsafeSendable(locks), sendOutputs = UnsafeSendable(outputs)
        let lockCount = workload.locks.count
        let seed = r.seed
        let plans = plan.workers

        if options.handleInterrupts { Interrupt.install() }
        defer { if options.handleInterrupts { Interrupt.uninstall() } }

        // The slow path's threads (kswapd per node, the oom_reaper if the policy
        // has it) and the watchdog run for the whole run, prefill included.
        allocator.startBackgroundThreads()
        let slowStart = allocator.slowPathCounters()
        let lockNames = workload.locks.map(\.name)
        let firedWorkers = Mutex<[String]>([])
        let watchdog: Watchdog? = harness.watchdog ? Watchdog(
            allocator: allocator,
            settings: { var s = Watchdog.Settings(); s.livelockAfterMs = harness.livelockMs; s.deadlockAfterMs = harness.deadlockMs; s.pollMs = harness.pollMs; return s }(),
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
                    return "worker \(w) (\(plans[w].taskName)): task \(task == 0 ? "none" : String(task)), \(call)"
                }
                firedWorkers.withLock { $0 = lines }
                // End the run: every wait in the harness checks `stop`, every
                // slow-path loop in the allocator returns .aborted.
                control.stop.store(true, ordering: .relaxed)
                allocator.shutdown()
            },
            callStartNs: { id in control.callStart(task: id) }) : nil
        watchdog?.start()
        var stalls = StallTracker(thresholdMs: harness.stallMs, warnings: harness.stallWarnings, workers: n)

        let threads = Threads.start(count: n) { i in
            let p = plans[i]
            var pinError: String? = nil
            do {
                switch p.pin {
                case .cpu(let c): try Affinity.pinCurrentThread(to: CPUID(c), in: topology)
                case .node(let node): try Affinity.pinCurrentThread(toNode: NodeID(node), in: topology)
                case .none: break
                }
            } catch { pinError = "\(error)" }
            var t = timing
            if let ns = p.intervalNs { t.intervalTicks = ns * ticksPerNs }
            var w = Worker<BuddyBackend>(plan: p, backend: backend, control: control, timing: t, rings: sendRings.value,
                                         locks: sendLocks.value, lockCount: lockCount, seed: seed, harness: harness,
                                         ringConsumers: ringConsumers)
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
            if go != 0 { w.run(go: go) } else { w.stopReason = .stopped }
            control.stopped.wrappingAdd(1, ordering: .releasing)
            // Clean-up waits for the main thread's counter snapshot (bounded),
            // answering a late OOM kill meanwhile.
            w.waitForCleanup(deadlineNs: cnuma_monotonic_ns() + 120_000_000_000)
            let measured = w.c
            let freed = w.exitTask(reason: .runEnded)
            sendOutputs.value[i] = w.output(plan: p, pinError: pinError, measured: measured, freedAtCleanup: freed)
            control.exited.wrappingAdd(1, ordering: .releasing)
        }

        // Barrier: every worker pinned and prefilled, then go.
        var problems: [String] = []
        var stopReason = opsMode ? "ops" : "duration"
        var interrupted = false
        var stuck = false
        let readyDeadline = cnuma_monotonic_ns() + 600_000_000_000
        while control.ready.load(ordering: .acquiring) < n {
            if options.handleInterrupts && Interrupt.requested { interrupted = true; break }
            if cnuma_monotonic_ns() > readyDeadline { problems.append("workers did not get ready (prefill) within 600 s"); stuck = true; break }
            usleep(1000)
        }
        var startSnapshot: [ZoneCounters]? = nil
        let firedInPrefill = watchdog?.report
        if interrupted || stuck || firedInPrefill != nil {
            control.stop.store(true, ordering: .relaxed)
            stopReason = interrupted ? "interrupted" : (stuck ? "stuck" : firedInPrefill!.verdict.rawValue)
        } else {
            if r.warmupMs == 0 { startSnapshot = snapshot(allocator) }
            control.goTicks.store(cnuma_cycles(), ordering: .releasing)
        }
        let goNs = cnuma_monotonic_ns()
        let warmupNs = UInt64(r.warmupMs) * 1_000_000
        let runNs = warmupNs + UInt64(opsMode ? r.timeoutMs : (r.durationMs ?? 0)) * 1_000_000
        let tty = options.progress && isatty(1) != 0
        var lastPrint = goNs
        var lastCalls = 0
        var stopAskedAt: UInt64? = interrupted || stuck || firedInPrefill != nil ? goNs : nil
        let grace = UInt64(options.stopGraceMs) * 1_000_000

        // Watch: progress, Ctrl-C, timeout, the watchdog, stalls, stop grace.
        var slowWindowStart: [(name: String, value: Int)]? = r.warmupMs == 0 ? allocator.slowPathCounters() : nil
        var endAborted = false
        var watchdogParked = false
        let endAbortNs = UInt64(harness.endAbortMs) * 1_000_000
        while control.stopped.load(ordering: .acquiring) < n {
            usleep(UInt32(min(5, harness.pollMs)) * 1000)
            let now = cnuma_monotonic_ns()
            let elapsed = now - goNs
            stalls.observe(now: now, control: control, allocator: allocator)
            // The watchdog judges the run, not its wind-down: once the deadline
            // has passed, workers stop one by one, and one still in the
            // allocator is left alone with nobody to free memory for it.
            // end_abort_ms ends it instead (and the run says so).
            if !opsMode && elapsed >= runNs && !watchdogParked { watchdogParked = true; watchdog?.stop() }
            if slowWindowStart == nil && elapsed >= warmupNs { slowWindowStart = allocator.slowPathCounters() }
            if let wr = watchdog?.report, stopAskedAt == nil || stopReason != wr.verdict.rawValue {
                if stopAskedAt == nil { stopAskedAt = now }
                stopReason = wr.verdict.rawValue
            }
            // A worker still inside the allocator well after the end: shut the
            // allocator down so that its slow-path loop returns (.aborted).
            let endNs = stopAskedAt.map { $0 - goNs } ?? (opsMode ? UInt64.max : runNs)
            if !endAborted && !allocator.isShutDown && endNs != .max && elapsed >= endNs + endAbortNs {
                endAborted = true
                allocator.shutdown()
                control.stop.store(true, ordering: .relaxed)
            }
            if startSnapshot == nil && elapsed >= warmupNs && stopAskedAt == nil { startSnapshot = snapshot(allocator) }
            if stopAskedAt == nil {
                let ctrlC = (options.handleInterrupts && Interrupt.requested) || (options.interruptAfterMs.map { elapsed >= UInt64($0) * 1_000_000 } ?? false)
                if ctrlC {
                    interrupted = true
                    stopReason = "interrupted"
                } else if opsMode && elapsed >= runNs {
                    stopReason = "timeout"
                    problems.append("the run did not finish its \(r.ops ?? 0) operations per worker within timeout_ms = \(r.timeoutMs)")
                } else if !opsMode && elapsed >= runNs + grace {
                    stopReason = "stuck"
                    problems.append("workers did not stop at the deadline")
                }
                if ctrlC || stopReason == "timeout" || stopReason == "stuck" {
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
        watchdog?.stop()
        var watchdogReport = watchdog?.report
        if watchdogReport != nil { watchdogReport!.workers = firedWorkers.withLock { $0 } }
        if let wr = watchdogReport { stopReason = wr.verdict.rawValue }
        stalls.finish(now: cnuma_monotonic_ns(), control: control, allocator: allocator)
        let slowEnd = allocator.slowPathCounters()
        let oomEvents = allocator.oomEvents()
        let endSnapshot = snapshot(allocator)
        // Memory as the workers left it, before clean-up frees it.
        let reclaimableAtEnd = allocator.reclaimablePages()
        let fragmentation = (0..<allocator.zoneCount).map { z in
            let d = allocator.zoneDescription(z)
            return ZoneFragmentation(zone: z, node: d.node.rawValue, type: d.type.name, freePages: allocator.freePages(zone: z),
                                     unusableFreeIndex: allocator.unusableFreeIndex(zone: z), fragmentationIndex: allocator.fragmentationIndex(zone: z))
        }
        let vmstatAtEnd = Dictionary(allocator.vmstat().map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        if startSnapshot == nil { startSnapshot = endSnapshot } // stopped before warm-up ended: an empty window
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
            stopReason = "stuck"
            for t in threads { pthread_detach(t) }
        } else {
            Threads.join(threads)
        }

        // Clean-up leftovers, then check every page. Page cache outlives its
        // tasks: it is dropped (drop_caches) once kswapd has stopped.
        allocator.stopBackgroundThreads()
        var leftover = 0
        var memory = MemoryCheck(corruptions: 0, freeErrors: 0, freedAtCleanup: 0, validate: "skipped", accounting: nil)
        if !stuck {
            for i in 0..<plan.rings.count {
                while let h = rings[i].tryPop() { try? allocator.free(h.block); leftover += 1 }
                rings[i].destroy()
            }
            rings.deallocate()
            locks.destroy()
            allocator.dropAllReclaimable()
            do {
                let a = try allocator.validate()
                memory.validate = "ok"
                memory.accounting = AccountingReport(managed: a.managed, buddyFree: a.buddyFree, perCPU: a.perCPU,
                                                     allocated: a.allocated, allocatedBlocks: a.allocatedBlocks)
                if a.allocated != 0 { problems.append("\(a.allocated) pages in \(a.allocatedBlocks) blocks are still allocated after the run freed everything") }
            } catch {
                memory.validate = error.description
                problems.append(error.description)
            }
        }
        if !stuck { memory.placement = allocator.checkPlacement() }
        if !stuck { options.afterRun?(allocator) }
        let outs: [WorkerOutput] = stuck ? [] : (0..<n).compactMap { outputs[$0] }
        if !stuck {
            outputs.deinitialize(count: max(n, 1))
            outputs.deallocate()
        } // else: stuck workers may still write there; leave it (the process ends soon).

        memory.freedAtCleanup = outs.reduce(leftover) { $0 + $1.freedAtCleanup }
        memory.corruptions = outs.reduce(0) { $0 + $1.totalCorruptions }
        memory.freeErrors = outs.reduce(0) { $0 + $1.totalFreeErrors }
        for o in outs { if let p = o.firstProblem { problems.append(p) } }
        if memory.corruptions > 0 { problems.insert("\(memory.corruptions) touched block(s) did not hold their pattern", at: 0) }

        if endAborted && watchdogReport == nil {
            problems.append("workers were still inside the allocator \(harness.endAbortMs) ms after the end of the run; the allocator was shut down to end their slow-path loops")
        }
        let slow = SlowInputs(
            start: slowWindowStart ?? slowStart, end: slowEnd, total: slowEnd, oomEvents: oomEvents, goNs: goNs,
            watchdog: watchdogReport, stalls: stalls.report(pollMs: min(5, harness.pollMs)), messages: control.messages.withLock { $0 },
            reclaimableAtEnd: reclaimableAtEnd, fragmentation: fragmentation,
            warnings: allocator.allocationWarnings(), memoryGroups: allocator.memoryGroupStats(), injected: allocator.injectedFailures,
            groupStops: (0..<workload.groups.count).map { g in control.groupStopNs(g) }, endAborted: endAborted)
        return ResultBuilder(workload: workload, plan: plan, outputs: outs, clock: clock, backend: backend.name).build(
            startedAt: startedAt, options: options, overhead: overhead, memory: memory, problems: problems,
            stopReason: stopReason, interrupted: interrupted, stuck: stuck,
            counters: (start: startSnapshot!, end: endSnapshot, vmstatAtEnd: vmstatAtEnd), allocator: allocator, slow: slow)
    }

    /// The harness's own cost per allocator call for this workload (see HarnessOverhead).
    public static func measureOverhead(_ w: Workload, draws: Int = 100_000) -> OverheadReport {
        let clock = CycleClock.calibrate(milliseconds: 20)
        let topology = (try? w.topology.build()) ?? Topology.discover()
        let timing = WorkerTiming(opsMode: true, opsTarget: draws, warmupTicks: 0, durationTicks: 0, bucketTicks: .max / 4, maxBuckets: 16,
                                  intervalTicks: 0, mulQ32: UInt64((clock.nsPerTick * 4_294_967_296.0).rounded()), nsPerTick: clock.nsPerTick,
                                  sampleMask: UInt64(w.run.sampleEvery - 1), pageSize: w.memory.pageSize)
        return HarnessOverhead.measure(plan: RunPlan(w, topology: topology), workload: w, timing: timing, draws: draws)
    }

    static func snapshot(_ a: PageAllocator) -> [ZoneCounters] { (0..<a.zoneCount).map { a.counters(zone: $0) } }
}

/// 12.3k, 4.56M, 7.89G.
func human(_ x: Double) -> String {
    let a = abs(x)
    if a >= 1e9 { return fmt(x / 1e9, 2) + "G" }
    if a >= 1e6 { return fmt(x / 1e6, 2) + "M" }
    if a >= 1e3 { return fmt(x / 1e3, 1) + "k" }
    return fmt(x, 0)
}

extension TopologySpec {
    /// The topology this spec describes (the machine's, or declared).
    public func build() throws(TopologyError) -> Topology {
        kind == "machine" ? Topology.discover() : try Topology.declared(cpusPerNode: cpusPerNode, distance: distances)
    }
}

extension MemorySpec {
    /// The allocator's memory configuration (no policy: see `Workload.allocatorConfig`).
    public func allocatorConfig(topology: Topology) -> AllocatorConfig {
        var c = AllocatorConfig(topology: topology, zones: zones.map { ZoneSpec(ZoneType(name: $0.type) ?? .normal, pages: $0.pages) })
        c.pageSize = pageSize
        c.minFreeKbytes = minFreeKbytes
        c.watermarkScaleFactor = watermarkScaleFactor
        c.lowmemReserveRatio = lowmemReserveRatio
        c.percpuPagelistHighFraction = percpuPagelistHighFraction
        c.bindMemory = bindMemory
        c.perCPUMaxOrder = pcpMaxOrder
        c.reclaim.swapPages = swapPages
        c.warnRatelimitMs = warnRatelimitMs
        return c
    }
}

extension Workload {
    /// Everything the allocator is built from: `[topology]`, `[memory]`,
    /// `[policy]` (SlowPathPolicy), `[reclaim]`, `[fail_page_alloc]` and the
    /// `[[memory_group]]` limits.
    public func allocatorConfig(topology: Topology) throws(RunFailure) -> AllocatorConfig {
        var c = memory.allocatorConfig(topology: topology)
        try applySlowPath(to: &c)
        return c
    }

    /// Puts the workload's policy, reclaim costs, fault injection and memory
    /// groups into `c` (also used when the topology and memory come from flags).
    public func applySlowPath(to c: inout AllocatorConfig) throws(RunFailure) {
        do { c.policy = try Policy.resolve(policy) } catch { throw RunFailure(message: "\(error)", status: .badInput) }
        c.reclaim.writebackNsPerPage = reclaim.writebackNsPerPage
        c.reclaim.swapNsPerPage = reclaim.swapNsPerPage
        c.reclaim.batch = reclaim.batch
        c.reclaim.swapPages = memory.swapPages
        c.warnRatelimitMs = memory.warnRatelimitMs
        var f = failPageAlloc
        f.seed = failPageAlloc.seed ^ run.seed
        c.faultInjection = f
        c.memoryGroups = memoryGroups
    }
}

extension Workload {
    /// The workload with its topology and memory replaced by what `config` says.
    public func describing(config: AllocatorConfig) -> Workload {
        var w = self
        let t = config.topology
        w.topology = TopologySpec(kind: t.isDeclared ? "declared" : "machine", nodes: t.nodeCount,
                                  cpusPerNode: t.nodes.map(\.cpus.count), distances: t.distance)
        let perNode = config.zones.reduce(0) { $0 + $1.pages }
        w.memory = MemorySpec(
            pageSize: config.pageSize, zones: config.zones.map { ZoneRecord(type: $0.type.name, pages: $0.pages) },
            minFreeKbytes: config.minFreeKbytes ?? KernelFormulas.minFreeKbytes(lowmemKbytes: perNode * t.nodeCount * (config.pageSize / 1024)),
            minFreeKbytesGiven: config.minFreeKbytes != nil, watermarkScaleFactor: config.watermarkScaleFactor,
            lowmemReserveRatio: config.lowmemReserveRatio, pcpMaxOrder: config.perCPUMaxOrder,
            percpuPagelistHighFraction: config.percpuPagelistHighFraction, bindMemory: config.bindMemory,
            swapPages: config.reclaim.swapPages, warnRatelimitMs: config.warnRatelimitMs)
        return w
    }
}
