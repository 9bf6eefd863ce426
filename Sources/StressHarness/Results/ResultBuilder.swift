import Foundation
import Histogram
import PageAllocator
import Topology

/// Turns the workers' outputs and the allocator's counters into a RunResult.
struct ResultBuilder {
    let workload: Workload
    let plan: RunPlan
    let outputs: [WorkerOutput]
    let clock: CycleClock
    let backend: String

    func ns(_ ticks: UInt64) -> Double { clock.nanoseconds(ticks) }

    func build(startedAt: Date, options: RunOptions, overhead: OverheadReport?, memory: MemoryCheck, problems: [String],
               stopReason stop: StopReason, interrupted: Bool, stuck: Bool,
               counters: (start: [ZoneCounters], end: [ZoneCounters], vmstatAtEnd: [String: Int]),
               allocator: PageAllocator?, topology: Topology? = nil, slow: SlowInputs) -> RunResult {
        // Measured window: end of warm-up to the last worker's stop.
        let measuring = outputs.filter(\.measuring)
        let start = measuring.map(\.measureStart).min() ?? 0
        let end = measuring.map(\.loopEnd).max() ?? start
        let windowNs = end > start ? ns(end - start) : 0
        let perSecond = { (x: Int) -> Double in windowNs > 0 ? Double(x) / (windowNs / 1e9) : 0 }

        // Latency classes, merged over workers (losslessly).
        var merged: [Int: Histogram<UInt64>] = [:]
        var calls = [Int](repeating: 0, count: plan.classes.count)
        var fails = [Int](repeating: 0, count: plan.classes.count)
        var failTable: [FailureEntry] = []
        var failIndex: [String: Int] = [:]
        // The same, keyed by worker group and by op label.
        var byGroup = KeyedLatencies(), byLabel = KeyedLatencies()
        for o in outputs {
            let classOps = plan.workers.first { $0.index == o.index }?.classOps ?? []
            let group = workload.groups[o.group]
            for (local, global) in o.classes.enumerated() where global < plan.classes.count {
                // Overhead-only placeholder classes never appear here; every local class is real.
                if merged[global] == nil { merged[global] = LatencyRecorder.make() }
                merged[global]!.add(o.histograms[local])
                calls[global] += o.classCalls[local]
                let classFailures = (0..<ClassFailureIndex.levels).reduce(0) { $0 + o.classFailures[ClassFailureIndex.of(local, need: $1)] }
                byGroup.add(group.name, global, o.histograms[local], calls: o.classCalls[local], failures: classFailures)
                if local < classOps.count, classOps[local] >= 0, let label = group.ops[classOps[local]].label {
                    byLabel.add(label, global, o.histograms[local], calls: o.classCalls[local], failures: classFailures)
                }
                for level in 0..<4 {
                    let f = o.classFailures[ClassFailureIndex.of(local, need: level)]
                    guard f > 0 else { continue }
                    fails[global] += f
                    let c = plan.classes[global]
                    let key = "\(c.order)|\(c.flags)|\(level)"
                    if let i = failIndex[key] { failTable[i].count += f } else {
                        failIndex[key] = failTable.count
                        failTable.append(FailureEntry(order: c.order, flags: c.flags, level: level, count: f))
                    }
                }
            }
        }
        let latency: [ClassLatency] = plan.classes.indices.compactMap { g in
            guard let h = merged[g] else { return nil }
            return ClassLatency(name: plan.classes[g].name, opClass: plan.classes[g], calls: calls[g], failures: fails[g],
                                summary: h.summary(), histogram: EncodedHistogram(h))
        }
        var byOrder: [String: Int] = [:], byFlags: [String: Int] = [:], byLevel: [String: Int] = [:]
        for e in failTable {
            byOrder[String(e.order), default: 0] += e.count
            byFlags[e.flags, default: 0] += e.count
            byLevel[String(e.level), default: 0] += e.count
        }
        let totalFailures = failTable.reduce(0) { $0 + $1.count }

        // Throughput and the time series.
        func sum(_ f: (WorkerCounters) -> Int) -> Int { outputs.reduce(0) { $0 + f($1.counters) } }
        let totalCalls = sum(\.calls), totalDraws = sum(\.draws)
        // Align each worker's buckets to the run-wide start of measurement; a
        // worker whose warm-up ended a bucket later reaches a bucket further.
        let shifts = outputs.map { o in o.measureStart > start ? Int(ns(o.measureStart - start) / (Double(workload.run.bucketMs) * 1e6)) : 0 }
        let buckets = zip(outputs, shifts).map { $0.buckets.count + $1 }.max() ?? 0
        var series = [UInt64](repeating: 0, count: buckets), failSeries = [UInt64](repeating: 0, count: buckets)
        var allocSeries = [UInt64](repeating: 0, count: buckets)
        for (o, shift) in zip(outputs, shifts) {
            for (i, v) in o.buckets.enumerated() {
                series[i + shift] += v
                failSeries[i + shift] += o.failureBuckets[i]
                allocSeries[i + shift] += o.allocBuckets[i]
            }
        }
        let workers: [WorkerReport] = outputs.map { o in
            let m = o.measuring && o.loopEnd > o.measureStart ? ns(o.loopEnd - o.measureStart) : 0
            let g = workload.groups[o.group]
            return WorkerReport(index: o.index, group: g.name, pinnedTo: o.pinnedTo, pinError: o.pinError, allocatorCPU: o.allocatorCPU,
                                calls: o.counters.calls, callsPerSecond: m > 0 ? Double(o.counters.calls) / (m / 1e9) : 0,
                                operations: o.counters.draws, failures: o.counters.failures, measuredNs: Int(m), stopReason: o.stopReason.rawValue,
                                maxLagNs: g.loop == "open" ? ns(max(o.counters.maxLagTicks, o.endLagTicks)) : nil,
                                kills: o.counters.kills, restarts: o.counters.restarts)
        }
        var operations: [OperationReport] = []
        for (gi, g) in workload.groups.enumerated() {
            for (oi, op) in g.ops.enumerated() {
                let draws = outputs.filter { $0.group == gi }.reduce(0) { $0 + ($1.opDraws.count > oi ? $1.opDraws[oi] : 0) }
                operations.append(OperationReport(group: g.name, op: op.name, kind: op.kind.rawValue, draws: draws))
            }
        }
        let locks: [LockReport] = workload.locks.enumerated().map { li, l in
            let s = outputs.compactMap { $0.locks.count > li ? $0.locks[li] : nil }
            return LockReport(name: l.name, acquisitions: s.reduce(0) { $0 + $1.acquisitions }, contended: s.reduce(0) { $0 + $1.contended },
                              waitNsTotal: ns(s.reduce(0) { $0 + $1.waitTicks }), waitNsMax: ns(s.map(\.maxWaitTicks).max() ?? 0),
                              abandoned: s.reduce(0) { $0 + $1.abandoned })
        }

        // Allocator counters over the window (none for a peer allocator).
        let counterTable = allocator.map { counterReport(counters, allocator: $0) }
            ?? CounterReport(vmstatDelta: [:], vmstatAtEnd: [:], pcpHitRate: nil, zoneLockAcquisitions: 0, zoneLockContended: 0, pcpLockContended: 0)

        // Open loop: target against achieved rate, schedule lag.
        let openLoop = OpenLoopReport.build(outputs.compactMap { o in
            let g = workload.groups[o.group]
            guard g.loop == "open", let rate = g.rate else { return nil }
            let m = o.measuring && o.loopEnd > o.measureStart ? ns(o.loopEnd - o.measureStart) : 0
            return OpenLoopWorkerReport.Input(index: o.index, group: g.name, target: rate, operations: o.counters.draws, measuredNs: m,
                                              endLagNs: ns(o.endLagTicks),
                                              // The lag at the end is a lag seen too: a worker preempted
                                              // after its last operation is behind by more than any pace() saw.
                                              maxLagNs: ns(max(o.counters.maxLagTicks, o.endLagTicks)))
        }, windowNs: windowNs)

        // Verdict: a broken tool first, then the watchdog's, then failures, then an open loop that fell behind.
        let toolFailed = stuck || memory.corruptions > 0 || memory.freeErrors > 0 || memory.validate != "ok" ||
            (memory.accounting?.allocated ?? 0) != 0 || stop == .timeout
        let verdictValue: Verdict = slow.watchdog?.verdict
            ?? (totalFailures > 0 ? .failures : (openLoop?.overloaded == true ? .overloaded : .ok))
        let verdict = toolFailed ? "error" : verdictValue.rawValue
        let exit: ExitStatus = interrupted ? (options.handleInterrupts ? Interrupt.exitStatus : .interrupted) : (toolFailed ? .toolFailed : verdictValue.exitStatus)
        let slowPath = buildSlowPath(slow, verdict: verdict, allocator: allocator, sum: sum)
        let iso = ISO8601DateFormatter()
        let stamp = RunResult.timestamp(startedAt)
        let sampleEvery = workload.run.sampleEvery

        var result = RunResult(
            allocator: backend, runID: "\(workload.name)-\(stamp)", startedAt: iso.string(from: startedAt), finishedAt: iso.string(from: Date()),
            workloadFile: options.workloadFile, workload: workload, shard: options.shard,
            machine: .current(topology: topology ?? allocator!.topology),
            status: RunStatus(verdict: verdict, exitCode: exit.rawValue,
                              partial: interrupted || stuck || stop == .timeout || slow.watchdog != nil,
                              stopReason: (exit == .terminated ? StopReason.terminated : stop).rawValue, problems: Array(problems.prefix(20))),
            timing: TimingReport(clock: CycleClock.source, nsPerTick: clock.nsPerTick, warmupNs: workload.run.warmupMs * 1_000_000,
                                 measuredNs: Int(windowNs), sampleEvery: sampleEvery, timedCalls: sum(\.timedCalls),
                                 latencyOverflows: sum(\.latencyOverflows), harnessOverhead: overhead,
                                 clockStepTicks: clock.stepTicks, clockStepNs: clock.stepNs, resolutionNs: max(1, clock.stepNs)),
            throughput: ThroughputReport(calls: totalCalls, callsPerSecond: perSecond(totalCalls), operations: totalDraws,
                                         operationsPerSecond: perSecond(totalDraws), allocs: sum(\.allocs), frees: sum(\.frees),
                                         remoteFrees: sum(\.remoteFrees), failedAllocs: sum(\.failures),
                                         series: SeriesReport(bucketMs: workload.run.bucketMs, calls: series, failures: failSeries, allocs: allocSeries)),
            latency: latency,
            failures: FailureReport(total: totalFailures, byOrder: byOrder, byFlags: byFlags, byLevel: byLevel, entries: failTable),
            counters: counterTable,
            locks: locks,
            handoff: HandoffReport(sent: sum(\.handoffSent), freedRemotely: sum(\.remoteFrees), fullWaits: sum(\.handoffWaits),
                                   abandoned: sum(\.handoffAbandoned), emptyPolls: sum(\.consumeEmpty),
                                   freedAtExit: sum(\.handoffFreedAtExit)),
            memoryCheck: memory, workers: workers, operations: operations, slowPath: slowPath, openLoop: openLoop)
        if workload.groups.count > 1 { result.latencyByGroup = byGroup.rows(classes: plan.classes, keys: workload.groups.map(\.name)) }
        if !byLabel.order.isEmpty { result.latencyByLabel = byLabel.rows(classes: plan.classes, keys: byLabel.order) }
        return result
    }

    /// pagestorm's counters over the measured window.
    func counterReport(_ counters: (start: [ZoneCounters], end: [ZoneCounters], vmstatAtEnd: [String: Int]), allocator: PageAllocator) -> CounterReport {
        var delta: [String: Int] = [:]
        var total = counters.end[0]
        total.values = [Int](repeating: 0, count: VMEvent.count)
        let numaEvents: [VMEvent] = [.numaHit, .numaMiss, .numaForeign, .numaInterleave, .numaLocal, .numaOther]
        var numaByNode = [[String: Int]](repeating: Dictionary(uniqueKeysWithValues: numaEvents.map { ($0.name, 0) }),
                                         count: allocator.nodeCount)
        for z in 0..<counters.end.count {
            var d = counters.end[z]
            for e in 0..<VMEvent.count { d.values[e] = counters.end[z].values[e] - counters.start[z].values[e] }
            total = total + d
            let zone = allocator.zoneDescription(z)
            delta["pgalloc_" + zone.type.name.lowercased(), default: 0] += d[.pgalloc]
            for e in numaEvents { numaByNode[zone.node.rawValue][e.name, default: 0] += d[e] }
        }
        for e in VMEvent.allCases where e != .pgalloc { delta[e.name] = total[e] }
        let hits = total[.pcpAllocHit], refills = total[.pcpRefill]
        return CounterReport(vmstatDelta: delta, vmstatAtEnd: counters.vmstatAtEnd,
                             pcpHitRate: hits + refills > 0 ? Double(hits) / Double(hits + refills) : nil,
                             zoneLockAcquisitions: total[.zoneLockAcquire], zoneLockContended: total[.zoneLockContended],
                             pcpLockContended: total[.pcpLockContended], numaByNode: numaByNode,
                             pcpLock: allocator.pcpLock.rawValue, pcpLockNote: allocator.pcpLockNote)
    }

    func buildSlowPath(_ s: SlowInputs, verdict: String, allocator: PageAllocator?, sum: ((WorkerCounters) -> Int) -> Int) -> SlowPathReport {
        let start = Dictionary(s.start.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        var window: [String: Int] = [:]
        for (name, v) in s.end { window[name] = v - (start[name] ?? 0) }
        // resv_wait_ns_max is a maximum, not a sum: report it as is.
        if let m = s.end.first(where: { $0.name == "resv_wait_ns_max" }) { window[m.name] = m.value }
        let total = Dictionary(s.total.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let events = s.oomEvents.map { e in
            OOMEventReport(atMs: (Double(e.atNs) - Double(s.goNs)) / 1e6, kind: e.kind, victim: e.victim, victimName: e.victimName,
                           badness: e.badness, triggeredBy: e.triggeredBy, order: e.order, flags: e.flags)
        }
        let callerOps = workload.harness.callerLoop && workload.groups.contains { $0.ops.contains { $0.kind == .alloc && $0.flags.contains("__GFP_NOFAIL") } }
        let reserveOps = workload.groups.contains { $0.ops.contains { $0.reserve != nil } }
        let stops = s.groupStops.enumerated().compactMap { g, t -> GroupStop? in
            t == 0 || g >= workload.groups.count ? nil : GroupStop(group: workload.groups[g].name, atMs: (Double(t) - Double(s.goNs)) / 1e6)
        }
        return SlowPathReport(
            verdict: verdict, watchdog: s.watchdog, counters: window, countersTotal: total, oomEvents: events,
            tasks: TaskReport(registered: outputs.reduce(0) { $0 + $1.generation }, kills: sum(\.kills), restarts: sum(\.restarts),
                              restartFailures: sum(\.restartFailures), restartAllocs: sum(\.restartAllocs), killedCalls: sum(\.killedCalls),
                              abortedCalls: sum(\.abortedCalls), deadWorkers: outputs.filter(\.dead).count, handoffToGone: sum(\.handoffToGone)),
            stalls: s.stalls,
            callerLoop: CallerLoopReport(enabled: callerOps, retries: sum(\.callerRetries), deadlockWarnings: sum(\.callerWarnings),
                                         maxTries: outputs.map(\.counters.callerMaxTries).max() ?? 0, abandoned: sum(\.callerAbandoned)),
            failureCauses: FailureCauses(outOfMemory: sum(\.failOOM), injected: sum(\.failInjected), groupLimit: sum(\.failGroupLimit),
                                         timedOut: sum(\.failTimedOut), reservation: sum(\.failReservation)),
            damage: DamageReport(skipped: sum(\.skipped), errorsReturned: sum(\.safeErrors), lostDataPages: sum(\.lostPages),
                                 subsystemFailures: sum(\.subsystemFailures), groupsStopped: stops),
            reclaim: ReclaimReport(createdClean: sum(\.lruClean), createdDirty: sum(\.lruDirty), createdAnon: sum(\.lruAnon),
                                   atEndClean: s.reclaimableAtEnd[.clean] ?? 0, atEndDirty: s.reclaimableAtEnd[.dirty] ?? 0,
                                   atEndAnon: s.reclaimableAtEnd[.anon] ?? 0),
            reservations: ReservationReport(enabled: workload.harness.reservations && reserveOps, transactions: sum(\.reservedTransactions),
                                            refused: sum(\.failReservation)),
            warnings: s.warnings, injectedFailures: s.injected, memoryGroups: s.memoryGroups, fragmentation: s.fragmentation,
            messages: s.messages, endAborted: s.endAborted && s.watchdog == nil)
    }
}

extension RunResult {
    /// 20250101T120000.123456Z-4242: every results file's stamp (ResultsFile.stamp).
    static func timestamp(_ d: Date) -> String { ResultsFile.stamp(d) }

    /// results/<workload>-<UTC time to the microsecond>-<pid>.json
    public var defaultPath: String { "results/\(runID).json" }

    /// Failures make exit 1, tool failures 3, Ctrl-C 130.
    public var exitStatus: ExitStatus { ExitStatus(rawValue: status.exitCode) ?? .toolFailed }
}

extension CycleClock {
    /// The counter behind `now()`.
    public static var source: String {
        #if arch(x86_64)
        return "rdtsc"
        #elseif arch(arm64)
        return "cntvct"
        #else
        return "monotonic"
        #endif
    }
}

/// Histograms, calls and failures merged per (key, global class), keys in first-seen order.
struct KeyedLatencies {
    var order: [String] = []
    var entries: [String: [Int: (histogram: Histogram<UInt64>, calls: Int, failures: Int)]] = [:]

    mutating func add(_ key: String, _ global: Int, _ h: Histogram<UInt64>, calls: Int, failures: Int) {
        if entries[key] == nil { order.append(key); entries[key] = [:] }
        if entries[key]![global] == nil { entries[key]![global] = (LatencyRecorder.make(), 0, 0) }
        entries[key]![global]!.histogram.add(h)
        entries[key]![global]!.calls += calls
        entries[key]![global]!.failures += failures
    }

    /// Rows for `keys` in that order, classes in the run's class order.
    func rows(classes: [OpClass], keys: [String]) -> [KeyedLatency] {
        keys.flatMap { key in
            classes.indices.compactMap { g -> KeyedLatency? in
                guard let e = entries[key]?[g] else { return nil }
                return KeyedLatency(key: key, name: classes[g].name, opClass: classes[g], calls: e.calls, failures: e.failures,
                                    summary: e.histogram.summary(), histogram: EncodedHistogram(e.histogram))
            }
        }
    }
}
