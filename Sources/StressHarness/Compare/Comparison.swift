import Foundation

/// The statistics of one side of one metric over its repetitions.
public struct SideStats: Codable, Sendable, Equatable {
    public var n: Int
    /// Harmonic mean for rates, arithmetic mean otherwise.
    public var mean: Double
    /// "Hmean" or "Amean".
    public var meanKind: String
    public var median: Double
    public var stddev: Double
    /// stddev / arithmetic mean, in percent.
    public var cv: Double
    public var min: Double
    public var max: Double
    public var values: [Double]

    public init(_ xs: [Double], kind: MetricKind) {
        n = xs.count
        let am = Stats.mean(xs)
        let hm = Stats.harmonicMean(xs)
        if kind == .rate && hm.isFinite { mean = hm; meanKind = "Hmean" } else { mean = am; meanKind = "Amean" }
        median = Stats.median(xs)
        stddev = Stats.stddev(xs)
        cv = am != 0 ? stddev / abs(am) * 100 : 0
        min = xs.min() ?? .nan
        max = xs.max() ?? .nan
        values = xs
    }
}

/// One metric compared.
public struct MetricComparison: Codable, Sendable {
    public var metric: MetricInfo
    public var base: SideStats?
    public var new: SideStats?
    /// The change of the mean, in percent, positive = better, negative = worse
    /// (as mmtests prints it). For exact counters: new - base over base, signed as measured.
    public var changePercent: Double?
    /// The raw change of the mean (new - base), in the metric's unit.
    public var delta: Double?
    public var uTest: Stats.UTest?
    /// Percentile bootstrap 95% interval of median(new) / median(base).
    public var ratioCI: [Double]?
    /// The U test says p < alpha and the interval excludes 1 (exact counters: any difference).
    public var significant: Bool
    /// Better or worse, when significant: "worse", "better", "changed" (exact counters), or "same".
    public var direction: String
    /// Timing metric where a side has a repetition flagged untrustworthy.
    public var flagged: Bool
    /// Why the test cannot decide (too few repetitions), if so.
    public var note: String?
    /// The paired rule's decision (compare/check with pairing: repetitions paired by file name,
    /// `pagestorm ab`'s rounds); when present it, not the U test, makes the change significant.
    public var paired: PairedRule.Decision? = nil
    /// The paired median change with the sign of `changePercent` (+ better, - worse), in percent.
    public var pairedChangePercent: Double? {
        paired.map { metric.better == .lower ? -$0.median : $0.median }
    }
}

public struct PointComparison: Codable, Sendable {
    public var id: String
    public var workload: String
    public var baseReps: Int
    public var newReps: Int
    public var baseFiles: [String]
    public var newFiles: [String]
    public var metrics: [MetricComparison]
    /// Geometric mean over the timing metrics of new/base "cost" ratios (>1 worse), and the number of metrics in it.
    public var geomeanCostRatio: Double?
    public var geomeanMetrics: Int
    public var warnings: [String]
    /// Repetitions flagged untrustworthy (file: reason).
    public var flaggedReps: [String]
}

public struct Comparison: Codable, Sendable {
    public static let schema = "pagestorm.compare/1"
    public var schema = Comparison.schema
    public var base: String
    public var new: String
    public var alpha: Double
    public var points: [PointComparison]
    /// Points present on one side only.
    public var onlyInBase: [String]
    public var onlyInNew: [String]
    public var warnings: [String]
}

public struct CompareOptions: Sendable {
    public var alpha = 0.05
    public var bootstrapRounds = 2000
    /// Let repetitions flagged untrustworthy decide timing changes.
    public var trustFlagged = false
    /// Only metrics whose id matches one of these globs (nil: all).
    public var metricFilter: [String]? = nil
    /// Decide timing metrics with the paired rule on repetitions paired by file name (rep-<n>.json of
    /// each side: `pagestorm ab`'s rounds), instead of the U test and bootstrap interval.
    public var paired = false
    public var pairedRule = PairedRule()
    public init() {}
}

public enum Comparer {
    /// The timing metric that preemption does not move (only partial runs and steal time flag it).
    public static let perCPUMetric = "throughput/ops_per_cpu_s"
    /// Pairs the points of the two sides by id (a single point pairs with a single point whatever their ids).
    public static func compare(base: [PointSet], new: [PointSet], baseName: String, newName: String, options: CompareOptions = CompareOptions()) -> Comparison {
        var pairs: [(PointSet, PointSet)] = []
        var onlyBase: [String] = [], onlyNew: [String] = []
        if base.count == 1 && new.count == 1 {
            pairs = [(base[0], new[0])]
        } else {
            let nb = Dictionary(new.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for b in base { if let n = nb[b.id] { pairs.append((b, n)) } else { onlyBase.append(b.id) } }
            let ib = Set(base.map(\.id))
            onlyNew = new.map(\.id).filter { !ib.contains($0) }
        }
        var warnings: [String] = []
        if !onlyBase.isEmpty { warnings.append("points only in the baseline (not compared): \(onlyBase.joined(separator: ", "))") }
        if !onlyNew.isEmpty { warnings.append("points only in the new results (no baseline): \(onlyNew.joined(separator: ", "))") }
        let points = pairs.map { comparePoint($0.0, $0.1, options: options) }
        return Comparison(base: baseName, new: newName, alpha: options.alpha, points: points, onlyInBase: onlyBase, onlyInNew: onlyNew, warnings: warnings)
    }

    /// Why the two sides cannot be paired (nil: they can): every point needs at least 3 repetitions a
    /// side, and the same file names on both sides (`rep-1.json` ... of `pagestorm ab`).
    public static func pairingProblem(base: [PointSet], new: [PointSet]) -> String? {
        let nb = Dictionary(new.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for b in base {
            guard let n = (base.count == 1 && new.count == 1) ? new.first : nb[b.id] else { continue }
            let where_ = b.id.isEmpty ? "" : "point \(b.id): "
            let kb = b.reps.map(\.pairKey), kn = n.reps.map(\.pairKey)
            if Set(kb).count != kb.count || Set(kn).count != kn.count { return "\(where_)two repetitions of one side have the same file name; pairing is by file name" }
            if Set(kb) != Set(kn) {
                let only = Set(kb).symmetricDifference(Set(kn)).sorted()
                return "\(where_)the two sides' repetitions do not pair by file name (unmatched: \(only.prefix(6).joined(separator: ", "))); --paired needs rep-<n>.json on both sides, as pagestorm ab writes them"
            }
            if kb.count < 3 { return "\(where_)\(kb.count) pair(s): the paired rule needs at least 3" }
        }
        return nil
    }

    public static func comparePoint(_ b: PointSet, _ n: PointSet, options: CompareOptions) -> PointComparison {
        var warnings: [String] = []
        let bw = Set(b.reps.map(\.workload)), nw = Set(n.reps.map(\.workload))
        if bw != nw { warnings.append("different workloads: baseline \(bw.sorted().joined(separator: ", ")), new \(nw.sorted().joined(separator: ", ")); compared anyway, metric by metric") }
        let bm = Set(b.reps.map(\.machine)), nm = Set(n.reps.map(\.machine))
        if bm != nm { warnings.append("different machines: baseline \(bm.sorted().joined(separator: ", ")), new \(nm.sorted().joined(separator: ", ")); timings are not comparable across machines") }
        let bs = Set(b.reps.map(\.schema)), ns = Set(n.reps.map(\.schema))
        if bs != ns { warnings.append("different kinds of results: baseline \(bs.sorted().joined(separator: ", ")), new \(ns.sorted().joined(separator: ", "))") }
        if b.reps.contains(where: { $0.deterministic }) != n.reps.contains(where: { $0.deterministic }) && bs == [ResultSet.runSchema] {
            warnings.append("one side is a deterministic run (one worker, op count, no warm-up) and the other is not: exact counters are compared only when both are")
        }
        let flaggedReps = (b.reps + n.reps).filter(\.untrustworthy).map { "\($0.path): \($0.noiseReason ?? "flagged")" }
        let baseFlagged = b.reps.contains(where: \.untrustworthy), newFlagged = n.reps.contains(where: \.untrustworthy)
        // Operations per CPU-second leave preemption out, so only partial runs and steal time flag them.
        let cpuFlagged = b.reps.contains(where: \.cpuTimeUntrustworthy) || n.reps.contains(where: \.cpuTimeUntrustworthy)
        // Metric order: first seen, base first.
        var ids: [String] = []
        var seen = Set<String>()
        var infos: [String: MetricInfo] = [:]
        for r in b.reps + n.reps {
            for id in r.values.keys.sorted(by: { orderKey($0) < orderKey($1) }) where !seen.contains(id) {
                seen.insert(id); ids.append(id); infos[id] = r.info[id]
            }
        }
        ids.sort { orderKey($0) < orderKey($1) }
        if let f = options.metricFilter { ids = ids.filter { id in f.contains { Glob.matches($0, id) } } }
        var metrics: [MetricComparison] = []
        var tooFew = false
        for id in ids {
            let info = infos[id]!
            let bv = b.reps.compactMap { $0.values[id] }, nv = n.reps.compactMap { $0.values[id] }
            // Exact counters need both sides deterministic (all reps).
            if info.kind == .exact && !(b.reps.allSatisfy(\.deterministic) && n.reps.allSatisfy(\.deterministic)) { continue }
            var m = MetricComparison(metric: info, base: bv.isEmpty ? nil : SideStats(bv, kind: info.kind), new: nv.isEmpty ? nil : SideStats(nv, kind: info.kind),
                                     changePercent: nil, delta: nil, uTest: nil, ratioCI: nil, significant: false, direction: "same",
                                     flagged: info.timing && (id == Self.perCPUMetric ? cpuFlagged : (baseFlagged || newFlagged)), note: nil)
            guard let sb = m.base, let sn = m.new else {
                m.note = sb(m.base) ? "absent from the new results" : "absent from the baseline"
                m.direction = "missing"
                metrics.append(m)
                continue
            }
            m.delta = sn.mean - sb.mean
            if sb.mean != 0 {
                let raw = (sn.mean - sb.mean) / abs(sb.mean) * 100
                m.changePercent = info.better == .lower ? -raw : raw
            } else if sn.mean != 0 {
                m.changePercent = info.better == .lower ? -.infinity : .infinity
            } else { m.changePercent = 0 }
            switch info.kind {
            case .exact, .instructions:
                // Repeatable to the unit: a difference is a difference.
                let changed = Set(bv) != Set(nv) || sb.mean != sn.mean
                m.significant = changed
                if info.kind == .exact {
                    m.direction = changed ? "changed" : "same"
                    if Set(bv).count > 1 || Set(nv).count > 1 { m.note = "not identical across repetitions of one side: the run is not deterministic" }
                } else {
                    m.direction = changed ? (sn.mean > sb.mean ? "worse" : "better") : "same"
                }
            case .rate where options.paired, .time where options.paired:
                // Repetitions paired by file name, in base order; the paired rule decides.
                let newByKey = Dictionary(n.reps.map { ($0.pairKey, $0) }, uniquingKeysWith: { a, _ in a })
                var pb: [Double] = [], pn: [Double] = []
                for r in b.reps { if let x = r.values[id], let y = newByKey[r.pairKey]?.values[id] { pb.append(x); pn.append(y) } }
                m.uTest = Stats.mannWhitney(bv, nv)
                if let ci = Stats.bootstrapRatioOfMedians(base: bv, new: nv, rounds: options.bootstrapRounds) { m.ratioCI = [ci.low, ci.high] }
                let d = options.pairedRule.decide(base: pb, new: pn)
                m.paired = d
                if d == nil { m.note = "paired: \(pb.count) pair(s) with this metric (at least 3 needed, base values > 0): no decision" }
                let sig = d?.alarm ?? false
                m.significant = sig && (options.trustFlagged || !m.flagged)
                let better = info.better == .higher ? (d?.median ?? 0) > 0 : (d?.median ?? 0) < 0
                m.direction = sig ? (better ? "better" : "worse") : "same"
                if sig && m.flagged && !options.trustFlagged {
                    m.note = (m.note.map { $0 + "; " } ?? "") + "a repetition is flagged untrustworthy: this change does not count (--trust-flagged to let it)"
                }
            case .rate, .time:
                let u = Stats.mannWhitney(bv, nv)
                m.uTest = u
                if let ci = Stats.bootstrapRatioOfMedians(base: bv, new: nv, rounds: options.bootstrapRounds) { m.ratioCI = [ci.low, ci.high] }
                if bv.count < 2 || nv.count < 2 {
                    m.note = "fewer than 2 repetitions a side: no test"
                    tooFew = true
                } else if let u, u.minimumP >= options.alpha {
                    m.note = "too few repetitions: the smallest p-value \(bv.count) vs \(nv.count) can give is \(String(format: "%.3f", u.minimumP)) >= alpha \(options.alpha)"
                    tooFew = true
                }
                let ciExcludes1 = m.ratioCI.map { $0[0] > 1 || $0[1] < 1 } ?? false
                let sig = (u?.p ?? 1) < options.alpha && ciExcludes1 && bv.count >= 2 && nv.count >= 2
                m.significant = sig && (options.trustFlagged || !m.flagged)
                let better = info.better == .higher ? sn.median > sb.median : sn.median < sb.median
                m.direction = sig ? (better ? "better" : "worse") : "same"
                if sig && m.flagged && !options.trustFlagged {
                    m.note = (m.note.map { $0 + "; " } ?? "") + "a repetition is flagged untrustworthy: this change does not count (--trust-flagged to let it)"
                }
            }
            metrics.append(m)
        }
        if tooFew {
            let exactToo = metrics.contains { $0.metric.kind == .exact || $0.metric.kind == .instructions }
            warnings.append("too few repetitions for the U test to mean anything (\(b.reps.count) vs \(n.reps.count); at alpha \(options.alpha) use at least 4 a side, 5 recommended): timing changes are shown, never marked significant" + (exactToo ? " (exact counters and instruction counts are compared exactly all the same)" : ""))
        }
        // Geometric mean of cost ratios over timing metrics with positive means.
        var ratios: [Double] = []
        for m in metrics where m.metric.timing {
            guard let sb = m.base, let sn = m.new, sb.mean > 0, sn.mean > 0 else { continue }
            ratios.append(m.metric.better == .higher ? sb.mean / sn.mean : sn.mean / sb.mean)
        }
        for m in metrics where m.metric.kind == .instructions {
            guard let sb = m.base, let sn = m.new, sb.mean > 0, sn.mean > 0 else { continue }
            ratios.append(sn.mean / sb.mean)
        }
        return PointComparison(id: n.id.isEmpty ? b.id : n.id, workload: n.reps.first?.workload ?? b.reps.first?.workload ?? "?",
                               baseReps: b.reps.count, newReps: n.reps.count, baseFiles: b.reps.map(\.path), newFiles: n.reps.map(\.path),
                               metrics: metrics, geomeanCostRatio: ratios.isEmpty ? nil : Stats.geometricMean(ratios), geomeanMetrics: ratios.count,
                               warnings: warnings, flaggedReps: flaggedReps)
    }

    private static func sb(_ s: SideStats?) -> Bool { s != nil }

    /// Sort order: exact counters, instructions, throughput, latency (by class then percentile), then the rest.
    static func orderKey(_ id: String) -> String {
        let rank: String
        if id.hasPrefix("exact/") { rank = "0" }
        else if id.hasPrefix("instructions/") { rank = "1" }
        else if id.hasPrefix("throughput/") { rank = "2" }
        else if id.hasPrefix("bench") { rank = "3" }
        else if id.hasPrefix("latency/") {
            let pct = ["p50", "p90", "p99", "p99.9", "p99.99", "max"]
            let last = id.split(separator: "/").last.map(String.init) ?? ""
            let i = pct.firstIndex(of: last) ?? 9
            return "4" + id.dropLast(last.count) + String(i)
        }
        else { rank = "5" }
        return rank + id
    }
}

/// Glob matching for metric ids: `*` any run of characters, `?` one character.
public enum Glob {
    public static func matches(_ pattern: String, _ s: String) -> Bool {
        let p = Array(pattern), t = Array(s)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) { pi += 1; ti += 1 }
            else if pi < p.count && p[pi] == "*" { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
