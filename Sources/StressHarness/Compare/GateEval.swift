import Foundation

/// How good is the gate? (`pagestorm gate-eval`, a benchmark command.)
///
/// Injects slowdowns without touching the allocator: every touching alloc
/// operation's `touch` (bytes written and checked per page) grows by an
/// amount found on this machine first, by measurement, to cost about 5%, 10%
/// and 25% more per operation (`calibrate()`: a probe, a grid, a straight
/// line fitted to all of it, then verification passes that measure the
/// realised step of each target and correct the ones it missed). Then, for each of `comparisons` rounds, `reps`
/// repetitions; each repetition runs, for every kind (A/A, then each
/// slowdown), the original and the kind's workload back to back (ABBA: the
/// order flips every repetition), so that the two runs of a pair are
/// adjacent in time. Each rule decides on operations/s of every comparison,
/// and again on operations per CPU-second of the workers (the same runs).
/// Reported per rule and kind: how often it raised an alarm (A/A: false
/// alarms; slowdowns: detections), and the slowdown the runs measured.
public struct GateEval {
    public var workload: Workload
    public var comparisons = 20
    public var reps = 5
    public var slowdowns: [Double] = [5, 10, 25]
    /// Interleaved rounds per probe and grid measurement of the calibration.
    public var calibrationPairs = 9
    /// Interleaved rounds of each verification pass (the measurement that reports the realised step).
    public var verificationPairs = 15
    /// Verification passes at most (the first, then corrections of the targets it missed).
    public var calibrationRounds = 3
    /// Byte counts measured on the calibration grid.
    public var gridPoints = 6
    /// A target's bytes count as verified when a verification measured bytes within this many points of
    /// slowdown (on the fitted line) of them; otherwise the next pass measures them.
    public var verifyTolerancePercent = 0.5
    /// Extra attempts of an evaluation pair (original, variant) whose run is flagged for operations per
    /// CPU-second (a partial run, or steal time above the limit), at most, per pair (0: none). A pair still
    /// flagged after them stays flagged and does not decide (as before). Every discarded attempt is listed.
    public var retryFlagged = FlagRetry.defaultRetries
    /// Co-run (`--co-run`): the two runs of every pair (calibration and evaluation) run at the same time,
    /// each on its own threads, their workers pinned to the same CPUs (the workload's), so the kernel
    /// time-slices the two sides a few milliseconds apart and a machine-wide speed phase hits both alike.
    /// Only operations per CPU-second compare (each side gets about half of the CPUs' time; its ops/s
    /// halves and its runs are flagged for wall time). False: the two runs back to back (ABBA).
    public var coRun = false
    /// The longest a co-run pair may take before gate-eval gives up on it (a bounded wait).
    public var coRunTimeoutS: Double = 600
    public var log: (String) -> Void = { _ in }
    /// How one run is measured (tests put a model here; nil: a real run).
    public var measureRun: ((Workload) throws -> Sample)?

    public init(workload: Workload) { self.workload = workload }

    public struct RuleOutcome: Codable, Sendable {
        public var rule: String
        public var alarms: Int
        public var comparisons: Int
        public var rate: Double
    }

    /// An evaluation pair's attempt that was discarded because a run of it was flagged (and re-run).
    public struct DiscardedAttempt: Codable, Sendable, Equatable {
        /// Comparison and repetition (from 1) of the pair, and the attempt (1: the first run of the pair).
        public var comparison: Int
        public var repetition: Int
        public var attempt: Int
        /// The two runs: [0] ops/s, [1] ops per CPU-second.
        public var base: [Double]
        public var new: [Double]
        /// Which runs were flagged ("base", "new") and why.
        public var flagged: [String]
        public var reason: String
    }

    public struct Kind: Codable, Sendable {
        /// "A/A" or "+10%".
        public var name: String
        public var targetSlowdownPercent: Double
        /// The extra touch bytes per page that were calibrated to cost that (a fraction of an 8-byte
        /// word is dithered over the allocations: `OpSpec.touchFraction`).
        public var extraTouch: Double
        /// What the calibration's verification measured (the realised step before the evaluation:
        /// median of `verificationPairs` interleaved pair ratios, ops per CPU-second; nil for A/A) ...
        public var calibratedSlowdownPercent: Double?
        /// ... at these extra bytes (the verified bytes nearest `extraTouch`; within `verifyTolerancePercent`
        /// of it on the line unless the passes ran out).
        public var verifiedExtraTouch: Double?
        /// What the calibration's straight-line fit predicted for that extra (nil for A/A).
        public var fitSlowdownPercent: Double?
        /// The realised step in the evaluation's own runs: median over every pair (all comparisons) of
        /// base / variant - 1, in percent ([0] ops/s, [1] ops per CPU-second).
        public var pairedSlowdownPercent: [Double]
        /// Median over comparisons of (median base ops/s / median variant ops/s - 1), in percent.
        public var measuredSlowdownPercent: Double
        /// The rules deciding on operations/s (wall time).
        public var rules: [RuleOutcome]
        /// The same on operations per CPU-second of the workers.
        public var measuredSlowdownPercentPerCPU: Double
        public var rulesPerCPU: [RuleOutcome]
        /// Pairs re-run because a run was flagged for ops per CPU-second, and the attempts discarded
        /// (in run order); pairs still flagged after `retryFlagged` extra attempts ([0] ops/s, [1] ops per CPU-second).
        public var retriedPairs: Int
        public var discarded: [DiscardedAttempt]
        public var stillFlaggedPairs: [Int]
        /// Co-run only: the median over this kind's kept pairs of how much of the shorter measured window
        /// (from the end of warm-up to the run's return) the other run's window overlapped, 0...1 (nil: back to back).
        public var coRunOverlap: Double?
        /// The runs, [metric][comparison][repetition] ([0] ops/s, [1] ops per CPU-second): the original's, and this kind's (repetition i of the two adjacent in time).
        public var base: [[[Double]]]
        public var new: [[[Double]]]
    }

    /// One calibration measurement: extra touch bytes and the slowdown they cost (ops per CPU-second).
    public struct CalibrationPoint: Codable, Sendable, Equatable {
        public var extraTouch: Double
        public var measuredSlowdownPercent: Double
        /// "probe", "grid" or "verify".
        public var stage: String
        /// Interleaved rounds (pairs) the measurement is the median of.
        public var rounds: Int
        public init(extraTouch: Double, measuredSlowdownPercent: Double, stage: String = "grid", rounds: Int = 1) {
            self.extraTouch = extraTouch
            self.measuredSlowdownPercent = measuredSlowdownPercent
            self.stage = stage
            self.rounds = rounds
        }
    }

    /// The straight line fitted to the calibration points: slowdown % = intercept + slope x extra bytes.
    public struct CalibrationFit: Codable, Sendable, Equatable {
        public var interceptPercent: Double
        public var slopePercentPerByte: Double
        public func bytes(for target: Double) -> Double { (target - interceptPercent) / slopePercentPerByte }
    }

    public struct Report: Codable, Sendable {
        public var schema = "pagestorm.gate-eval/5"
        public var startedAt: String
        public var machine: MachineInfo
        public var workload: String
        public var durationMs: Int
        public var reps: Int
        public var comparisons: Int
        /// Every calibration measurement, in order (the probe first).
        public var calibration: [CalibrationPoint]
        public var calibrationFit: CalibrationFit
        public var kinds: [Kind]
        /// Kept runs flagged on wall time (ops/s).
        public var flaggedRuns: Int
        /// The bound on extra attempts per flagged pair (`--retry-flagged`).
        public var retryFlagged: Int
        /// How a pair's two runs ran: "co-run" (at the same time, sharing the workload's CPUs) or "back to back" (ABBA).
        public var pairing: String
        public var wallSeconds: Double
    }

    public static let rules = [
        "pagestorm check (U p<0.05 and bootstrap CI excludes 1, beyond 5%)",
        "compare.py (U test, p<0.05)",
        "LKP range rule (ranges disjoint, means differ >= 1%)",
        "pagestorm check with trust_flagged (the first rule, flagged runs allowed to decide)",
        "paired (check --paired, ab: median pair change beyond 5% with all but one pair that way, or beyond 8%; flagged runs never decide)",
        "paired, session 4's rule (median pair change beyond 5%, all but one pair that way)",
    ]

    /// Does `rule` raise an alarm? `base` and `new` are the runs in run order
    /// (run i of `new` is adjacent to run i of `base`). `worseOnly`: count only a slowdown.
    public static func alarm(rule: Int, base: [Double], new: [Double], worseOnly: Bool, flagged: Bool = false) -> Bool {
        if rule == 4 || rule == 5 {
            if flagged { return false } // as check's default: a flagged run never decides a timing change
            let rule_ = rule == 4 ? PairedRule() : PairedRule(strongPercent: .infinity)
            guard let d = rule_.decide(base: base, new: new) else { return false }
            return d.alarm && (!worseOnly || d.median < 0)
        }
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

    /// The paired rule with its default limits (rule 4; what `check --paired` and `ab` use).
    public static func pairedChange(base: [Double], new: [Double]) -> PairedRule.Decision? {
        PairedRule().decide(base: base, new: new)
    }

    /// The workload with `extraTouch` more bytes touched per page, on average, by every touching alloc
    /// operation (at most a page): whole 8-byte words in `touch`, the rest as `touchFraction` of one more
    /// word, dithered over the allocations without a random draw. 0 (or a whole number of words) leaves
    /// `touchFraction` nil, so such a variant is an ordinary workload.
    public static func variant(_ w: Workload, extraTouch: Double) -> Workload {
        var w = w
        let page = w.memory.pageSize
        for g in w.groups.indices {
            for i in w.groups[g].ops.indices where w.groups[g].ops[i].kind == .alloc && w.groups[g].ops[i].touch > 0 {
                let bytes = min(Double(page), Double(w.groups[g].ops[i].touch) + max(0, extraTouch))
                let words = (bytes / 8).rounded(.down)
                let fraction = bytes / 8 - words
                w.groups[g].ops[i].touch = Int(words) * 8
                w.groups[g].ops[i].touchFraction = HotOp.q32(fraction) != 0 && Int(words) * 8 + 8 <= page ? fraction : nil
            }
        }
        return w
    }

    /// Extra touch bytes as printed: "+40 B", "+41.3 B".
    public static func bytesLabel(_ x: Double) -> String {
        abs(x - x.rounded()) < 0.05 ? String(format: "+%.0f B", x) : String(format: "+%.1f B", x)
    }

    /// The bytes an op touches per page on average: `touch` plus its dithered fraction of a word.
    public static func touchBytes(_ op: OpSpec) -> Double { Double(op.touch) + 8 * (op.touchFraction ?? 0) }

    /// The most extra touch bytes: until the largest touching operation touches a whole page.
    var maxExtraTouch: Double {
        let touches = workload.groups.flatMap { $0.ops.filter { $0.kind == .alloc && $0.touch > 0 }.map(\.touch) }
        return Double(max(8, workload.memory.pageSize - (touches.min() ?? 0)))
    }

    /// `calibrationPairs` rounds, each the original and every extra back to
    /// back (order flipped every round); per extra, the median over
    /// rounds of (base / variant - 1) in %, on operations per CPU-second (other jobs'
    /// preemption does not move it; a shift of the machine's speed between
    /// rounds hits both runs of a round alike).
    func slowdownsOf(_ extras: [Double], rounds: Int? = nil) throws -> [Double] {
        var ratios = [[Double]](repeating: [], count: extras.count)
        for p in 0..<max(1, rounds ?? calibrationPairs) {
            for k in (p % 2 == 0 ? Array(extras.indices) : Array(extras.indices.reversed())) {
                let pair = [workload, Self.variant(workload, extraTouch: extras[k])]
                let x = try measurePair(pair, order: p % 2 == 0 ? [0, 1] : [1, 0]).map(\.opsPerCPUSecond)
                ratios[k].append(x[0] / x[1] - 1)
            }
        }
        return ratios.map { Stats.median($0) * 100 }
    }

    /// The calibration curve: per measured byte count, the mean of its
    /// measurements, made non-decreasing in the bytes by pooling adjacent
    /// violators (weighted by how often each was measured), from the origin (0 bytes: 0%).
    public static func curve(_ points: [CalibrationPoint]) -> [(x: Double, y: Double)] {
        var sums: [Double: (sum: Double, n: Int)] = [:]
        for p in points where p.extraTouch > 0 {
            sums[p.extraTouch, default: (0, 0)].sum += p.measuredSlowdownPercent
            sums[p.extraTouch, default: (0, 0)].n += 1
        }
        // Blocks of pooled points: the origin's weight is infinite (it is not measured, it is 0).
        var blocks: [(xs: [Double], y: Double, w: Double)] = [([0], 0, .infinity)]
        for x in sums.keys.sorted() {
            let (sum, n) = sums[x]!
            blocks.append(([x], sum / Double(n), Double(n)))
            while blocks.count > 1 && blocks[blocks.count - 2].y > blocks[blocks.count - 1].y {
                let b = blocks.removeLast(), a = blocks.removeLast()
                let y = a.w.isInfinite ? a.y : (a.y * a.w + b.y * b.w) / (a.w + b.w)
                blocks.append((a.xs + b.xs, y, a.w + b.w))
            }
        }
        return blocks.flatMap { b in b.xs.map { (x: $0, y: b.y) } }
    }

    /// The extra bytes (1...max) that should cost `target`% on the curve of the
    /// measured points: interpolated linearly between the two points around the
    /// target, or extrapolated through the origin and the largest point. (The
    /// calibration uses it for the probe's guess of the grid's range.)
    public static func interpolate(_ points: [CalibrationPoint], target: Double, maxExtra: Double) -> Double {
        let c = curve(points)
        var e: Double
        if let i = c.firstIndex(where: { $0.y >= target }), i > 0 {
            let (x0, y0, x1, y1) = (c[i - 1].x, c[i - 1].y, c[i].x, c[i].y)
            e = y1 > y0 ? x0 + (target - y0) / (y1 - y0) * (x1 - x0) : x1
        } else if c.first.map({ $0.y >= target }) == true {
            e = 1
        } else {
            let (x1, y1) = (c.last!.x, c.last!.y)
            e = y1 > 0 ? x1 * target / y1 : maxExtra
        }
        return min(maxExtra, max(1, e))
    }

    /// Weighted least squares (weight: rounds) of slowdown on extra bytes over the points. nil: fewer
    /// than 2 distinct byte counts, or a slope that is not positive.
    public static func fit(_ points: [CalibrationPoint]) -> CalibrationFit? {
        let ps = points.filter { $0.extraTouch > 0 }
        guard Set(ps.map(\.extraTouch)).count >= 2 else { return nil }
        let w = ps.map { Double(max(1, $0.rounds)) }, x = ps.map(\.extraTouch), y = ps.map(\.measuredSlowdownPercent)
        let sw = w.reduce(0, +)
        let mx = zip(w, x).map { $0 * $1 }.reduce(0, +) / sw, my = zip(w, y).map { $0 * $1 }.reduce(0, +) / sw
        var sxy = 0.0, sxx = 0.0
        for i in ps.indices { sxy += w[i] * (x[i] - mx) * (y[i] - my); sxx += w[i] * (x[i] - mx) * (x[i] - mx) }
        guard sxx > 0, sxy / sxx > 0 else { return nil }
        let slope = sxy / sxx
        return CalibrationFit(interceptPercent: my - slope * mx, slopePercentPerByte: slope)
    }

    /// Finds, per target slowdown, the extra touch bytes that cost it on this
    /// machine, and measures what they realise. Byte counts are continuous (a
    /// fraction of an 8-byte word is dithered over the allocations, see `variant`):
    /// 1. a probe (64 bytes, doubled while it costs under 8%);
    /// 2. a grid of `gridPoints` byte counts (whole bytes) from a fifth to 1.2
    ///    times the bytes the probe suggests for the largest target, measured in
    ///    one interleaved set (`calibrationPairs` rounds);
    /// 3. a straight line fitted to every point (weighted by rounds), which
    ///    pools the noise of all of them; per target its bytes on the line;
    /// 4. verification: those bytes measured again (`verificationPairs` rounds,
    ///    all targets interleaved), the line refitted with them; a pass again for
    ///    the targets whose bytes the refitted line moved by more than
    ///    `verifyTolerancePercent` points of slowdown from every verified byte
    ///    count (at most `calibrationRounds` passes).
    /// Every measurement is the median of its rounds' pair ratios (robust to the pairs a speed phase
    /// splits); the line pools their noise, the verification reports what the chosen bytes realise.
    /// Per target the bytes of the final line are evaluated (the line's value there is the target,
    /// unless clamped); reported with the verified measurement nearest them and its bytes.
    public func calibrate() throws -> (extras: [Double], measured: [Double], verifiedAt: [Double], fitted: [Double], points: [CalibrationPoint], fit: CalibrationFit) {
        let maxExtra = maxExtraTouch
        let b = Self.bytesLabel
        var points: [CalibrationPoint] = []
        var probe = min(64, maxExtra), s = 0.0
        while true {
            s = try slowdownsOf([probe])[0]
            points.append(CalibrationPoint(extraTouch: probe, measuredSlowdownPercent: s, stage: "probe", rounds: calibrationPairs))
            log(String(format: "calibration probe: %@ touch bytes cost %+.1f%%", b(probe), s))
            if s >= 8 || probe >= maxExtra { break }
            probe = min(maxExtra, probe * 2)
        }
        guard s > 0.5 else {
            throw InstructionsError(message: "gate-eval: \(b(probe)) touch bytes cost " + String(format: "%+.1f%%", s) + " on \(workload.name): no slowdown to calibrate on")
        }
        func clamp(_ e: Double) -> Double { min(maxExtra, max(1, e)) }
        // The grid: up to 1.2 times the bytes the probe suggests for the largest target, whole bytes.
        let top = Self.interpolate(points, target: slowdowns.max() ?? 25, maxExtra: maxExtra) * 1.2
        let n = max(2, gridPoints)
        var grid = Array(Set((1...n).map { clamp((top * Double($0) / Double(n)).rounded()) })).sorted()
        if grid.count < 2 { grid = Array(Set([8, 16, probe].map { min($0, maxExtra) })).sorted() }
        let gm = try slowdownsOf(grid)
        for (e, m) in zip(grid, gm) { points.append(CalibrationPoint(extraTouch: e, measuredSlowdownPercent: m, stage: "grid", rounds: calibrationPairs)) }
        log("calibration grid: " + zip(grid, gm).map { b($0) + String(format: " %+.1f%%", $1) }.joined(separator: ", "))
        guard let firstLine = Self.fit(points) else {
            throw InstructionsError(message: "gate-eval: the calibration grid of \(workload.name) (" + zip(grid, gm).map { b($0) + String(format: " %+.1f%%", $1) }.joined(separator: ", ") + ") shows no slowdown growing with touch bytes")
        }
        log(String(format: "calibration fit: slowdown = %+.2f%% + %.3f%% per byte", firstLine.interceptPercent, firstLine.slopePercentPerByte))
        // Verification: the bytes the line gives each target, measured; the line refitted with them; again
        // for the targets it moves by more than the tolerance from every verified byte count.
        var line = firstLine
        var verified: [(x: Double, slowdown: Double)] = []
        func nearestVerified(_ x: Double) -> (x: Double, slowdown: Double)? {
            verified.min { abs($0.x - x) < abs($1.x - x) }
        }
        var chosen = slowdowns.map { clamp(line.bytes(for: $0)) }
        for pass in 0..<max(1, calibrationRounds) {
            let tolerance = verifyTolerancePercent / line.slopePercentPerByte
            var todo: [Double] = []
            for x in chosen where !(nearestVerified(x).map { abs($0.x - x) <= tolerance } ?? false) && !todo.contains(x) { todo.append(x) }
            if todo.isEmpty { break }
            let ms = try slowdownsOf(todo, rounds: verificationPairs)
            for (x, m) in zip(todo, ms) {
                verified.append((x, m))
                points.append(CalibrationPoint(extraTouch: x, measuredSlowdownPercent: m, stage: "verify", rounds: verificationPairs))
            }
            log("calibration verification \(pass + 1): " + zip(todo, ms).map { b($0) + String(format: " %+.1f%%", $1) }.joined(separator: ", "))
            if let l = Self.fit(points) { line = l }
            chosen = slowdowns.map { clamp(line.bytes(for: $0)) }
        }
        log(String(format: "calibration fit with the verification: slowdown = %+.2f%% + %.3f%% per byte", line.interceptPercent, line.slopePercentPerByte))
        let near = chosen.map { nearestVerified($0) }
        let fitted = chosen.map { line.interceptPercent + line.slopePercentPerByte * $0 }
        return (chosen, near.map { $0?.slowdown ?? .nan }, near.map { $0?.x ?? .nan }, fitted, points, line)
    }

    public func run() throws -> Report {
        let t0 = Date()
        guard workload.groups.contains(where: { $0.ops.contains { $0.kind == .alloc && $0.touch > 0 } }) else {
            throw InstructionsError(message: "gate-eval: workload \(workload.name) touches nothing (touch = 0 everywhere); the slowdown is injected through touch")
        }
        if coRun, workload.groups.contains(where: { $0.pin != "cpu" }) {
            log("warning: --co-run with workers not pinned to one CPU each (a group with pin = \"none\" or \"node\"): the two runs of a pair may use different CPUs, where a speed phase does not hit both alike")
        }
        let cal = try calibrate()
        let kindsW = [workload] + cal.extras.map { Self.variant(workload, extraTouch: $0) }
        // Per kind (A/A, then each slowdown), per metric ([0] ops/s, [1] ops per CPU-second), per comparison: the runs.
        let empty = [[[Double]]](repeating: [[Double]](repeating: [], count: comparisons), count: 2)
        var base = [[[[Double]]]](repeating: empty, count: kindsW.count), new = base
        // Per kind, per metric, per comparison: was a run of the pair flagged?
        var flaggedCmp = [[[Bool]]](repeating: [[Bool]](repeating: [Bool](repeating: false, count: comparisons), count: 2), count: kindsW.count)
        var flaggedRuns = 0
        var retried = [Int](repeating: 0, count: kindsW.count)
        var discarded = [[DiscardedAttempt]](repeating: [], count: kindsW.count)
        var stillFlagged = [[Int]](repeating: [0, 0], count: kindsW.count)
        var overlaps = [[Double]](repeating: [], count: kindsW.count)
        for c in 0..<comparisons {
            for r in 0..<reps {
                // Every kind's pair back to back; the order within pairs and of the kinds flips every repetition (ABBA).
                for k in (r % 2 == 0 ? Array(kindsW.indices) : Array(kindsW.indices.reversed())) {
                    // A pair with a run flagged for ops per CPU-second is run again (at most `retryFlagged` times).
                    let pair = try FlagRetry.attempts(limit: retryFlagged) { () throws -> [Sample] in
                        try measurePair([workload, kindsW[k]], order: r % 2 == 0 ? [0, 1] : [1, 0])
                    } flagged: { m in
                        let sides = [0, 1].filter { m[$0].flagged[1] }
                        return sides.isEmpty ? nil : sides.map { (i: Int) -> String in (i == 0 ? "base" : "new") + ": " + (m[i].reason ?? "flagged") }.joined(separator: "; ")
                    }
                    if pair.discarded.count > 0 { retried[k] += 1 }
                    if let o = Self.overlap(pair.kept[0].window, pair.kept[1].window) { overlaps[k].append(o) }
                    for (a, (m, reason)) in pair.discarded.enumerated() {
                        discarded[k].append(DiscardedAttempt(comparison: c + 1, repetition: r + 1, attempt: a + 1,
                                                             base: [m[0].opsPerSecond, m[0].opsPerCPUSecond], new: [m[1].opsPerSecond, m[1].opsPerCPUSecond],
                                                             flagged: [0, 1].filter { m[$0].flagged[1] }.map { $0 == 0 ? "base" : "new" }, reason: reason))
                    }
                    for mi in 0..<2 where pair.kept[0].flagged[mi] || pair.kept[1].flagged[mi] {
                        flaggedCmp[k][mi][c] = true
                        stillFlagged[k][mi] += 1
                    }
                    for side in 0..<2 {
                        let m = pair.kept[side]
                        if m.flagged[0] { flaggedRuns += 1 }
                        for (mi, x) in [m.opsPerSecond, m.opsPerCPUSecond].enumerated() {
                            if side == 0 { base[k][mi][c].append(x) } else { new[k][mi][c].append(x) }
                        }
                    }
                }
            }
            log("comparison \(c + 1)/\(comparisons) done (\(Int(Date().timeIntervalSince(t0))) s)")
        }
        func outcome(_ k: Int, _ mi: Int, worseOnly: Bool) -> [RuleOutcome] {
            (0..<Self.rules.count).map { ri in
                let n = (0..<comparisons).filter {
                    Self.alarm(rule: ri, base: base[k][mi][$0], new: new[k][mi][$0], worseOnly: worseOnly, flagged: flaggedCmp[k][mi][$0])
                }.count
                return RuleOutcome(rule: Self.rules[ri], alarms: n, comparisons: comparisons, rate: Double(n) / Double(comparisons))
            }
        }
        func measured(_ k: Int, _ mi: Int) -> Double {
            Stats.median((0..<comparisons).map { (Stats.median(base[k][mi][$0]) / Stats.median(new[k][mi][$0]) - 1) * 100 })
        }
        func paired(_ k: Int, _ mi: Int) -> Double {
            Stats.median((0..<comparisons).flatMap { c in zip(base[k][mi][c], new[k][mi][c]).map { ($0 / $1 - 1) * 100 } })
        }
        var kinds: [Kind] = []
        for k in kindsW.indices {
            let target = k == 0 ? 0 : slowdowns[k - 1]
            kinds.append(Kind(name: k == 0 ? "A/A" : String(format: "+%.0f%%", target), targetSlowdownPercent: target,
                              extraTouch: k == 0 ? 0 : cal.extras[k - 1], calibratedSlowdownPercent: k == 0 ? nil : cal.measured[k - 1],
                              verifiedExtraTouch: k == 0 ? nil : cal.verifiedAt[k - 1],
                              fitSlowdownPercent: k == 0 ? nil : cal.fitted[k - 1], pairedSlowdownPercent: [paired(k, 0), paired(k, 1)],
                              measuredSlowdownPercent: measured(k, 0), rules: outcome(k, 0, worseOnly: k > 0),
                              measuredSlowdownPercentPerCPU: measured(k, 1), rulesPerCPU: outcome(k, 1, worseOnly: k > 0),
                              retriedPairs: retried[k], discarded: discarded[k], stillFlaggedPairs: stillFlagged[k],
                              coRunOverlap: coRun && !overlaps[k].isEmpty ? Stats.median(overlaps[k]) : nil,
                              base: base[k], new: new[k]))
        }
        return Report(startedAt: ISO8601DateFormatter().string(from: t0), machine: .current(), workload: workload.name,
                      durationMs: workload.run.durationMs ?? 0, reps: reps, comparisons: comparisons,
                      calibration: cal.points, calibrationFit: cal.fit, kinds: kinds, flaggedRuns: flaggedRuns, retryFlagged: retryFlagged,
                      pairing: coRun ? "co-run" : "back to back", wallSeconds: Date().timeIntervalSince(t0))
    }
}
