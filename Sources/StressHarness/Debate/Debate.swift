import Foundation
import Histogram
import PageAllocator

/// One row of the debate table: a scenario file run under one policy.
public struct DebateRow: Sendable, Equatable {
    /// The workload file in Workloads/.
    public var scenario: String
    /// The policy's name in the table (legacy, kernel + oom_reaper, retries=N, ...): it names what the row sets.
    public var policy: String
    /// `[policy]`, `[harness]` and `[fail_page_alloc]` replacements (what --policy, --harness, --fail-page-alloc would say).
    public var policySettings: [String: String] = [:]
    public var harnessSettings: [String: String] = [:]
    public var failPageAlloc: String? = nil
    /// Run once per seed (`--seeds`) and report the hang rate.
    public var repeated: Bool = false

    public init(_ scenario: String, _ policy: String, policy settings: [String: String] = [:], harness: [String: String] = [:],
                failPageAlloc: String? = nil, repeated: Bool = false) {
        self.scenario = scenario
        self.policy = policy
        policySettings = settings
        harnessSettings = harness
        self.failPageAlloc = failPageAlloc
        self.repeated = repeated
    }

    /// The settings as the command line would give them.
    public var settingsText: String {
        var parts: [String] = []
        if !policySettings.isEmpty { parts.append("--policy " + policySettings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
        if !harnessSettings.isEmpty { parts.append("--harness " + harnessSettings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")) }
        if let f = failPageAlloc { parts.append("--fail-page-alloc " + f) }
        return parts.isEmpty ? "(as the file says)" : parts.joined(separator: " ")
    }
}

/// `pagestorm debate`: every scenario of the 2015 debate under each policy
/// that was argued for it, one table of throughput, p99.9 latency, failures
/// by level of need, OOM kills, stalls and the verdict.
public enum Debate {
    /// The Linux 6.x defaults, as one set: should_reclaim_retry, async OOM
    /// with the oom_reaper, ALLOC_OOM for victims, NO_WATERMARKS for NOFAIL.
    /// Its rows are named "kernel + oom_reaper": `--policy retry=kernel` alone
    /// leaves the reaper off (the policy's default), and a row's name says
    /// what it sets (a test checks the reaper and the retry rule against the names).
    static let kernel: [String: String] = ["retry": "kernel", "oom": "async", "reaper": "true", "nofail_emergency_reserve": "true"]
    /// Before 2015: order <= 3 never fails, no reaper, no NOFAIL reserves.
    static let legacy: [String: String] = ["retry": "legacy", "oom": "async", "reaper": "false", "nofail_emergency_reserve": "false", "oom_killer_reserve": "false"]
    /// Weiner's series: synchronous OOM wait, the killer's private reserve, NOFAIL reserves.
    static let weiner: [String: String] = ["retry": "kernel", "oom": "sync", "reaper": "false", "oom_killer_reserve": "true", "oom_victim_reserve": "true", "nofail_emergency_reserve": "true"]

    public static let rows: [DebateRow] = [
        // Scenario 1: the OOM victim blocked on the journal lock (repeated: whether
        // the victim is caught waiting for the lock depends on thread timing).
        DebateRow("scenario1-oom-victim-lock.toml", "legacy", policy: legacy, repeated: true),
        DebateRow("scenario1-oom-victim-lock.toml", "legacy + oom_reaper", policy: legacy.merging(["reaper": "true"]) { $1 }, repeated: true),
        DebateRow("scenario1-oom-victim-lock.toml", "sync OOM + reserves (Weiner)", policy: weiner, repeated: true),
        DebateRow("scenario1-oom-victim-lock.toml", "kernel + oom_reaper", policy: kernel, repeated: true),
        // Scenario 2: Hocko's retry knob.
        DebateRow("scenario2-hocko-retries.toml", "retries=1", policy: kernel.merging(["retry": "retries=1", "reaper": "false"]) { $1 }),
        DebateRow("scenario2-hocko-retries.toml", "retries=100", policy: kernel.merging(["retry": "retries=100", "reaper": "false"]) { $1 }),
        DebateRow("scenario2-hocko-retries.toml", "kernel (endless)", policy: kernel.merging(["reaper": "false"]) { $1 }),
        // Scenario 3: NOFAIL under pressure nothing can relieve, repeated over seeds.
        DebateRow("scenario3-nofail-pressure.toml", "NOFAIL, no emergency reserves", policy: ["retry": "kernel", "nofail_emergency_reserve": "false"], repeated: true),
        DebateRow("scenario3-nofail-pressure.toml", "NOFAIL + emergency reserves", policy: ["retry": "kernel", "nofail_emergency_reserve": "true"], repeated: true),
        DebateRow("scenario3-nofail-pressure.toml", "caller loop (XFS) + retries=1", policy: ["retry": "retries=1", "nofail_emergency_reserve": "false"],
                  harness: ["nofail": "caller-loop"], repeated: true),
        // Scenario 4: synchronous against asynchronous OOM.
        DebateRow("scenario4-sync-async-oom.toml", "async OOM (kernel)", policy: ["retry": "kernel", "oom": "async"]),
        DebateRow("scenario4-sync-async-oom.toml", "sync OOM (Weiner)", policy: ["retry": "kernel", "oom": "sync"]),
        // The remedies and the damage.
        // 5: the 3.19 accident: NOFS allowed to fail.
        DebateRow("scenario5-nofs-may-fail.toml", "legacy", policy: legacy, repeated: true),
        DebateRow("scenario5-nofs-may-fail.toml", "NOFS may fail (3.19: retries=0)", policy: legacy.merging(["retry": "retries=0"]) { $1 }, repeated: true),
        DebateRow("scenario5-nofs-may-fail.toml", "kernel + oom_reaper", policy: kernel, repeated: true),
        // 6: Chinner's reservations against NOFAIL with emergency reserves.
        DebateRow("scenario6-reservations.toml", "reservations (Chinner)", policy: ["nofail_emergency_reserve": "false"], harness: ["reservations": "true"]),
        DebateRow("scenario6-reservations.toml", "reservations, estimate halved", policy: ["nofail_emergency_reserve": "false"],
                  harness: ["reservations": "true", "reserve_scale": "0.5"]),
        DebateRow("scenario6-reservations.toml", "NOFAIL + emergency reserves", policy: ["nofail_emergency_reserve": "true"], harness: ["reservations": "false"]),
        DebateRow("scenario6-reservations.toml", "neither", policy: ["nofail_emergency_reserve": "false"], harness: ["reservations": "false"]),
        // 7: GFP_ATOMIC order-2 buffers under fragmentation.
        DebateRow("scenario7-atomic-fragmentation.toml", "kernel + oom_reaper", policy: kernel),
        // 8: fault injection finds the level-2 path.
        DebateRow("scenario8-fault-injection.toml", "kernel + oom_reaper, no injection", policy: kernel),
        DebateRow("scenario8-fault-injection.toml", "kernel + oom_reaper + fail_page_alloc 10%", policy: kernel,
                  failPageAlloc: "probability=10,interval=1,times=-1,min-order=0,ignore-gfp-wait=N,verbose=0"),
        // 9: a small memory group runs out of memory.
        DebateRow("scenario9-memory-group-oom.toml", "kernel + oom_reaper", policy: kernel),
        DebateRow("scenario9-memory-group-oom.toml", "retries=1 + oom_reaper", policy: kernel.merging(["retry": "retries=1"]) { $1 }),
    ]

    public struct Options: Sendable {
        /// Where the scenario files are.
        public var workloadsDir = "Workloads"
        /// Multiplies every run's duration (not below 400 ms) and the watchdog's
        /// thresholds (not below 200/100 ms). At any scale the thresholds are
        /// kept within half (livelock) and a quarter (deadlock) of the run.
        public var scale = 1.0
        /// Runs of each repeated row (seeds 1...n).
        public var seeds = 5
        /// Operations per worker instead of the files' durations (`scale` then
        /// does not apply; the watchdog keeps the files' thresholds): runs whose
        /// counts do not depend on how fast the machine is. nil: timed runs.
        public var ops: Int? = nil
        /// Only rows of these scenario files (names with or without .toml), or all.
        public var only: Set<String> = []
        /// Each run's results file goes here (nil: not written).
        public var runsDir: String?
        public var log: (@Sendable (String) -> Void)?
        public init() {}
    }

    public static func run(_ o: Options, rows: [DebateRow] = Debate.rows) throws -> DebateReport {
        let started = Date()
        let t0 = Date()
        var out: [DebateRowResult] = []
        let chosen = rows.filter { o.only.isEmpty || o.only.contains($0.scenario) || o.only.contains(String($0.scenario.dropLast(5))) }
        for row in chosen {
            let path = URL(fileURLWithPath: o.workloadsDir).appendingPathComponent(row.scenario).path
            let base = try Workload.load(path: path)
            var runs: [DebateRun] = []
            var latencies: [EncodedHistogram] = []
            let seeds: [UInt64] = row.repeated ? (1...UInt64(max(o.seeds, 1))).map { $0 } : [base.run.seed]
            for seed in seeds {
                var ov = WorkloadOverrides(seed: seed, policy: row.policySettings, harness: row.harnessSettings, failPageAlloc: row.failPageAlloc)
                if let n = o.ops {
                    ov.ops = n
                } else if let d0 = base.run.durationMs {
                    // Shorter runs (--scale), and a watchdog that decides within
                    // them: a hang must be called before the run ends, or a
                    // waiter that notices the end (a caller loop) escapes the verdict.
                    let d = o.scale == 1 ? d0 : max(400, Int(Double(d0) * o.scale))
                    ov.durationMs = d
                    ov.harness["livelock_ms"] = ov.harness["livelock_ms"] ?? String(max(200, min(Int(Double(base.harness.livelockMs) * o.scale), d / 2)))
                    ov.harness["deadlock_ms"] = ov.harness["deadlock_ms"] ?? String(max(100, min(Int(Double(base.harness.deadlockMs) * o.scale), d / 4)))
                }
                let w = try base.overriding(ov)
                var opts = RunOptions()
                opts.measureOverhead = false
                opts.workloadFile = path
                opts.shard = ShardInfo(sweep: "debate", index: out.count, count: chosen.count,
                                       parameters: ["policy": row.policy, "seed": "\(seed)"])
                let r = try StressRun.run(w, options: opts)
                var file: String? = nil
                if let dir = o.runsDir {
                    let name = "\(w.name)-\(slug(row.policy))-seed\(seed).json"
                    file = URL(fileURLWithPath: dir).appendingPathComponent(name).path
                    file = try ResultsFile.write(r, to: file!)
                }
                let allocLat = r.latency.filter { $0.opClass.call == .alloc }.map(\.histogram)
                latencies.append(contentsOf: allocLat)
                let run = DebateRun(result: r, seed: seed, latency: allocLat, file: file)
                runs.append(run)
                o.log?("\(row.scenario) [\(row.policy)] seed \(seed): \(run.verdictText), \(fmt(run.allocsPerSecond / 1000, 1))k allocs/s, p99.9 \(fmtNs(Double(run.p999Ns))), failures \(run.failuresByLevel.map(String.init).joined(separator: "/")), OOM kills \(run.oomKills), stalls \(run.stalls)")
            }
            let merged = (try? EncodedHistogram.merge(latencies)) ?? .empty
            out.append(DebateRowResult(row: row, runs: runs, p999Ns: (try? merged.histogram())?.valueAtPercentile(99.9) ?? 0))
        }
        return DebateReport(startedAt: ISO8601DateFormatter().string(from: started), wallSeconds: Date().timeIntervalSince(t0),
                            scale: o.scale, seeds: o.seeds, machine: .current(), rows: out)
    }

    static func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber || $0 == "=" ? $0 : "-" }).replacingOccurrences(of: "--", with: "-")
    }
}

/// One run of a debate row.
public struct DebateRun: Codable, Sendable, Equatable {
    public var seed: UInt64
    public var verdict: String
    /// A worker was still inside the allocator `end_abort_ms` after the end of
    /// the run and was ended by the allocator's shutdown (not counted as a hang:
    /// the watchdog judges the run, not its wind-down).
    public var hungAtEnd: Bool
    /// Successful allocations per second over the measured window.
    public var allocsPerSecond: Double
    /// p99.9 of every allocation call (all classes), ns.
    public var p999Ns: UInt64
    /// Failed allocations by level of need 0...3.
    public var failuresByLevel: [Int]
    public var oomKills: Int
    public var stalls: Int
    public var stallMs: Int
    public var measuredMs: Double
    /// validate() after the run ("ok" or the violations), and pages still allocated (must be 0).
    public var validate: String
    public var allocatedAfter: Int
    public var resultsFile: String?

    init(result r: RunResult, seed: UInt64, latency: [EncodedHistogram], file: String?) {
        self.seed = seed
        verdict = r.status.verdict
        hungAtEnd = r.slowPath.endAborted
        let secs = Double(r.timing.measuredNs) / 1e9
        allocsPerSecond = secs > 0 ? Double(r.throughput.allocs) / secs : 0
        let merged = (try? EncodedHistogram.merge(latency)) ?? .empty
        p999Ns = (try? merged.histogram())?.valueAtPercentile(99.9) ?? 0
        failuresByLevel = (0...3).map { r.failures.byLevel[String($0)] ?? 0 }
        oomKills = r.slowPath.counters["oom_kill"] ?? 0
        stalls = r.slowPath.stalls.count
        stallMs = r.slowPath.stalls.totalMs
        measuredMs = Double(r.timing.measuredNs) / 1e6
        validate = r.memoryCheck.validate
        allocatedAfter = r.memoryCheck.accounting?.allocated ?? -1
        resultsFile = file
    }

    /// Livelock or deadlock, as the watchdog called it during the run.
    public var hung: Bool { verdict == "livelock" || verdict == "deadlock" }
    public var verdictText: String { hungAtEnd && !hung ? "\(verdict) (stuck at the end)" : verdict }
}

/// One row of the table: its runs and their summary.
public struct DebateRowResult: Codable, Sendable, Equatable {
    public var scenario: String
    public var policy: String
    /// What the row changes, as command-line flags.
    public var settings: String
    public var runs: [DebateRun]
    /// Means over the runs (allocs/s), sums (failures, kills, stalls), and p99.9 of all runs' allocations merged.
    public var allocsPerSecond: Double
    public var p999Ns: UInt64
    public var failuresByLevel: [Int]
    public var oomKills: Int
    public var stalls: Int
    public var stallMs: Int
    /// Runs the watchdog called a livelock or deadlock, of `runs.count`.
    public var hangs: Int
    /// "ok", "failures", "livelock", "deadlock", or for repeated rows the counts ("livelock 5/5").
    public var verdict: String

    init(row: DebateRow, runs: [DebateRun], p999Ns: UInt64) {
        scenario = row.scenario
        policy = row.policy
        settings = row.settingsText
        self.runs = runs
        allocsPerSecond = runs.map(\.allocsPerSecond).reduce(0, +) / Double(max(runs.count, 1))
        self.p999Ns = p999Ns
        failuresByLevel = (0...3).map { l in runs.reduce(0) { $0 + $1.failuresByLevel[l] } }
        oomKills = runs.reduce(0) { $0 + $1.oomKills }
        stalls = runs.reduce(0) { $0 + $1.stalls }
        stallMs = runs.reduce(0) { $0 + $1.stallMs }
        hangs = runs.filter(\.hung).count
        if runs.count == 1 {
            verdict = runs[0].verdictText
        } else {
            var counts: [String: Int] = [:]
            for r in runs { counts[r.verdictText, default: 0] += 1 }
            verdict = counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                .map { "\($0.key) \($0.value)/\(runs.count)" }.joined(separator: ", ")
        }
    }
}

/// The debate table (schema "pagestorm.debate/1").
public struct DebateReport: Codable, Sendable, Equatable {
    public var schema = "pagestorm.debate/1"
    public var startedAt: String
    /// How long the whole debate took, in seconds.
    public var wallSeconds: Double
    public var scale: Double
    public var seeds: Int
    public var machine: MachineInfo
    public var rows: [DebateRowResult]

    /// The table in Markdown.
    public func markdown() -> String {
        var out: [String] = []
        out.append("| scenario | policy | allocs/s | p99.9 alloc | failures L0/L1/L2/L3 | OOM kills | stalls (total ms) | verdict |")
        out.append("| --- | --- | ---: | ---: | --- | ---: | ---: | --- |")
        for r in rows {
            let name = r.scenario.hasSuffix(".toml") ? String(r.scenario.dropLast(5)) : r.scenario
            out.append("| \(name) | \(r.policy) | \(human(r.allocsPerSecond)) | \(fmtNs(Double(r.p999Ns))) | \(r.failuresByLevel.map(String.init).joined(separator: "/")) | \(r.oomKills) | \(r.stalls) (\(r.stallMs)) | \(r.verdict) |")
        }
        out.append("")
        out.append("Settings of each row (on top of the scenario file):")
        out.append("")
        for r in rows { out.append("- \(r.scenario.dropLast(5)) / \(r.policy): `\(r.settings)`") }
        out.append("")
        let repeated = rows.filter { $0.runs.count > 1 }
        if !repeated.isEmpty {
            out.append("Repeated rows ran \(seeds) seeds each; their columns sum (failures, kills, stalls) or average (allocs/s) over the runs, and p99.9 is over all runs' allocations.")
        }
        out.append("\(machine.cpuModel), \(machine.cores) cores, \(machine.kernel), swift \(machine.swiftVersion), rev \(machine.gitRevision); scale \(fmt(scale, 2)); \(fmt(wallSeconds, 1)) s in all.")
        return out.joined(separator: "\n")
    }
}
