import Foundation
import Histogram

/// `pagestorm report`: one self-contained HTML page (inline SVG and CSS, no
/// script, nothing fetched) drawing runs, sweeps, debates, load curves and
/// NUMA matrices. Every chart has a title, labelled axes with units and a
/// legend, and the numbers it draws in a table under it (docs/report.md).
public struct HTMLReport {
    public var inputs: [ReportInput]
    public var generatedAt: String
    public var revision: String
    var body: [String] = []
    private var chartCount = 0

    public init(inputs: [ReportInput], generatedAt: String, revision: String) {
        self.inputs = inputs
        self.generatedAt = generatedAt
        self.revision = revision
    }

    /// The percentiles a latency curve is drawn through (HdrHistogram's
    /// percentile distribution: ever finer steps toward 99.999).
    public static let curvePercentiles: [Double] = {
        var out: [Double] = []
        var t = log10(2.0)
        while t < 5.0 - 1e-9 { out.append(100 * (1 - pow(10, -t))); t += 0.1 }
        out.append(99.999)
        return out
    }()

    /// Points of a latency curve from a histogram: (percentile, ns), each at most the histogram's max.
    public static func curve(_ e: EncodedHistogram) -> [(x: Double, y: Double)] {
        guard e.totalCount > 0, let h = try? e.histogram() else { return [] }
        return curvePercentiles.map { p in (p, Double(Swift.min(h.valueAtPercentile(p), h.max))) }
    }

    static func curve(_ s: LatencySummary) -> [(x: Double, y: Double)] {
        [(50, Double(s.p50)), (90, Double(s.p90)), (99, Double(s.p99)), (99.9, Double(s.p999)), (99.99, Double(s.p9999))]
    }

    public mutating func html() -> String {
        body = []
        chartCount = 0
        for (i, input) in inputs.enumerated() {
            switch input {
            case .run(let path, let r): runSection(i, path, r)
            case .sweep(let path, let s, let pooled, let note, let keyed): sweepSection(i, path, s, pooled, note, keyed)
            case .debate(let path, let d): debateSection(i, path, d)
            case .loadCurve(let path, let c): loadCurveSection(i, path, c)
            case .numa(let path, let m): numaSection(i, path, m)
            }
        }
        let e = SVG.escape
        var page = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="generator" content="pagestorm report \(e(revision))">
        <title>pagestorm report</title>
        <style>
        body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1000px; }
        h1 { font-size: 22px; } h2 { font-size: 19px; border-top: 2px solid #ccc; padding-top: 12px; margin-top: 32px; } h3 { font-size: 16px; }
        table { border-collapse: collapse; font-size: 12px; margin: 8px 0 16px; }
        th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
        th { background: #f3f3f3; } td.l, th.l { text-align: left; }
        .note { color: #555; font-size: 13px; } figure { margin: 12px 0 24px; } svg.chart { display: block; max-width: 100%; height: auto; }
        td.v-ok { background: #cfe8cf; } td.v-failures { background: #fde3b3; } td.v-overloaded { background: #d6e4f5; }
        td.v-livelock { background: #f5b7b1; } td.v-deadlock { background: #e57373; } td.v-error { background: #c9a9d9; } td.v-mixed { background: #eeeeee; }
        details { margin: 4px 0 16px; } summary { cursor: pointer; font-size: 13px; color: #335; }
        </style>
        </head>
        <body>
        <h1>pagestorm report</h1>
        <p class="note">Generated \(e(generatedAt)) by pagestorm \(e(revision)) from \(inputs.count) input\(inputs.count == 1 ? "" : "s"). Self-contained: no script, nothing loaded from the network.</p>

        """
        page += body.joined(separator: "\n")
        page += "\n</body>\n</html>\n"
        return page
    }

    // MARK: pieces

    private mutating func nextID(_ stem: String) -> String {
        chartCount += 1
        return "\(stem)-\(chartCount)"
    }

    /// A chart and, under it, the numbers it draws (a table; folded when long).
    private mutating func figure(_ c: Chart, caption: String? = nil) {
        var s = "<figure id=\"\(SVG.escape(c.id))\">\n" + c.svg() + "\n"
        if let cap = caption { s += "<figcaption class=\"note\">\(SVG.escape(cap))</figcaption>\n" }
        let rows = HTMLReport.dataTable(c)
        s += rows.count > 25 ? "<details><summary>the numbers behind this chart (\(rows.count - 1) rows)</summary>\n" : "<details open><summary>the numbers behind this chart</summary>\n"
        s += HTMLReport.table(rows) + "</details>\n</figure>"
        body.append(s)
    }

    /// The chart's data as rows: the x value, then each series' y (and band low/high) at that x.
    public static func dataTable(_ c: Chart) -> [[String]] {
        var xs: [Double] = []
        var seen = Set<Double>()
        for se in c.series {
            for x in se.points.map(\.x) + se.band.map(\.x) where seen.insert(x).inserted { xs.append(x) }
        }
        xs.sort()
        var header = [c.xLabel]
        for se in c.series {
            header.append(se.name)
            if !se.band.isEmpty { header += ["\(se.name) min", "\(se.name) max"] }
        }
        var rows = [header]
        let label: (Double) -> String = {
            if case .category(let names) = c.xKind, let i = Int(exactly: $0), names.indices.contains(i) { return names[i] }
            return number($0)
        }
        for x in xs {
            var row = [label(x)]
            for se in c.series {
                let ys = se.points.filter { $0.x == x }.map(\.y)
                row.append(ys.isEmpty ? "" : ys.map(number).joined(separator: "; "))
                if !se.band.isEmpty {
                    let b = se.band.first { $0.x == x }
                    row += [b.map { number($0.lo) } ?? "", b.map { number($0.hi) } ?? ""]
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// A number for a table: integers as integers, others to 4 significant digits.
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        if abs(v) >= 1000 { return String(format: "%.1f", v) }
        return String(format: "%.4g", v)
    }

    /// Rows (the first is the header) as an HTML table; text cells left-aligned.
    public static func table(_ rows: [[String]], classes: [[String]]? = nil) -> String {
        guard let head = rows.first else { return "" }
        var s = "<table>\n<tr>" + head.map { "<th class=\"l\">\(SVG.escape($0))</th>" }.joined() + "</tr>\n"
        for (r, row) in rows.dropFirst().enumerated() {
            s += "<tr>"
            for (i, cell) in row.enumerated() {
                var cls = Double(cell.replacingOccurrences(of: ",", with: "")) == nil && !cell.isEmpty ? "l" : ""
                if let extra = classes?[r][i], !extra.isEmpty { cls += (cls.isEmpty ? "" : " ") + extra }
                s += cls.isEmpty ? "<td>" : "<td class=\"\(cls)\">"
                s += SVG.escape(cell) + "</td>"
            }
            s += "</tr>\n"
        }
        return s + "</table>\n"
    }

    private mutating func heading(_ title: String, _ path: String, _ facts: [(String, String)]) {
        var s = "<section>\n<h2>\(SVG.escape(title))</h2>\n<p class=\"note\">\(SVG.escape(path))</p>\n"
        s += HTMLReport.table([["what", "value"]] + facts.map { [$0.0, $0.1] })
        body.append(s)
    }

    // MARK: a run

    private mutating func runSection(_ i: Int, _ path: String, _ r: RunResult) {
        let measuredS = Double(r.timing.measuredNs) / 1e9
        heading("Run \(r.runID)", path, [
            ("allocator", r.allocator), ("workload", r.workload.name), ("verdict", r.status.verdict),
            ("stop reason", r.status.stopReason), ("warm-up + measured", "\(r.timing.warmupNs / 1_000_000) ms + \(HTMLReport.number((measuredS * 1000).rounded())) ms"),
            ("allocator calls/s", HTMLReport.number(r.throughput.callsPerSecond.rounded())),
            ("allocations/s", HTMLReport.number(measuredS > 0 ? (Double(r.throughput.allocs) / measuredS).rounded() : 0)),
            ("failed allocations", String(r.throughput.failedAllocs)), ("OOM kills (measured window)", String(r.slowPath.counters["oom_kill"] ?? 0)),
            ("OOM kills (whole run, prefill and warm-up included)", String(r.slowPath.oomEvents.filter { $0.kind == "kill" }.count)),
            ("stalls (>= \(r.slowPath.stalls.thresholdMs) ms)", String(r.slowPath.stalls.count)),
            ("revision", r.machine.gitRevision), ("machine", "\(r.machine.cpuModel), \(r.machine.cores) cores, \(r.machine.kernel)"),
        ])
        // The time axis shared by the run's time charts: ms after the workers' release.
        let series = r.throughput.series
        let bucket = Double(series.bucketMs)
        // The buckets start at the end of the warm-up.
        let warm = Double(r.timing.warmupNs) / 1e6
        let endMs = max(warm + Double(series.calls.count) * bucket, Double(r.timing.warmupNs + r.timing.measuredNs) / 1e6,
                        r.freePages?.atMs.last ?? 0, 1)
        let xr = (0.0, endMs)
        let at: ([UInt64]) -> [(x: Double, y: Double)] = { $0.enumerated().map { (warm + Double($0.offset) * bucket, Double($0.element)) } }
        var perBucket: [Chart.Series] = []
        if let a = series.allocs { perBucket.append(.init(name: "allocations", points: at(a))) }
        perBucket.append(.init(name: "calls", points: at(series.calls), style: series.allocs == nil ? .line : .dashed, color: "#76b7b2"))
        perBucket.append(.init(name: "failed allocations", points: at(series.failures), color: "#e15759"))
        var calls = Chart(id: nextID("run\(i)-calls"), title: "Allocations per \(series.bucketMs) ms",
                          xLabel: "time since the workers' release (ms)", yLabel: "per \(series.bucketMs) ms bucket",
                          series: perBucket)
        if warm > 0 { calls.series.append(.init(name: "end of warm-up", points: [(warm, 0)], style: .rules, color: "#999999")) }
        calls.xRange = xr
        figure(calls, caption: "Each point is the bucket starting at its time (the measured window, from the end of the warm-up), all workers: successful allocations, allocator calls (allocations and frees, failed ones included) and failed allocations." + (series.allocs == nil ? " This file has no allocation series (written before it was recorded): calls only." : ""))

        if let fp = r.freePages, !fp.atMs.isEmpty {
            for z in fp.zones.prefix(4) {
                var c = Chart(id: nextID("run\(i)-free-z\(z.zone)"), title: "Free pages against the watermarks: node \(z.node), zone \(z.type)",
                              xLabel: "time since the workers' release (ms)", yLabel: "pages (4 KiB)",
                              series: [
                                .init(name: "free pages", points: Array(zip(fp.atMs, z.free.map(Double.init)))),
                                .init(name: "high watermark", points: Array(zip(fp.atMs, z.high.map(Double.init))), style: .dashed, color: "#59a14f"),
                                .init(name: "low watermark", points: Array(zip(fp.atMs, z.low.map(Double.init))), style: .dashed, color: "#edc948"),
                                .init(name: "min watermark", points: Array(zip(fp.atMs, z.min.map(Double.init))), style: .dashed, color: "#e15759"),
                              ])
                c.xRange = xr
                figure(c, caption: "Sampled every \(fp.intervalMs) ms by the run's main thread (racy reads, as /proc/zoneinfo).\(fp.truncated ? " Truncated at 6000 samples." : "")")
            }
            if fp.zones.count > 4 { body.append("<p class=\"note\">\(fp.zones.count - 4) more zones are in the results file (freePages), not drawn.</p>") }
        } else {
            body.append("<p class=\"note\">No free-page series in this results file (a peer allocator's run, or written before it was recorded).</p>")
        }

        let stalls = r.slowPath.stalls.events ?? []
        let kills = r.slowPath.oomEvents.filter { $0.kind == "kill" }
        var ev = Chart(id: nextID("run\(i)-events"), title: "Stalls and OOM kills",
                       xLabel: "time since the workers' release (ms)", yLabel: "stall length (ms)",
                       series: [
                        .init(name: "stall (start, length)", points: stalls.map { ($0.atMs, Double($0.ms)) }, style: .markers, color: "#f28e2b"),
                        .init(name: "OOM kill", points: kills.map { ($0.atMs, 0) }, style: .rules, color: "#e15759"),
                       ])
        for g in r.slowPath.damage.groupsStopped { ev.series.append(.init(name: "group \(g.group) stopped", points: [(g.atMs, 0)], style: .rules, color: "#6a3d9a")) }
        ev.xRange = xr
        let stallNote = r.slowPath.stalls.events == nil && r.slowPath.stalls.count > 0 ? " This file has \(r.slowPath.stalls.count) stalls but not their times (written before they were recorded)." : ""
        figure(ev, caption: "Stalls: allocation calls of at least \(r.slowPath.stalls.thresholdMs) ms (\(r.slowPath.stalls.count) in all, times to within \(r.slowPath.stalls.resolutionMs) ms); OOM kills: \(kills.count).\(stallNote)")

        latencyCurves(id: "run\(i)-lat", title: "Latency by operation class", classes: r.latency.map { ($0.name, HTMLReport.curve($0.histogram)) },
                      caption: "Every class's histogram (1 in \(r.timing.sampleEvery) calls timed in closed loop), read at percentiles from 50 to 99.999, each at most the class's max.")
        runKeyed(i, r)
        body.append("</section>")
    }

    mutating func latencyCurves(id: String, title: String, classes: [(String, [(x: Double, y: Double)])], caption: String) {
        let drawn = classes.filter { !$0.1.isEmpty }
        var c = Chart(id: nextID(id), title: title, xLabel: "percentile (log scale of 1/(1-p))", yLabel: "latency (ns, log scale)",
                      series: drawn.map { Chart.Series(name: $0.0, points: $0.1) })
        c.xKind = .percentile
        c.yKind = .log
        c.xFormat = { Scale.percentLabel($0) }
        c.yFormat = Chart.ns
        c.xRange = (50, 99.999)
        if c.series.isEmpty { body.append("<p class=\"note\">\(SVG.escape(title)): no latency recorded.</p>"); return }
        figure(c, caption: caption)
    }

    // MARK: a sweep

    private mutating func sweepSection(_ i: Int, _ path: String, _ s: SweepSummary, _ pooled: [String: [String: EncodedHistogram]], _ note: String?, _ keyed: [String: KeyedPools]) {
        let complete = s.points.reduce(0) { $0 + $1.complete }, runs = s.points.reduce(0) { $0 + $1.runs }
        heading("Sweep \(s.sweep)", path, [
            ("axes", s.axes.map { "\($0.name) (\($0.key)): \($0.values.joined(separator: ", "))" }.joined(separator: "; ")),
            ("points", String(s.points.count)), ("runs with results", "\(complete) of \(runs)"),
            ("revision", s.revision), ("fingerprint", s.fingerprint),
        ])
        if let n = note { body.append("<p class=\"note\">\(SVG.escape(n))</p>") }
        let (xAxis, numeric) = HTMLReport.xAxis(s)
        let others = s.axes.filter { $0.name != xAxis?.name }
        let lineOf: (PointSummary) -> String = { p in others.isEmpty ? "all points" : others.map { "\($0.name)=\(p.values[$0.name] ?? "?")" }.joined(separator: ",") }
        for (metric, label, unit) in [("allocs_per_s", "Allocations per second", "allocations/s"), ("calls_per_s", "Allocator calls per second", "calls/s")] {
            guard let xa = xAxis else { break }
            var lines: [String: (pts: [(x: Double, y: Double)], band: [(x: Double, lo: Double, hi: Double)])] = [:]
            var order: [String] = []
            for p in s.points {
                guard let label = p.values[xa.name], let st = p.metrics[metric] else { continue }
                let x = numeric ? Double(label)! : Double(xa.values.firstIndex(of: label) ?? 0)
                let k = lineOf(p)
                if lines[k] == nil { order.append(k); lines[k] = ([], []) }
                lines[k]!.pts.append((x, st.median))
                lines[k]!.band.append((x, st.min, st.max))
            }
            if order.isEmpty { continue }
            var c = Chart(id: nextID("sweep\(i)-\(metric)"), title: "\(label) against \(xa.name) (median, min-max band over repetitions)",
                          xLabel: "\(xa.name) (\(xa.key))", yLabel: unit,
                          series: order.map { k in
                              let l = lines[k]!
                              let idx = l.pts.indices.sorted { l.pts[$0].x < l.pts[$1].x }
                              return Chart.Series(name: k, points: idx.map { l.pts[$0] }, band: idx.map { l.band[$0] })
                          })
            if !numeric { c.xKind = .category(xa.values) }
            figure(c, caption: "One line per combination of the other axes; the band spans the repetitions' min and max.")
        }
        // Latency curves per class, one line per point.
        var classes: [String] = []
        for p in s.points {
            for k in (pooled[p.id].map { Array($0.keys) } ?? Array(p.pooledLatency.keys)).sorted() where !classes.contains(k) { classes.append(k) }
        }
        for cls in classes.prefix(8) {
            let curves: [(String, [(x: Double, y: Double)])] = s.points.compactMap { p in
                if let h = pooled[p.id]?[cls] { return (p.id, HTMLReport.curve(h)) }
                if let sum = p.pooledLatency[cls] { return (p.id, HTMLReport.curve(sum)) }
                return nil
            }
            latencyCurves(id: "sweep\(i)-lat", title: "Latency of \(cls), per point (repetitions pooled)", classes: curves,
                          caption: "Each point's repetitions' histograms merged, read at percentiles from 50 to 99.999.")
        }
        if classes.count > 8 { body.append("<p class=\"note\">\(classes.count - 8) more latency classes are in summary.json, not drawn.</p>") }
        sweepKeyed(i, s, keyed)
        // The per-point table (as summary.csv's main columns).
        let latCols = classes.prefix(4)
        var rows: [[String]] = [["point"] + s.axes.map(\.name) + ["runs", "complete", "verdicts", "allocs/s median", "min", "max", "iqr"] + latCols.map { "\($0) p99 ns (median)" }]
        for p in s.points {
            let a = p.metrics["allocs_per_s"]
            let verdicts = p.verdicts.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            var row = [p.id] + s.axes.map { p.values[$0.name] ?? "" } + [String(p.runs), String(p.complete), verdicts]
            row += [a?.median, a?.min, a?.max, a?.iqr].map { $0.map { HTMLReport.number($0.rounded()) } ?? "" }
            row += latCols.map { cls in p.metrics[SweepMerge.columnSafe(cls) + ".p99_ns"].map { HTMLReport.number($0.median) } ?? "" }
            rows.append(row)
        }
        body.append("<h3>Points</h3>\n" + HTMLReport.table(rows) + "<p class=\"note\">Every metric's median, min, max and IQR are in summary.csv (pagestorm merge).</p>\n</section>")
    }

    /// The axis a sweep's throughput is drawn against: the first with numeric values, else the first.
    public static func xAxis(_ s: SweepSummary) -> (SweepManifest.AxisRecord?, numeric: Bool) {
        if let a = s.axes.first(where: { $0.values.count > 1 && $0.values.allSatisfy { Double($0) != nil } }) { return (a, true) }
        if let a = s.axes.first(where: { $0.values.count > 1 }) ?? s.axes.first { return (a, a.values.allSatisfy { Double($0) != nil }) }
        return (nil, false)
    }

    // MARK: a debate

    /// The CSS class of a verdict's cell.
    public static func verdictClass(_ v: String) -> String {
        for k in ["ok", "failures", "livelock", "deadlock", "error", "overloaded"] where v == k || v.hasPrefix(k + " ") && !v.contains(",") { return "v-\(k)" }
        return "v-mixed"
    }

    private mutating func debateSection(_ i: Int, _ path: String, _ d: DebateReport) {
        heading("Debate (\(d.rows.count) rows)", path, [
            ("started", d.startedAt), ("seeds per repeated row", String(d.seeds)), ("scale", HTMLReport.number(d.scale)),
            ("wall time", "\(HTMLReport.number(d.wallSeconds)) s"), ("revision", d.machine.gitRevision),
        ])
        let name: (String) -> String = { $0.hasSuffix(".toml") ? String($0.dropLast(5)) : $0 }
        var scenarios: [String] = [], policies: [String] = []
        for r in d.rows {
            if !scenarios.contains(r.scenario) { scenarios.append(r.scenario) }
            if !policies.contains(r.policy) { policies.append(r.policy) }
        }
        var rows = [["scenario \\ policy"] + policies]
        var classes: [[String]] = []
        for sc in scenarios {
            var row = [name(sc)], cls = [""]
            for p in policies {
                if let r = d.rows.first(where: { $0.scenario == sc && $0.policy == p }) {
                    row.append("\(r.verdict) · \(human(r.allocsPerSecond)) allocs/s")
                    cls.append(HTMLReport.verdictClass(r.verdict))
                } else { row.append(""); cls.append("") }
            }
            rows.append(row)
            classes.append(cls)
        }
        var s = "<h3 data-chart=\"debate-\(i)\">Policy × scenario, coloured by verdict</h3>\n"
        s += "<p class=\"note\">Legend: <span class=\"key\" style=\"background:#cfe8cf\">ok</span> <span style=\"background:#fde3b3\">failures</span> <span style=\"background:#f5b7b1\">livelock</span> <span style=\"background:#e57373\">deadlock</span> <span style=\"background:#c9a9d9\">error</span> <span style=\"background:#d6e4f5\">overloaded</span> <span style=\"background:#eeeeee\">mixed (repeated rows)</span></p>\n"
        s += HTMLReport.table(rows, classes: classes)
        var full = [["scenario", "policy", "allocs/s", "p99.9 alloc (ns)", "failures L0/L1/L2/L3", "OOM kills", "stalls (total ms)", "runs", "verdict", "settings"]]
        var fullCls: [[String]] = []
        for r in d.rows {
            full.append([name(r.scenario), r.policy, HTMLReport.number(r.allocsPerSecond.rounded()), String(r.p999Ns),
                         r.failuresByLevel.map(String.init).joined(separator: "/"), String(r.oomKills), "\(r.stalls) (\(r.stallMs))",
                         String(r.runs.count), r.verdict, r.settings])
            fullCls.append(Array(repeating: "", count: 8) + [HTMLReport.verdictClass(r.verdict), ""])
        }
        s += "<h3>Every row</h3>\n" + HTMLReport.table(full, classes: fullCls) + "</section>"
        body.append(s)
    }

    // MARK: a load curve

    private mutating func loadCurveSection(_ i: Int, _ path: String, _ c: LoadCurveResult) {
        let knee = c.kneeIndex.map { c.points[$0] }
        heading("Load curve of \(c.workload)", path, [
            ("open-loop workers", String(c.openLoopWorkers)), ("p99 bound", Chart.ns(c.p99BoundNs)),
            ("knee (highest offered rate with p99 under the bound)", knee.map { "\(human($0.offeredTotal)) ops/s offered, \(human($0.achievedTotal)) achieved" } ?? "none: the lowest rate is over the bound"),
            ("partial", c.partial ? "yes (a run ended in error or was interrupted)" : "no"), ("revision", c.machine.gitRevision),
        ])
        let pts = c.points
        var lat = Chart(id: nextID("loadcurve\(i)-latency"), title: "Allocation latency against offered load",
                        xLabel: "offered rate, all open-loop workers (ops/s)", yLabel: "allocation latency (ns, log scale)",
                        series: [
                            .init(name: "p50", points: pts.map { ($0.offeredTotal, Double($0.p50Ns)) }),
                            .init(name: "p99", points: pts.map { ($0.offeredTotal, Double($0.p99Ns)) }),
                            .init(name: "p99.9", points: pts.map { ($0.offeredTotal, Double($0.p999Ns)) }),
                            .init(name: "p99 bound", points: pts.map { ($0.offeredTotal, c.p99BoundNs) }, style: .dashed, color: "#999999"),
                        ])
        lat.yKind = .log
        lat.yFormat = Chart.ns
        let offered = pts.map(\.offeredTotal).filter { $0 > 0 }
        if let lo = offered.min(), let hi = offered.max(), hi / lo >= 100 { lat.xKind = .log; lat.xLabel += ", log scale" }
        if let k = knee { lat.series.append(.init(name: "knee", points: [(k.offeredTotal, 0)], style: .rules, color: "#b07aa1")) }
        figure(lat, caption: "Each point is one run at that offered rate (coordinated-omission corrected); the knee is the last rate whose p99 stays under the bound with every lower rate's.")
        var ach = Chart(id: nextID("loadcurve\(i)-achieved"), title: "Achieved against offered rate",
                        xLabel: "offered rate (ops/s)", yLabel: "achieved rate (ops/s)",
                        series: [
                            .init(name: "achieved", points: pts.map { ($0.offeredTotal, $0.achievedTotal) }),
                            .init(name: "offered (ideal)", points: pts.map { ($0.offeredTotal, $0.offeredTotal) }, style: .dashed, color: "#999999"),
                        ])
        if lat.xKind == .log { ach.xKind = .log; ach.yKind = .log; ach.xLabel += ", log scale"; ach.yLabel += ", log scale" }
        figure(ach, caption: "Overloaded runs: " + (pts.filter(\.overloaded).map { human($0.offeredTotal) }.joined(separator: ", ").nonEmpty ?? "none") + ".")
        body.append("</section>")
    }

    // MARK: a NUMA matrix

    private mutating func numaSection(_ i: Int, _ path: String, _ m: NumaMatrixResult) {
        heading("NUMA matrix: \(m.workload)", path, [
            ("topology", m.topology), ("nodes", String(m.nodes)), ("measured per cell", "\(m.durationMs) ms"),
            ("latency and bandwidth", m.modelOnly ? "the model's (every node's memory is the same real memory)" : "the hardware's (memory bound to each node)"),
            ("revision", m.machine.gitRevision),
        ])
        body.append(HTMLReport.heatMap(id: nextID("numa\(i)-allocs"), title: "Allocations per second, CPU node × memory node", unit: "allocations/s", m) { $0.allocsPerSecond })
        body.append(HTMLReport.heatMap(id: nextID("numa\(i)-p99"), title: "Allocation p99 latency, CPU node × memory node", unit: "ns", m) { Double($0.allocP99Ns) })
        body.append(HTMLReport.heatMap(id: nextID("numa\(i)-touch"), title: "Touch bandwidth, CPU node × memory node", unit: "GB/s", m) { $0.touchGBps })
        var rows = [["cpu node", "mem node", "allocs/s", "remote/local", "p50 ns", "p99 ns", "touch GB/s", "on mem node", "verdict"]]
        for c in m.cells.sorted(by: { ($0.cpuNode, $0.memNode) < ($1.cpuNode, $1.memNode) }) {
            let local = m.cells.first { $0.cpuNode == c.cpuNode && $0.memNode == c.cpuNode }?.allocsPerSecond ?? 0
            rows.append([String(c.cpuNode), String(c.memNode), HTMLReport.number(c.allocsPerSecond.rounded()),
                         local > 0 ? String(format: "%.3f", c.allocsPerSecond / local) : "", String(c.allocP50Ns), String(c.allocP99Ns),
                         String(format: "%.3f", c.touchGBps), String(format: "%.3f", c.onMemNode), c.verdict])
        }
        body.append("<details open><summary>the numbers behind these heat maps</summary>\n" + HTMLReport.table(rows) + "</details>\n</section>")
    }

    /// A heat map of the matrix: rows CPU nodes, columns memory nodes, the
    /// value written in each cell, and a colour scale from min to max.
    public static func heatMap(id: String, title: String, unit: String, _ m: NumaMatrixResult, _ value: (NodeMatrix.Cell) -> Double) -> String {
        // Rows: the CPU nodes measured; columns: the memory nodes (node numbers may skip, and a
        // memory-only node is a column but never a row).
        let rowsN = Array(Set(m.cells.map(\.cpuNode))).sorted(), colsN = Array(Set(m.cells.map(\.memNode))).sorted()
        let n = max(rowsN.count, colsN.count, 1)
        let cell = n <= 4 ? 90.0 : max(28, 360 / Double(n))
        let left = 110.0, top = 56.0
        let w = left + cell * Double(colsN.count) + 220, h = max(top + cell * Double(rowsN.count) + 60, 220)
        let vals = m.cells.map(value)
        let lo = vals.min() ?? 0, hi = vals.max() ?? 1
        func colour(_ v: Double) -> String {
            let f = hi > lo ? (v - lo) / (hi - lo) : 0.5
            // white-ish to dark blue
            let r = Int(247 - f * (247 - 8)), g = Int(251 - f * (251 - 69)), b = Int(255 - f * (255 - 148))
            return String(format: "#%02x%02x%02x", r, g, b)
        }
        let fmt: (Double) -> String = { unit == "ns" ? Chart.ns($0) : unit == "GB/s" ? String(format: "%.2f", $0) : human($0) }
        let e = SVG.escape, nn = SVG.num
        var s = "<figure id=\"\(e(id))\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart heatmap\" data-chart=\"\(e(id))\" width=\"\(nn(w))\" height=\"\(nn(h))\" viewBox=\"0 0 \(nn(w)) \(nn(h))\" role=\"img\" aria-label=\"\(e(title))\">\n"
        s += "<title>\(e(title))</title><rect x=\"0\" y=\"0\" width=\"\(nn(w))\" height=\"\(nn(h))\" fill=\"#ffffff\"/>\n"
        s += "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(e(title))</text>\n"
        s += "<text x=\"\(nn(left + cell * Double(colsN.count) / 2))\" y=\"\(nn(top - 8))\" font-size=\"12\" text-anchor=\"middle\">memory node (pages bound there)</text>\n"
        s += "<text transform=\"translate(16,\(nn(top + cell * Double(rowsN.count) / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">CPU node (workers pinned)</text>\n"
        s += "<g class=\"series\" data-series=\"\(e(unit))\" data-points=\"\(m.cells.count)\" font-size=\"12\" text-anchor=\"middle\">\n"
        for c in m.cells {
            let x = left + Double(colsN.firstIndex(of: c.memNode) ?? 0) * cell, y = top + Double(rowsN.firstIndex(of: c.cpuNode) ?? 0) * cell, v = value(c)
            let f = hi > lo ? (v - lo) / (hi - lo) : 0.5
            s += "<rect class=\"cell\" data-cpu=\"\(c.cpuNode)\" data-mem=\"\(c.memNode)\" x=\"\(nn(x))\" y=\"\(nn(y))\" width=\"\(nn(cell - 2))\" height=\"\(nn(cell - 2))\" fill=\"\(colour(v))\"/>"
            s += "<text x=\"\(nn(x + cell / 2 - 1))\" y=\"\(nn(y + cell / 2 + 4))\" fill=\"\(f > 0.55 ? "#ffffff" : "#000000")\">\(e(fmt(v)))</text>\n"
        }
        s += "</g>\n<g font-size=\"11\" text-anchor=\"end\">"
        for (k, node) in rowsN.enumerated() {
            s += "<text x=\"\(nn(left - 6))\" y=\"\(nn(top + Double(k) * cell + cell / 2 + 4))\">cpu node \(node)</text>"
        }
        for (k, node) in colsN.enumerated() {
            s += "<text x=\"\(nn(left + Double(k) * cell + cell / 2))\" y=\"\(nn(top + cell * Double(rowsN.count) + 16))\" text-anchor=\"middle\">mem node \(node)</text>"
        }
        s += "</g>\n"
        // The colour scale (the legend).
        let lx = left + cell * Double(colsN.count) + 40
        s += "<g class=\"legend\" font-size=\"11\"><text x=\"\(nn(lx))\" y=\"\(nn(top - 8))\">\(e(unit))</text>"
        for k in 0..<10 {
            let v = lo + (hi - lo) * Double(9 - k) / 9
            s += "<rect x=\"\(nn(lx))\" y=\"\(nn(top + Double(k) * 14))\" width=\"18\" height=\"14\" fill=\"\(colour(v))\"/>"
        }
        s += "<text x=\"\(nn(lx + 24))\" y=\"\(nn(top + 10))\">\(e(fmt(hi))) (max)</text><text x=\"\(nn(lx + 24))\" y=\"\(nn(top + 136))\">\(e(fmt(lo))) (min)</text></g>\n"
        s += "</svg>\n</figure>"
        return s
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
