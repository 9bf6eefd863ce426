import Foundation

/// How good is the gate? (`pagestorm gate-eval`, a benchmark command.)
///
/// Injects slowdowns without touching the allocator: the workload's `touch`
/// (bytes written and checked per page) grows until an operation costs about
/// 5%, 10%, 25% more, calibrated on this machine first. Then, for each of
/// `comparisons` rounds, `reps` runs of the original and `reps` of each
/// variant, interleaved, plus a second set of the original (A/A); each rule
/// decides on operations/s of every comparison, and again on operations per
/// CPU-second of the workers (the same runs). Reported per rule and kind:
/// how often it raised an alarm (A/A: false alarms; slowdowns: detections).
public struct GateEval {
    public var workload: Workload
    public var comparisons = 20
    public var reps = 5
    public var slowdowns: [Double] = [5, 10, 25]
    public var log: (String) -> Void = { _ in }

    public init(workload: Workload) { self.workload = workload }

    public struct RuleOutcome: Codable, Sendable {
        public var rule: String
        public var alarms: Int
        public var comparisons: Int
        public var rate: Double
    }

    public struct Kind: Codable, Sendable {
        /// "A/A" or "+10%".
        public var name: String
        public var targetSlowdownPercent: Double
        /// The extra touch bytes that were calibrated to cost that.
        public var extraTouch: Int
        /// Median over comparisons of (median base ops/s / median variant ops/s - 1), in percent.
        public var measuredSlowdownPercent: Double
        /// The rules deciding on operations/s (wall time).
        public var rules: [RuleOutcome]
        /// The same on operations per CPU-second of the workers (absent in reports written before it).
        public var measuredSlowdownPercentPerCPU: Double? = nil
        public var rulesPerCPU: [RuleOutcome]? = nil
    }

    public struct Report: Codable, Sendable {
        public var schema = "pagestorm.gate-eval/1"
        public var startedAt: String
        public var machine: MachineInfo
        public var workload: String
        public var durationMs: Int
        public var reps: Int
        public var comparisons: Int
        /// Percent slowdown per extra touch byte, measured before the evaluation.
        public var calibrationPercentPerByte: Double
        public var kinds: [Kind]
        public var flaggedRuns: Int
        public var wallSeconds: Double
    }

    public static let rules = [
        "pagestorm check (U p<0.05 and bootstrap CI excludes 1, beyond 5%)",
        "compare.py (U test, p<0.05)",
        "LKP range rule (ranges disjoint, means differ >= 1%)",
        "pagestorm check with trust_flagged (the first rule, flagged runs allowed to decide)",
    ]

    /// Does `rule` raise an alarm on operations/s samples? `worseOnly`: count only a slowdown.
    public static func alarm(rule: Int, base: [Double], new: [Double], worseOnly: Bool, flagged: Bool = false) -> Bool {
        let mb = Stats.median(base), mn = Stats.median(new)
        let worse = mn < mb
        if worseOnly && !worse { return false }
        switch rule {
        case 0, 3:
            // Rule 0 is check's default: a flagged run never decides a timing change. Rule 3 trusts flagged runs.
            if rule == 0 && flagged { return false }
            guard let u = Stats.mannWhitney(base, new), u.p < 0.05,
                  let ci = Stats.bootstrapRatioOfMedians(base: base, new: new), ci.low > 1 || ci.high < 1 else { return false }
            let change = abs(Stats.harmonicMean(new) / Stats.harmonicMean(base) - 1) * 100
            return change > 5
        case 1:
            return (Stats.mannWhitney(base, new)?.p ?? 1) < 0.05
        default:
            guard let bmin = base.min(), let bmax = base.max(), let nmin = new.min(), let nmax = new.max() else { return false }
            let disjoint = nmax < bmin || nmin > bmax
            return disjoint && abs(Stats.mean(new) / Stats.mean(base) - 1) >= 0.01
        }
    }

    func variant(extraTouch: Int) -> Workload {
        var w = workload
        let page = w.memory.pageSize
        for g in w.groups.indices {
            for i in w.groups[g].ops.indices where w.groups[g].ops[i].kind == .alloc && w.groups[g].ops[i].touch > 0 {
                w.groups[g].ops[i].touch = min(page, (w.groups[g].ops[i].touch + extraTouch) / 8 * 8)
            }
        }
        return w
    }

    /// One run: operations/s, operations per CPU-second of the workers, and whether it flagged itself untrustworthy.
    func measure(_ w: Workload) throws -> Sample {
        var o = RunOptions()
        o.measureOverhead = false
        let r = try StressRun.run(w, options: o)
        guard r.status.verdict == "ok" || r.status.verdict == "failures" else {
            throw InstructionsError(message: "gate-eval: a run of \(w.name) ended \(r.status.verdict): \(r.status.problems.first ?? "")")
        }
        let flagged = Self.isFlagged(r)
        let cpuNs = r.noise?.workers.reduce(0) { $0 + $1.cpuNs } ?? 0
        // As compare does: operations per CPU-second are flagged only by a partial run or steal time.
        let cpuFlagged = r.status.partial || (r.noise?.stealPercent ?? 0) > NoiseReport.maxStealPercent
        return Sample(opsPerSecond: r.throughput.operationsPerSecond,
                      opsPerCPUSecond: cpuNs > 0 ? Double(r.throughput.operations) / (Double(cpuNs) / 1e9) : r.throughput.operationsPerSecond,
                      flagged: [flagged, cpuFlagged])
    }

    /// [0] operations/s, [1] operations per CPU-second; `flagged` per metric.
    struct Sample { var opsPerSecond: Double; var opsPerCPUSecond: Double; var flagged: [Bool] }

    /// Hook for noise flags (set when results carry them).
    static func isFlagged(_ r: RunResult) -> Bool { r.status.partial || (r.noise?.untrustworthy ?? false) }

    public func run() throws -> Report {
        let t0 = Date()
        guard workload.groups.contains(where: { $0.ops.contains { $0.kind == .alloc && $0.touch > 0 } }) else {
            throw InstructionsError(message: "gate-eval: workload \(workload.name) touches nothing (touch = 0 everywhere); the slowdown is injected through touch")
        }
        // Calibration: 5 interleaved pairs, the original against +1024 touch bytes,
        // on operations per CPU-second (other jobs' preemption does not move it).
        let probe = 1024
        var b: [Double] = [], v: [Double] = []
        for i in 0..<5 {
            if i % 2 == 0 { b.append(try measure(workload).opsPerCPUSecond); v.append(try measure(variant(extraTouch: probe)).opsPerCPUSecond) }
            else { v.append(try measure(variant(extraTouch: probe)).opsPerCPUSecond); b.append(try measure(workload).opsPerCPUSecond) }
        }
        let perByte = max(1e-4, (Stats.median(b) / Stats.median(v) - 1) * 100 / Double(probe))
        log(String(format: "calibration: +%d touch bytes cost %.1f%% (%.4f%%/byte)", probe, perByte * Double(probe), perByte))
        let extras = slowdowns.map { Int(($0 / perByte).rounded()) }
        for (s, e) in zip(slowdowns, extras) { log(String(format: "+%.0f%%: +%d touch bytes", s, e)) }
        // Samples: per comparison, base, A' and each variant; [0] ops/s, [1] ops per CPU-second.
        var base = [[[Double]]](repeating: [[Double]](repeating: [], count: comparisons), count: 2), aa = base
        var vars = [[[[Double]]]](repeating: base, count: slowdowns.count)
        // Per metric, per kind (A/A, then each slowdown), per comparison: was a run flagged?
        var flaggedCmp = [[[Bool]]](repeating: [[Bool]](repeating: [Bool](repeating: false, count: comparisons), count: slowdowns.count + 1), count: 2)
        var flaggedRuns = 0
        for c in 0..<comparisons {
            for r in 0..<reps {
                // Interleave; alternate the order each repetition (ABBA).
                var jobs: [(Int, Workload)] = [(-2, workload), (-1, workload)] + extras.enumerated().map { ($0.offset, variant(extraTouch: $0.element)) }
                if r % 2 == 1 { jobs.reverse() }
                for (k, w) in jobs {
                    let m = try measure(w)
                    if m.flagged[0] { flaggedRuns += 1 }
                    for (mi, x) in [m.opsPerSecond, m.opsPerCPUSecond].enumerated() {
                        switch k {
                        case -2: base[mi][c].append(x)
                        case -1: aa[mi][c].append(x)
                        default: vars[k][mi][c].append(x)
                        }
                    }
                    for mi in 0..<2 where m.flagged[mi] {
                        switch k {
                        case -2: for i in flaggedCmp[mi].indices { flaggedCmp[mi][i][c] = true }
                        case -1: flaggedCmp[mi][0][c] = true
                        default: flaggedCmp[mi][k + 1][c] = true
                        }
                    }
                }
            }
            log("comparison \(c + 1)/\(comparisons) done (\(Int(Date().timeIntervalSince(t0))) s)")
        }
        func outcome(_ mi: Int, _ news: [[Double]], worseOnly: Bool, flags: [Bool]) -> [RuleOutcome] {
            (0..<Self.rules.count).map { ri in
                let n = (0..<comparisons).filter { Self.alarm(rule: ri, base: base[mi][$0], new: news[$0], worseOnly: worseOnly, flagged: flags[$0]) }.count
                return RuleOutcome(rule: Self.rules[ri], alarms: n, comparisons: comparisons, rate: Double(n) / Double(comparisons))
            }
        }
        func measured(_ mi: Int, _ news: [[Double]]) -> Double {
            Stats.median((0..<comparisons).map { (Stats.median(base[mi][$0]) / Stats.median(news[$0]) - 1) * 100 })
        }
        func kind(_ name: String, _ target: Double, _ extra: Int, _ news: [[[Double]]], worseOnly: Bool, _ k: Int) -> Kind {
            Kind(name: name, targetSlowdownPercent: target, extraTouch: extra, measuredSlowdownPercent: measured(0, news[0]),
                 rules: outcome(0, news[0], worseOnly: worseOnly, flags: flaggedCmp[0][k]),
                 measuredSlowdownPercentPerCPU: measured(1, news[1]), rulesPerCPU: outcome(1, news[1], worseOnly: worseOnly, flags: flaggedCmp[1][k]))
        }
        var kinds = [kind("A/A", 0, 0, aa, worseOnly: false, 0)]
        for (i, s) in slowdowns.enumerated() {
            kinds.append(kind(String(format: "+%.0f%%", s), s, extras[i], vars[i], worseOnly: true, i + 1))
        }
        return Report(startedAt: ISO8601DateFormatter().string(from: t0), machine: .current(), workload: workload.name,
                      durationMs: workload.run.durationMs ?? 0, reps: reps, comparisons: comparisons,
                      calibrationPercentPerByte: perByte, kinds: kinds, flaggedRuns: flaggedRuns, wallSeconds: Date().timeIntervalSince(t0))
    }
}
