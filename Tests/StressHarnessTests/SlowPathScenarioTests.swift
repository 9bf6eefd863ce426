import Foundation
import PageAllocator
import Testing
@testable import StressHarness

/// Runs a workload file of Workloads/ with overrides (reduced, seeded).
func runScenario(_ file: String, _ o: WorkloadOverrides) throws -> RunResult {
    let path = repoRoot.appendingPathComponent("Workloads").appendingPathComponent(file).path
    let w = try Workload.load(path: path).overriding(o)
    var opts = RunOptions()
    opts.measureOverhead = false
    opts.stopGraceMs = testStopGraceMs
    opts.workloadFile = path
    return try StressRun.run(w, options: opts)
}

/// Every run ends with validate() and a full page accounting: every page
/// is free again, nothing corrupted, nothing refused.
func expectAccounted(_ r: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.memoryCheck.validate == "ok", "\(r.memoryCheck.validate)", sourceLocation: sourceLocation)
    let a = r.memoryCheck.accounting
    #expect(a?.allocated == 0, "\(String(describing: a))", sourceLocation: sourceLocation)
    #expect(a.map { $0.buddyFree + $0.perCPU == $0.managed } == true, sourceLocation: sourceLocation)
    #expect(r.memoryCheck.corruptions == 0 && r.memoryCheck.freeErrors == 0, sourceLocation: sourceLocation)
}

func hung(_ r: RunResult) -> Bool { r.status.verdict == "livelock" || r.status.verdict == "deadlock" }

/// A one-line account of a run for failure messages.
func brief(_ r: RunResult) -> String {
    "verdict \(r.status.verdict), stop \(r.status.stopReason), measured \(r.timing.measuredNs / 1_000_000) ms, \(r.throughput.allocs) allocs, kills \(r.slowPath.counters["oom_kill"] ?? 0), workers \(r.workers.map { "\($0.group):\($0.stopReason)" }), problems \(r.status.problems), started \(r.startedAt) finished \(r.finishedAt)"
}

/// The suites that run scenario workloads: one at a time, so that their
/// threads do not compete with each other's for the machine's cores (the
/// hangs they reproduce depend on how threads interleave).
@Suite(.serialized) enum ScenarioRuns {}

/// Runs a scenario with seeds 1...`seeds`: every run, not just one, must
/// show the verdict the test expects (the scenarios are built so that the
/// hang does not depend on how fast the machine is or how threads interleave).
func seededRuns(_ file: String, seeds: Int = 3, _ o: WorkloadOverrides) throws -> [RunResult] {
    try (1...UInt64(seeds)).map { seed in
        var o = o
        o.seed = seed
        let r = try runScenario(file, o)
        expectAccounted(r)
        return r
    }
}

extension ScenarioRuns {
/// The four scenarios of the slow-path issue, at reduced size, seeded: the
/// verdicts and the directions the 2015 arguments predict.
@Suite struct SlowPathScenarioTests {
    /// Scenario 1: the OOM victim waits for the journal lock that a looping
    /// GFP_NOFS|__GFP_NOFAIL transaction holds. Pre-2015 policy: a deadlock the
    /// watchdog ends, in every seed, with every worker's state
    /// printed; the reaper, or Weiner's set, avoid it.
    @Test func oomVictimBlockedOnALock() throws {
        // Every seed deadlocks: memory runs out inside a jbd2 transaction,
        // and the victim is then waiting for the lock jbd2 holds.
        let runs = try seededRuns("scenario1-oom-victim-lock.toml", WorkloadOverrides(durationMs: 1500))
        for r in runs {
            #expect(r.status.verdict == "deadlock" && r.exitStatus == .deadlock, "legacy + async deadlocks in every seed: \(brief(r))")
            #expect(r.status.partial && r.status.stopReason == "deadlock")
            #expect(r.slowPath.counters["oom_nofs_no_kill", default: 0] > 0, "NOFS got no kill of its own")
            #expect(r.slowPathTotal("oom_kill") >= 1)
        }
        let legacy = runs[0]
        let wd = try #require(legacy.slowPath.watchdog)
        #expect(wd.verdict == .deadlock)
        #expect(wd.tasks.count >= 3, "one line per live task")
        #expect(wd.workers.count == legacy.workers.count, "one line per worker, as the harness saw it")
        #expect(wd.workers.contains { $0.contains("inside an allocation call for") }, "\(wd.workers)")
        #expect(wd.cycle.count >= 2)
        #expect(wd.tasks.contains { $0.contains("OOM victim") && $0.contains("waiting for lock journal held by task") }, "\(wd.tasks)")
        #expect(wd.tasks.contains { $0.contains("jbd2") && $0.contains("retrying in the allocator at order 0 with flags GFP_NOFS|__GFP_NOFAIL") }, "\(wd.tasks)")

        for reaper in try seededRuns("scenario1-oom-victim-lock.toml", WorkloadOverrides(durationMs: 800, policy: ["reaper": "true"])) {
            #expect(!hung(reaper), "the reaper frees the victim's memory: \(brief(reaper))")
            #expect(reaper.slowPathTotal("oom_kill") >= 1 && reaper.slowPathTotal("oom_reaped") >= 1, "\(brief(reaper))")
        }
        for weiner in try seededRuns("scenario1-oom-victim-lock.toml", WorkloadOverrides(
            durationMs: 800, policy: ["oom": "sync", "oom_killer_reserve": "true", "nofail_emergency_reserve": "true"])) {
            #expect(!hung(weiner), "sync OOM + reserves + NOFAIL emergency reserves: \(brief(weiner))")
            #expect(weiner.slowPathTotal("oom_kill") >= 1, "memory ran out and the killer worked")
            #expect(weiner.slowPathTotal("nofail_reserve_dips") >= 1, "jbd2 finished its transactions below MIN")
        }
    }

    /// Scenario 2: Hocko's knob. Failures fall as N grows and vanish when
    /// retries are endless; the OOM killer works under every setting.
    @Test func hockosRetryKnob() throws {
        var failures: [Int] = []
        for retry in ["retries=1", "retries=100", "kernel"] {
            // Op counts, not 600 ms: each of the 3 services fills its 1,600 live
            // blocks (more than the arena holds together) however slowly a busy
            // machine runs them, so memory runs out, and a killed service
            // restarts before the run ends (a timed run's end could come first).
            // 20,000 each (as check-baselines): ~15-20 OOM episodes, and retries=1's
            // failures (a few per episode, by interleaving) are never all missing
            // (6,000 gave 5-35 failures, and once none).
            let r = try runScenario("scenario2-hocko-retries.toml", WorkloadOverrides(ops: 20000, seed: 2, policy: ["retry": retry]))
            #expect(!hung(r), "\(retry): \(r.status.verdict)")
            #expect(r.slowPathTotal("oom_kill") >= 1, "\(retry): memory ran out")
            #expect(r.slowPath.tasks.restarts >= 1, "\(retry): killed services restart")
            #expect(r.failures.total == r.failures.byLevel["1", default: 0], "refusals are level-1 errors")
            expectAccounted(r)
            failures.append(r.failures.total)
        }
        #expect(failures[0] > failures[1], "retries=1 fails more than retries=100: \(failures)")
        #expect(failures[2] == 0, "endless retries never fail a small allocation: \(failures)")
    }

    /// Scenario 3: NOFAIL under pressure that nothing can relieve. Without
    /// emergency reserves the runs hang (livelock); with them none does.
    @Test func nofailUnderPressure() throws {
        var hangsWithout = 0, hangsWith = 0
        for seed in 1...3 as ClosedRange<UInt64> {
            let o = WorkloadOverrides(durationMs: 500, seed: seed, harness: ["livelock_ms": "300"])
            var without = o; without.policy = ["nofail_emergency_reserve": "false"]
            var with = o; with.policy = ["nofail_emergency_reserve": "true"]
            let a = try runScenario("scenario3-nofail-pressure.toml", without)
            let b = try runScenario("scenario3-nofail-pressure.toml", with)
            if hung(a) { hangsWithout += 1; #expect(a.status.verdict == "livelock" && a.exitStatus == .livelock) }
            if hung(b) { hangsWith += 1 }
            #expect(a.failures.total == 0 && b.failures.total == 0, "NOFAIL never fails")
            #expect(b.slowPathTotal("nofail_reserve_dips") > 0)
            expectAccounted(a)
            expectAccounted(b)
        }
        #expect(hangsWithout >= 1, "without emergency reserves some runs hang")
        #expect(hangsWith == 0, "with emergency reserves none does")
    }

    /// Scenario 4: synchronous against asynchronous OOM. Both kill and
    /// recover; only sync sleeps on the victim's exit, and neither kills a
    /// second victim while the first is still exiting.
    @Test func syncAgainstAsyncOOM() throws {
        // Op counts (4 workers x 1,200 live blocks overfill the arena in every run, at any speed).
        let async = try runScenario("scenario4-sync-async-oom.toml", WorkloadOverrides(ops: 4000, seed: 3, policy: ["oom": "async"]))
        let sync = try runScenario("scenario4-sync-async-oom.toml", WorkloadOverrides(ops: 4000, seed: 3, policy: ["oom": "sync"]))
        for r in [async, sync] {
            #expect(!hung(r), "\(r.status.verdict)")
            #expect(r.slowPathTotal("oom_kill") >= 1)
            #expect(r.failures.total == 0, "GFP_KERNEL small orders do not fail under the kernel policy")
            // No over-killing: kills are separated by the exit of the previous victim.
            let kills = r.slowPath.oomEvents.filter { $0.kind == "kill" }
            #expect(Set(kills.map(\.victim)).count == kills.count, "each victim is killed once")
            #expect(r.latency.contains { $0.opClass.call == .alloc && $0.histogram.totalCount > 0 })
            expectAccounted(r)
        }
        #expect(async.slowPathTotal("oom_waits") == 0)
        #expect(sync.slowPathTotal("oom_waits") > 0, "sync OOM sleeps on the victim's exit")
    }
}

}

extension RunResult {
    func slowPathTotal(_ name: String) -> Int { slowPath.countersTotal[name] ?? 0 }
}

extension ScenarioRuns {
/// `pagestorm debate`'s engine on one scenario: a row per policy, the
/// columns filled from real runs, the table in Markdown, and the JSON.
@Suite struct DebateTests {
    @Test func tableRowsComeFromRealRuns() throws {
        var o = Debate.Options()
        o.workloadsDir = repoRoot.appendingPathComponent("Workloads").path
        // Op counts: 1,200 operations per worker hold 4 x 1,200 blocks of up to
        // 4 pages in a 4,096-page arena, so memory runs out in every run, however
        // slowly a busy machine runs it (a 400 ms run under load made no kill).
        o.ops = 1200
        o.seeds = 2
        let rows = [DebateRow("scenario4-sync-async-oom.toml", "async", policy: ["oom": "async"]),
                    DebateRow("scenario4-sync-async-oom.toml", "sync", policy: ["oom": "sync"], repeated: true)]
        let r = try Debate.run(o, rows: rows)
        #expect(r.rows.count == 2)
        #expect(r.rows[0].runs.count == 1 && r.rows[1].runs.count == 2)
        for row in r.rows {
            #expect(row.allocsPerSecond > 0 && row.p999Ns > 0)
            #expect(row.oomKills == row.runs.reduce(0) { $0 + $1.oomKills } && row.oomKills > 0)
            #expect(row.runs.allSatisfy { $0.measuredMs > 0 }, "measured runs")
            #expect(row.runs.allSatisfy { $0.validate == "ok" && $0.allocatedAfter == 0 }, "every run ends with validate() and every page free")
        }
        #expect(r.rows[1].verdict.contains("/2"), "repeated rows count verdicts over seeds: \(r.rows[1].verdict)")
        let md = r.markdown()
        #expect(md.contains("| scenario | policy | allocs/s | p99.9 alloc | failures L0/L1/L2/L3 | OOM kills | stalls (total ms) | verdict |"))
        #expect(md.contains("| scenario4-sync-async-oom | sync |"))
        #expect(md.contains("`--policy oom=sync`"))
        let data = try ResultsFile.encoder().encode(r)
        let back = try JSONDecoder().decode(DebateReport.self, from: data)
        #expect(back.rows == r.rows && back.schema == "pagestorm.debate/1")
    }

    @Test func everyDebateScenarioFileExistsAndParses() throws {
        for f in Set(Debate.rows.map(\.scenario)) {
            let w = try Workload.load(path: repoRoot.appendingPathComponent("Workloads").appendingPathComponent(f).path)
            for row in Debate.rows where row.scenario == f {
                _ = try w.overriding(WorkloadOverrides(policy: row.policySettings, harness: row.harnessSettings, failPageAlloc: row.failPageAlloc))
            }
        }
    }

    /// Issue 10: a row is named after what it sets. The "kernel" rows turned
    /// the oom_reaper on, while `--policy retry=kernel` leaves it off: only a
    /// name that says "reaper" may run with the reaper, and a name that says
    /// kernel, legacy or retries=N runs that retry rule (as the file resolves it).
    @Test func debateRowsAreNamedAfterWhatTheySet() throws {
        for row in Debate.rows {
            let file = try Workload.load(path: repoRoot.appendingPathComponent("Workloads").appendingPathComponent(row.scenario).path)
            let w = try file.overriding(WorkloadOverrides(policy: row.policySettings, harness: row.harnessSettings, failPageAlloc: row.failPageAlloc))
            let p = try Policy.resolve(w.policy)
            let name = row.policy
            #expect(p.reaper == name.contains("reaper"), "\(row.scenario) \"\(name)\": reaper = \(p.reaper)")
            if name.hasPrefix("kernel") { #expect(p.retry == .kernel, "\(row.scenario) \"\(name)\": retry = \(p.retry)") }
            if name.hasPrefix("legacy") { #expect(p.retry == .legacy, "\(row.scenario) \"\(name)\": retry = \(p.retry)") }
            if let r = name.firstMatch(of: /retries=(\d+)/), let n = Int(r.1) {
                #expect(p.retry == .retries(n), "\(row.scenario) \"\(name)\": retry = \(p.retry)")
            }
        }
    }
}
}
