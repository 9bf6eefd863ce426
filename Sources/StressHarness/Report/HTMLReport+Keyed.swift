import Foundation

/// The report's latency keyed by worker group and by op label (results'
/// `latencyByGroup` / `latencyByLabel`; a sweep point's pooled rows).
extension HTMLReport {
    /// A run's keyed rows: curves per class and the table.
    mutating func runKeyed(_ i: Int, _ r: RunResult) {
        for (kind, rows) in [("group", r.latencyByGroup), ("label", r.latencyByLabel)] {
            guard let rows, !rows.isEmpty else { continue }
            keyedLatency(id: "run\(i)-\(kind)", kind: kind, pooled: false,
                         rows: rows.map { KeyedRow(series: $0.key, key: $0.key, name: $0.name, runs: nil, calls: $0.calls, failures: $0.failures,
                                                   timed: $0.histogram.totalCount, summary: $0.summary, histogram: $0.histogram) })
        }
    }

    /// A sweep's keyed rows, every point's pooled.
    mutating func sweepKeyed(_ i: Int, _ s: SweepSummary, _ keyed: [String: KeyedPools]) {
        // Keyed by worker group and by op label: every point's rows, pooled (merged histograms from the run files, else summary.json's percentiles).
        for kind in ["group", "label"] {
            var rows: [KeyedRow] = []
            for p in s.points {
                let full = kind == "group" ? keyed[p.id]?.byGroup : keyed[p.id]?.byLabel
                if let full, !full.isEmpty {
                    rows += full.map { KeyedRow(series: "\(p.id) · \($0.row.key)", point: p.id, key: $0.row.key, name: $0.row.name, runs: $0.row.runs, calls: $0.row.calls,
                                                failures: $0.row.failures, timed: $0.row.timed, summary: $0.row.summary, histogram: $0.histogram) }
                } else if let sums = kind == "group" ? p.pooledLatencyByGroup : p.pooledLatencyByLabel {
                    rows += sums.map { KeyedRow(series: "\(p.id) · \($0.key)", point: p.id, key: $0.key, name: $0.name, runs: $0.runs, calls: $0.calls,
                                                failures: $0.failures, timed: $0.timed, summary: $0.summary, histogram: nil) }
                }
            }
            if !rows.isEmpty { keyedLatency(id: "sweep\(i)-\(kind)", kind: kind, pooled: true, rows: rows) }
        }
    }

    /// One keyed latency row as the report draws it (a run's, or a sweep point's repetitions pooled).
    struct KeyedRow {
        /// The line's name in a chart: the key (a run) or "point · key" (a sweep).
        var series: String
        /// The sweep point (nil: a run).
        var point: String? = nil
        var key: String
        var name: String
        var runs: Int?
        var calls: Int
        var failures: Int
        var timed: UInt64
        var summary: LatencySummary
        /// nil: only the summary is known (summary.json alone): the curve goes through its percentiles.
        var histogram: EncodedHistogram?
    }

    /// Latency keyed by worker group or op label: per class (at most 4), one
    /// curve per key; then a table of every row with p50 and p99 against the
    /// first key of the same class (e.g. a remote group against the local one).
    mutating func keyedLatency(id: String, kind: String, pooled: Bool, rows: [KeyedRow]) {
        let what = kind == "group" ? "worker group" : "op label"
        var classes: [String] = []
        for r in rows where !classes.contains(r.name) { classes.append(r.name) }
        for cls in classes.prefix(4) {
            let curves = rows.filter { $0.name == cls }.map { r in (r.series, r.histogram.map { HTMLReport.curve($0) } ?? (r.timed > 0 ? HTMLReport.curve(r.summary) : [])) }
            latencyCurves(id: "\(id)-lat", title: "Latency of \(cls) by \(what)\(pooled ? " (repetitions pooled)" : "")", classes: curves,
                          caption: "One line per \(what)\(pooled ? " and point: the repetitions' histograms merged (never averaged)" : "")" +
                                   ", read at percentiles from 50 to 99.999. The totals per class are in the chart above; `latencyBy\(kind == "group" ? "Group" : "Label")` in the results file.")
        }
        if classes.count > 4 { body.append("<p class=\"note\">\(classes.count - 4) more classes by \(what) are in the table below, not drawn.</p>") }
        var table = [[what] + (pooled ? ["runs"] : []) + ["class", "calls", "failures", "timed", "p50 ns", "p90 ns", "p99 ns", "p99.9 ns", "max ns", "p50 / first", "p99 / first"]]
        for r in rows {
            let ref = rows.first { $0.name == r.name && $0.point == r.point }
            func ratio(_ a: UInt64, _ b: UInt64?) -> String { b.map { $0 > 0 && r.timed > 0 ? String(format: "%.3f", Double(a) / Double($0)) : "" } ?? "" }
            table.append([r.series] + (pooled ? [String(r.runs ?? 0)] : []) + [r.name, String(r.calls), String(r.failures), String(r.timed),
                          String(r.summary.p50), String(r.summary.p90), String(r.summary.p99), String(r.summary.p999), String(r.summary.max),
                          ratio(r.summary.p50, ref?.summary.p50), ratio(r.summary.p99, ref?.summary.p99)])
        }
        body.append("<h3 data-keyed=\"\(SVG.escape(kind))\">Latency by \(what)\(pooled ? ", per point, repetitions pooled" : "")</h3>\n" + HTMLReport.table(table) +
                    "<p class=\"note\">p50 / first and p99 / first: against the first \(what) of the same class\(pooled ? " at the same point" : "") (e.g. a remote group against a local one).</p>")
    }

}
