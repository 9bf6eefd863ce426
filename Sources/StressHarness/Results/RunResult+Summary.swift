/// The readable summary `pagestorm run` prints (the results file has everything).
extension RunResult {
    public func summary() -> String {
        var out: [String] = []
        func line(_ s: String = "") { out.append(s) }
        let w = workload
        let from = workloadFile ?? "built-in"
        line("pagestorm run: \(w.name) (\(from)); allocator \(allocator)")
        line("machine: \(machine.cpuModel), \(machine.cores) cores, \(machine.kernel), swift \(machine.swiftVersion), rev \(machine.gitRevision)")
        let length = w.run.mode == "ops" ? "\(w.run.ops ?? 0) operations per worker" : "\(w.run.durationMs ?? 0) ms"
        let loops = Set(w.groups.map(\.loop)).sorted().joined(separator: "+")
        line("workload: \(w.workerCount) worker(s) in \(w.groups.count) group(s), \(loops) loop; \(length) after \(w.run.warmupMs) ms warm-up; seed \(w.run.seed); \(w.topology.nodes) node(s), \(w.memory.pagesPerNode) pages/node of \(w.memory.pageSize) B")
        let sampling = w.groups.contains { $0.loop == "closed" }
            ? (timing.sampleEvery == 1 ? "every operation timed" : "latency sampled: 1 in \(timing.sampleEvery) operations timed (closed loop)")
            : "every operation timed"
        let openNote = w.groups.contains { $0.loop == "open" } ? "; open loop timed from each operation's intended start" : ""
        line("timing: \(timing.clock) at \(fmt(timing.nsPerTick, 4)) ns/tick; \(sampling)\(openNote); \(timing.timedCalls) calls timed")
        if let step = timing.clockStepNs, let ticks = timing.clockStepTicks {
            line("resolution: \(fmt(timing.resolutionNs ?? max(1, step), 1)) ns; the counter moves in steps of \(fmt(ticks, 1)) tick(s) = \(fmt(step, 2)) ns, the histogram keeps 1 ns to 2,047 ns and 3 significant digits above; means are finer than a step")
        }
        if let o = timing.harnessOverhead {
            line("harness overhead per allocator call: \(fmt(o.nsPerCallUntimed, 1)) ns untimed, \(fmt(o.nsPerCallTimed, 1)) ns timing every call, \(fmt(o.nsPerCallAsRun, 1)) ns as run")
        }
        line()
        let t = throughput
        line("throughput: \(human(t.callsPerSecond)) calls/s (\(t.calls) calls: \(t.allocs) allocs, \(t.failedAllocs) failed, \(t.frees) frees, \(t.remoteFrees) remote frees); \(human(t.operationsPerSecond)) ops/s over \(fmt(Double(timing.measuredNs) / 1e9, 3)) s")
        for wr in workers {
            var s = "  worker \(wr.index) (\(wr.group), \(wr.pinnedTo)\(wr.pinError != nil ? " pin failed" : "")): \(human(wr.callsPerSecond)) calls/s, \(wr.operations) ops, \(wr.failures) failures"
            if let o = openLoop?.workers.first(where: { $0.index == wr.index }) {
                s += "; open loop: \(human(o.achievedOpsPerSecond)) of \(human(o.targetOpsPerSecond)) ops/s, lag at the end \(fmtNs(o.endLagNs)), max \(fmtNs(o.maxLagNs))\(o.keptRate ? "" : " (behind)")"
            } else if let lag = wr.maxLagNs { s += ", max lag \(fmtNs(lag))" }
            line(s)
        }
        if let o = openLoop {
            line("  open loop: \(human(o.achievedOpsPerSecond)) of \(human(o.targetOpsPerSecond)) ops/s offered in total; a worker keeps its rate while its lag at the end is at most \(fmtNs(o.lagBoundNs))")
            if let m = o.message { line(m) }
        }
        let series = t.series.calls
        if !series.isEmpty {
            let full = series.count > 2 ? Array(series.dropLast()) : series
            let rates = full.map { Double($0) / (Double(t.series.bucketMs) / 1000) }.sorted()
            line("  per \(t.series.bucketMs) ms (\(series.count) buckets): min \(human(rates.first ?? 0)) / median \(human(rates[rates.count / 2])) / max \(human(rates.last ?? 0)) calls/s")
        }
        line()
        out.append(contentsOf: RunResult.latencyTable(latency))
        for (rows, title) in [(latencyByGroup, "by group (ns)"), (latencyByLabel, "by label (ns)")] {
            guard let rows, !rows.isEmpty else { continue }
            line()
            out.append(contentsOf: RunResult.latencyTable(rows.map { k in
                ClassLatency(name: "\(k.key): \(k.name)", opClass: k.opClass, calls: k.calls, failures: k.failures, summary: k.summary, histogram: k.histogram)
            }, title: title))
        }
        line()
        if failures.total == 0 {
            line("failures: none")
        } else {
            func kv(_ d: [String: Int]) -> String { d.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
            line("failures: \(failures.total); by order {\(kv(failures.byOrder))}; by flags {\(kv(failures.byFlags))}; by level of need {\(kv(failures.byLevel))}")
        }
        let c = counters
        if let p = peer {
            line("peer: \(p.version) from \(p.library) (\(p.entryPoints)); no pagestorm counters")
            line("  off (pagestorm-only): " + p.off.joined(separator: "; "))
        } else {
        line("counters: pcp hit rate \(c.pcpHitRate.map { fmt($0 * 100, 2) + "%" } ?? "n/a"); zone lock acquisitions \(c.zoneLockAcquisitions) (contended \(c.zoneLockContended)); pcp trylock fallbacks \(c.pcpLockContended); pcp_lock \(c.pcpLock ?? "trylock")")
        if let note = c.pcpLockNote { line("  \(note)") }
        let shown = c.vmstatDelta.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        line("  vmstat over the window: " + (shown.isEmpty ? "all zero" : shown.joined(separator: ", ")))
        if let byNode = c.numaByNode, byNode.count > 1 {
            let keys = ["numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other"]
            let names = workload.topology.numbers
            for (n, d) in byNode.enumerated() {
                line("  node\(n < names.count ? names[n] : n): " + keys.map { "\($0) \(d[$0] ?? 0)" }.joined(separator: ", "))
            }
        }
        }
        for l in locks {
            line("lock \(l.name): \(l.acquisitions) acquisitions, \(l.contended) contended, wait total \(fmtNs(l.waitNsTotal)), max \(fmtNs(l.waitNsMax))\(l.abandoned > 0 ? ", \(l.abandoned) abandoned at the end" : "")")
        }
        if handoff.sent > 0 || handoff.freedRemotely > 0 {
            line("hand-off: \(handoff.sent) sent, \(handoff.freedRemotely) freed by another worker, \(handoff.fullWaits) full-ring waits, \(handoff.abandoned) abandoned at the end, \(handoff.emptyPolls) empty polls"
                 + ((handoff.freedAtExit ?? 0) > 0 ? ", \(handoff.freedAtExit ?? 0) freed when their consumer's task exited (OOM kill, group stop)" : ""))
        }
        let m = memoryCheck
        var mem = peer == nil ? "memory: validate() \(m.validate == "ok" ? "ok" : "FAILED")"
            : "memory: peer accounting \(m.validate == "ok" ? "ok" : "FAILED"): \(peer!.allocatedBlocks) blocks (\(peer!.allocatedPages) pages) allocated = \(peer!.freedBlocks) (\(peer!.freedPages)) freed, \(peer!.misaligned) misaligned"
        if let a = m.accounting { mem += "; managed \(a.managed) = buddy \(a.buddyFree) + per-CPU \(a.perCPU) + allocated \(a.allocated)" }
        mem += "; \(m.freedAtCleanup) blocks freed at clean-up; pattern corruptions \(m.corruptions); free errors \(m.freeErrors)"
        line(mem)
        for p in m.placement ?? [] { line("placement: \(p.line)") }
        if let n = noise { line(n.summaryLine) }
        if !w.policy.isEmpty {
            let nonDefault = Policy.keys.filter { w.policy[$0] != nil && Policy.defaults[$0] != w.policy[$0] }
            // A policy acts only in the slow path: say when no allocation got there.
            let slowEntered = counters.vmstatAtEnd["alloc_slowpath"] ?? 0
            line("policy: " + (nonDefault.isEmpty ? "all defaults" : nonDefault.map { "\($0)=\(w.policy[$0]!)" }.joined(separator: ", "))
                 + (w.harness.callerLoop ? "; NOFAIL as a caller loop (harness)" : "")
                 + (!nonDefault.isEmpty && slowEntered == 0 ? "; no effect in this run: the slow path, where the policy acts, was never entered (alloc_slowpath 0)" : ""))
        }
        out.append(contentsOf: slowPath.summaryLines(workload: w))
        for p in status.problems { line("problem: \(p)") }
        if status.partial { line("partial: the run stopped early (\(status.stopReason))") }
        return out.joined(separator: "\n")
    }
}

extension RunResult {
    /// The latency columns of the summary, after the class name.
    public static let latencyColumns = ["calls", "failed", "mean", "p50", "p90", "p99", "p99.9", "p99.99", "max"]

    /// The summary's latency table: a header and one row per class.
    ///
    /// Every column is as wide as its widest cell, and columns are separated
    /// by at least two spaces, so a long value never runs into its
    /// neighbour. (With fixed 10-character columns, a saturated open loop's
    /// p90 of 948436991 ns and p99 of 1032847359 ns printed as one number,
    /// 9484369911032847359, and every later value moved one column left,
    /// leaving max empty: issue 15.) The mean has one decimal: it is the only
    /// figure finer than the clock's step (see `TimingReport.clockStepNs`).
    public static func latencyTable(_ latency: [ClassLatency], title: String = "latency (ns)") -> [String] {
        let header = [title] + latencyColumns
        let rows: [[String]] = latency.map { l in
            let s = l.summary
            let empty = l.histogram.totalCount == 0
            let pcts = [s.p50, s.p90, s.p99, s.p999, s.p9999, s.max].map { empty ? "-" : String($0) }
            return [l.name, String(l.calls), String(l.failures), empty ? "-" : fmt(s.mean, 1)] + pcts
        }
        var widths = header.map(\.count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        widths[0] = max(widths[0], 22)
        func render(_ cells: [String]) -> String {
            var s = cells[0] + String(repeating: " ", count: widths[0] - cells[0].count)
            for i in 1..<cells.count {
                s += "  " + String(repeating: " ", count: widths[i] - cells[i].count) + cells[i]
            }
            return s
        }
        return [render(header)] + rows.map(render)
    }
}

func fmtNs(_ ns: Double) -> String {
    if ns >= 1e9 { return fmt(ns / 1e9, 2) + " s" }
    if ns >= 1e6 { return fmt(ns / 1e6, 2) + " ms" }
    if ns >= 1e3 { return fmt(ns / 1e3, 1) + " us" }
    return fmt(ns, 0) + " ns"
}

func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
    s.count >= w ? s + " " : (right ? String(repeating: " ", count: w - s.count) + s : s + String(repeating: " ", count: w - s.count))
}

extension SlowPathReport {
    /// The slow-path part of the summary: reclaim, OOM, tasks, stalls, the
    /// caller loop, damage by level, warnings, groups, and the watchdog's report.
    func summaryLines(workload w: Workload) -> [String] {
        var out: [String] = []
        let c = counters
        func v(_ k: String) -> Int { c[k] ?? 0 }
        let anyReclaim = ["allocstall", "pgscan_direct", "pgscan_kswapd", "kswapd_wakeups", "pswpout", "pgwriteback"].contains { v($0) > 0 }
        if anyReclaim || reclaim.createdClean + reclaim.createdDirty + reclaim.createdAnon > 0 {
            let byZone = ["dma", "dma32", "normal", "movable"].filter { v("allocstall_" + $0) > 0 }.map { "allocstall_\($0) \(v("allocstall_" + $0))" }
            out.append("reclaim: allocstall \(v("allocstall"))\(byZone.isEmpty ? "" : " (" + byZone.joined(separator: ", ") + ")"); direct scanned \(v("pgscan_direct")) stole \(v("pgsteal_direct")); kswapd woken \(v("kswapd_wakeups")), scanned \(v("pgscan_kswapd")) stole \(v("pgsteal_kswapd")); written back \(v("pgwriteback")), swapped out \(v("pswpout")); LRU pages created clean/dirty/anon \(reclaim.createdClean)/\(reclaim.createdDirty)/\(reclaim.createdAnon), at the end \(reclaim.atEndClean)/\(reclaim.atEndDirty)/\(reclaim.atEndAnon)")
        }
        if v("oom_kill") + v("oom_nofs_no_kill") + v("oom_no_victim") + tasks.kills > 0 || !oomEvents.isEmpty {
            out.append("OOM: \(v("oom_kill")) kill(s), \(v("oom_reaped")) reaped, \(v("oom_victim_timeout")) victim timeout(s), \(v("oom_no_victim")) with no victim, \(v("oom_nofs_no_kill")) NOFS/NOIO without a kill; \(v("oom_waits")) wait(s) on a victim (\(v("oom_wait_timeouts")) timed out); reserve dips: ALLOC_OOM \(v("oom_reserve_dips")), NOFAIL \(v("nofail_reserve_dips"))")
            out.append("tasks: \(tasks.registered) registered, \(tasks.kills) killed and exited, \(tasks.restarts) restarted, \(tasks.deadWorkers) worker(s) gone for good; \(tasks.killedCalls) call(s) returned .killed"
                       + (tasks.restartFailures > 0 ? "; \(tasks.restartFailures) restart(s) refused: the allocator's task table (65,535 tasks per run) is full" : ""))
        }
        if stalls.count > 0 {
            out.append("stalls (>= \(stalls.thresholdMs) ms): \(stalls.count), max \(stalls.maxMs) ms, total \(stalls.totalMs) ms\(stalls.unfinished > 0 ? ", \(stalls.unfinished) still stalled at the end" : "")")
        } else {
            out.append("stalls (>= \(stalls.thresholdMs) ms): none")
        }
        if callerLoop.enabled || callerLoop.retries > 0 {
            out.append("caller NOFAIL loop: \(callerLoop.retries) failed tries, \(callerLoop.deadlockWarnings) \"possible memory allocation deadlock\" line(s), at most \(callerLoop.maxTries) tries for one allocation, \(callerLoop.abandoned) loop(s) still going at the end")
        }
        let d = damage
        if d.skipped + d.errorsReturned + d.lostDataPages + d.subsystemFailures > 0 {
            var s = "damage by level of need: 0 skipped \(d.skipped), 1 errors returned \(d.errorsReturned), 2 lost data \(d.lostDataPages) page(s), 3 subsystem failures \(d.subsystemFailures)"
            if !d.groupsStopped.isEmpty { s += " (stopped: " + d.groupsStopped.map { "\($0.group) at \(fmt($0.atMs, 0)) ms" }.joined(separator: ", ") + ")" }
            out.append(s)
        }
        let fc = failureCauses
        if fc.injected + fc.groupLimit + fc.timedOut + fc.reservation > 0 {
            out.append("failure causes: out of memory \(fc.outOfMemory), injected \(fc.injected), memory-group limit \(fc.groupLimit), max_stall_ms \(fc.timedOut), reservation refused \(fc.reservation)")
        }
        if reservations.enabled {
            out.append("reservations: \(reservations.transactions) transaction(s) reserved, \(reservations.refused) refused; pages reserved \(v("resv_pages_reserved")), used \(v("resv_pages_used")), returned \(v("resv_pages_returned")), beyond the estimate \(v("resv_pages_overrun")); \(v("resv_waits")) wait(s), longest \(fmtNs(Double(v("resv_wait_ns_max"))))")
        }
        let wsum = warnings.failures.values.reduce(0, +)
        if wsum > 0 {
            out.append("warn_alloc: \(wsum) failure(s) counted, \(warnings.printed) printed, \(warnings.suppressedRatelimit) rate-limited, \(warnings.suppressedNoWarn) NOWARN, \(warnings.injected) injected")
        }
        for g in memoryGroups {
            out.append("memory group \(g.name): limit \(g.limitPages), max usage \(g.maxUsagePages), hit the limit \(g.maxEvents) time(s), failcnt \(g.failcnt), reclaimed \(g.reclaimedPages), OOM kills \(g.oomKills)")
        }
        if let wd = watchdog {
            out.append("watchdog: \(wd.verdict.rawValue) after \(wd.stalledMs) ms without a successful allocation\(wd.cycle.isEmpty ? "" : "; cycle of waits: tasks " + wd.cycle.map(String.init).joined(separator: " -> "))")
            for t in wd.tasks { out.append("  " + t) }
            for l in wd.workers { out.append("  " + l) }
        }
        return out
    }
}
