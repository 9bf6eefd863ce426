import ArgumentParser
import Foundation
import StressHarness

struct ABCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ab",
        abstract: "Run two builds alternately (ABBA order) on this machine, N rounds, then compare and check them.",
        discussion: """
        Example: pagestorm ab --a main/pagestorm --b pr/pagestorm --rounds 5 -- run Workloads/default.toml --duration-ms 500. \
        Round k runs A then B when k is even, B then A when odd, so drift of a shared machine hits both sides alike. \
        Each run writes <output-dir>/{a,b}/rep-<n>.json (its stderr beside it, rep-<n>.stderr); a run past --timeout-s is killed. Then B is compared with A as the baseline (pagestorm compare's table) \
        and checked (pagestorm check's thresholds and verdict). Timings are decided by the paired rule on the rounds \
        (round k of A against round k of B, adjacent in time; median pair change beyond 5% with all but one pair that way, \
        or beyond 8%; needs 3 rounds or more): --no-paired (or paired = false in the thresholds file) for the U test on two \
        independent sets. <output-dir>/ab.json records the pairing, so that pagestorm check --baseline <dir>/a <dir>/b \
        pairs them again. A round with a run flagged for a timing metric that gates (under the thresholds: a noise flag or \
        a partial run; for throughput/ops_per_cpu_s alone, a partial run or steal time above \(Int(NoiseReport.maxStealPercent))%) is run again, at most \
        --retry-flagged times (default 2; 0: never); the discarded attempts are kept as {a,b}/rep-<n>.flagged-<k>.json and \
        listed in ab.json and the output; a round still flagged after them stays flagged and does not decide. \
        --co-run: each round's two runs run at the same time (started in the round's order), their workers sharing the \
        workload's pinned CPUs, so the kernel time-slices A and B milliseconds apart and a speed phase of the machine hits both \
        alike (docs/gate.md); each side gets about half the CPU, so only throughput/ops_per_cpu_s compares: wall-time timings \
        and latencies are flagged and do not decide (trust_flagged is refused), and retries follow the CPU-time flags. Give twice \
        the --duration-ms (an --ops run takes about twice as long: raise --timeout-s with it) and \
        --thresholds results/baselines/gate/corun-thresholds.toml (without a thresholds file that gates ops_per_cpu_s no timing decides). \
        Exit codes: check's (0 unchanged, 10 regressed, 11 improved only); 2 bad input; 3 a run failed.
        """)

    @Option(help: "The baseline binary (a pagestorm).")
    var a: String
    @Option(help: "The binary to compare with it.")
    var b: String
    @Option(help: "Rounds; each runs A and B once.")
    var rounds: Int = 5
    @Option(name: .customLong("output-dir"), help: "Where the runs' results go (default results/ab-<UTC time>).")
    var outputDir: String?
    @Option(help: "A thresholds file for the verdict (see pagestorm check).")
    var thresholds: String?
    @Option(name: .customLong("timeout-s"), help: "Kill a run that takes longer than this many seconds (the A/B then stops, exit 3).")
    var timeoutS: Int = 900
    @Option(help: "Format of the comparison: text, markdown, json, csv.")
    var format: CompareFormat = .text
    @Flag(inversion: .prefixedNo, help: "Decide timings with the paired rule on the rounds (default; the thresholds file's paired = false turns it off).")
    var paired: Bool?
    @Option(name: .customLong("retry-flagged"), help: "Extra attempts, at most, of a round with a run flagged for a timing metric that gates (0: none).")
    var retryFlagged: Int = FlagRetry.defaultRetries
    @Flag(name: .customLong("co-run"), help: "Run each round's A and B at the same time on the workload's CPUs (time-sliced) instead of back to back; only operations per CPU-second compare.")
    var coRun = false
    @Argument(parsing: .postTerminator, help: "After --: run ARGS... or bench ARGS... (without --output).")
    var command: [String] = []

    func validate() throws {
        guard let first = command.first, first == "run" || first == "bench" else {
            throw ValidationError("give the command after --: `-- run [WORKLOAD] [FLAGS]` or `-- bench [FLAGS]`")
        }
        if command.contains("--output") || command.contains("--no-results") { throw ValidationError("ab sets --output itself; drop --output/--no-results from the command") }
        if coRun && first != "run" {
            throw ValidationError("--co-run compares operations per CPU-second, which only `run` results have: use it with `-- run [WORKLOAD] [FLAGS]`")
        }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1...100, got \(rounds)") }
        guard (1...86_400).contains(timeoutS) else { throw ValidationError("--timeout-s must be 1...86400, got \(timeoutS)") }
        guard (0...10).contains(retryFlagged) else { throw ValidationError("--retry-flagged must be 0...10, got \(retryFlagged)") }
        for (flag, bin) in [("--a", a), ("--b", b)] where !FileManager.default.isExecutableFile(atPath: bin) {
            throw ValidationError("\(flag): \(bin) is not an executable file")
        }
    }

    func run() throws {
        var th = Thresholds()
        if let thresholds {
            do { th = try Thresholds.load(path: thresholds) } catch {
                FileHandle.standardError.write(Data("pagestorm ab: \(error)\n".utf8))
                throw ExitCode(ExitStatus.badInput.rawValue)
            }
        }
        if coRun && th.trustFlagged {
            FileHandle.standardError.write(Data("pagestorm ab: --co-run with trust_flagged = true in \(thresholds ?? "the thresholds"): co-run wall-time timings and latencies are halved and include the other side's time slices, so flagged runs must not decide; drop trust_flagged\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        if coRun && !th.limit(forID: Comparer.perCPUMetric).gate {
            FileHandle.standardError.write(Data("ab: --co-run: throughput/ops_per_cpu_s does not gate under \(thresholds.map { "the thresholds of \($0)" } ?? "the default thresholds (timings report)"), so no timing decides the verdict (exact counters still do); give --thresholds results/baselines/gate/corun-thresholds.toml to gate on it\n".utf8))
        }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        let dir = outputDir ?? "results/ab-\(stamp)"
        for side in ["a", "b"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(side)", withIntermediateDirectories: true) }
        // The pairing, written before the runs (round k: a/rep-k.json and b/rep-k.json, adjacent in time).
        var manifest = ABManifest(a: a, b: b, rounds: rounds, order: (0..<rounds).map { $0 % 2 == 0 ? "ab" : "ba" },
                                  pairs: (1...rounds).map { "rep-\($0)" }, command: command, retryFlagged: retryFlagged)
        manifest.discarded = []
        manifest.stillFlagged = []
        if coRun { manifest.coRun = true }
        // Written once (never over another run's manifest), then replaced as retries are recorded.
        let manifestPath = try ResultsFile.write(manifest, to: "\(dir)/ab.json")
        let fm = FileManager.default
        /// Starts one run of one side into `path` (its stderr beside it, in a file: a chatty run can
        /// never block on a full pipe while this waits for it with a deadline).
        func start(side: String, path: String) throws -> (p: Process, err: FileHandle, errPath: String) {
            var args = command + ["--output", path]
            if command[0] == "run" { args.append("--quiet") }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: side == "a" ? a : b)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            let errPath = (path as NSString).deletingPathExtension + ".stderr"
            _ = fm.createFile(atPath: errPath, contents: nil)
            let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            p.standardError = errHandle
            try p.run()
            return (p, errHandle, errPath)
        }
        /// Waits for the started runs until one deadline; a run past it is killed (and the others with it),
        /// and a run that failed stops the A/B: ExitCode 3.
        func finish(round: Int, _ runs: [(side: String, p: Process, err: FileHandle, errPath: String)]) throws {
            let deadline = Date().addingTimeInterval(Double(timeoutS))
            func failed(_ r: (side: String, p: Process, err: FileHandle, errPath: String)) -> Bool {
                !r.p.isRunning && !(r.p.terminationStatus == 0 || (r.p.terminationStatus == 1 && command[0] == "run"))
            }
            // A co-run side that failed stops the wait at once (its partner is then terminated below).
            while runs.contains(where: { $0.p.isRunning }) && !runs.contains(where: failed) && Date() < deadline { usleep(20_000) }
            let anyFailed = runs.contains(where: failed)
            // Still running now: past the deadline, or the partner of a side that failed. Terminated, then killed.
            let stopped = Set(runs.filter { $0.p.isRunning }.map(\.side))
            if !stopped.isEmpty {
                for r in runs where r.p.isRunning { r.p.terminate() }
                usleep(500_000)
                for r in runs where r.p.isRunning { kill(r.p.processIdentifier, SIGKILL) }
            }
            for r in runs { r.p.waitUntilExit(); try? r.err.close() }
            if !anyFailed, let r = runs.first(where: { stopped.contains($0.side) }) {
                FileHandle.standardError.write(Data("pagestorm ab: round \(round + 1), \(r.side.uppercased()) (\(r.side == "a" ? a : b)) did not finish within --timeout-s \(timeoutS) s and was killed\n".utf8))
                throw ExitCode(ExitStatus.toolFailed.rawValue)
            }
            // run: 0 ok, 1 failures (a verdict, results written); anything else stops the A/B.
            for r in runs where !(r.p.terminationStatus == 0 || (r.p.terminationStatus == 1 && command[0] == "run")) && !stopped.contains(r.side) {
                let errText = (try? String(contentsOfFile: r.errPath, encoding: .utf8)) ?? ""
                FileHandle.standardError.write(Data("pagestorm ab: round \(round + 1), \(r.side.uppercased()) (\(r.side == "a" ? a : b)) exited \(r.p.terminationStatus): \(errText.suffix(2000))\n".utf8))
                throw ExitCode(ExitStatus.toolFailed.rawValue)
            }
        }
        // Which flag makes a round run again: decided from the first results file and the thresholds.
        var blocking: FlagRetry.Blocking? = nil
        for round in 0..<rounds {
            let order = round % 2 == 0 ? ["a", "b"] : ["b", "a"]
            let paths = ["a": "\(dir)/a/rep-\(round + 1).json", "b": "\(dir)/b/rep-\(round + 1).json"]
            let outcome = try FlagRetry.attempts(limit: retryFlagged) { () throws -> String? in
                if coRun {
                    var runs: [(side: String, p: Process, err: FileHandle, errPath: String)] = []
                    for side in order {
                        do { let s = try start(side: side, path: paths[side]!); runs.append((side, s.p, s.err, s.errPath)) } catch {
                            // The side already started is not left running: terminated, waited for, its handle closed.
                            for r in runs { r.p.terminate(); r.p.waitUntilExit(); try? r.err.close() }
                            FileHandle.standardError.write(Data("pagestorm ab: round \(round + 1), \(side.uppercased()) could not be started: \(error)\n".utf8))
                            throw ExitCode(ExitStatus.toolFailed.rawValue)
                        }
                    }
                    try finish(round: round, runs)
                    FileHandle.standardError.write(Data("ab: round \(round + 1)/\(rounds) \(order.map { $0.uppercased() }.joined(separator: "+")) together -> \(paths["a"]!), \(paths["b"]!)\n".utf8))
                } else {
                    for side in order {
                        let s = try start(side: side, path: paths[side]!)
                        try finish(round: round, [(side, s.p, s.err, s.errPath)])
                        FileHandle.standardError.write(Data("ab: round \(round + 1)/\(rounds) \(side.uppercased()) -> \(paths[side]!)\n".utf8))
                    }
                }
                guard retryFlagged > 0 else { return nil }
                // Results files ab cannot read as runs (e.g. bench) are compared later, and refused there if bad.
                guard let ra = try? FlagRetry.load(paths["a"]!), let rb = try? FlagRetry.load(paths["b"]!) else { return nil }
                if blocking == nil {
                    blocking = FlagRetry.blocking(ra, thresholds: th, coRun: coRun)
                    manifest.retryOn = blocking!.rawValue
                }
                let why = [("A", ra), ("B", rb)].compactMap { s, r in FlagRetry.reason(r, blocking: blocking!).map { "\(s): \($0)" } }
                return why.isEmpty ? nil : why.joined(separator: "; ")
            } flagged: { (why: String?) -> String? in why } discard: { _, attempt, why in
                // The next attempt writes the same paths: this one's files are moved aside first (never read as repetitions).
                var moved: [String: String] = [:]
                for side in ["a", "b"] {
                    let to = FlagRetry.discardedName(paths[side]!, attempt: attempt)
                    try? fm.removeItem(atPath: to)
                    try fm.moveItem(atPath: paths[side]!, toPath: to)
                    let err = (paths[side]! as NSString).deletingPathExtension + ".stderr"
                    let errTo = FlagRetry.discardedName(err, attempt: attempt)
                    try? fm.removeItem(atPath: errTo)
                    try? fm.moveItem(atPath: err, toPath: errTo)
                    moved[side] = "\(side)/" + (to as NSString).lastPathComponent
                }
                manifest.discarded!.append(ABDiscardedAttempt(round: round + 1, attempt: attempt, a: moved["a"]!, b: moved["b"]!, reason: why))
                try ResultsFile.replace(manifest, at: manifestPath)
                FileHandle.standardError.write(Data("ab: round \(round + 1)/\(rounds) flagged (\(why)): attempt \(attempt) kept aside as \(moved["a"]!), \(moved["b"]!); running the round again (retry \(attempt) of at most \(retryFlagged))\n".utf8))
            }
            if coRun && round == 0, let n = Self.unpinnedWorkers("\(dir)/a/rep-1.json"), n > 0 {
                let line = "ab: --co-run: \(n) worker(s) of A's run are not pinned to one CPU (pin = \"none\" or \"node\", or pinning failed): A's and B's workers may then run on different CPUs, where a speed phase of the machine does not hit both alike; pin each worker to a CPU (pin = \"cpu\", the default, with cpus = [...])"
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }

            if let why = outcome.stillFlagged {
                manifest.stillFlagged!.append(round + 1)
                FileHandle.standardError.write(Data("ab: round \(round + 1)/\(rounds) still flagged after \(outcome.discarded.count) retr\(outcome.discarded.count == 1 ? "y" : "ies") (\(why)): kept; a flagged run does not decide a timing\n".utf8))
            }
            try ResultsFile.replace(manifest, at: manifestPath)
        }
        let c: Comparison
        var pairingNote: String? = nil
        do {
            var o = CompareOptions()
            o.alpha = th.alpha
            o.trustFlagged = th.trustFlagged
            o.pairedRule = th.pairedRule
            let bp = try ResultSet.load("\(dir)/a"), np = try ResultSet.load("\(dir)/b")
            if PairingChoice.resolve(flag: paired, thresholds: th.paired, defaultPaired: true, base: "\(dir)/a", new: "\(dir)/b").paired {
                if let problem = Comparer.pairingProblem(base: bp, new: np) {
                    pairingNote = "timings not paired: \(problem); decided by the U test"
                } else { o.paired = true }
            }
            c = Comparer.compare(base: bp, new: np, baseName: "A \(a)", newName: "B \(b)", options: o)
        } catch {
            FileHandle.standardError.write(Data("pagestorm ab: \(error)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print(try CompareRender.render(c, as: format))
        let report = Checker.decide(c, thresholds: th)
        if format == .text || format == .markdown {
            print("")
            if let h = report.headline { print(h) }
            print(pairingNote ?? (c.points.contains { $0.metrics.contains { $0.paired != nil } }
                ? "timings decided by the paired rule on the \(rounds) rounds (round k of A against round k of B; pagestorm check --baseline \(dir)/a \(dir)/b pairs them again)"
                : "timings decided by the U test on two independent sets (not paired)"))
            if coRun {
                print("co-run: each round's A and B ran at the same time on the workload's CPUs, each with about half of their time; only throughput/ops_per_cpu_s compares (wall-time timings and latencies are flagged and do not decide)")
            }
            print(Self.retryLine(manifest))
            print("ab: \(report.verdict.rawValue) (results in \(dir))")
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    /// How many workers of a run's results file are not pinned to one CPU: unpinned, pinned to a node's
    /// CPUs, or whose pinning failed (nil: not a run's results).
    static func unpinnedWorkers(_ path: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: path),
              let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let workers = o["workers"] as? [[String: Any]] else { return nil }
        return workers.filter { !((($0["pinnedTo"] as? String) ?? "").hasPrefix("cpu")) || $0["pinError"] != nil }.count
    }

    /// What the retries of flagged rounds did, in one line (every discarded attempt named; ab.json has the same).
    static func retryLine(_ m: ABManifest) -> String {
        let limit = m.retryFlagged ?? 0
        guard limit > 0 else { return "flagged rounds not retried (--retry-flagged 0)" }
        switch m.retryOn {
        case FlagRetry.Blocking.none.rawValue?:
            return "flagged rounds not retried: no timing metric gates under these thresholds (or trust_flagged), so a flag decides nothing"
        case nil:
            return "flagged rounds: none retried (the results were not run results)"
        default:
            let d = m.discarded ?? [], still = m.stillFlagged ?? []
            let on = m.retryOn == FlagRetry.Blocking.cpuTime.rawValue ? "partial or steal above \(Int(NoiseReport.maxStealPercent))%, the flags of throughput/ops_per_cpu_s" : "any noise flag or a partial run"
            var line = "retries of flagged rounds (\(on); at most \(limit) a round): \(Set(d.map(\.round)).count) round(s) re-run, \(d.count) attempt(s) discarded"
            if !d.isEmpty { line += " (" + d.map { "round \($0.round) attempt \($0.attempt): \($0.a), \($0.b): \($0.reason)" }.joined(separator: "; ") + ")" }
            line += still.isEmpty ? "; none still flagged" : "; still flagged, not deciding: round(s) " + still.map(String.init).joined(separator: ", ")
            return line
        }
    }
}
