import Foundation

/// `pagestorm check`'s verdict, each with its own exit code (README, "Exit codes").
public enum CheckVerdict: String, Codable, Sendable {
    case unchanged, regressed, improved = "improved-only", noBaseline = "no-baseline"

    public var exitCode: Int32 {
        switch self {
        case .unchanged: return 0
        case .regressed: return 10
        case .improved: return 11
        case .noBaseline: return 12
        }
    }
}

/// One metric's decision.
public struct MetricDecision: Codable, Sendable {
    public var point: String
    public var metric: String
    public var label: String
    public var unit: String
    /// "regressed", "improved", "unchanged", "behaviour-change", "missing", "not-significant", "flagged".
    public var decision: String
    /// Whether this metric decides the verdict (false: it only reports).
    public var gate: Bool
    public var base: Double?
    public var new: Double?
    /// + better, - worse (percent).
    public var changePercent: Double?
    public var pValue: Double?
    public var reason: String
}

public struct CheckReport: Codable, Sendable {
    public static let schema = "pagestorm.check/1"
    public var schema = CheckReport.schema
    public var verdict: CheckVerdict
    public var exitCode: Int32
    /// The largest gating regression, LKP style; nil when none.
    public var headline: String?
    /// Sweep points with a gating regression.
    public var regressingPoints: [String]
    public var decisions: [MetricDecision]
    public var warnings: [String]
    public var comparison: Comparison?

    public init(verdict: CheckVerdict, headline: String?, regressingPoints: [String], decisions: [MetricDecision], warnings: [String], comparison: Comparison?) {
        self.verdict = verdict
        exitCode = verdict.exitCode
        self.headline = headline
        self.regressingPoints = regressingPoints
        self.decisions = decisions
        self.warnings = warnings
        self.comparison = comparison
    }
}

public enum Checker {
    public static func decide(_ c: Comparison, thresholds: Thresholds) -> CheckReport {
        var decisions: [MetricDecision] = []
        var regressing = Set<String>()
        var anyImproved = false
        var worst: (score: Double, text: String)? = nil
        for p in c.points {
            let where_ = (p.id.isEmpty ? "" : "point \(p.id) of ") + p.workload
            for m in p.metrics {
                let lim = thresholds.limit(for: m.metric)
                var d = MetricDecision(point: p.id, metric: m.metric.id, label: m.metric.label, unit: m.metric.unit, decision: "unchanged",
                                       gate: lim.gate, base: m.base?.mean, new: m.new?.mean, changePercent: m.changePercent, pValue: m.uTest?.p, reason: "")
                // The direction the thresholds say is worse, when they override the metric's.
                // With pairing, the limits apply to the paired median change (what the paired rule decided on).
                var change = m.pairedChangePercent ?? m.changePercent
                if let w = lim.worse, m.metric.better != .exact, (w == .higher) != (m.metric.better == .lower) { change = change.map { -$0 } }
                d.changePercent = change
                let absDelta = abs(m.delta ?? 0)
                let beyond = (lim.relative.map { abs(change ?? 0) > $0 } ?? true) && (lim.absolute.map { absDelta > $0 } ?? true)
                if m.base == nil || m.new == nil {
                    d.decision = "missing"
                    d.reason = m.note ?? "missing on one side"
                    if lim.gate { regressing.insert(p.id) }
                    if lim.gate { worst = pick(worst, 1e9, "\(m.metric.label) is \(m.note ?? "missing") on \(where_)") }
                } else if m.metric.kind == .exact {
                    if m.direction == "changed" {
                        d.decision = "behaviour-change"
                        d.reason = "exact counter changed: \(CompareRender.exactNum(m.base!.mean)) -> \(CompareRender.exactNum(m.new!.mean))" + (m.note.map { " (\($0))" } ?? "")
                        if lim.gate {
                            regressing.insert(p.id)
                            worst = pick(worst, 1e6 + abs(m.changePercent ?? 0), "behaviour change of \(m.metric.label): \(CompareRender.exactNum(m.base!.mean)) -> \(CompareRender.exactNum(m.new!.mean)) (\(String(format: "%+.2f%%", rawChange(m)))) on \(where_)")
                        }
                    } else { d.reason = "identical" }
                } else if !m.significant {
                    if m.flagged && m.direction != "same" {
                        d.decision = "flagged"
                        d.reason = "changed, but a repetition is flagged untrustworthy (noise)"
                    } else {
                        d.decision = m.direction == "same" ? "unchanged" : "not-significant"
                        d.reason = m.note ?? (m.paired.map { "paired: " + PairedRule().describe($0) } ?? m.uTest.map { String(format: "p=%.3f", $0.p) } ?? "no test")
                    }
                } else if !beyond {
                    d.decision = "unchanged"
                    d.reason = "significant but within the limits (\(describe(lim)))"
                } else {
                    let worse = (change ?? 0) < 0
                    d.decision = worse ? "regressed" : "improved"
                    d.reason = "\(String(format: "%+.2f%%", change ?? 0)) beyond \(describe(lim))"
                        + (m.paired.map { ", paired: " + PairedRule().describe($0) } ?? m.uTest.map { String(format: ", p=%.3f", $0.p) } ?? "")
                    if lim.gate {
                        if worse {
                            regressing.insert(p.id)
                            worst = pick(worst, abs(change ?? 0), String(format: "%+.1f%% regression of %@ (%@) on %@", change ?? 0, m.metric.label, m.metric.unit, where_))
                        } else { anyImproved = true }
                    }
                }
                if !d.gate && (d.decision == "regressed" || d.decision == "improved" || d.decision == "behaviour-change") { d.reason += " (reports only)" }
                decisions.append(d)
            }
        }
        var warnings = c.warnings + c.points.flatMap { p in p.warnings.map { (p.id.isEmpty ? "" : "point \(p.id): ") + $0 } }
        let verdict: CheckVerdict
        if c.points.isEmpty { verdict = .noBaseline; warnings.append("no point of the new results has a baseline") }
        else if !regressing.isEmpty { verdict = .regressed }
        else if anyImproved { verdict = .improved }
        else { verdict = .unchanged }
        return CheckReport(verdict: verdict, headline: worst?.text, regressingPoints: regressing.sorted(),
                           decisions: decisions, warnings: warnings, comparison: c)
    }

    static func rawChange(_ m: MetricComparison) -> Double {
        guard let b = m.base?.mean, let n = m.new?.mean, b != 0 else { return 0 }
        return (n - b) / abs(b) * 100
    }

    static func pick(_ cur: (score: Double, text: String)?, _ score: Double, _ text: String) -> (score: Double, text: String) {
        guard let cur, cur.score >= score else { return (score, text) }
        return cur
    }

    static func describe(_ l: Limit) -> String {
        var parts: [String] = []
        if let r = l.relative { parts.append("\(CompareRender.num(r))%") }
        if let a = l.absolute { parts.append("\(CompareRender.num(a)) absolute") }
        return parts.isEmpty ? "no limit" : parts.joined(separator: " and ")
    }

    /// The Markdown appended to $GITHUB_STEP_SUMMARY.
    public static func markdown(_ r: CheckReport) -> String {
        var out: [String] = ["## pagestorm check: \(r.verdict.rawValue)", ""]
        out.append(r.headline.map { "**\($0)**" } ?? "No gating regression.")
        if !r.regressingPoints.filter({ !$0.isEmpty }).isEmpty { out.append(""); out.append("Regressing points: \(r.regressingPoints.joined(separator: ", "))") }
        for w in r.warnings { out.append(""); out.append("> warning: \(w)") }
        let shown = r.decisions.filter { $0.decision != "unchanged" }
        if !shown.isEmpty {
            out.append("")
            out.append("| point | metric | base | new | change | decision | gates |")
            out.append("| --- | --- | ---: | ---: | ---: | --- | --- |")
            for d in shown.prefix(200) {
                out.append("| \(d.point.isEmpty ? "-" : d.point) | \(d.label) (\(d.unit)) | \(d.base.map(CompareRender.num) ?? "-") | \(d.new.map(CompareRender.num) ?? "-") | \(d.changePercent.map { String(format: "%+.2f%%", $0) } ?? "-") | \(d.decision): \(d.reason) | \(d.gate ? "yes" : "no") |")
            }
            if shown.count > 200 { out.append(""); out.append("(\(shown.count - 200) more rows in the JSON verdict)") }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
