import Foundation
import Testing
@testable import StressHarness
@testable import Topology

private func sweep(_ text: String, file: String = "s.toml") throws(SweepError) -> SweepSpec {
    try SweepSpec.parse(text, file: file, machine: testMachine)
}

/// The error a sweep text gets (nil: none).
private func sweepError(_ text: String) -> SweepError? {
    do { _ = try sweep(text); return nil } catch { return error }
}

private let threadsByRetry = """
name = "t"
workload = "default"
repetitions = 3
seed = 5

[set]
"run.duration_ms" = 100

[[axis]]
key = "group[0].workers"
values = [1, 2, 4]

[[axis]]
key = "policy.retry"
values = ["kernel", "legacy", "retries=1"]
"""

@Suite struct SweepSpecTests {
    @Test func pointsRunsAndWorkloads() throws {
        let s = try sweep(threadsByRetry)
        #expect(s.points.count == 9)
        #expect(s.points.map(\.id).first == "workers=1,retry=kernel")
        #expect(s.points.map(\.id).contains("workers=4,retry=retries=1"))
        let runs = s.runs()
        #expect(runs.count == 27 && Set(runs.map(\.id)).count == 27)
        #expect(runs.map(\.order) == Array(0..<27))
        // Seeded random order: not the points' order, and the same every time.
        #expect(runs.map(\.id) != runs.sorted { $0.id < $1.id }.map(\.id))
        #expect(try sweep(threadsByRetry).runs() == runs)
        #expect(Set(runs.map(\.seed)).count == 27)
        let p = try #require(s.points.first { $0.id == "workers=4,retry=legacy" })
        let w = try s.workload(point: p, seed: 99, machine: testMachine)
        #expect(w.groups[0].workers == 4 && w.policy["retry"] == "legacy" && w.run.durationMs == 100 && w.run.seed == 99)
    }

    @Test func idsAndSeedsDoNotDependOnOtherValues() throws {
        let s = try sweep(threadsByRetry)
        let more = try sweep(threadsByRetry.replacingOccurrences(of: "values = [1, 2, 4]", with: "values = [8, 1, 2, 4]"))
        #expect(more.points.count == 12)
        #expect(Set(s.points.map(\.id)).isSubset(of: Set(more.points.map(\.id))))
        let seeds = Dictionary(uniqueKeysWithValues: s.runs().map { ($0.id, $0.seed) })
        for r in more.runs() where seeds[r.id] != nil { #expect(seeds[r.id] == r.seed) }
        #expect(s.fingerprint != more.fingerprint)
        // Comments and layout do not change the fingerprint.
        #expect(try sweep("# a comment\n" + threadsByRetry).fingerprint == s.fingerprint)
    }

    @Test func shardsPartitionTheRuns() throws {
        let s = try sweep(threadsByRetry)
        let all = s.runs()
        for n in [1, 2, 4, 5, 27, 30] {
            var seen: [String] = []
            for i in 0..<n {
                let mine = s.runs(shard: ShardSpec(index: i, count: n))
                #expect(mine.count >= all.count / n && mine.count <= all.count / n + 1)
                seen += mine.map(\.id)
            }
            #expect(seen.count == all.count && Set(seen) == Set(all.map(\.id)))
        }
    }

    @Test func excludeDropsPointsAndNonScalarValuesGetHashedIds() throws {
        let s = try sweep(threadsByRetry + """

        [[exclude]]
        workers = 1
        retry = ["legacy", "retries=1"]

        [[axis]]
        key = "group[0].op[0].orders"
        values = [{ 0 = 1 }, { 0 = 1, 3 = 1 }]
        name = "orders"
        """)
        #expect(s.points.count == (9 - 2) * 2)
        #expect(!s.points.contains { $0.values["workers"] == "1" && $0.values["retry"] == "legacy" })
        #expect(s.points.allSatisfy { $0.id.contains("orders=") && $0.id.allSatisfy { !"{} ".contains($0) } })
        let w = try s.workload(point: s.points.last!, seed: 1, machine: testMachine)
        #expect(w.groups[0].ops[0].orders.count == 2)
    }

    @Test func badSweepFilesNameTheLine() throws {
        // An unknown axis key: the value's line.
        let unknown = sweepError("""
        workload = "default"
        [[axis]]
        key = "policy.retyr"
        values = ["kernel"]
        """)
        #expect(unknown?.place == "s.toml" && unknown?.line == 4)
        #expect(unknown?.message.contains("retyr") == true)
        // A value of the wrong type: that value's line.
        let type = sweepError("""
        workload = "default"
        [[axis]]
        key = "group[0].workers"
        values = [
          1,
          "two",
        ]
        """)
        #expect(type?.line == 6)
        #expect(type?.message.contains("integer") == true)
        // An empty axis.
        let empty = sweepError("workload = \"default\"\n[[axis]]\nkey = \"policy.oom\"\nvalues = []\n")
        #expect(empty?.line == 4 && empty?.message.contains("empty") == true)
        // A group that does not exist.
        let noGroup = sweepError("workload = \"default\"\n[[axis]]\nkey = \"group[3].workers\"\nvalues = [1]\n")
        #expect(noGroup?.line == 4 && noGroup?.message.contains("group[3] does not exist") == true)
        // A combination that no exclude removes.
        let contradiction = sweepError("""
        workload = "default"
        [[axis]]
        key = "memory.swap_pages"
        values = [0, 100]
        [[axis]]
        key = "memory.swap_mib"
        values = [1]
        """)
        #expect(contradiction?.line == 5 && contradiction?.message.contains("contradictory") == true)
        // The allocator as an axis: a peer beside a pagestorm-only part is refused at the allocator axis
        // ([[axis]] line), and an [[exclude]] of that combination makes the sweep valid.
        let allocatorAxis = """
        workload = "default"
        [[axis]]
        key = "run.allocator"
        values = ["pagestorm",
                  "glibc"]
        [[axis]]
        key = "policy.oom"
        values = ["async", "sync"]
        """
        let peerPolicy = sweepError(allocatorAxis)
        #expect(peerPolicy?.line == 2, "\(String(describing: peerPolicy))")
        #expect(peerPolicy?.message.contains("point allocator=glibc,oom=sync is contradictory") == true)
        #expect(peerPolicy?.message.contains("allocator glibc refuses parts only pagestorm has: [policy] oom = sync") == true, "\(String(describing: peerPolicy))")
        let excluded = try sweep(allocatorAxis + "\n[[exclude]]\nallocator = \"glibc\"\noom = \"sync\"\n")
        #expect(excluded.points.map(\.id) == ["allocator=pagestorm,oom=async", "allocator=pagestorm,oom=sync", "allocator=glibc,oom=async"])
        // Unknown top-level key, exclude of an unknown axis, a bad key path, no axis, a repeated value.
        #expect(sweepError("workload = \"default\"\nrepetition = 3\n")?.line == 2)
        #expect(sweepError(threadsByRetry + "\n[[exclude]]\nthreads = 1\n")?.message.contains("not an axis name") == true)
        #expect(sweepError("workload = \"default\"\n[[axis]]\nkey = \"group[x].workers\"\nvalues = [1]\n")?.line == 3)
        #expect(sweepError("workload = \"default\"\n")?.message.contains("[[axis]]") == true)
        #expect(sweepError("workload = \"default\"\n[[axis]]\nkey = \"policy.oom\"\nvalues = [\"sync\", \"sync\"]\n")?.message.contains("repeats") == true)
        #expect(sweepError("[[axis]]\nkey = \"policy.oom\"\nvalues = [\"sync\"]\n")?.message.contains("workload") == true)
        #expect(sweepError("workload = \"nothere.toml\"\n[[axis]]\nkey = \"policy.oom\"\nvalues = [\"sync\"]\n")?.line == 1)
    }

    @Test func badShards() throws {
        for bad in ["0/0", "3/2", "x", "1", "-1/2", "1/2/3"] {
            #expect(throws: SweepError.self) { try ShardSpec.parse(bad) }
        }
        #expect(try ShardSpec.parse("3/4") == ShardSpec(index: 3, count: 4))
        #expect(try ShardSpec.fromEnvironment(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"], countFlag: nil) == ShardSpec(index: 2, count: 4))
        #expect(try ShardSpec.fromEnvironment(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"], countFlag: nil) == ShardSpec(index: 3, count: 4))
        #expect(try ShardSpec.fromEnvironment(["JOB_COMPLETION_INDEX": "1"], countFlag: 3) == ShardSpec(index: 1, count: 3))
        #expect(try ShardSpec.fromEnvironment([:], countFlag: nil) == nil)
        #expect(throws: SweepError.self) { try ShardSpec.fromEnvironment(["JOB_COMPLETION_INDEX": "1"], countFlag: nil) }
        #expect(throws: SweepError.self) { try ShardSpec.fromEnvironment(["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"], countFlag: nil) }
        #expect(throws: SweepError.self) { try ShardSpec.fromEnvironment(["SLURM_ARRAY_TASK_ID": "1"], countFlag: nil) }
    }

    @Test func repStatistics() throws {
        let s = try #require(RepStats([4, 1, 3, 2]))
        #expect(s.median == 2.5 && s.min == 1 && s.max == 4 && s.q1 == 1.75 && s.q3 == 3.25 && s.iqr == 1.5)
        let one = try #require(RepStats([7]))
        #expect(one.median == 7 && one.iqr == 0)
        #expect(RepStats([]) == nil)
    }
}

@Suite struct SweepMergeTests {
    /// A 2-point x 2-repetition sweep of a small op-count workload, its runs
    /// run in this process (every one validated), written as two shards.
    @Test func mergeJoinsShardsReportsMissingAndDuplicatesAndSummarizes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-merge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try small("""
        [[group]]
        workers = 1
        [[group.op]]
        order = 0
        """, run: "ops = 3000\nwarmup_ms = 0").write(toFile: "\(dir)/w.toml", atomically: true, encoding: .utf8)
        let text = """
        name = "m"
        workload = "w.toml"
        repetitions = 2
        [[axis]]
        key = "group[0].op[0].order"
        values = [0, 1]
        """
        try text.write(toFile: "\(dir)/m.toml", atomically: true, encoding: .utf8)
        let spec = try SweepSpec.load(path: "\(dir)/m.toml", machine: testMachine)
        let revision = SweepRevision.current()
        let shards = ["\(dir)/a/m", "\(dir)/b/m"]
        for (i, root) in shards.enumerated() {
            try ResultsFile.write(spec.manifest(revision: revision), to: "\(root)/\(SweepManifest.fileName)")
            for run in spec.runs(shard: ShardSpec(index: i, count: 2)) {
                let p = spec.points.first { $0.id == run.point }!
                var o = RunOptions()
                o.measureOverhead = false
                o.shard = ShardInfo(sweep: spec.name, index: run.order, count: 4, parameters: p.values)
                let r = try StressRun.run(try spec.workload(point: p, seed: run.seed, machine: testMachine), options: o)
                #expect(r.memoryCheck.validate == "ok")
                try ResultsFile.write(r, to: SweepFolder.path(root, run))
            }
        }
        let out = "\(dir)/merged"
        let (report, summary) = try SweepMerge.merge(shards, output: out)
        #expect(report.runs == 4 && report.complete == 4 && report.missing.isEmpty && report.duplicates.isEmpty)
        #expect(summary.points.count == 2 && summary.points.allSatisfy { $0.complete == 2 && $0.verdicts["ok"] == 2 })
        let p0 = try #require(summary.points.first { $0.id == "order=0" })
        let calls = try #require(p0.metrics["calls_per_s"])
        #expect(calls.n == 2 && calls.min <= calls.median && calls.median <= calls.max && calls.min > 0)
        #expect(p0.metrics["lat.alloc_o0_GFP_KERNEL.p99_ns"] != nil)
        #expect(p0.pooledLatency["alloc o0 GFP_KERNEL"].map { $0.p50 > 0 } == true)
        let csv = try String(contentsOfFile: "\(out)/summary.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 3)
        #expect(csv[0].hasPrefix("point,order,runs,complete,failed,missing,verdict_ok,"))
        #expect(csv[0].contains("calls_per_s.median,calls_per_s.min,calls_per_s.max,calls_per_s.iqr"))
        #expect(csv[1].hasPrefix("order=0,0,2,2,0,0,2,"))
        #expect(FileManager.default.fileExists(atPath: "\(out)/order=1/rep-2.json"))

        // A run in both shards is a duplicate; a run in neither is missing (merge into a new folder).
        let moved = spec.runs(shard: ShardSpec(index: 1, count: 2))[0]
        try? FileManager.default.createDirectory(atPath: "\(shards[0])/\(moved.point)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: SweepFolder.path(shards[1], moved), toPath: SweepFolder.path(shards[0], moved))
        let gone = spec.runs(shard: ShardSpec(index: 0, count: 2))[0]
        try FileManager.default.removeItem(atPath: SweepFolder.path(shards[0], gone))
        let (r2, s2) = try SweepMerge.merge(shards, output: "\(dir)/merged2")
        #expect(r2.missing.map(\.run) == [gone.id])
        #expect(r2.duplicates.map(\.run) == [moved.id] && r2.duplicates[0].identical)
        #expect(s2.points.first { $0.id == gone.point }?.missing == 1)

        // Another sweep's folder is refused, naming the folder.
        let other = try SweepSpec.parse(text.replacingOccurrences(of: "repetitions = 2", with: "repetitions = 3"), file: "\(dir)/m.toml", machine: testMachine)
        try ResultsFile.write(other.manifest(revision: revision), to: "\(dir)/c/m/\(SweepManifest.fileName)")
        #expect(throws: SweepError.self) { try SweepMerge.merge([shards[0], "\(dir)/c/m"], output: "\(dir)/merged3") }
        do { _ = try SweepMerge.merge([shards[0], "\(dir)/c/m"], output: "\(dir)/merged3") } catch {
            #expect(error.place == "\(dir)/c/m" && error.message.contains("another sweep"))
        }
        #expect(throws: SweepError.self) { try SweepMerge.merge(["\(dir)/nothing"], output: "\(dir)/merged4") }
    }
}

@Suite struct SweepFilesTests {
    /// Every sweep file under Workloads/sweeps/ reads and checks (every point a valid workload).
    @Test func everySweepFileLoads() throws {
        let dir = repoRoot.appendingPathComponent("Workloads/sweeps").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(files.count >= 3)
        for f in files {
            let s = try SweepSpec.load(path: "\(dir)/\(f)", machine: testMachine)
            #expect(s.points.count >= 2 && s.runs().count == s.points.count * s.repetitions, "\(f)")
        }
        let t = try SweepSpec.load(path: "\(dir)/threads-x-retry.toml", machine: testMachine)
        #expect(t.points.count == 9 && t.repetitions == 3)
        let f = try SweepSpec.load(path: "\(dir)/fault-injection.toml", machine: testMachine)
        #expect(f.points.count == 5 && !f.points.contains { $0.id == "inject_pct=0,retry=retries=1" })
    }
}
