import Foundation
import Histogram
import Testing
@testable import StressHarness

/// `pagestorm report`: the SVG drawing (scales, the log and percentile axes,
/// escapes), the run's new series (free pages against the watermarks, stall
/// times) and each input kind's section.
@Suite struct ReportTests {
    @Test func escapesTextAndAttributes() {
        #expect(SVG.escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;")
        let c = Chart(id: "x\"y", title: "T <script>", xLabel: "x & y", yLabel: "ns", series: [.init(name: "alloc <o0> \"k\"", points: [(0, 1), (1, 2)])])
        let svg = c.svg()
        #expect(svg.contains("data-series=\"alloc &lt;o0&gt; &quot;k&quot;\""))
        #expect(svg.contains("<title>T &lt;script&gt;</title>"))
        #expect(svg.contains(">x &amp; y</text>"))
        #expect(!svg.contains("<script"), "no raw markup from data")
        #expect(SVG.num(.nan) == "0" && SVG.num(1.005) == "1" && SVG.num(2.5) == "2.50" && SVG.num(1e20) != "1e+20")
    }

    @Test func linearScaleIsNiceAndMapsLinearly() {
        #expect(Scale.niceRange(0, 97) == (0, 100))
        #expect(Scale.niceRange(3, 3) == (0, 4))
        #expect(Scale.niceStep(0.13) == 0.2 && Scale.niceStep(7) == 10 && Scale.niceStep(20) == 20)
        let s = Scale(kind: .linear, lo: 0, hi: 97, from: 100, to: 300)
        #expect(s.px(0) == 100 && s.px(100) == 300 && s.px(50) == 200)
        #expect(s.px(-5) == 100 && s.px(1e9) == 300, "clamped to the axis")
        #expect(s.ticks(format: { "\(Int($0))" }).map(\.1) == ["0", "20", "40", "60", "80", "100"])
        // A y axis runs upward: from the bottom pixel to the top one.
        let y = Scale(kind: .linear, lo: 0, hi: 10, from: 300, to: 40)
        #expect(y.px(0) == 300 && y.px(10) == 40 && y.px(5) == 170)
    }

    @Test func logScaleSpansDecades() {
        let s = Scale(kind: .log, lo: 30, hi: 5000, from: 0, to: 300)
        #expect(s.lo == 10 && s.hi == 10_000)
        #expect(s.ticks(format: Chart.ns).map(\.1) == ["10 ns", "100 ns", "1 µs", "10 µs"])
        #expect(abs(s.px(100) - 100) < 1e-9 && abs(s.px(1000) - 200) < 1e-9)
        #expect(s.px(0) == 0, "zero and below sit at the low end")
    }

    @Test func percentileAxisHasEqualStepsPerNine() {
        let s = Scale(kind: .percentile, lo: 50, hi: 99.999, from: 0, to: 500)
        let a = s.px(99) - s.px(90), b = s.px(99.9) - s.px(99), c = s.px(99.999) - s.px(99.99)
        #expect(abs(a - b) < 1e-6 && abs(b - c) < 1e-6, "one step per nine: \(a) \(b) \(c)")
        #expect(s.px(50) == 0 && abs(s.px(99.999) - 500) < 1e-6)
        #expect(s.ticks(format: { "\($0)" }).map(\.1) == ["50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    }

    @Test func latencyCurveNeverPassesTheMaxAndRises() throws {
        var h = LatencyRecorder.make()
        for v in 1...10_000 { h.record(UInt64(v) * 100) }
        h.record(5_000_000)
        let pts = HTMLReport.curve(EncodedHistogram(h))
        #expect(pts.first!.x == 50 && abs(pts.last!.x - 99.999) < 1e-6)
        for (a, b) in zip(pts, pts.dropFirst()) { #expect(a.y <= b.y) }
        #expect(pts.allSatisfy { $0.y <= 5_000_000 * 1.001 })
        let p50 = pts.first!.y
        #expect(abs(p50 - 500_000) / 500_000 < 0.01, "p50 of 100..1,000,000 ns: \(p50)")
        #expect(HTMLReport.curve(EncodedHistogram.empty).isEmpty)
    }

    @Test func chartDrawsBandsRulesAndEverySeriesInTheLegend() {
        var c = Chart(id: "t", title: "Throughput", xLabel: "workers", yLabel: "allocations/s", series: [
            .init(name: "a", points: [(0, 10), (1, 20)], band: [(0, 8, 12), (1, 18, 22)]),
            .init(name: "kills", points: [(0.5, 0)], style: .rules),
            .init(name: "empty", points: []),
        ])
        c.xKind = .category(["one", "two"])
        let svg = c.svg()
        #expect(svg.contains("<polygon class=\"band\""))
        #expect(svg.components(separatedBy: "<g class=\"series\"").count - 1 == 3)
        #expect(svg.contains(">empty (none)</text>"), "a series without data says so in the legend")
        #expect(svg.contains(">one</text>") && svg.contains(">two</text>"))
        let rows = HTMLReport.dataTable(c)
        #expect(rows[0] == ["workers", "a", "a min", "a max", "kills", "empty"])
        #expect(rows.count == 4 && rows[1] == ["one", "10", "8", "12", "", ""] && rows[2][4] == "0")
    }

    /// A real run records free pages against the watermarks once per bucket,
    /// and its report draws every chart of a run.
    @Test func runRecordsFreePagesAndItsReportDrawsThem() throws {
        let r = try run(small("""
            [[group]]
            workers = 2
            cpus = [0, 1]
            [[group.op]]
            kind = "alloc"
            orders = { 0 = 3, 2 = 1 }
            free = "fifo"
            live = 300
            """, run: "duration_ms = 400\nwarmup_ms = 50\nbucket_ms = 50"))
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        let fp = try #require(r.freePages)
        #expect(fp.intervalMs == 50)
        // The main thread samples at the release, at its first look in each
        // later 50 ms interval, and once more when the workers have stopped.
        // How many intervals it sees depends on how long the workers take to
        // stop and on the main thread getting its CPU (a busy machine gave
        // fewer than 6 and more than 14); what does not: the first at 0, at
        // most one per interval, in order, and the last.
        let last = try #require(fp.atMs.last)
        #expect(fp.atMs.count >= 2 && fp.atMs[0] == 0, "from the release to the stop: \(fp.atMs)")
        #expect(zip(fp.atMs, fp.atMs.dropFirst()).allSatisfy { $0 < $1 })
        let intervals = fp.atMs.dropLast().map { Int($0 / 50) }
        #expect(zip(intervals, intervals.dropFirst()).allSatisfy { $0 < $1 }, "one sample per 50 ms interval: \(fp.atMs)")
        #expect(fp.atMs.count <= Int(last / 50) + 2, "\(fp.atMs.count) samples in \(last) ms")
        let managed = r.memoryCheck.accounting?.managed ?? 0
        for z in fp.zones {
            #expect(z.free.count == fp.atMs.count && z.min.count == fp.atMs.count)
            #expect(z.free.allSatisfy { $0 >= 0 && $0 <= managed })
            #expect(zip(z.min, zip(z.low, z.high)).allSatisfy { $0 <= $1.0 && $1.0 <= $1.1 })
        }
        // 300 live blocks of up to 4 pages are held: free pages drop below the start.
        #expect(fp.zones.contains { z in z.free.suffix(3).allSatisfy { $0 < z.free[0] } || z.free.first! > z.free.min()! })
        let data = try ResultsFile.encoder().encode(r)
        let back = try JSONDecoder().decode(RunResult.self, from: data)
        #expect(back.freePages == r.freePages)

        var rep = HTMLReport(inputs: [.run(path: "r.json", r)], generatedAt: "now", revision: "test")
        let html = rep.html()
        let allocs = try #require(r.throughput.series.allocs)
        #expect(allocs.count == r.throughput.series.calls.count)
        #expect(Int(allocs.reduce(0, +)) == r.throughput.allocs, "the buckets add up to the run's allocations")
        #expect(zip(allocs, r.throughput.series.calls).allSatisfy { $0 <= $1 })
        for series in ["allocations", "calls", "free pages", "min watermark", "low watermark", "high watermark", "stall (start, length)", "OOM kill", "alloc o0 GFP_KERNEL", "alloc o2 GFP_KERNEL"] {
            #expect(html.contains("data-series=\"\(series)\""), "series \(series)")
        }
        #expect(!html.contains("<script"), "no script")
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing from the network")
    }

    /// The stall tracker records when each stall began, relative to the release, and how long it lasted.
    @Test func stallTrackerRecordsStartAndLength() {
        var t = StallTracker(thresholdMs: 100, warnings: false, workers: 1)
        let go: UInt64 = 5_000_000_000
        t.ended(go + 50_000_000, go + 200_000_000)   // 150 ms from 50 ms after the release: a stall
        t.ended(go + 300_000_000, go + 350_000_000)  // 50 ms: under the threshold
        t.ended(go - 20_000_000, go + 100_000_000)   // began 20 ms before the release (prefill)
        let r = t.report(pollMs: 5, goNs: go)
        #expect(r.count == 2 && r.totalMs == 270)
        #expect(r.events == [StallEvent(atMs: 50, ms: 150), StallEvent(atMs: -20, ms: 120)])
    }

    /// Stalls get their times; OOM kills are on the same axis. (Scenario 1
    /// OOM-kills in every seed; on a quiet machine its stuck allocation is
    /// also a stall, but on a heavily loaded one the watchdog may end the
    /// run before a call has lasted stall_ms: the tracker test above covers
    /// the times exactly.)
    @Test func stallsAndKillsCarryTheirTimes() throws {
        let r = try runScenario("scenario1-oom-victim-lock.toml", WorkloadOverrides(durationMs: 600))
        #expect(r.memoryCheck.validate == "ok")
        let st = r.slowPath.stalls
        let ev = try #require(st.events)
        #expect(ev.count == min(st.count, 1000))
        let endMs = Double(r.timing.warmupNs + r.timing.measuredNs) / 1e6 + 2000
        #expect(ev.allSatisfy { $0.ms >= st.thresholdMs && $0.atMs >= -Double(st.resolutionMs) && $0.atMs < endMs }, "\(ev)")
        var rep = HTMLReport(inputs: [.run(path: "s1.json", r)], generatedAt: "now", revision: "test")
        let html = rep.html()
        #expect(html.contains("data-series=\"stall (start, length)\" data-points=\"\(ev.count)\""))
        let kills = r.slowPath.oomEvents.filter { $0.kind == "kill" }.count
        #expect(kills >= 1, "scenario 1 OOM-kills in every seed")
        #expect(html.contains("data-series=\"OOM kill\" data-points=\"\(kills)\""))
    }

    static func summary() -> SweepSummary {
        func point(_ w: String, _ retry: String, _ med: Double) -> PointSummary {
            PointSummary(id: "workers=\(w),retry=\(retry)", values: ["workers": w, "retry": retry], runs: 3, complete: 3, failed: 0, missing: 0,
                         verdicts: ["ok": 3], metrics: ["allocs_per_s": RepStats([med * 0.9, med, med * 1.1])!, "calls_per_s": RepStats([med * 2])!],
                         pooledLatency: ["alloc o0 GFP_KERNEL": LatencySummary(min: 10, mean: 50, p50: 40, p90: 80, p99: 200, p999: 900, p9999: 2000, max: 5000)],
                         seeds: [:])
        }
        return SweepSummary(sweep: "t", fingerprint: "f", revision: "r",
                            axes: [.init(name: "retry", key: "policy.retry", values: ["kernel", "legacy"], toml: ["\"kernel\"", "\"legacy\""]),
                                   .init(name: "workers", key: "group[0].workers", values: ["1", "2", "4"], toml: ["1", "2", "4"])],
                            metrics: ["allocs_per_s", "calls_per_s"],
                            points: [point("1", "kernel", 100), point("2", "kernel", 190), point("4", "kernel", 350),
                                     point("1", "legacy", 90), point("2", "legacy", 150), point("4", "legacy", 200)])
    }

    @Test func sweepThroughputIsDrawnAgainstTheNumericAxisOneLinePerOtherValue() {
        let s = Self.summary()
        #expect(HTMLReport.xAxis(s).0?.name == "workers" && HTMLReport.xAxis(s).numeric)
        var rep = HTMLReport(inputs: [.sweep(path: "sw", s, pooled: [:], note: nil)], generatedAt: "now", revision: "test")
        let html = rep.html()
        #expect(html.contains("Allocations per second against workers"))
        #expect(html.contains("data-series=\"retry=kernel\" data-points=\"3\"") && html.contains("data-series=\"retry=legacy\" data-points=\"3\""))
        #expect(html.components(separatedBy: "<polygon class=\"band\"").count - 1 >= 2, "min-max bands")
        for p in s.points { #expect(html.contains("data-series=\"\(p.id)\""), "a latency curve per point: \(p.id)") }
        #expect(html.contains("<td>350</td>") || html.contains(">350<"), "the median in the points table")
    }

    @Test func numaHeatMapHasACellPerPairAndAScale() throws {
        let cells = (0..<2).flatMap { c in (0..<2).map { m in
            NodeMatrix.Cell(cpuNode: c, memNode: m, allocsPerSecond: c == m ? 2e6 : 1e6, allocP50Ns: 100, allocP99Ns: c == m ? 300 : 900,
                            touchGBps: 5, onMemNode: 1, verdict: "ok") } }
        let m = NumaMatrixResult(workload: "w", startedAt: "now", machine: MachineInfo.current(), topology: "declared 2 nodes", nodes: 2,
                                 modelOnly: true, durationMs: 100, touchPages: 16, cells: cells)
        let svg = HTMLReport.heatMap(id: "h", title: "Allocations", unit: "allocations/s", m) { $0.allocsPerSecond }
        #expect(svg.components(separatedBy: "<rect class=\"cell\"").count - 1 == 4)
        #expect(svg.contains("data-cpu=\"1\" data-mem=\"0\""))
        #expect(svg.contains(">2.00M (max)</text>") || svg.contains("(max)"))
        let data = try ResultsFile.encoder().encode(m)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("numa-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json").path
        try data.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        guard case .numa(_, let back) = try ReportInput.load(path) else { Issue.record("not read as a NUMA matrix"); return }
        #expect(back == m)
    }

    @Test func debateCellsAreColouredByVerdict() {
        #expect(HTMLReport.verdictClass("ok") == "v-ok")
        #expect(HTMLReport.verdictClass("livelock 5/5") == "v-livelock")
        #expect(HTMLReport.verdictClass("deadlock 3/5, ok 2/5") == "v-mixed")
        #expect(HTMLReport.verdictClass("deadlock (stuck at the end)") == "v-deadlock")
        let t = HTMLReport.table([["a", "b"], ["x", "ok"]], classes: [["", "v-ok"]])
        #expect(t.contains("<td class=\"l v-ok\">ok</td>"))
    }

    @Test func badInputGetsOneErrorNamingTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-bad-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func error(_ name: String, _ text: String?) -> String {
            let p = "\(dir)/\(name)"
            if let t = text { _ = FileManager.default.createFile(atPath: p, contents: Data(t.utf8)) }
            do { _ = try ReportInput.load(p); return "no error" } catch { return "\(error)" }
        }
        #expect(error("missing.json", nil).contains("missing.json: no such file"))
        #expect(error("text.json", "hello").contains("text.json: not a JSON object"))
        #expect(error("noschema.json", "{\"a\": 1}").contains("has no \"schema\" key"))
        #expect(error("other.json", "{\"schema\": \"pagestorm.bench/9\"}").contains("schema \"pagestorm.bench/9\" is not one the report draws"))
        #expect(error("run.json", "{\"schema\": \"pagestorm.run/1\", \"allocator\": 3}").contains("run.json: is not a valid pagestorm.run/1 file"))
        #expect(error("sweep.json", "{\"schema\": \"pagestorm.sweep/1\"}").contains("is a sweep manifest: give its folder"))
        try FileManager.default.createDirectory(atPath: "\(dir)/empty", withIntermediateDirectories: true)
        #expect(error("empty", nil).contains("empty: is a folder without sweep.json"))
    }
}
