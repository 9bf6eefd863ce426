import Foundation
import Testing
@testable import StressHarness

/// Keyed latency (by worker group, by op label) through `pagestorm merge`,
/// `compare`/`check` and `pagestorm report`.
@Suite struct KeyedLatencyMergeTests {
    /// Two groups ("local", "remote") and a label shared by both, small op-count runs.
    static let workload = small("""
    [[group]]
    name = "local"
    workers = 1
    [[group.op]]
    name = "near"
    order = 0
    label = "tagged"
    [[group.op]]
    name = "plain"
    order = 0

    [[group]]
    name = "remote"
    workers = 1
    [[group.op]]
    name = "far"
    order = 0
    label = "tagged"
    """, run: "ops = 1500\nwarmup_ms = 0\nsample_every = 1")

    static let sweepText = """
    name = "k"
    workload = "w.toml"
    repetitions = 2
    [[axis]]
    key = "group[1].op[0].order"
    values = [0, 1]
    """

    /// Runs every run of the sweep once into `root` (one folder, as an unsharded sweep writes it).
    static func runAll(_ spec: SweepSpec, into root: String, revision: String) throws {
        try ResultsFile.write(spec.manifest(revision: revision), to: "\(root)/\(SweepManifest.fileName)")
        for run in spec.runs() {
            let p = spec.points.first { $0.id == run.point }!
            var o = RunOptions()
            o.measureOverhead = false
            o.shard = ShardInfo(sweep: spec.name, index: run.order, count: spec.runs().count, parameters: p.values)
            let r = try StressRun.run(try spec.workload(point: p, seed: run.seed, machine: testMachine), options: o)
            #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
            try ResultsFile.write(r, to: SweepFolder.path(root, run))
        }
    }

    static func tempDir(_ stem: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(stem)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The same run files merged from one folder and from two shards' folders
    /// give the same summary.json byte for byte; every pooled keyed row is the
    /// runs' histograms merged (calls and failures summed), not an average; the
    /// report of the merged folder draws the same pooled rows.
    @Test func shardsMergeToWhatTheUnshardedSweepGives() throws {
        let dir = try Self.tempDir("keyed-merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.workload.write(toFile: "\(dir)/w.toml", atomically: true, encoding: .utf8)
        try Self.sweepText.write(toFile: "\(dir)/k.toml", atomically: true, encoding: .utf8)
        let spec = try SweepSpec.load(path: "\(dir)/k.toml", machine: testMachine)
        let revision = SweepRevision.current()
        let all = "\(dir)/all/k"
        try Self.runAll(spec, into: all, revision: revision)
        // The same files, split as `sweep --shard i/2` splits them.
        let shards = ["\(dir)/s0/k", "\(dir)/s1/k"]
        for (i, root) in shards.enumerated() {
            try ResultsFile.write(spec.manifest(revision: revision), to: "\(root)/\(SweepManifest.fileName)")
            for run in spec.runs(shard: ShardSpec(index: i, count: 2)) {
                try FileManager.default.createDirectory(atPath: "\(root)/\(run.point)", withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: SweepFolder.path(all, run), toPath: SweepFolder.path(root, run))
            }
        }
        let (_, unsharded) = try SweepMerge.merge([all], output: "\(dir)/m1")
        let (report, sharded) = try SweepMerge.merge(shards, output: "\(dir)/m2")
        #expect(report.complete == 4 && report.missing.isEmpty && report.duplicates.isEmpty)
        #expect(sharded == unsharded)
        let bytes1 = FileManager.default.contents(atPath: "\(dir)/m1/summary.json"), bytes2 = FileManager.default.contents(atPath: "\(dir)/m2/summary.json")
        #expect(bytes1 != nil && bytes1 == bytes2, "summary.json differs between the sharded and the unsharded merge")
        #expect(try String(contentsOfFile: "\(dir)/m1/summary.csv", encoding: .utf8) == String(contentsOfFile: "\(dir)/m2/summary.csv", encoding: .utf8))

        // Every pooled row against the run files themselves.
        for p in sharded.points {
            let runs = spec.runs().filter { $0.point == p.id }.sorted { $0.rep < $1.rep }
            let results = try runs.map { try ResultsFile.read(RunResult.self, from: SweepFolder.path(all, $0)) }
            for (pooledRows, perRun) in [(p.pooledLatencyByGroup, results.map { $0.latencyByGroup ?? [] }), (p.pooledLatencyByLabel, results.map { $0.latencyByLabel ?? [] })] {
                let rows = try #require(pooledRows, "point \(p.id) has no pooled keyed rows")
                let expectedKeys = perRun.flatMap { $0.map { "\($0.key)/\($0.name)" } }
                #expect(Set(rows.map { "\($0.key)/\($0.name)" }) == Set(expectedKeys))
                for row in rows {
                    let parts = perRun.flatMap { $0.filter { $0.key == row.key && $0.name == row.name } }
                    #expect(row.runs == parts.count && parts.count == 2, "\(p.id) \(row.key) \(row.name)")
                    #expect(row.calls == parts.reduce(0) { $0 + $1.calls })
                    #expect(row.failures == parts.reduce(0) { $0 + $1.failures })
                    let merged = try EncodedHistogram.merge(parts.map(\.histogram))
                    #expect(row.timed == merged.totalCount && row.timed == UInt64(row.calls), "sample_every = 1: every call timed")
                    #expect(row.summary == (try merged.histogram()).summary(), "\(p.id) \(row.key) \(row.name): the pooled percentiles are the merged histogram's")
                    #expect(row.summary.max == parts.map(\.summary.max).max()! && row.summary.min == parts.map(\.summary.min).min()!)
                }
            }
            // Groups in workload order; the label merges both groups' tagged ops.
            #expect(p.pooledLatencyByGroup?.map(\.key).first == "local" && p.pooledLatencyByGroup?.map(\.key).last == "remote")
            #expect(Set(p.pooledLatencyByLabel?.map(\.key) ?? []) == ["tagged"])
            // Per-repetition columns of the keyed rows, as for the totals.
            let col = SweepMerge.keyedColumn("group", "remote", results[0].latencyByGroup!.first { $0.key == "remote" }!.name)
            let st = try #require(p.metrics[col + ".p99_ns"], "\(col).p99_ns")
            #expect(st.n == 2 && st.min <= st.median && st.median <= st.max)
            #expect(p.metrics[col + ".calls"]?.median == 1500)
        }
        let header = try String(contentsOfFile: "\(dir)/m2/summary.csv", encoding: .utf8).split(separator: "\n")[0]
        #expect(header.contains("lat.group.local.alloc_o0_GFP_KERNEL.p99_ns.median") && header.contains("lat.label.tagged.alloc_o0_GFP_KERNEL.calls.median"), "\(header)")
        // The point whose remote group allocates order 1 has an order-1 row for remote only.
        let o1 = try #require(sharded.points.first { $0.id == "order=1" })
        #expect(o1.pooledLatencyByGroup!.contains { $0.key == "remote" && $0.name.hasPrefix("alloc o1") })
        #expect(!o1.pooledLatencyByGroup!.contains { $0.key == "local" && $0.name.hasPrefix("alloc o1") })

        // The report of the merged folder pools the same rows from the run files, with their histograms.
        guard case .sweep(_, let s, _, _, let keyed) = try ReportInput.load("\(dir)/m2") else { Issue.record("not read as a sweep"); return }
        #expect(s == sharded)
        for p in s.points {
            let k = try #require(keyed[p.id])
            #expect(k.byGroup.map(\.row) == p.pooledLatencyByGroup && k.byLabel.map(\.row) == p.pooledLatencyByLabel)
            for (row, hist) in k.byGroup { #expect(hist.totalCount == row.timed) }
        }
        var rep = HTMLReport(inputs: [try ReportInput.load("\(dir)/m2")], generatedAt: "now", revision: "test")
        let html = rep.html()
        #expect(html.contains("Latency by worker group, per point, repetitions pooled") && html.contains("Latency by op label, per point, repetitions pooled"))
        #expect(html.contains("data-series=\"order=0 · local\" data-points=\"") && html.contains("data-series=\"order=1 · remote\" data-points=\""))
        #expect(html.contains("Latency of alloc o1 GFP_KERNEL by worker group (repetitions pooled)"))
    }

    /// summary.json alone (no run files): the report's keyed table comes from the pooled summaries.
    @Test func reportDrawsKeyedRowsFromSummaryJSONAlone() throws {
        let sum = LatencySummary(min: 10, mean: 60, p50: 50, p90: 80, p99: 200, p999: 900, p9999: 2000, max: 5000)
        let far = LatencySummary(min: 20, mean: 120, p50: 100, p90: 160, p99: 500, p999: 1900, p9999: 4000, max: 9000)
        let point = PointSummary(id: "x=1", values: ["x": "1"], runs: 2, complete: 2, failed: 0, missing: 0, verdicts: ["ok": 2], metrics: [:],
                                 pooledLatency: ["alloc o0 GFP_KERNEL": sum], seeds: [:],
                                 pooledLatencyByGroup: [PooledKeyedLatency(key: "local", name: "alloc o0 GFP_KERNEL", runs: 2, calls: 100, failures: 0, timed: 100, summary: sum),
                                                        PooledKeyedLatency(key: "remote", name: "alloc o0 GFP_KERNEL", runs: 2, calls: 100, failures: 3, timed: 100, summary: far)])
        let s = SweepSummary(sweep: "t", fingerprint: "f", revision: "r", axes: [.init(name: "x", key: "group[0].workers", values: ["1"], toml: ["1"])],
                             metrics: [], points: [point])
        // An older summary.json (without the keyed fields) still reads.
        var o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(s)) as! [String: Any]
        var pts = o["points"] as! [[String: Any]]
        pts[0].removeValue(forKey: "pooledLatencyByGroup")
        o["points"] = pts
        #expect(try JSONDecoder().decode(SweepSummary.self, from: JSONSerialization.data(withJSONObject: o)).points[0].pooledLatencyByGroup == nil)
        var rep = HTMLReport(inputs: [.sweep(path: "sw", s, pooled: [:], note: nil)], generatedAt: "now", revision: "test")
        let html = rep.html()
        #expect(html.contains("data-series=\"x=1 · local\" data-points=\"5\"") && html.contains("data-series=\"x=1 · remote\" data-points=\"5\""), "curves through the five stored percentiles")
        // remote against local at the same point: p50 100/50, p99 500/200.
        #expect(html.contains("<td>2.000</td><td>2.500</td>"), "p50 / first and p99 / first")
        #expect(!html.contains("Latency by op label"), "no label rows, no label table")
    }

    /// A run with two groups and labels: the run section has curves per group and
    /// per label and the keyed table (p50 / p99 against the first group).
    @Test func runReportShowsLatencyByGroupAndLabel() throws {
        let r = try run(Self.workload)
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        var rep = HTMLReport(inputs: [.run(path: "r.json", r)], generatedAt: "now", revision: "test")
        let html = rep.html()
        let cls = try #require(r.latencyByGroup?.first { $0.key == "remote" }?.name)
        #expect(html.contains("Latency of \(cls) by worker group"))
        #expect(html.contains("data-series=\"local\" data-points=\"\(HTMLReport.curvePercentiles.count)\"") &&
                html.contains("data-series=\"remote\" data-points=\"\(HTMLReport.curvePercentiles.count)\""))
        #expect(html.contains("Latency of \(cls) by op label") && html.contains("data-series=\"tagged\""))
        #expect(html.contains("<h3 data-keyed=\"group\">Latency by worker group</h3>") && html.contains("<h3 data-keyed=\"label\">Latency by op label</h3>"))
        // The local group's row is its own reference.
        let local = r.latencyByGroup!.first { $0.key == "local" && $0.name == cls }!
        #expect(html.contains("<td class=\"l\">local</td><td class=\"l\">\(cls)</td><td>\(local.calls)</td>"))
        #expect(html.contains("<td>1.000</td><td>1.000</td>"))
        // A one-group run draws none of it.
        var one = HTMLReport(inputs: [.run(path: "o.json", try run(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0", run: "ops = 300\nwarmup_ms = 0")))],
                             generatedAt: "now", revision: "test")
        #expect(!one.html().contains("data-keyed="))
    }

    /// compare and check read the keyed rows: a regression of one group's p99,
    /// with the totals unchanged, is found and gates under a rule for that group.
    @Test func compareAndCheckSeeOneGroupsRegression() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let jitter: [Double] = [0, 0.004, -0.003, 0.002, -0.001]
        func keyed(_ key: String, p99: Double, failures: Int = 0) -> [String: Any] {
            ["key": key, "name": "alloc o0 GFP_KERNEL", "calls": 500, "failures": failures,
             "summary": ["p50": 40, "p90": 50, "p99": p99, "p999": 300, "p9999": 2000, "max": 9000], "histogram": ["totalCount": 100]]
        }
        func make(_ i: Int, remoteP99: Double) -> [String: Any] {
            var o = FakeResults.run(callsPerSecond: 10e6 * (1 + jitter[i]), p99: 170 * (1 + jitter[i]))
            o["latencyByGroup"] = [keyed("local", p99: 150 * (1 + jitter[i])), keyed("remote", p99: remoteP99 * (1 + jitter[i]))]
            o["latencyByLabel"] = [keyed("tagged", p99: remoteP99 * (1 + jitter[i]))]
            return o
        }
        let base = FakeResults.reps(d, "base", 5) { make($0, remoteP99: 400) }
        let new = FakeResults.reps(d, "new", 5) { make($0, remoteP99: 480) }
        let c = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(new), baseName: "b", newName: "n")
        let p = try #require(c.points.first)
        let remote = try #require(p.metrics.first { $0.metric.id == "latency/group/remote/alloc o0 GFP_KERNEL/p99" })
        #expect(remote.significant && remote.direction == "worse" && abs(remote.changePercent! - (-20)) < 0.5, "\(remote)")
        let local = try #require(p.metrics.first { $0.metric.id == "latency/group/local/alloc o0 GFP_KERNEL/p99" })
        #expect(!local.significant)
        let total = try #require(p.metrics.first { $0.metric.id == "latency/alloc o0 GFP_KERNEL/p99" })
        #expect(!total.significant, "the totals did not move")
        #expect(p.metrics.contains { $0.metric.id == "latency/label/tagged/alloc o0 GFP_KERNEL/p99" && $0.significant })
        #expect(try CompareRender.render(c, as: .text).contains("group remote alloc o0 GFP_KERNEL p99"))
        // check: a rule for the remote group gates on it; one for the local group does not.
        var th = Thresholds()
        th.rules.append(ThresholdRule(match: "latency/group/remote/*", relative: 5, absolute: nil, worse: nil, gate: true, origin: "test"))
        let r = Checker.decide(c, thresholds: th)
        #expect(r.verdict == .regressed && r.exitCode == 10, "\(r.headline ?? "")")
        #expect((r.headline ?? "").contains("group remote alloc o0 GFP_KERNEL p99"), "\(r.headline ?? "")")
        var thLocal = Thresholds()
        thLocal.rules.append(ThresholdRule(match: "latency/group/local/*", relative: 5, absolute: nil, worse: nil, gate: true, origin: "test"))
        #expect(Checker.decide(c, thresholds: thLocal).verdict == .unchanged)
    }
}
