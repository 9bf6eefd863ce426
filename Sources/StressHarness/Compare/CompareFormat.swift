import Foundation

/// Output formats of `pagestorm compare` (and the table `check` prints).
public enum CompareFormat: String, CaseIterable, Sendable {
    case text, markdown, json, csv
}

public enum CompareRender {
    /// A number in a short, fixed form: 3 significant digits past 1000 as k/M/G, else up to 2 decimals.
    public static func num(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        let a = abs(x)
        if a >= 1e9 { return String(format: "%.2fG", x / 1e9) }
        if a >= 1e6 { return String(format: "%.2fM", x / 1e6) }
        if a >= 1e4 { return String(format: "%.1fk", x / 1e3) }
        if a == a.rounded() { return String(format: "%.0f", x) }
        return String(format: a >= 100 ? "%.1f" : "%.2f", x)
    }

    /// Exact integers for counters.
    public static func exactNum(_ x: Double) -> String { x == x.rounded() && abs(x) < 9e18 ? String(Int64(x)) : String(x) }

    /// "-12.34%", marked `*-12.34%*` when significant (mmtests).
    public static func change(_ m: MetricComparison) -> String {
        guard let c = m.changePercent else { return "" }
        let s = c.isInfinite ? (c > 0 ? "+inf%" : "-inf%") : String(format: "%+.2f%%", c)
        return m.significant ? "*\(s)*" : " \(s) "
    }

    static func padL(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
    static func padR(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }

    public static func render(_ c: Comparison, as format: CompareFormat) throws -> String {
        switch format {
        case .text: return text(c)
        case .markdown: return markdown(c)
        case .csv: return csv(c)
        case .json:
            let d = try ResultsFile.encoder().encode(c)
            return String(decoding: d, as: UTF8.self)
        }
    }

    static func testNote(_ m: MetricComparison) -> String {
        var parts: [String] = []
        if let d = m.paired {
            // An alarm on a flagged metric is not counted (unless flagged runs may decide, which makes it significant).
            let alarm = !d.alarm ? "" : (m.flagged && !m.significant ? ", ALARM not counted (flagged)" : ", ALARM")
            parts.append(String(format: "paired: median %+.1f%%, %d/%d agree", d.median, d.agreeing, d.pairs) + alarm + " (decides);")
        }
        if let u = m.uTest { parts.append(String(format: "p=%.3f", u.p)) }
        if let ci = m.ratioCI { parts.append(String(format: "CI[%.3f,%.3f]", ci[0], ci[1])) }
        if m.flagged { parts.append("FLAGGED") }
        return parts.joined(separator: " ")
    }

    /// The mmtests-style table: per metric, rows of statistics; base and new side by side.
    public static func text(_ c: Comparison) -> String {
        var out: [String] = []
        let isPaired = c.points.contains { $0.metrics.contains { $0.paired != nil } }
        out.append("pagestorm compare: base \(c.base)  vs  new \(c.new)   (change %: + better, - worse; *x%* significant: "
                   + (isPaired ? "timings by the paired rule on repetitions paired by file name: median pair change beyond 5% with all but one pair that way, or beyond 8%)"
                               : "U test p < \(c.alpha) and the 95% bootstrap CI of the median ratio excludes 1)"))
        for w in c.warnings { out.append("warning: \(w)") }
        for p in c.points {
            out.append("")
            out.append("== \(p.id.isEmpty ? "" : "point \(p.id): ")\(p.workload): \(p.baseReps) base rep(s) vs \(p.newReps) new rep(s)")
            for w in p.warnings { out.append("warning: \(w)") }
            for f in p.flaggedReps { out.append("untrustworthy: \(f)") }
            let labelW = max(24, (p.metrics.map { $0.metric.label.count + $0.metric.unit.count + 3 }.max() ?? 24))
            out.append(padR("", labelW) + padR("", 9) + padL("base", 14) + padL("", 12) + padL("new", 14) + padL("change", 12))
            let exact = p.metrics.filter { $0.metric.kind == .exact }
            if !exact.isEmpty {
                let changed = exact.filter { $0.direction != "same" }
                out.append("exact counters (deterministic run): \(exact.count) compared, \(changed.count) changed")
                for m in changed {
                    out.append(padR("\(m.metric.label)", labelW) + padR(" BEHAVIOUR", 9) + padL(m.base.map { exactNum($0.mean) } ?? "-", 14) + padL("", 12)
                               + padL(m.new.map { exactNum($0.mean) } ?? "-", 14) + padL(change(m), 12) + (m.note.map { "  \($0)" } ?? ""))
                }
            }
            for m in p.metrics where m.metric.kind != .exact {
                let label = "\(m.metric.label) (\(m.metric.unit))"
                guard let b = m.base, let n = m.new else {
                    out.append(padR(label, labelW) + "  \(m.note ?? "missing")")
                    continue
                }
                if m.metric.kind == .instructions {
                    out.append(padR(label, labelW) + padR(" Instr", 9) + padL(num(b.mean), 14) + padL("", 12) + padL(num(n.mean), 14) + padL(change(m), 12))
                    continue
                }
                let rows: [(String, Double, Double, Bool)] = [
                    (b.meanKind, b.mean, n.mean, true), ("Stddev", b.stddev, n.stddev, false), ("CoeffVar", b.cv, n.cv, false),
                    ("Min", b.min, n.min, false), ("Max", b.max, n.max, false),
                ]
                for (i, r) in rows.enumerated() {
                    let pct: String
                    if r.3 { pct = "(  0.00%)" } else { pct = "" }
                    var line = padR(i == 0 ? label : "", labelW) + padR(" " + r.0, 9) + padL(num(r.1), 14) + padL(pct, 12) + padL(num(r.2), 14)
                    if r.3 { line += padL(change(m), 12) + "  " + testNote(m) }
                    out.append(line)
                }
                if let note = m.note { out.append(padR("", labelW) + "  note: \(note)") }
            }
            if let g = p.geomeanCostRatio {
                out.append(padR("Gmean cost ratio (\(p.geomeanMetrics) metrics)", labelW) + padR("", 9) + padL("1.000", 14) + padL("", 12)
                           + padL(String(format: "%.3f", g), 14) + padL(String(format: "%+.2f%%", (1 / g - 1) * 100), 12))
            }
        }
        return out.joined(separator: "\n")
    }

    public static func markdown(_ c: Comparison) -> String {
        var out: [String] = []
        let isPaired = c.points.contains { $0.metrics.contains { $0.paired != nil } }
        out.append("**pagestorm compare**: base `\(c.base)` vs new `\(c.new)` (change: + better, - worse; **bold** = significant, "
                   + (isPaired ? "timings by the paired rule: median pair change beyond 5% with all but one pair that way, or beyond 8%; column p: the U test, for information)"
                               : "U test p < \(c.alpha) and 95% bootstrap CI of the median ratio excludes 1)"))
        for w in c.warnings { out.append(""); out.append("> warning: \(w)") }
        for p in c.points {
            out.append("")
            out.append("### \(p.id.isEmpty ? "" : "\(p.id): ")\(p.workload) (\(p.baseReps) vs \(p.newReps) reps)")
            for w in p.warnings { out.append(""); out.append("> warning: \(w)") }
            for f in p.flaggedReps { out.append(""); out.append("> untrustworthy: \(f)") }
            out.append("")
            out.append("| metric | base mean | base CV | new mean | new CV | change | p | 95% CI of median ratio |")
            out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
            for m in p.metrics {
                if m.metric.kind == .exact && m.direction == "same" { continue }
                let label = "\(m.metric.label) (\(m.metric.unit))"
                let fmtMean: (SideStats?) -> String = { s in s.map { m.metric.kind == .exact ? exactNum($0.mean) : num($0.mean) } ?? "-" }
                let ch = m.changePercent.map { $0.isInfinite ? ($0 > 0 ? "+inf%" : "-inf%") : String(format: "%+.2f%%", $0) } ?? "-"
                out.append("| \(label)\(m.flagged ? " ⚠" : "") | \(fmtMean(m.base)) | \(m.base.map { String(format: "%.1f%%", $0.cv) } ?? "-") | \(fmtMean(m.new)) | \(m.new.map { String(format: "%.1f%%", $0.cv) } ?? "-") | \(m.significant ? "**\(ch)**" : ch) | \(m.uTest.map { String(format: "%.3f", $0.p) } ?? "-") | \(m.ratioCI.map { String(format: "%.3f-%.3f", $0[0], $0[1]) } ?? "-") |")
            }
            let exact = p.metrics.filter { $0.metric.kind == .exact }
            if !exact.isEmpty { out.append(""); out.append("Exact counters: \(exact.count) compared, \(exact.filter { $0.direction != "same" }.count) changed.") }
            if let g = p.geomeanCostRatio { out.append(""); out.append(String(format: "Geometric mean cost ratio over %d metrics: %.3f (%+.2f%%)", p.geomeanMetrics, g, (1 / g - 1) * 100)) }
        }
        return out.joined(separator: "\n")
    }

    static func csvField(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }

    public static func csv(_ c: Comparison) -> String {
        var out = ["point,workload,metric,label,unit,better,kind,base_n,base_mean,base_mean_kind,base_median,base_stddev,base_cv_pct,base_min,base_max,new_n,new_mean,new_median,new_stddev,new_cv_pct,new_min,new_max,change_pct,p_value,ci_low,ci_high,significant,direction,flagged"]
        func d(_ x: Double?) -> String { x.map { $0.isFinite ? String($0) : ($0.isNaN ? "nan" : ($0 > 0 ? "inf" : "-inf")) } ?? "" }
        for p in c.points {
            for m in p.metrics {
                let b = m.base, n = m.new
                let fields: [String] = [p.id, p.workload, m.metric.id, m.metric.label, m.metric.unit, m.metric.better.rawValue, m.metric.kind.rawValue,
                                        b.map { String($0.n) } ?? "", d(b?.mean), b?.meanKind ?? "", d(b?.median), d(b?.stddev), d(b?.cv), d(b?.min), d(b?.max),
                                        n.map { String($0.n) } ?? "", d(n?.mean), d(n?.median), d(n?.stddev), d(n?.cv), d(n?.min), d(n?.max),
                                        d(m.changePercent), d(m.uTest?.p), d(m.ratioCI?[0]), d(m.ratioCI?[1]), String(m.significant), m.direction, String(m.flagged)]
                out.append(fields.map(csvField).joined(separator: ","))
            }
        }
        return out.joined(separator: "\n")
    }
}
