import Foundation
import Synchronization
import PageAllocator
import Testing
@testable import StressHarness

/// The harness side of the slow path, piece by piece: the workload keys, the
/// allocator built from them, tasks, kills and restarts, the caller loop,
/// stalls, reclaimable memory and damage by level of need.
@Suite struct SlowPathHarnessTests {
    // MARK: the workload keys

    @Test func policyIsTheAllocatorsTable() throws {
        #expect(Policy.keys == SlowPathPolicy.table.map(\.name))
        #expect(Policy.defaults == Dictionary(uniqueKeysWithValues: SlowPathPolicy().settings.map { ($0.0, $0.1) }))
        let w = try parse(small("""
        [policy]
        retry = "legacy"
        reaper = "on"
        victim_timeout_ms = 250
        oom_lock = "mutex"
        nofail_emergency_reserve = false
        [[group]]
        [[group.op]]
        """))
        // Integers and booleans are accepted; values are stored in their canonical text.
        #expect(w.policy["retry"] == "legacy" && w.policy["reaper"] == "true" && w.policy["victim_timeout_ms"] == "250")
        #expect(w.policy["oom_lock"] == "mutex" && w.policy["nofail_emergency_reserve"] == "false")
        // The allocator is built from the table.
        let c = try w.allocatorConfig(topology: testMachine)
        #expect(c.policy.retry == .legacy && c.policy.reaper && c.policy.victimTimeoutMs == 250 && !c.policy.oomLockTrylock)
        #expect(!c.policy.nofailEmergencyReserve && c.policy.oomVictimReserve)
    }

    @Test func memoryReclaimFaultAndGroupKeysReachTheAllocator() throws {
        let w = try parse("""
        [memory]
        arena_mib = 16
        swap_mib = 2
        warn_ratelimit_ms = 500
        [reclaim]
        writeback_ns_per_page = 7
        swap_ns_per_page = 9
        batch = 16
        [fail_page_alloc]
        probability = 5
        interval = 2
        times = 10
        min_order = 0
        ignore-gfp-wait = "N"
        [[memory_group]]
        name = "small"
        limit_pages = 300
        [[group]]
        oom_score_adj = 500
        restart = true
        memory_group = "small"
        [[group.op]]
        """)
        #expect(w.memory.swapPages == 512 && w.memory.warnRatelimitMs == 500)
        #expect(w.groups[0].oomScoreAdj == 500 && w.groups[0].restart && w.groups[0].memoryGroup == "small")
        let c = try w.allocatorConfig(topology: testMachine)
        #expect(c.reclaim.swapPages == 512 && c.reclaim.writebackNsPerPage == 7 && c.reclaim.swapNsPerPage == 9 && c.reclaim.batch == 16)
        #expect(c.warnRatelimitMs == 500)
        #expect(c.faultInjection.probability == 5 && c.faultInjection.interval == 2 && c.faultInjection.times == 10)
        #expect(c.faultInjection.minOrder == 0 && !c.faultInjection.ignoreGfpWait && c.faultInjection.enabled)
        #expect(c.memoryGroups == [MemoryGroupSpec(name: "small", limitPages: 300)])
        let plan = RunPlan(w, topology: testMachine)
        #expect(plan.workers.allSatisfy { $0.task.memoryGroup == 1 && $0.task.oomScoreAdj == 500 && $0.task.restart })
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let text: String
        let line: Int
        let field: String
        let fragment: String
        var testDescription: String { field }
    }

    static let op = "[[group]]\n[[group.op]]\n"
    static let bad: [Bad] = [
        Bad(text: "[policy]\nnofail = \"allocator\"\n" + op, line: 2, field: "policy.nofail", fragment: "unknown key 'nofail'"),
        Bad(text: "[policy]\nretry = \"retries=-1\"\n" + op, line: 2, field: "policy.retry", fragment: "retries=N with N >= 0"),
        Bad(text: "[policy]\nreaper = 3\n" + op, line: 2, field: "policy.reaper", fragment: "true or false"),
        Bad(text: "[policy]\noom = [1]\n" + op, line: 2, field: "policy.oom", fragment: "expected a string, a number or a boolean"),
        Bad(text: "[harness]\nnofail = \"caller\"\n" + op, line: 2, field: "harness.nofail", fragment: "allocator or caller-loop"),
        Bad(text: "[harness]\nstall_ms = 0\n" + op, line: 2, field: "harness.stall_ms", fragment: "1...86400000"),
        Bad(text: "[reclaim]\nbatch = 0\n" + op, line: 2, field: "reclaim.batch", fragment: "at least 1"),
        Bad(text: "[fail_page_alloc]\nprobability = 101\n" + op, line: 2, field: "fail_page_alloc.probability", fragment: "0...100"),
        Bad(text: "[fail_page_alloc]\nrate = 1\n" + op, line: 2, field: "fail_page_alloc.rate", fragment: "unknown key"),
        Bad(text: "[memory]\nswap_pages = 1\nswap_mib = 1\n" + op, line: 3, field: "memory.swap_mib", fragment: "contradicts swap_pages"),
        Bad(text: "[[memory_group]]\nname = \"g\"\n" + op, line: 1, field: "memory_group[0]", fragment: "needs its limit"),
        Bad(text: "[[group]]\nmemory_group = \"nope\"\n[[group.op]]\n", line: 2, field: "group[0].memory_group", fragment: "no memory group is named 'nope'"),
        Bad(text: "[[group]]\noom_score_adj = -1001\n[[group.op]]\n", line: 2, field: "group[0].oom_score_adj", fragment: "at least -1000"),
        Bad(text: "[[group]]\nrestart_delay_ms = 5\n[[group.op]]\n", line: 2, field: "group[0].restart_delay_ms", fragment: "needs restart = true"),
        Bad(text: op + "reclaimable = \"swap\"\n", line: 3, field: "group[0].op[0].reclaimable", fragment: "not one of: clean, dirty, anon"),
        Bad(text: op + "reclaimable = \"anon\"\nfree = \"fifo\"\nbatch = 2\n", line: 4, field: "group[0].op[0].free", fragment: "contradicts reclaimable"),
        Bad(text: op + "initial = 10\n", line: 3, field: "group[0].op[0].initial", fragment: "needs reclaimable"),
        Bad(text: op + "reserve = 0\n", line: 3, field: "group[0].op[0].reserve", fragment: "at least 1"),
    ]

    @Test(arguments: bad)
    func badSlowPathKeysGetOneClearError(_ c: Bad) {
        do {
            _ = try parse(c.text, file: "bad.toml")
            Issue.record("parsed without an error: \(c.field)")
        } catch {
            #expect(error.line == c.line, "\(error)")
            #expect(error.field == c.field, "\(error)")
            #expect(error.message.contains(c.fragment), "\(error)")
            #expect(error.description.hasPrefix("bad.toml:\(c.line): \(c.field): "), "\(error)")
        }
    }

    @Test func commandLineOverridesAreChecked() throws {
        let w = try parse(small("[[group]]\n[[group.op]]\n"))
        let o = try w.overriding(WorkloadOverrides(policy: ["retry": "retries=3", "oom": "sync"], harness: ["nofail": "caller-loop"],
                                                   failPageAlloc: "probability=10,interval=1,times=-1,min-order=0"))
        #expect(o.policy["retry"] == "retries=3" && o.policy["oom"] == "sync" && o.harness.callerLoop)
        #expect(o.failPageAlloc.probability == 10 && o.failPageAlloc.times == -1 && o.failPageAlloc.minOrder == 0)
        #expect(throws: OverrideError.self) { try w.overriding(WorkloadOverrides(policy: ["retry": "sometimes"])) }
        #expect(throws: OverrideError.self) { try w.overriding(WorkloadOverrides(harness: ["livelock": "1"])) }
        #expect(throws: OverrideError.self) { try w.overriding(WorkloadOverrides(failPageAlloc: "probability=200")) }
        let pairs = try Policy.parseAssignments("retry=retries=2, oom=sync", what: "--policy")
        #expect(pairs.map(\.0) == ["retry", "oom"] && pairs.map(\.1) == ["retries=2", "sync"])
        #expect(throws: OverrideError.self) { try Policy.parseAssignments("legacy", what: "--policy") }
    }

    // MARK: runs

    /// Every worker is a task; a run with OOM kills restarts the killed
    /// workers as new tasks and counts it; kills and restarts add up.
    @Test func killedWorkersFreeEverythingAndRestart() throws {
        let r = try run(small("""
        [[group]]
        name = "hogs"
        workers = 2
        restart = true
        [[group.op]]
        free = "random"
        live = 3000
        touch = 8
        """, run: "duration_ms = 400\nseed = 4", memory: "arena_mib = 16\npressure = true"))
        expectAccounted(r)
        #expect(r.slowPath.tasks.kills >= 1, "6000 blocks in 4096 pages: someone is killed")
        #expect(r.slowPathTotal("oom_kill") >= r.slowPath.tasks.kills)
        #expect(r.slowPath.tasks.restarts + r.slowPath.tasks.deadWorkers >= r.slowPath.tasks.kills - 1)
        #expect(r.slowPath.tasks.registered == 2 + r.slowPath.tasks.restarts, "every restart is a new task")
        #expect(r.workers.map(\.kills).reduce(0, +) == r.slowPath.tasks.kills)
        #expect(r.slowPath.oomEvents.contains { $0.kind == "kill" && $0.victimName.hasPrefix("hogs.") })
        #expect(r.status.verdict == "ok" || r.status.verdict == "failures")
    }

    /// Without restart a killed worker is gone for good: it stops, and the
    /// run still ends cleanly.
    @Test func killedWorkersStayDeadWithoutRestart() throws {
        let r = try run(small("""
        [[group]]
        name = "hogs"
        workers = 2
        [[group.op]]
        free = "keep"
        live = 3000
        """, run: "duration_ms = 300\nseed = 5", memory: "arena_mib = 16\npressure = true"))
        expectAccounted(r)
        #expect(r.slowPath.tasks.restarts == 0)
        #expect(r.slowPath.tasks.deadWorkers >= 1)
        #expect(r.workers.contains { $0.stopReason == "killed" })
    }

    /// The XFS way: __GFP_NOFAIL dropped, the worker retries, prints
    /// "possible memory allocation deadlock" every N tries and counts them.
    @Test func callerLoopRetriesAndWarns() throws {
        let r = try run(small("""
        [policy]
        retry = "retries=0"
        [harness]
        nofail = "caller-loop"
        caller_loop_warn_every = 2
        caller_loop_backoff_ms = 1
        [[group]]
        name = "fs"
        workers = 2
        oom_score_adj = -1000
        [[group.op]]
        name = "ballast"
        weight = 0
        free = "keep"
        live = 2000
        prefill = true
        [[group.op]]
        name = "tx"
        flags = "GFP_NOFS|__GFP_NOFAIL"
        free = "fifo"
        batch = 64
        """, run: "duration_ms = 400\nseed = 6", memory: "arena_mib = 16\npressure = true"))
        expectAccounted(r)
        let c = r.slowPath.callerLoop
        #expect(c.enabled)
        #expect(c.retries > 0, "memory ran out under retries=0: the caller looped")
        #expect(c.deadlockWarnings == c.retries / 2 || c.deadlockWarnings >= 1)
        #expect(r.slowPath.messages.contains { $0.contains("possible memory allocation deadlock size 4096 in tx (mode:0xc40)") })
        #expect(r.failures.total == 0, "a caller loop never returns a failure")
        #expect(r.latency.contains { $0.name == "alloc o0 GFP_NOFS|__GFP_NOFAIL" && $0.calls > 0 })
    }

    /// Stalls: allocation calls longer than stall_ms are counted, kept in a
    /// histogram, and printed in the kernel's form.
    @Test func stallsAreCountedAndPrintedInTheKernelsForm() throws {
        let lines = Mutex<[String]>([])
        let r = try run(small("""
        [policy]
        retry = "retries=0"
        max_stall_ms = 150
        [harness]
        stall_ms = 30
        stall_warnings = true
        [[group]]
        workers = 2
        oom_score_adj = -1000
        [[group.op]]
        name = "ballast"
        weight = 0
        free = "keep"
        live = 1000
        prefill = true
        [[group.op]]
        flags = "GFP_NOFS|__GFP_NOFAIL"
        free = "fifo"
        batch = 200
        """, run: "duration_ms = 500\nseed = 7", memory: "zones = [{ type = \"Normal\", pages = 2048 }]\npcp_max_order = -1\npressure = true")) { o in
            o.warningSink = { l in lines.withLock { $0.append(l) } }
        }
        expectAccounted(r)
        let s = r.slowPath.stalls
        #expect(s.thresholdMs == 30)
        #expect(s.count >= 1, "NOFAIL loops with nothing to free: calls stall")
        #expect(s.histogram.reduce(0) { $0 + $1.count } == s.count)
        #expect(s.maxMs >= 30 && s.totalMs >= s.maxMs)
        #expect(s.printed >= 1 && s.lines.allSatisfy { $0.contains(": page allocation stalls for ") && $0.contains("ms, order:0, mode:0x8c40(GFP_NOFS|__GFP_NOFAIL), nodemask=(null)") })
        #expect(lines.withLock { $0 }.contains { $0.contains("page allocation stalls for") })
        // max_stall_ms ends the loops: .timedOut is a failure (by cause).
        #expect(r.slowPath.failureCauses.timedOut == r.failures.total && r.failures.total > 0)
    }

    /// Reclaimable memory: operations create clean, dirty and anonymous
    /// pages charged to the worker; under pressure reclaim frees them (dirty
    /// pages with writeback, anonymous pages with swap), and kswapd runs.
    /// Reclaim takes clean pages first, then dirty, then anonymous: the
    /// working sets (1500 anonymous pages per worker) fill memory at once and
    /// half of what is created later is anonymous, so a reclaim pass of 32
    /// pages finds too few clean and dirty pages and swaps, however slowly the
    /// workers run.
    @Test func reclaimableMemoryIsCreatedAndReclaimed() throws {
        let r = try run(small("""
        [reclaim]
        writeback_ns_per_page = 100
        swap_ns_per_page = 100
        [[group]]
        workers = 2
        [[group.op]]
        name = "read"
        weight = 1
        reclaimable = "clean"
        [[group.op]]
        name = "write"
        weight = 1
        reclaimable = "dirty"
        [[group.op]]
        name = "heap"
        weight = 2
        reclaimable = "anon"
        initial = 1500
        """, run: "duration_ms = 400\nseed = 8", memory: "zones = [{ type = \"Normal\", pages = 4096 }]\nswap_pages = 100000"))
        expectAccounted(r)
        let rc = r.slowPath.reclaim
        #expect(rc.createdClean > 0 && rc.createdDirty > 0 && rc.createdAnon > 0)
        #expect(rc.createdClean + rc.createdDirty + rc.createdAnon > 4096, "more than memory was created: reclaim made room")
        let steal = r.slowPathTotal("pgsteal_direct") + r.slowPathTotal("pgsteal_kswapd")
        #expect(steal > 0)
        #expect(r.slowPathTotal("pgwriteback") > 0, "dirty pages were written back (GFP_KERNEL has __GFP_FS)")
        #expect(r.slowPathTotal("pswpout") > 0, "anonymous pages were swapped out")
        #expect(r.slowPathTotal("kswapd_wakeups") > 0)
        #expect(r.failures.total == 0)
    }

    /// Levels of need as damage: with every allocation failing (fault
    /// injection), level 0 counts skipped optimisations, level 1 errors,
    /// level 2 lost pages, and level 3 stops the group at its first failure.
    @Test func damageByLevelOfNeed() throws {
        let r = try run(small("""
        [fail_page_alloc]
        probability = 100
        times = -1
        min-order = 0
        ignore-gfp-wait = false
        verbose = 0
        [[group]]
        name = "l0"
        workers = 1
        [[group.op]]
        need = 0
        [[group]]
        name = "l1"
        workers = 1
        [[group.op]]
        need = 1
        [[group]]
        name = "l2"
        workers = 1
        [[group.op]]
        order = 2
        need = 2
        [[group]]
        name = "fs"
        workers = 2
        [[group.op]]
        need = 3
        """, run: "duration_ms = 200\nseed = 9"))
        expectAccounted(r)
        let d = r.slowPath.damage
        #expect(d.skipped == r.failures.byLevel["0"] && d.skipped > 0)
        #expect(d.errorsReturned == r.failures.byLevel["1"] && d.errorsReturned > 0)
        #expect(d.lostDataPages == 4 * r.failures.byLevel["2", default: -1] && d.lostDataPages > 0, "order-2 failures lose 4 pages each")
        #expect(d.subsystemFailures >= 1 && d.subsystemFailures <= 2, "the fs group stops at its first failure (each worker may fail once)")
        #expect(d.groupsStopped.map(\.group) == ["fs"])
        #expect(r.workers.filter { $0.group == "fs" }.allSatisfy { $0.stopReason == "group-stopped" })
        #expect(r.slowPath.failureCauses.injected == r.failures.total)
        #expect(r.slowPath.injectedFailures >= r.failures.total)
        #expect(r.status.verdict == "failures" && r.exitStatus == .failures)
    }

    @Test func verdictsMapToExitCodes() {
        #expect(Verdict.ok.exitStatus.rawValue == 0 && Verdict.failures.exitStatus.rawValue == 1)
        #expect(Verdict.livelock.exitStatus.rawValue == 4 && Verdict.deadlock.exitStatus.rawValue == 5)
    }
}
