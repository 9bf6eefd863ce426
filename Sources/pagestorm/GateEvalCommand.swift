import ArgumentParser
import Foundation
import StressHarness

struct GateEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate-eval",
        abstract: "Measure the regression gate: A/A false alarms and detection of injected 5/10/25% slowdowns, for check's rule, compare.py's, LKP's and the paired rule of check --paired and ab.",
        discussion: """
        A benchmark, not a test: it runs the workload (default: the built-in default, 200 ms per run) \
        2 x (1 + slowdowns) x reps x comparisons times, in adjacent pairs (ABBA), after a calibration that measures how much extra `touch` \
        costs on this machine (probe, grid, fitted line, then verification passes that measure the realised step of each target and correct it; \
        byte counts are continuous: a fraction of an 8-byte word is dithered over the allocations). A pair with a run flagged for operations \
        per CPU-second (a partial run, or steal time above \(Int(NoiseReport.maxStealPercent))%) is run again, at most --retry-flagged times; the discarded attempts are listed. \
        --co-run: the two runs of every pair run at the same time, sharing the workload's CPUs (the kernel time-slices them \
        milliseconds apart, so a machine-wide speed phase hits both alike); only operations per CPU-second compare then, and each run \
        gets about half the CPU of its window (give twice the --duration-ms for the same work). \
        Build in release. Exit codes: 0 done; 2 bad input; 3 a run failed.
        """)

    @Argument(help: "The workload file (default: the built-in default).")
    var workload: String?
    @Option(help: "Comparisons of each kind.")
    var comparisons: Int = 20
    @Option(help: "Repetitions a side.")
    var reps: Int = 5
    @Option(name: .customLong("duration-ms"), help: "Measured length of each run.")
    var durationMs: Int = 200
    @Option(name: .customLong("warmup-ms"), help: "Warm-up of each run.")
    var warmupMs: Int = 50
    @Option(help: "Injected slowdowns in percent (comma-separated).")
    var slowdowns: String = "5,10,25"
    @Option(help: "Write the JSON report (pagestorm.gate-eval/5, every run, discarded attempt and calibration point included) here.")
    var output: String?
    @Option(name: .customLong("retry-flagged"), help: "Extra attempts, at most, of a pair with a run flagged for operations per CPU-second (0: none).")
    var retryFlagged: Int = FlagRetry.defaultRetries
    @Flag(name: .customLong("co-run"), help: "Run the two runs of every pair at the same time on the workload's CPUs (time-sliced) instead of back to back; only operations per CPU-second compare.")
    var coRun = false

    func validate() throws {
        guard (1...1000).contains(comparisons) else { throw ValidationError("--comparisons must be 1...1000, got \(comparisons)") }
        guard (2...50).contains(reps) else { throw ValidationError("--reps must be 2...50, got \(reps)") }
        guard (10...60_000).contains(durationMs) else { throw ValidationError("--duration-ms must be 10...60000, got \(durationMs)") }
        guard (0...60_000).contains(warmupMs) else { throw ValidationError("--warmup-ms must be 0...60000, got \(warmupMs)") }
        guard (0...10).contains(retryFlagged) else { throw ValidationError("--retry-flagged must be 0...10, got \(retryFlagged)") }
        for s in slowdowns.split(separator: ",") {
            guard let v = Double(s), v > 0, v <= 500 else { throw ValidationError("--slowdowns: '\(s)' is not a percentage in (0, 500]") }
        }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write(Data("pagestorm gate-eval: this is a debug build; use swift build -c release.\n".utf8))
        #endif
        let w: Workload
        do {
            w = try (workload.map { try Workload.load(path: $0) } ?? Workload.builtinDefault())
                .overriding(WorkloadOverrides(durationMs: durationMs, warmupMs: warmupMs))
        } catch {
            FileHandle.standardError.write(Data("pagestorm gate-eval: \(error)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        var e = GateEval(workload: w)
        e.comparisons = comparisons
        e.reps = reps
        e.retryFlagged = retryFlagged
        e.coRun = coRun
        e.slowdowns = slowdowns.split(separator: ",").compactMap { Double($0) }
        e.log = { FileHandle.standardError.write(Data(("gate-eval: " + $0 + "\n").utf8)) }
        let r: GateEval.Report
        do { r = try e.run() } catch {
            FileHandle.standardError.write(Data("pagestorm gate-eval: \(error)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("pagestorm gate-eval: \(r.workload), \(r.comparisons) comparisons of \(r.reps) vs \(r.reps) runs of \(r.durationMs) ms per kind; \(r.machine.cpuModel), \(r.machine.cores) cores, rev \(r.machine.gitRevision); \(String(format: "%.0f", r.wallSeconds)) s; \(r.flaggedRuns) run(s) flagged")
        for stage in ["probe", "grid", "verify"] {
            let pts = r.calibration.filter { $0.stage == stage }
            guard let first = pts.first else { continue }
            print("calibration \(stage) (\(first.rounds) interleaved pairs each; extra touch bytes: slowdown, ops per CPU-second): " + pts.map { GateEval.bytesLabel($0.extraTouch) + String(format: " %+.1f%%", $0.measuredSlowdownPercent) }.joined(separator: ", "))
        }
        print(String(format: "calibration fit: slowdown = %+.2f%% + %.3f%% per extra byte", r.calibrationFit.interceptPercent, r.calibrationFit.slopePercentPerByte))
        print("")
        for perCPU in [false, true] {
            print(perCPU ? "deciding on operations per CPU-second of the workers (their own CPU time; preemption by other jobs left out):"
                         : "deciding on operations/s (wall time):")
            print("| kind (target) | extra touch | calibration: fit; verified | realised in these runs: pairs; sets | " + GateEval.rules.joined(separator: " | ") + " |")
            print("| --- | ---: | ---: | ---: | " + GateEval.rules.map { _ in "---:" }.joined(separator: " | ") + " |")
            for k in r.kinds {
                let rules = perCPU ? k.rulesPerCPU : k.rules
                let slow = perCPU ? k.measuredSlowdownPercentPerCPU : k.measuredSlowdownPercent
                let pairs = k.pairedSlowdownPercent[perCPU ? 1 : 0]
                let at = k.verifiedExtraTouch.map { abs($0 - k.extraTouch) < 0.05 ? "" : " at " + GateEval.bytesLabel($0) } ?? ""
                let cal = k.calibratedSlowdownPercent.map { c in (k.fitSlowdownPercent.map { String(format: "%+.1f%%", $0) } ?? "-") + String(format: "; %+.1f%%", c) + at } ?? "-"
                let cells = rules.map { "\($0.alarms)/\($0.comparisons) (\(String(format: "%.0f", $0.rate * 100))%)" }
                print("| \(k.name) | \(GateEval.bytesLabel(k.extraTouch).dropFirst()) | \(cal) | \(String(format: "%+.1f%%; %+.1f%%", pairs, slow)) | " + cells.joined(separator: " | ") + " |")
            }
            print("")
        }
        let discarded = r.kinds.reduce(0) { $0 + $1.discarded.count }
        print("retries of flagged pairs (a run flagged for operations per CPU-second: partial, or steal above \(Int(NoiseReport.maxStealPercent))%; at most \(r.retryFlagged) extra attempt(s) a pair): "
              + r.kinds.map { "\($0.name) \($0.retriedPairs) pair(s) re-run, \($0.discarded.count) attempt(s) discarded, \($0.stillFlaggedPairs[1]) still flagged" }.joined(separator: "; "))
        if r.pairing == "co-run" {
            print("co-run pairs: the two runs of each pair ran at the same time on the workload's CPUs; overlap of their measured windows (median over pairs, of the shorter window): "
                  + r.kinds.map { k in k.name + " " + (k.coRunOverlap.map { String(format: "%.0f%%", $0 * 100) } ?? "-") }.joined(separator: ", ")
                  + ". Each side had about half the CPU time, so its wall-time runs are flagged: decide on operations per CPU-second.")
        }
        if discarded > 0 {
            let all = r.kinds.flatMap { k in k.discarded.map { "\(k.name) c\($0.comparison) r\($0.repetition) #\($0.attempt) (\($0.reason))" } }
            print("discarded attempts: " + (all.count <= 40 ? all.joined(separator: ", ") : all.prefix(40).joined(separator: ", ") + ", ... (\(all.count) in all; every one in the JSON report)"))
        }
        print("A/A: alarms in either direction are false alarms (goal <= 5%); slowdowns: alarms in the slower direction are detections (goal >= 95% at 10%). Runs: every kind's pair (original, kind) \(r.pairing == "co-run" ? "at the same time (co-run), started in ABBA order" : "back to back, ABBA"). Realised: pairs = median over all pairs of base/variant - 1; sets = median over comparisons of median base / median variant - 1.")
        if let output { try ResultsFile.write(r, to: output); print("wrote \(output)") }
    }
}
