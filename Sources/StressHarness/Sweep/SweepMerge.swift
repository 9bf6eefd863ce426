import Foundation

/// Statistics of one metric over a point's repetitions.
public struct RepStats: Codable, Sendable, Equatable {
    /// Repetitions that had the metric.
    public var n: Int
    public var median: Double
    public var min: Double
    public var max: Double
    /// First and third quartiles (linear interpolation between order statistics, numpy's default).
    public var q1: Double
    public var q3: Double
    public var iqr: Double

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        func q(_ p: Double) -> Double {
            let h = Double(s.count - 1) * p
            let lo = Int(h.rounded(.down)), hi = Swift.min(lo + 1, s.count - 1)
            return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
        }
        n = s.count
        median = q(0.5)
        min = s.first!
        max = s.last!
        q1 = q(0.25)
        q3 = q(0.75)
        iqr = q3 - q1
    }
}

/// One keyed latency row (a worker group's or an op label's class) of a
/// point, its repetitions pooled: calls and failures summed, histograms merged
/// losslessly, the percentiles read from the merged histogram (never averaged).
public struct PooledKeyedLatency: Codable, Sendable, Equatable {
    /// The group's name or the label.
    public var key: String
    /// The operation class's name.
    public var name: String
    /// Repetitions that had the row.
    public var runs: Int
    public var calls: Int
    public var failures: Int
    /// Timed calls in the merged histogram.
    public var timed: UInt64
    public var summary: LatencySummary
}

/// One point of `summary.json` (schema `pagestorm.sweep-summary/1`, docs/sweeps.md).
public struct PointSummary: Codable, Sendable, Equatable {
    public var id: String
    /// axis name -> value label.
    public var values: [String: String]
    /// Runs the sweep asked for (its repetitions).
    public var runs: Int
    /// Runs with a complete result.
    public var complete: Int
    /// Runs with only a failure record (crashed, could not start, timed out).
    public var failed: Int
    public var missing: Int
    /// Complete runs by verdict: ok, failures, livelock, deadlock, overloaded, error.
    public var verdicts: [String: Int]
    /// metric name -> statistics over the complete runs (names in `SweepSummary.metrics`).
    public var metrics: [String: RepStats]
    /// Per operation class: the percentiles of all repetitions' calls pooled (histograms merged losslessly), in ns.
    public var pooledLatency: [String: LatencySummary]
    /// The seeds of the complete runs, by repetition.
    public var seeds: [String: UInt64]
    /// Per worker group and class (runs' `latencyByGroup`): the repetitions
    /// pooled, groups in workload order; nil when no run has the rows (one group).
    public var pooledLatencyByGroup: [PooledKeyedLatency]? = nil
    /// Per op label and class (runs' `latencyByLabel`), pooled the same way; nil when no op has a label.
    public var pooledLatencyByLabel: [PooledKeyedLatency]? = nil
}

public struct SweepSummary: Codable, Sendable, Equatable {
    public static let schemaName = "pagestorm.sweep-summary/1"
    public var schema = SweepSummary.schemaName
    public var sweep: String
    public var fingerprint: String
    public var revision: String
    public var axes: [SweepManifest.AxisRecord]
    /// Every metric name, in column order.
    public var metrics: [String]
    public var points: [PointSummary]
}

/// `merge.json`: what a merge found.
public struct MergeReport: Codable, Sendable {
    public static let schemaName = "pagestorm.sweep-merge/1"
    public var schema = MergeReport.schemaName
    public var sweep: String
    public var fingerprint: String
    public var revision: String
    public var inputs: [String]
    public var output: String
    public var runs: Int
    public var complete: Int
    /// Run ids with no result in any input (a failure record's message beside it when there is one).
    public var missing: [MissingRun]
    /// Run ids found in more than one input: the first input's copy is kept.
    public var duplicates: [DuplicateRun]

    public struct MissingRun: Codable, Sendable {
        public var run: String
        public var failure: String?
    }
    public struct DuplicateRun: Codable, Sendable {
        public var run: String
        public var files: [String]
        /// The copies are byte for byte the same.
        public var identical: Bool
    }
}

public enum SweepMerge {
    /// Reads the manifests of `dirs`, checks they are one sweep of one
    /// revision, joins their runs into `output` (copying run files that are
    /// not there yet; nothing is overwritten), and writes `summary.json`,
    /// `summary.csv` and `merge.json` there.
    public static func merge(_ dirs: [String], output: String) throws(SweepError) -> (MergeReport, SweepSummary) {
        guard !dirs.isEmpty else { throw SweepError("merge", "give at least one sweep results folder") }
        var manifests: [(String, SweepManifest)] = []
        for d in dirs {
            let p = "\(d)/\(SweepManifest.fileName)"
            guard FileManager.default.fileExists(atPath: p) else {
                throw SweepError(d, "not a sweep results folder: it has no \(SweepManifest.fileName) (give results/<sweep name>, or a shard's folder)")
            }
            do { manifests.append((d, try ResultsFile.read(SweepManifest.self, from: p))) } catch {
                throw SweepError(p, "cannot read the sweep manifest: \(error)")
            }
        }
        let (firstDir, m) = manifests[0]
        for (d, other) in manifests.dropFirst() {
            if other.fingerprint != m.fingerprint {
                throw SweepError(d, "is from another sweep: '\(other.name)' (fingerprint \(other.fingerprint), file \(other.file)) while \(firstDir) is '\(m.name)' (fingerprint \(m.fingerprint), file \(m.file)); merge the folders of one sweep")
            }
            if other.revision != m.revision {
                throw SweepError(d, "was run by revision \(other.revision) while \(firstDir) was run by \(m.revision); merge the results of one binary")
            }
        }

        let fm = FileManager.default
        var report = MergeReport(sweep: m.name, fingerprint: m.fingerprint, revision: m.revision, inputs: dirs, output: output,
                                 runs: m.runs.count, complete: 0, missing: [], duplicates: [])
        var results: [String: RunResult] = [:]
        let std = { (p: String) in URL(fileURLWithPath: p).standardized.path }
        do { try fm.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
            throw SweepError(output, "cannot create the output folder: \(error.localizedDescription)")
        }
        for run in m.runs {
            var found: [String] = []
            for d in dirs {
                let p = SweepFolder.path(d, run)
                if fm.fileExists(atPath: p) { found.append(p) }
            }
            if found.isEmpty {
                var why: String? = nil
                for d in dirs {
                    if let f = try? ResultsFile.read(SweepRunFailure.self, from: SweepFolder.failedPath(d, run)) { why = "\(f.kind): \(f.message)" }
                }
                report.missing.append(.init(run: run.id, failure: why))
                continue
            }
            if found.count > 1 {
                let uniqueFiles = Set(found.map(std))
                if uniqueFiles.count > 1 {
                    let datas = found.map { fm.contents(atPath: $0) }
                    report.duplicates.append(.init(run: run.id, files: found, identical: datas.allSatisfy { $0 == datas[0] }))
                }
            }
            let r: RunResult
            do { r = try ResultsFile.read(RunResult.self, from: found[0]) } catch {
                throw SweepError(found[0], "cannot read the run's results: \(error)")
            }
            if r.machine.gitRevision != m.revision {
                throw SweepError(found[0], "was written by revision \(r.machine.gitRevision), but its sweep manifest says \(m.revision)")
            }
            if r.shard.sweep != nil && r.shard.sweep != m.name {
                throw SweepError(found[0], "belongs to sweep '\(r.shard.sweep!)', not '\(m.name)'")
            }
            results[run.id] = r
            let dest = SweepFolder.path(output, run)
            if !fm.fileExists(atPath: dest) {
                do {
                    try fm.createDirectory(atPath: "\(output)/\(run.point)", withIntermediateDirectories: true)
                    try fm.copyItem(atPath: found[0], toPath: dest)
                } catch { throw SweepError(dest, "cannot copy the run's results: \(error.localizedDescription)") }
            }
        }
        report.complete = results.count
        let summary = summarize(m, results: results, failedIDs: Set(report.missing.filter { $0.failure != nil }.map(\.run)))
        do {
            if std(output) != std(firstDir) || !fm.fileExists(atPath: "\(output)/\(SweepManifest.fileName)") {
                if !fm.fileExists(atPath: "\(output)/\(SweepManifest.fileName)") { try ResultsFile.replace(m, at: "\(output)/\(SweepManifest.fileName)") }
            }
            try ResultsFile.replace(summary, at: "\(output)/summary.json")
            try Data(csv(summary).utf8).write(to: URL(fileURLWithPath: "\(output)/summary.csv"), options: .atomic)
            try ResultsFile.replace(report, at: "\(output)/merge.json")
        } catch { throw SweepError(output, "cannot write the summary: \(error.localizedDescription)") }
        return (report, summary)
    }

    /// Metrics of one run, in column order.
    public static func metrics(_ r: RunResult) -> [(String, Double)] {
        var out: [(String, Double)] = []
        let secs = Double(r.timing.measuredNs) / 1e9
        out.append(("calls_per_s", r.throughput.callsPerSecond))
        out.append(("ops_per_s", r.throughput.operationsPerSecond))
        out.append(("allocs_per_s", secs > 0 ? Double(r.throughput.allocs) / secs : 0))
        out.append(("failed_allocs", Double(r.throughput.failedAllocs)))
        for level in 0...3 { out.append(("failures_level\(level)", Double(r.failures.byLevel[String(level)] ?? 0))) }
        out.append(("oom_kills", Double(r.slowPath.counters["oom_kill"] ?? 0)))
        out.append(("stalls", Double(r.slowPath.stalls.count)))
        out.append(("stall_ms_total", Double(r.slowPath.stalls.totalMs)))
        out.append(("measured_ms", Double(r.timing.measuredNs) / 1e6))
        for c in r.latency {
            let k = columnSafe(c.name)
            out.append(("\(k).calls", Double(c.calls)))
            out.append(("\(k).p50_ns", Double(c.summary.p50)))
            out.append(("\(k).p90_ns", Double(c.summary.p90)))
            out.append(("\(k).p99_ns", Double(c.summary.p99)))
            out.append(("\(k).p99.9_ns", Double(c.summary.p999)))
            out.append(("\(k).p99.99_ns", Double(c.summary.p9999)))
            out.append(("\(k).max_ns", Double(c.summary.max)))
        }
        // Keyed by worker group and by op label: lat.group.<group>.<class>.*, lat.label.<label>.<class>.*.
        for (kind, rows) in [("group", r.latencyByGroup ?? []), ("label", r.latencyByLabel ?? [])] {
            for c in rows {
                let k = keyedColumn(kind, c.key, c.name)
                out.append(("\(k).calls", Double(c.calls)))
                out.append(("\(k).failures", Double(c.failures)))
                out.append(("\(k).p50_ns", Double(c.summary.p50)))
                out.append(("\(k).p99_ns", Double(c.summary.p99)))
                out.append(("\(k).p99.9_ns", Double(c.summary.p999)))
            }
        }
        return out
    }

    /// A keyed row's column prefix: group `remote`, class `alloc o0 GFP_KERNEL` -> `lat.group.remote.alloc_o0_GFP_KERNEL`.
    public static func keyedColumn(_ kind: String, _ key: String, _ name: String) -> String {
        "lat.\(kind).\(safe(key)).\(safe(name))"
    }

    /// Keyed latency rows of several runs (one list per run, in repetition
    /// order) pooled per (key, class): calls and failures summed, histograms
    /// merged losslessly, summaries read from the merged histogram. Rows in
    /// first-seen order. A histogram that cannot be merged (another layout)
    /// leaves its row out of the pool and is named in the second value.
    public static func poolKeyed(_ runs: [[KeyedLatency]]) -> (rows: [(row: PooledKeyedLatency, histogram: EncodedHistogram)], problems: [String]) {
        var order: [String] = []
        var byID: [String: [KeyedLatency]] = [:]
        for rows in runs {
            for c in rows {
                let id = c.key + "\u{0}" + c.name
                if byID[id] == nil { order.append(id) }
                byID[id, default: []].append(c)
            }
        }
        var out: [(row: PooledKeyedLatency, histogram: EncodedHistogram)] = []
        var problems: [String] = []
        for id in order {
            let all = byID[id]!
            // A histogram of another layout than the row's first is left out of the pool (and named), the rest merged once.
            var kept: [KeyedLatency] = []
            for c in all {
                if let f = kept.first, !c.histogram.sameLayout(as: f.histogram) {
                    problems.append("\(c.key) \(c.name): \(EncodedHistogram.layoutMismatch(f.histogram, c.histogram))")
                } else {
                    kept.append(c)
                }
            }
            let hist: EncodedHistogram
            do { hist = try EncodedHistogram.merge(kept.map(\.histogram)) } catch {
                problems.append("\(all[0].key) \(all[0].name): \(error)")
                continue
            }
            var row = PooledKeyedLatency(key: all[0].key, name: all[0].name, runs: kept.count,
                                         calls: kept.reduce(0) { $0 + $1.calls }, failures: kept.reduce(0) { $0 + $1.failures },
                                         timed: hist.totalCount, summary: LatencySummary())
            if hist.totalCount > 0, let h = try? hist.histogram() { row.summary = h.summary() }
            out.append((row, hist))
        }
        return (out, problems)
    }

    /// An operation class name as a column prefix: `alloc o0 GFP_KERNEL` -> `lat.alloc_o0_GFP_KERNEL`.
    static func columnSafe(_ s: String) -> String { "lat." + safe(s) }

    /// Letters, digits, `_` and `-` kept; anything else becomes `_`.
    static func safe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" })
    }

    public static func summarize(_ m: SweepManifest, results: [String: RunResult], failedIDs: Set<String>) -> SweepSummary {
        summarizePooled(m, results: results, failedIDs: failedIDs).summary
    }

    /// The summary, and per point the repetitions' histograms merged once: per
    /// latency class, and the keyed rows with theirs (what the report draws).
    public static func summarizePooled(_ m: SweepManifest, results: [String: RunResult], failedIDs: Set<String>)
        -> (summary: SweepSummary, pools: [String: (latency: [String: EncodedHistogram], keyed: KeyedPools)]) {
        var pools: [String: (latency: [String: EncodedHistogram], keyed: KeyedPools)] = [:]
        var order: [String] = []
        var seenMetric = Set<String>()
        var points: [PointSummary] = []
        let runsByPoint = Dictionary(grouping: m.runs, by: \.point)
        for p in m.points {
            let runs = (runsByPoint[p.id] ?? []).sorted { $0.rep < $1.rep }
            var values: [String: [Double]] = [:]
            var verdicts: [String: Int] = ["ok": 0, "failures": 0, "livelock": 0, "deadlock": 0, "overloaded": 0, "error": 0]
            var hist: [String: [EncodedHistogram]] = [:]
            var seeds: [String: UInt64] = [:]
            var byGroup: [[KeyedLatency]] = [], byLabel: [[KeyedLatency]] = []
            var complete = 0, failed = 0
            for run in runs {
                guard let r = results[run.id] else {
                    if failedIDs.contains(run.id) { failed += 1 }
                    continue
                }
                complete += 1
                seeds["rep-\(run.rep)"] = r.workload.run.seed
                verdicts[r.status.verdict, default: 0] += 1
                for (k, v) in metrics(r) {
                    if seenMetric.insert(k).inserted { order.append(k) }
                    values[k, default: []].append(v)
                }
                for c in r.latency { hist[c.name, default: []].append(c.histogram) }
                if let g = r.latencyByGroup { byGroup.append(g) }
                if let l = r.latencyByLabel { byLabel.append(l) }
            }
            var pooled: [String: LatencySummary] = [:]
            var merged: [String: EncodedHistogram] = [:]
            for (k, list) in hist {
                guard let e = try? EncodedHistogram.merge(list) else { continue }
                merged[k] = e
                if let h = try? e.histogram() { pooled[k] = h.summary() }
            }
            let keyed = KeyedPools(byGroup: byGroup.isEmpty ? [] : poolKeyed(byGroup).rows,
                                   byLabel: byLabel.isEmpty ? [] : poolKeyed(byLabel).rows)
            if complete > 0 { pools[p.id] = (merged, keyed) }
            points.append(PointSummary(id: p.id, values: p.values, runs: runs.count, complete: complete, failed: failed,
                                       missing: runs.count - complete, verdicts: verdicts,
                                       metrics: values.compactMapValues { RepStats($0) }, pooledLatency: pooled, seeds: seeds,
                                       pooledLatencyByGroup: byGroup.isEmpty ? nil : keyed.byGroup.map(\.row),
                                       pooledLatencyByLabel: byLabel.isEmpty ? nil : keyed.byLabel.map(\.row)))
        }
        return (SweepSummary(sweep: m.name, fingerprint: m.fingerprint, revision: m.revision, axes: m.axes, metrics: order, points: points), pools)
    }

    /// One row per point: `point`, one column per axis, the run counts and
    /// verdicts, then `<metric>.median`, `.min`, `.max`, `.iqr` for every metric.
    public static func csv(_ s: SweepSummary) -> String {
        func cell(_ t: String) -> String {
            t.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : t
        }
        func num(_ d: Double) -> String {
            if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            if abs(d) >= 1000 && abs(d) < 1e15 { return String(format: "%.0f", d) }
            return String(format: "%.6g", d)
        }
        let verdictKeys = ["ok", "failures", "livelock", "deadlock", "overloaded", "error"]
        var header = ["point"] + s.axes.map(\.name) + ["runs", "complete", "failed", "missing"] + verdictKeys.map { "verdict_\($0)" }
        for m in s.metrics { header += ["median", "min", "max", "iqr"].map { "\(m).\($0)" } }
        var lines = [header.map(cell).joined(separator: ",")]
        for p in s.points {
            var row = [p.id] + s.axes.map { p.values[$0.name] ?? "" }
            row += [p.runs, p.complete, p.failed, p.missing].map(String.init)
            row += verdictKeys.map { String(p.verdicts[$0] ?? 0) }
            for m in s.metrics {
                if let st = p.metrics[m] { row += [st.median, st.min, st.max, st.iqr].map(num) } else { row += ["", "", "", ""] }
            }
            lines.append(row.map(cell).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
