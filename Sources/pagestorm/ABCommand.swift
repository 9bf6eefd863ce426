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
        pairs them again. Exit codes: check's (0 unchanged, 10 regressed, 11 improved only); 2 bad input; 3 a run failed.
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
    @Argument(parsing: .postTerminator, help: "After --: run ARGS... or bench ARGS... (without --output).")
    var command: [String] = []

    func validate() throws {
        guard let first = command.first, first == "run" || first == "bench" else {
            throw ValidationError("give the command after --: `-- run [WORKLOAD] [FLAGS]` or `-- bench [FLAGS]`")
        }
        if command.contains("--output") || command.contains("--no-results") { throw ValidationError("ab sets --output itself; drop --output/--no-results from the command") }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1...100, got \(rounds)") }
        guard (1...86_400).contains(timeoutS) else { throw ValidationError("--timeout-s must be 1...86400, got \(timeoutS)") }
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
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        let dir = outputDir ?? "results/ab-\(stamp)"
        for side in ["a", "b"] { try FileManager.default.createDirectory(atPath: "\(dir)/\(side)", withIntermediateDirectories: true) }
        // The pairing, written before the runs (round k: a/rep-k.json and b/rep-k.json, adjacent in time).
        let manifest = ABManifest(a: a, b: b, rounds: rounds, order: (0..<rounds).map { $0 % 2 == 0 ? "ab" : "ba" },
                                  pairs: (1...rounds).map { "rep-\($0)" }, command: command)
        try ResultsFile.write(manifest, to: "\(dir)/ab.json")
        var reps = ["a": 0, "b": 0]
        for round in 0..<rounds {
            for side in (round % 2 == 0 ? ["a", "b"] : ["b", "a"]) {
                reps[side]! += 1
                let path = "\(dir)/\(side)/rep-\(reps[side]!).json"
                var args = command + ["--output", path]
                if command[0] == "run" { args.append("--quiet") }
                let p = Process()
                p.executableURL = URL(fileURLWithPath: side == "a" ? a : b)
                p.arguments = args
                p.standardOutput = FileHandle.nullDevice
                // stderr goes to a file, not a pipe, so that a chatty run can never
                // block on a full pipe while this waits for it with a deadline.
                let errPath = "\(dir)/\(side)/rep-\(reps[side]!).stderr"
                _ = FileManager.default.createFile(atPath: errPath, contents: nil)
                let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
                p.standardError = errHandle
                try p.run()
                let deadline = Date().addingTimeInterval(Double(timeoutS))
                while p.isRunning && Date() < deadline { usleep(20_000) }
                let timedOut = p.isRunning
                if timedOut { p.terminate(); usleep(500_000); if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
                p.waitUntilExit()
                try? errHandle.close()
                let errText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
                if timedOut {
                    FileHandle.standardError.write(Data("pagestorm ab: round \(round + 1), \(side.uppercased()) (\(side == "a" ? a : b)) did not finish within --timeout-s \(timeoutS) s and was killed\n".utf8))
                    throw ExitCode(ExitStatus.toolFailed.rawValue)
                }
                // run: 0 ok, 1 failures (a verdict, results written); anything else stops the A/B.
                guard p.terminationStatus == 0 || (p.terminationStatus == 1 && command[0] == "run") else {
                    FileHandle.standardError.write(Data("pagestorm ab: round \(round + 1), \(side.uppercased()) (\(side == "a" ? a : b)) exited \(p.terminationStatus): \(errText.suffix(2000))\n".utf8))
                    throw ExitCode(ExitStatus.toolFailed.rawValue)
                }
                FileHandle.standardError.write(Data("ab: round \(round + 1)/\(rounds) \(side.uppercased()) -> \(path)\n".utf8))
            }
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
            print("ab: \(report.verdict.rawValue) (results in \(dir))")
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
