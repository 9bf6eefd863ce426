import ArgumentParser
import Foundation
import PageAllocator
import StressHarness

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a workload file (Workloads/*.toml), or the built-in default without one; print a summary and write a results file.",
        discussion: """
        The file format is documented in Workloads/README.md, the output and the results schema in docs/harness.md. \
        Exit codes: 0 verdict ok; 1 verdict failures (allocations failed); 2 bad input (the workload or a flag); \
        3 the tool failed (corruption, a lost page, a broken invariant, stuck workers, I/O); 4 verdict livelock and \
        5 verdict deadlock (the watchdog ended the run; results are still written); 6 verdict overloaded (an open-loop \
        worker fell behind its schedule by more than max(10 ms, 10% of the run): its latencies measure queueing); 130 interrupted (Ctrl-C; \
        partial results are still written).
        """)

    @Argument(help: "The workload file. Without one, the built-in default (Workloads/default.toml) runs.")
    var workload: String?

    @Option(help: "Write the results JSON here (default: results/<workload>-<UTC time>.json).")
    var output: String?
    @Flag(name: .customLong("no-results"), help: "Do not write a results file.")
    var noResults = false

    @Option(name: .customLong("duration-ms"), help: "Run for this long (measured, after warm-up) instead of what the workload says.")
    var durationMs: Int?
    @Option(help: "Run this many operations per worker instead of what the workload says.")
    var ops: Int?
    @Option(name: .customLong("warmup-ms"), help: "Warm-up in ms (not measured).")
    var warmupMs: Int?
    @Option(help: "Seed of the workers' random generators.")
    var seed: UInt64?
    @Option(name: .customLong("sample-every"), help: "Time 1 in N operations in closed loop (a power of two; 1 = every one).")
    var sampleEvery: Int?
    @Option(name: .customLong("timeout-ms"), help: "Stop an op-count run after this long (it is then partial).")
    var timeoutMs: Int?
    @Option(help: "Run every open-loop group at this rate (operations per second per worker) instead of its `rate`.")
    var rate: Double?
    @Option(name: .customLong("scale"), help: "Multiply every live/batch size by this factor (0 < scale <= 16), e.g. 0.1 for a quick run.")
    var scale: Double?
    @Flag(name: .customLong("no-overhead"), help: "Skip measuring the harness's own cost per call.")
    var noOverhead = false
    @Flag(name: .customLong("overhead-only"), help: "Only measure and print the harness's own cost per allocator call for this workload (no run, no results).")
    var overheadOnly = false
    @Flag(help: "Print only the verdict line (and errors).")
    var quiet = false
    @Option(name: .customLong("policy"), help: ArgumentHelp("Replace [policy] keys (the allocator's slow-path policy), e.g. retry=legacy,oom=sync,reaper=true. Repeatable. Keys: \(SlowPathPolicy.keys.joined(separator: ", ")) (`pagestorm knobs`)."))
    var policy: [String] = []
    @Option(name: .customLong("pcp-lock"), help: "How the per-CPU lists are owned: auto (rseq where available, else trylock), rseq (refused where unavailable) or trylock. Same as --policy pcp_lock=VALUE.")
    var pcpLock: String?
    @Option(name: .customLong("harness"), help: ArgumentHelp("Replace [harness] keys, e.g. nofail=caller-loop,stall_ms=100. Repeatable. Keys: \(HarnessSpec.keys.joined(separator: ", ")) (`pagestorm knobs`)."))
    var harness: [String] = []
    @Option(help: "The allocator to measure: pagestorm (default), glibc, jemalloc, mimalloc, tcmalloc or kernel (replaces [run] allocator).")
    var allocator: String?
    @Option(name: .customLong("fail-page-alloc"), help: ArgumentHelp("fail_page_alloc's knobs, replacing the workload's [fail_page_alloc], e.g. probability=10,interval=1,times=-1,min-order=0. Keys: \(FaultInjectionSettings.keys.joined(separator: ", ")) (`pagestorm knobs`)."))
    var failPageAlloc: String?
    @Flag(help: "Deterministic mode: one worker, an op count (--ops, default 200000), no warm-up, the seed: counters identical on every run (compared exactly by `pagestorm check`). Needs a one-group closed-loop workload.")
    var deterministic = false
    @Option(name: .customLong("mempolicy"), help: "A group's memory policy, GROUP=POLICY in numactl's spelling (GROUP all: every group), e.g. workers=interleave=0,1 or all=bind=1. Repeatable.")
    var mempolicy: [String] = []
    @Flag(help: "Print numastat (the default table and -m's memory table) of the arena when the workers stopped.")
    var numastat = false

    func validate() throws {
        if let d = durationMs, !(1...86_400_000).contains(d) { throw ValidationError("--duration-ms must be 1...86400000, got \(d)") }
        if let o = ops, o < 1 { throw ValidationError("--ops must be at least 1, got \(o)") }
        if durationMs != nil && ops != nil { throw ValidationError("--duration-ms and --ops contradict each other: give one") }
        if let w = warmupMs, !(0...3_600_000).contains(w) { throw ValidationError("--warmup-ms must be 0...3600000, got \(w)") }
        if let s = sampleEvery, s < 1 || s & (s - 1) != 0 || s > 1 << 20 { throw ValidationError("--sample-every must be a power of two, 1...1048576, got \(s)") }
        if let t = timeoutMs, !(1...86_400_000).contains(t) { throw ValidationError("--timeout-ms must be 1...86400000, got \(t)") }
        if let s = scale, !(s > 0 && s <= 16) { throw ValidationError("--scale must be more than 0 and at most 16, got \(s)") }
        if deterministic && durationMs != nil { throw ValidationError("--deterministic runs an op count: give --ops, not --duration-ms") }
        if deterministic && warmupMs.map({ $0 > 0 }) == true { throw ValidationError("--deterministic runs without warm-up: drop --warmup-ms") }
        if output != nil && noResults { throw ValidationError("--output and --no-results contradict each other") }
        try RunCommand.refuseExisting(output)
    }

    func overrides() throws(OverrideError) -> WorkloadOverrides {
        var o = WorkloadOverrides(durationMs: durationMs, ops: ops, warmupMs: warmupMs, seed: seed, sampleEvery: sampleEvery,
                                  timeoutMs: timeoutMs, sizeScale: scale)
        for p in policy { for (k, v) in try Policy.parseAssignments(p, what: "--policy") { o.policy[k] = v } }
        if let l = pcpLock { o.policy["pcp_lock"] = l }
        for h in harness { for (k, v) in try Policy.parseAssignments(h, what: "--harness") { o.harness[k] = v } }
        o.failPageAlloc = failPageAlloc
        o.rate = rate
        o.allocator = allocator
        return o
    }

    func run() throws {
        if let path = workload, !FileManager.default.fileExists(atPath: path) {
            FileHandle.standardError.write(Data("pagestorm: \(Suggest.missingFile(path))\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        var w: Workload
        do {
            w = try (workload.map { try Workload.load(path: $0) } ?? Workload.builtinDefault()).overriding(overrides()).settingMemPolicies(mempolicy)
            if deterministic { w = try Deterministic.apply(w, ops: ops) }
        } catch {
            FileHandle.standardError.write(Data("pagestorm: \(error)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        if overheadOnly {
            let o = StressRun.measureOverhead(w)
            print("harness overhead for \(w.name): \(fmt(o.nsPerCallUntimed, 1)) ns/call untimed, \(fmt(o.nsPerCallTimed, 1)) ns/call timing every call, \(fmt(o.nsPerCallAsRun, 1)) ns/call at sample_every \(w.run.sampleEvery)")
            print("method: \(o.method)")
            return
        }
        var options = RunOptions()
        options.workloadFile = workload
        options.progress = !quiet
        options.handleInterrupts = true
        options.measureOverhead = !noOverhead
        options.warningSink = RunCommand.stderrSink
        let code = try RunCommand.execute(w, options: options, output: noResults ? nil : (output ?? ""), quiet: quiet, numastat: numastat)
        if code != .ok { throw ExitCode(code.rawValue) }
    }

    /// Results files are never overwritten: an --output path that exists is
    /// refused before anything runs.
    static func refuseExisting(_ path: String?) throws {
        guard let path, FileManager.default.fileExists(atPath: path) else { return }
        throw ValidationError("--output \(path) exists; results files are never overwritten: remove it or choose another path")
    }

    /// Warning lines (warn_alloc, stalls, the caller loop) go to stderr as they happen.
    static let stderrSink: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }

    /// Runs, prints the summary, writes the results (output "" = the default
    /// path, nil = none) and prints the verdict. Returns the exit status.
    static func execute(_ w: Workload, options: RunOptions, output: String?, quiet: Bool, numastat: Bool = false, trailer: (() -> Void)? = nil) throws -> ExitStatus {
        #if DEBUG
        if !quiet { FileHandle.standardError.write(Data("pagestorm run: this is a debug build; latencies and throughput are meaningless. Use swift build -c release.\n".utf8)) }
        #endif
        let result: RunResult
        do { result = try StressRun.run(w, options: options) } catch {
            FileHandle.standardError.write(Data("pagestorm: \(error)\n".utf8))
            throw ExitCode(error.status.rawValue)
        }
        if !quiet { print(result.summary()) }
        if numastat, let s = result.numastat { print("numastat (when the workers stopped):\n" + s.table() + s.memoryTable()) }
        var status = result.exitStatus
        if let output {
            var path = output.isEmpty ? result.defaultPath : output
            do {
                path = try ResultsFile.write(result, to: path)
                if !quiet { print("results: \(path)\(result.status.partial ? " (partial)" : "")") }
            } catch {
                FileHandle.standardError.write(Data("pagestorm: cannot write \(path): \(error.localizedDescription)\n".utf8))
                if status == .ok || status == .failures { status = .toolFailed }
            }
        }
        let st = result.status
        print("verdict: \(st.verdict)\(st.partial && st.stopReason != st.verdict ? " (partial: \(st.stopReason))" : "")")
        trailer?()
        return status
    }
}
