import Foundation
import Testing
@testable import StressHarness

@Suite struct CompareStatsTests {
    @Test func meansAndSpread() {
        #expect(Stats.mean([1, 2, 3, 6]) == 3)
        #expect(abs(Stats.harmonicMean([1, 2, 4]) - 3 / 1.75) < 1e-12)
        #expect(abs(Stats.geometricMean([1, 4, 16]) - 4) < 1e-12)
        #expect(abs(Stats.stddev([2, 4, 4, 4, 5, 5, 7, 9]) - 2.138089935299395) < 1e-12)
        #expect(Stats.median([5, 1, 3]) == 3 && Stats.median([4, 1, 3, 2]) == 2.5)
        let s = SideStats([100, 110, 90], kind: .rate)
        #expect(s.meanKind == "Hmean" && abs(s.mean - 3 / (1 / 100.0 + 1 / 110.0 + 1 / 90.0)) < 1e-9)
        #expect(abs(s.cv - 10) < 1e-9 && s.min == 90 && s.max == 110)
        #expect(SideStats([1, 2], kind: .time).meanKind == "Amean")
    }

    /// p-values checked against a brute-force enumeration of every split (python, itertools).
    @Test func exactMannWhitney() throws {
        let a = try #require(Stats.mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]))
        #expect(a.u == 0 && a.method == "exact" && abs(a.p - 0.007936507936507936) < 1e-12)
        #expect(abs(a.minimumP - 2.0 / 252) < 1e-12)
        let b = try #require(Stats.mannWhitney([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]))
        #expect(b.u == 10 && abs(b.p - 0.6904761904761905) < 1e-12)
        let c = try #require(Stats.mannWhitney([10.5, 11, 12, 13], [9, 9.5, 10, 10.2, 10.4]))
        #expect(c.u == 20 && abs(c.p - 0.015873015873015872) < 1e-12)
        // 2 vs 2 can never reach 0.05: the smallest p is 1/3.
        let d = try #require(Stats.mannWhitney([1, 2], [3, 4]))
        #expect(abs(d.minimumP - 1.0 / 3) < 1e-12 && abs(d.p - 1.0 / 3) < 1e-12)
        // Ties: the normal approximation.
        let e = try #require(Stats.mannWhitney([1, 1, 2, 2, 3], [1, 2, 2, 3, 3]))
        #expect(e.method == "normal" && e.p > 0.3)
        // The distribution counts every split once: C(n1+n2, n1).
        #expect(Stats.uDistribution(5, 5).reduce(0, +) == 252)
        #expect(Stats.uDistribution(3, 7).reduce(0, +) == 120)
    }

    @Test func bootstrapIntervalOfTheMedianRatio() throws {
        let same = try #require(Stats.bootstrapRatioOfMedians(base: [5, 5, 5], new: [5, 5, 5]))
        #expect(same.low == 1 && same.high == 1)
        let base = [100.0, 101, 99, 100.5, 99.5], slower = base.map { $0 * 1.1 }
        let ci = try #require(Stats.bootstrapRatioOfMedians(base: base, new: slower))
        #expect(ci.low > 1.05 && ci.high < 1.15)
        // Seeded: the same data give the same interval.
        let again = try #require(Stats.bootstrapRatioOfMedians(base: base, new: slower))
        #expect(again.low == ci.low && again.high == ci.high)
    }

    @Test func globs() {
        #expect(Glob.matches("latency/*/p99", "latency/alloc o0 GFP_KERNEL/p99"))
        #expect(!Glob.matches("latency/*/p99", "latency/alloc o0 GFP_KERNEL/p99.9"))
        #expect(Glob.matches("*", "anything") && Glob.matches("exact/*", "exact/vmstat/pgfree"))
        #expect(Glob.matches("oom_kill?", "oom_kills") && !Glob.matches("throughput/*", "exact/calls"))
    }
}

/// Synthetic results files, so compare/check are tested on known numbers.
enum FakeResults {
    static func run(workload: String = "w", callsPerSecond: Double, p99: Double, deterministic: Bool = false, pgfree: Int = 1000,
                    untrustworthy: Bool = false, schema: String = "pagestorm.run/1", machine: String = "host",
                    workerCPUNs: [Int]? = nil, stealPercent: Double = 0) -> [String: Any] {
        var o: [String: Any] = [
            "schema": schema,
            "workload": ["name": workload, "run": ["mode": deterministic ? "ops" : "duration", "warmupMs": deterministic ? 0 : 100],
                         "groups": [["workers": deterministic ? 1 : 2]]],
            "machine": ["hostname": machine, "cpuModel": "cpu", "cores": 2, "gitRevision": "abc"],
            "status": ["partial": false, "verdict": "ok"],
            "throughput": ["callsPerSecond": callsPerSecond, "operationsPerSecond": callsPerSecond / 2, "calls": 1_000_000,
                           "allocs": 500_000, "frees": 500_000, "remoteFrees": 0, "failedAllocs": 0, "operations": 400_000],
            "latency": [["name": "alloc o0 GFP_KERNEL", "calls": 1000, "failures": 0,
                         "summary": ["p50": 40, "p90": 50, "p99": p99, "p999": 300, "p9999": 2000, "max": 9000],
                         "histogram": ["totalCount": 100]]],
            "failures": ["total": 0, "byLevel": [:] as [String: Any]],
            "counters": ["vmstatDelta": ["pgfree": pgfree, "pcp_refill": 10], "pcpHitRate": 0.99],
            "slowPath": ["counters": ["oom_kill": 0], "stalls": ["count": 0, "totalMs": 0]],
        ]
        if untrustworthy { o["noise"] = ["untrustworthy": true, "reason": "workers got 40% of the wall time"] }
        if let cpu = workerCPUNs {
            // Workers that got less CPU than wall time: flagged (as a real run flags itself below 80%).
            let preempted = cpu.contains { $0 < 80_000_000 } || stealPercent > 10
            o["noise"] = ["untrustworthy": preempted, "reason": preempted ? "worker 0 got 40% of the wall time on its CPU" : "",
                          "stealPercent": stealPercent,
                          "workers": cpu.enumerated().map { ["index": $0.offset, "cpuNs": $0.element, "wallNs": 100_000_000] }]
        }
        return o
    }

    static func dir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pagestorm-compare-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func write(_ o: [String: Any], _ path: String) {
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
    }

    /// Writes n reps of `make(i)` under `dir/sub` and returns that directory.
    static func reps(_ dir: String, _ sub: String, _ n: Int, _ make: (Int) -> [String: Any]) -> String {
        for i in 0..<n { write(make(i), "\(dir)/\(sub)/rep-\(i + 1).json") }
        return "\(dir)/\(sub)"
    }
}

@Suite struct CompareTests {
    let jitter: [Double] = [0, 0.004, -0.003, 0.002, -0.001]

    @Test func aTenPercentSlowdownIsSignificantAndAnAACompareIsNot() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let base = FakeResults.reps(d, "base", 5) { FakeResults.run(callsPerSecond: 10e6 * (1 + jitter[$0]), p99: 170 * (1 + jitter[$0])) }
        let same = FakeResults.reps(d, "same", 5) { FakeResults.run(callsPerSecond: 10e6 * (1 - jitter[$0]), p99: 170 * (1 - jitter[$0])) }
        let slow = FakeResults.reps(d, "slow", 5) { FakeResults.run(callsPerSecond: 9e6 * (1 + jitter[$0]), p99: 187 * (1 + jitter[$0])) }
        let c = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(slow), baseName: "b", newName: "n")
        let p = try #require(c.points.first)
        let tp = try #require(p.metrics.first { $0.metric.id == "throughput/calls_per_s" })
        #expect(tp.significant && tp.direction == "worse")
        #expect(abs(tp.changePercent! - (-10)) < 0.5)
        #expect(tp.base!.meanKind == "Hmean")
        let p99 = try #require(p.metrics.first { $0.metric.id == "latency/alloc o0 GFP_KERNEL/p99" })
        #expect(p99.significant && p99.direction == "worse" && p99.changePercent! < -9)
        #expect(p.geomeanCostRatio! > 1.0)
        let aa = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(same), baseName: "b", newName: "n")
        #expect(!aa.points[0].metrics.contains { $0.significant })
        // Every format renders; the text marks the significant change mmtests-style.
        let text = try CompareRender.render(c, as: .text)
        #expect(text.contains("*-10.") && text.contains("Hmean") && text.contains("CoeffVar") && text.contains("Gmean"))
        #expect(try CompareRender.render(c, as: .markdown).contains("| throughput (calls/s) |"))
        let csv = try CompareRender.render(c, as: .csv)
        #expect(csv.split(separator: "\n").count == 1 + p.metrics.count)
        let json = try CompareRender.render(c, as: .json)
        #expect(json.contains("\"pagestorm.compare/1\""))
    }

    @Test func tooFewRepetitionsWarnAndNeverMarkSignificant() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let base = FakeResults.reps(d, "b", 2) { FakeResults.run(callsPerSecond: 10e6 + Double($0), p99: 170) }
        let new = FakeResults.reps(d, "n", 2) { FakeResults.run(callsPerSecond: 5e6 + Double($0), p99: 400) }
        let c = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(new), baseName: "b", newName: "n")
        #expect(c.points[0].warnings.contains { $0.contains("too few repetitions") })
        #expect(!c.points[0].metrics.contains { $0.significant })
    }

    @Test func sweepsPairByPointAndCheckNamesTheRegressingPoint() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for point in ["threads-1", "threads-2", "only-base"] {
            _ = FakeResults.reps(d, "base/\(point)", 5) { FakeResults.run(callsPerSecond: 10e6 * (1 + jitter[$0]), p99: 170) }
        }
        _ = FakeResults.reps(d, "new/threads-1", 5) { FakeResults.run(callsPerSecond: 10e6 * (1 - jitter[$0]), p99: 170) }
        _ = FakeResults.reps(d, "new/threads-2", 5) { FakeResults.run(callsPerSecond: 8e6 * (1 + jitter[$0]), p99: 170) }
        // A sweep manifest beside the points is skipped.
        FakeResults.write(["schema": "pagestorm.sweep/1"], "\(d)/new/sweep.json")
        let c = Comparer.compare(base: try ResultSet.load("\(d)/base"), new: try ResultSet.load("\(d)/new"), baseName: "b", newName: "n")
        #expect(c.points.map(\.id) == ["threads-1", "threads-2"] && c.onlyInBase == ["only-base"])
        var th = Thresholds()
        th.rules.append(ThresholdRule(match: "throughput/*", relative: 5, absolute: nil, worse: nil, gate: true, origin: "test"))
        let r = Checker.decide(c, thresholds: th)
        #expect(r.verdict == .regressed && r.exitCode == 10 && r.regressingPoints == ["threads-2"])
        #expect(r.headline == "-20.0% regression of throughput (calls/s) on point threads-2 of w")
        #expect(Checker.markdown(r).contains("## pagestorm check: regressed"))
        // With the documented defaults timings only report: unchanged.
        #expect(Checker.decide(c, thresholds: Thresholds()).verdict == .unchanged)
    }

    @Test func exactCountersOfDeterministicRunsGateOnAnyChange() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        FakeResults.write(FakeResults.run(callsPerSecond: 10e6, p99: 170, deterministic: true, pgfree: 1000), "\(d)/base.json")
        FakeResults.write(FakeResults.run(callsPerSecond: 7e6, p99: 300, deterministic: true, pgfree: 1000), "\(d)/same.json")
        FakeResults.write(FakeResults.run(callsPerSecond: 10e6, p99: 170, deterministic: true, pgfree: 1001), "\(d)/changed.json")
        let same = Checker.decide(Comparer.compare(base: try ResultSet.load("\(d)/base.json"), new: try ResultSet.load("\(d)/same.json"), baseName: "b", newName: "n"), thresholds: Thresholds())
        #expect(same.verdict == .unchanged)
        let changed = Checker.decide(Comparer.compare(base: try ResultSet.load("\(d)/base.json"), new: try ResultSet.load("\(d)/changed.json"), baseName: "b", newName: "n"), thresholds: Thresholds())
        #expect(changed.verdict == .regressed)
        #expect(changed.headline == "behaviour change of vmstat pgfree: 1000 -> 1001 (+0.10%) on w")
        #expect(changed.decisions.contains { $0.metric == "exact/vmstat/pgfree" && $0.decision == "behaviour-change" && $0.gate })
    }

    @Test func flaggedRunsDoNotDecideTimingRegressions() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let base = FakeResults.reps(d, "b", 5) { FakeResults.run(callsPerSecond: 10e6 * (1 + jitter[$0]), p99: 170) }
        let new = FakeResults.reps(d, "n", 5) { FakeResults.run(callsPerSecond: 7e6 * (1 + jitter[$0]), p99: 170, untrustworthy: $0 == 2) }
        var th = Thresholds()
        th.rules.append(ThresholdRule(match: "throughput/*", relative: 5, absolute: nil, worse: nil, gate: true, origin: "test"))
        let c = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(new), baseName: "b", newName: "n")
        #expect(c.points[0].flaggedReps.count == 1)
        let r = Checker.decide(c, thresholds: th)
        #expect(r.verdict == .unchanged)
        #expect(r.decisions.contains { $0.metric == "throughput/calls_per_s" && $0.decision == "flagged" })
        var o = CompareOptions()
        o.trustFlagged = true
        let trusted = Checker.decide(Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(new), baseName: "b", newName: "n", options: o), thresholds: th)
        #expect(trusted.verdict == .regressed)
    }

    @Test func badInputsGetOneClearMessage() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        func message(_ spec: String) -> String {
            do { _ = try ResultSet.load(spec); return "" } catch { return error.description }
        }
        #expect(message("\(d)/nope.json") == "\(d)/nope.json: no such file or directory")
        FakeResults.write(FakeResults.run(callsPerSecond: 1, p99: 1, schema: "pagestorm.run/2"), "\(d)/v2.json")
        #expect(message("\(d)/v2.json").contains("schema pagestorm.run/2 is not one this pagestorm reads"))
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: "\(d)/bad.json"))
        #expect(message("\(d)/bad.json").hasPrefix("\(d)/bad.json: not valid JSON"))
        FakeResults.write(["hello": 1], "\(d)/other.json")
        #expect(message("\(d)/other.json") == "\(d)/other.json: not a pagestorm results file (schema missing)")
        try FileManager.default.createDirectory(atPath: "\(d)/empty", withIntermediateDirectories: true)
        #expect(message("\(d)/empty").contains("no results files"))
        // A baseline from another workload or machine is compared with a warning, not silently.
        FakeResults.write(FakeResults.run(workload: "a", callsPerSecond: 1, p99: 1), "\(d)/a.json")
        FakeResults.write(FakeResults.run(workload: "b", callsPerSecond: 1, p99: 1, machine: "other"), "\(d)/b.json")
        let c = Comparer.compare(base: try ResultSet.load("\(d)/a.json"), new: try ResultSet.load("\(d)/b.json"), baseName: "a", newName: "b")
        #expect(c.points[0].warnings.contains { $0.hasPrefix("different workloads") })
        #expect(c.points[0].warnings.contains { $0.hasPrefix("different machines") })
    }
}

@Suite struct ThresholdsTests {
    @Test func defaultsGateExactCountersAndInstructionsOnly() {
        let t = Thresholds()
        func lim(_ id: String, _ kind: MetricKind = .time) -> Limit { t.limit(for: MetricInfo(id: id, label: id, unit: "", better: .lower, kind: kind)) }
        #expect(lim("exact/vmstat/pgfree", .exact).gate)
        #expect(lim("instructions/order0.pcp.1t", .instructions).gate && lim("instructions/x", .instructions).relative == 1)
        #expect(!lim("throughput/calls_per_s", .rate).gate && lim("throughput/calls_per_s").relative == 5)
        #expect(!lim("latency/alloc o0/p99").gate && lim("latency/alloc o0/max").relative == 100)
    }

    @Test func aFileRefinesTheDefaults() throws {
        let t = try Thresholds.parse("""
        alpha = 0.01
        [[rule]]
        match = "latency/*/p99"
        relative = 20
        gate = true
        [[rule]]
        match = "latency/free*/p99"
        gate = false
        """, file: "t.toml")
        #expect(t.alpha == 0.01)
        let l = t.limit(for: MetricInfo(id: "latency/alloc o0 GFP_KERNEL/p99", label: "", unit: "ns", better: .lower, kind: .time))
        #expect(l.gate && l.relative == 20 && l.absolute == nil)
        #expect(!t.limit(for: MetricInfo(id: "latency/free o0/p99", label: "", unit: "ns", better: .lower, kind: .time)).gate)
    }

    @Test func errorsNameTheLineAndKey() {
        func message(_ text: String) -> String {
            do { _ = try Thresholds.parse(text, file: "t.toml"); return "" } catch { return error.description }
        }
        #expect(message("alpha = 2") == "t.toml:1: alpha: must be a number between 0 and 1 (exclusive), got integer")
        #expect(message("\n\n[[rule]]\nmatch = \"x\"\nrelative = -1") == "t.toml:5: rule.relative: must be a percentage >= 0, got -1.0")
        #expect(message("[[rule]]\nmatch = \"x\"\nworse = \"up\"") == "t.toml:3: rule.worse: must be \"higher\" or \"lower\", got \"up\"")
        #expect(message("[[rule]]\nrelative = 5") == "t.toml:1: rule.match: missing: every [[rule]] needs match = \"<glob over metric ids>\"")
        #expect(message("[[rule]]\nmatch = \"x\"\ntypo = 1") == "t.toml:3: rule.typo: unknown key; known: match, relative, absolute, worse, gate")
        #expect(message("[[rule]]\nmatch = \"x\"") == "t.toml:1: rule: sets nothing: give relative, absolute, worse or gate")
        #expect(message("thresholds = 1") .hasPrefix("t.toml:1: thresholds: unknown key"))
        #expect(message("alpha = ") .hasPrefix("t.toml:1:"))
    }
}

@Suite struct NoiseTests {
    @Test func aWorkerWithoutItsCPUIsFlagged() {
        var s = ThreadUsage(), half = ThreadUsage(), full = ThreadUsage()
        s.cpuNs = 1_000
        half.cpuNs = 1_000 + 50_000_000; half.involuntary = 40
        full.cpuNs = 1_000 + 99_000_000
        var m0 = MachineSample(), m1 = MachineSample()
        m0.available = true; m1.available = true
        m0.total = 1000; m1.total = 2000; m0.steal = 0; m1.steal = 50; m0.idle = 500; m1.idle = 900
        let bad = NoiseReport.build(workers: [(0, s, full, 100_000_000), (1, s, half, 100_000_000)], machineStart: m0, machineEnd: m1)
        #expect(bad.untrustworthy && bad.reason!.contains("worker 1 got 50% of the wall time"))
        #expect(abs(bad.stealPercent! - 5) < 1e-9 && abs(bad.busyPercent! - 60) < 1e-9)
        #expect(bad.workers[1].involuntarySwitches == 40)
        let good = NoiseReport.build(workers: [(0, s, full, 100_000_000)], machineStart: m0, machineEnd: m1)
        #expect(!good.untrustworthy && good.reason == nil)
        m1.steal = 200
        #expect(NoiseReport.build(workers: [(0, s, full, 100_000_000)], machineStart: m0, machineEnd: m1).reason!.contains("steal time was 20.0%"))
    }

    /// A real run records every worker's CPU time; a spinning worker that owns its CPU gets most of the window.
    @Test func operationsPerCPUSecondLeavesPreemptionOut() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // 400,000 operations in each run. The base's workers were preempted by other jobs
        // now and then (wall throughput all over the place) but always spent 80 ms of CPU;
        // the new build needs 10% more CPU per operation (88 ms), its wall throughput as noisy.
        let wall: [Double] = [4e6, 2.5e6, 3.9e6, 2.2e6, 3.6e6]
        let base = FakeResults.reps(d, "base", 5) { FakeResults.run(callsPerSecond: wall[$0] * 2, p99: 170, workerCPUNs: [40_000_000 + $0 * 40_000, 40_000_000]) }
        let slow = FakeResults.reps(d, "slow", 5) { FakeResults.run(callsPerSecond: wall[4 - $0] * 2 * 0.95, p99: 170, workerCPUNs: [44_000_000 - $0 * 40_000, 44_000_000]) }
        let c = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(slow), baseName: "b", newName: "n")
        let p = try #require(c.points.first)
        let perCPU = try #require(p.metrics.first { $0.metric.id == "throughput/ops_per_cpu_s" })
        // 400,000 / 0.08 s = 5M ops per CPU-second.
        #expect(abs(perCPU.base!.min - 400_000 / 0.08016) < 1 && abs(perCPU.base!.max - 5e6) < 1)
        #expect(perCPU.significant && perCPU.direction == "worse" && abs(perCPU.changePercent! + 9.1) < 0.5)
        #expect(!perCPU.flagged, "preemption does not flag operations per CPU-second")
        let wallMetric = try #require(p.metrics.first { $0.metric.id == "throughput/ops_per_s" })
        #expect(!wallMetric.significant, "the wall-time metric cannot tell the 5% apart from the preemption")
        #expect(wallMetric.flagged, "preempted runs flag wall-time metrics")
        // Steal time flags it too: then it does not decide.
        let stolen = FakeResults.reps(d, "stolen", 5) { FakeResults.run(callsPerSecond: 1e6, p99: 170, workerCPUNs: [44_000_000 - $0 * 40_000, 44_000_000], stealPercent: 20) }
        let s = Comparer.compare(base: try ResultSet.load(base), new: try ResultSet.load(stolen), baseName: "b", newName: "n")
        let stolenPerCPU = try #require(s.points[0].metrics.first { $0.metric.id == "throughput/ops_per_cpu_s" })
        #expect(stolenPerCPU.flagged && !stolenPerCPU.significant)
        // Results without per-worker CPU time have no such metric.
        let old = FakeResults.reps(d, "old", 2) { _ in FakeResults.run(callsPerSecond: 1e6, p99: 170) }
        #expect(try ResultSet.load(old)[0].reps[0].values["throughput/ops_per_cpu_s"] == nil)
    }

    @Test func threadCPUTimeIsReadToTheNanosecond() {
        // getrusage counts in microseconds (and may be sampled at the tick); the thread's CPU clock does not.
        var sawSubMicrosecond = false
        var x: UInt64 = 1
        for _ in 0..<50 where !sawSubMicrosecond {
            for _ in 0..<1000 { x = x &* 6_364_136_223_846_793_005 &+ 1 }
            sawSubMicrosecond = ThreadUsage.now().cpuNs % 1000 != 0
        }
        #expect(sawSubMicrosecond, "50 readings, all whole microseconds (x \(x & 1))")
    }

    @Test func runsRecordPerWorkerUsage() throws {
        let r = try run(small("""
        [[group]]
        workers = 1
        [[group.op]]
        order = 0
        """, run: "duration_ms = 60"))
        let n = try #require(r.noise)
        #expect(n.workers.count == 1)
        // A thread cannot get more CPU time than its wall time (getrusage counts in microseconds).
        #expect(n.workers[0].wallNs > 0 && n.workers[0].cpuNs <= n.workers[0].wallNs + 1_000_000)
        #expect(MachineSample.now().available)
        // The probe moves when this thread burns CPU (bounded: at most 5 s of wall time).
        let u0 = ThreadUsage.now()
        var x: UInt64 = 1
        let t0 = Date()
        while ThreadUsage.now().cpuNs < u0.cpuNs + 5_000_000 && Date().timeIntervalSince(t0) < 5 {
            for _ in 0..<100_000 { x = x &* 6_364_136_223_846_793_005 &+ 1 }
        }
        #expect(ThreadUsage.now().cpuNs >= u0.cpuNs + 5_000_000, "5 ms of CPU time not seen in 5 s (x \(x & 1))")
    }
}

@Suite struct DeterministicTests {
    /// The whole point: two deterministic runs give identical exact counters (and a different seed does not).
    @Test func countersAreIdenticalRunToRun() throws {
        let w = try parse(small("""
        [[group]]
        workers = 2
        [[group.op]]
        orders = { 0 = 6, 1 = 2, 3 = 1 }
        free = "random"
        live = 64
        touch = 8
        [[group.op]]
        name = "pair"
        order = 0
        flags = "GFP_ATOMIC"
        """, run: "duration_ms = 50\nwarmup_ms = 10"))
        let d = try Deterministic.apply(w, ops: 3000)
        #expect(d.workerCount == 1 && d.run.ops == 3000 && d.run.warmupMs == 0 && Deterministic.isDeterministic(d))
        var o = RunOptions()
        o.measureOverhead = false
        let dir = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, seed) in [(1, UInt64(1)), (2, UInt64(1)), (3, UInt64(2))] {
            var ws = d
            ws.run.seed = seed
            try ResultsFile.write(try StressRun.run(ws, options: o), to: "\(dir)/r\(i).json")
        }
        let same = Comparer.compare(base: try ResultSet.load("\(dir)/r1.json"), new: try ResultSet.load("\(dir)/r2.json"), baseName: "1", newName: "2")
        let exact = same.points[0].metrics.filter { $0.metric.kind == .exact }
        #expect(exact.count > 20)
        #expect(exact.allSatisfy { $0.direction == "same" }, "changed: \(exact.filter { $0.direction != "same" }.map(\.metric.id))")
        #expect(Checker.decide(same, thresholds: Thresholds()).verdict == .unchanged)
        let other = Checker.decide(Comparer.compare(base: try ResultSet.load("\(dir)/r1.json"), new: try ResultSet.load("\(dir)/r3.json"), baseName: "1", newName: "3"), thresholds: Thresholds())
        #expect(other.verdict == .regressed && other.headline!.hasPrefix("behaviour change of"))
    }

    @Test func workloadsItCannotRunSayWhy() throws {
        let two = try parse(small("""
        [[group]]
        name = "a"
        [[group.op]]
        order = 0
        [[group]]
        name = "b"
        [[group.op]]
        order = 0
        """))
        #expect(throws: OverrideError.self) { try Deterministic.apply(two, ops: 10) }
        do { _ = try Deterministic.apply(two, ops: 10) } catch { #expect(error.description.contains("has 2 worker groups (a, b)")) }
    }
}
