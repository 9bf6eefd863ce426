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
        if let o = timing.harnessOverhead {
            line("harness overhead per allocator call: \(fmt(o.nsPerCallUntimed, 1)) ns untimed, \(fmt(o.nsPerCallTimed, 1)) ns timing every call, \(fmt(o.nsPerCallAsRun, 1)) ns as run")
        }
        line()
        let t = throughput
        line("throughput: \(human(t.callsPerSecond)) calls/s (\(t.calls) calls: \(t.allocs) allocs, \(t.failedAllocs) failed, \(t.frees) frees, \(t.remoteFrees) remote frees); \(human(t.operationsPerSecond)) ops/s over \(fmt(Double(timing.measuredNs) / 1e9, 3)) s")
        for wr in workers {
            var s = "  worker \(wr.index) (\(wr.group), \(wr.pinnedTo)\(wr.pinError != nil ? " pin failed" : "")): \(human(wr.callsPerSecond)) calls/s, \(wr.operations) ops, \(wr.failures) failures"
            if let lag = wr.maxLagNs { s += ", max lag \(fmtNs(lag))" }
            line(s)
        }
        let series = t.series.calls
        if !series.isEmpty {
            let full = series.count > 2 ? Array(series.dropLast()) : series
            let rates = full.map { Double($0) / (Double(t.series.bucketMs) / 1000) }.sorted()
            line("  per \(t.series.bucketMs) ms (\(series.count) buckets): min \(human(rates.first ?? 0)) / median \(human(rates[rates.count / 2])) / max \(human(rates.last ?? 0)) calls/s")
        }
        line()
        let nameWidth = max(24, (latency.map(\.name.count).max() ?? 0) + 2)
        let cols = ["calls", "failed", "p50", "p90", "p99", "p99.9", "p99.99", "max"]
        line(pad("latency (ns)", nameWidth) + cols.map { pad($0, 10, right: true) }.joined())
        for l in latency {
            let s = l.summary
            let values = [String(l.calls), String(l.failures)] + [s.p50, s.p90, s.p99, s.p999, s.p9999, s.max].map { l.histogram.totalCount == 0 ? "-" : String($0) }
            line(pad(l.name, nameWidth) + values.map { pad($0, 10, right: true) }.joined())
        }
        line()
        if failures.total == 0 {
            line("failures: none")
        } else {
            func kv(_ d: [String: Int]) -> String { d.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") }
            line("failures: \(failures.total); by order {\(kv(failures.byOrder))}; by flags {\(kv(failures.byFlags))}; by level of need {\(kv(failures.byLevel))}")
        }
        let c = counters
        line("counters: pcp hit rate \(c.pcpHitRate.map { fmt($0 * 100, 2) + "%" } ?? "n/a"); zone lock acquisitions \(c.zoneLockAcquisitions) (contended \(c.zoneLockContended)); pcp trylock fallbacks \(c.pcpLockContended)")
        let shown = c.vmstatDelta.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        line("  vmstat over the window: " + (shown.isEmpty ? "all zero" : shown.joined(separator: ", ")))
        for l in locks {
            line("lock \(l.name): \(l.acquisitions) acquisitions, \(l.contended) contended, wait total \(fmtNs(l.waitNsTotal)), max \(fmtNs(l.waitNsMax))\(l.abandoned > 0 ? ", \(l.abandoned) abandoned at the end" : "")")
        }
        if handoff.sent > 0 || handoff.freedRemotely > 0 {
            line("hand-off: \(handoff.sent) sent, \(handoff.freedRemotely) freed by another worker, \(handoff.fullWaits) full-ring waits, \(handoff.abandoned) abandoned at the end, \(handoff.emptyPolls) empty polls")
        }
        let m = memoryCheck
        var mem = "memory: validate() \(m.validate == "ok" ? "ok" : "FAILED")"
        if let a = m.accounting { mem += "; managed \(a.managed) = buddy \(a.buddyFree) + per-CPU \(a.perCPU) + allocated \(a.allocated)" }
        mem += "; \(m.freedAtCleanup) blocks freed at clean-up; pattern corruptions \(m.corruptions); free errors \(m.freeErrors)"
        line(mem)
        if !w.policy.isEmpty {
            let nonDefault = w.policy.filter { Policy.defaults[$0.key] != $0.value }
            line("policy: " + (nonDefault.isEmpty ? "all defaults" : nonDefault.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) + " (recorded; the slow-path policies are not built yet)")
        }
        for p in status.problems { line("problem: \(p)") }
        if status.partial { line("partial: the run stopped early (\(status.stopReason))") }
        return out.joined(separator: "\n")
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
