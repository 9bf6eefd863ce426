import ArgumentParser
import Foundation
import StressHarness

/// `pagestorm sweep SWEEP.toml`: every point of a grid of workload keys, a
/// few repetitions each, in a seeded random order, one child process per run;
/// resumable, shardable (Slurm arrays, Kubernetes indexed jobs). docs/sweeps.md.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run every point of a sweep file (axes of workload keys x repetitions); results under results/<sweep>/<point>/rep-<n>.json.",
        discussion: """
        The sweep format is documented in docs/sweeps.md (examples in Workloads/sweeps/). Rerunning the same command \
        resumes: complete runs are skipped. Without --shard, SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (a Slurm job \
        array) or JOB_COMPLETION_INDEX with --shard-count (a Kubernetes indexed job) choose the shard. \
        Exit codes: 0 every run of this shard has a complete result (whatever its verdict: livelock and deadlock are \
        results); 2 bad input (the sweep file, a flag, a results folder of another sweep); 3 one or more runs failed \
        (crashed, could not start, timed out: see <point>/rep-<n>.failed.json); 130 interrupted (SIGINT), 143 terminated (SIGTERM, e.g. scancel).
        """)

    @Argument(help: "The sweep file (TOML).")
    var file: String

    @Option(help: "Run shard i of n (0 <= i < n): every n-th run of the sweep's order, from the i-th.")
    var shard: String?
    @Option(name: .customLong("shard-count"), help: "The number of shards when JOB_COMPLETION_INDEX (a Kubernetes indexed job) gives the index.")
    var shardCount: Int?
    @Flag(name: .customLong("dry-run"), help: "List the points and the runs this shard would do (and which are complete), run nothing.")
    var dryRun = false
    @Option(help: "Print a job script instead of running: 'slurm' (an sbatch job array).")
    var emit: String?
    @Option(name: .customLong("array-size"), help: "With --emit slurm: the number of array tasks (default: the number of runs, at most 4).")
    var arraySize: Int?
    @Flag(help: "Start over: move the sweep's results folder aside (to <folder>.replaced-<UTC time>; nothing is deleted) when the sweep file changed or the binary's revision differs.")
    var restart = false
    @Option(name: .customLong("results-dir"), help: "Where the sweep's folder goes (default: results).")
    var resultsDir = "results"

    @Option(name: .customLong("child"), help: .hidden) var child: String?
    @Option(name: .customLong("child-output"), help: .hidden) var childOutput: String?
    @Option(name: .customLong("child-fingerprint"), help: .hidden) var childFingerprint: String?

    func fail(_ e: SweepError) -> ExitCode {
        FileHandle.standardError.write(Data("pagestorm: \(e)\n".utf8))
        return ExitCode(ExitStatus.badInput.rawValue)
    }

    func run() throws {
        if let runID = child { return try runChild(runID) }
        let spec: SweepSpec
        let shardSpec: ShardSpec
        do {
            if let s = shard {
                if shardCount != nil { throw SweepError("--shard-count", "contradicts --shard (give one)") }
                shardSpec = try ShardSpec.parse(s)
            } else {
                shardSpec = try ShardSpec.fromEnvironment(ProcessInfo.processInfo.environment, countFlag: shardCount) ?? .all
            }
            if let e = emit, e != "slurm" { throw SweepError("--emit", "'\(e)' is not a job script kind (slurm)") }
            if arraySize != nil && emit == nil { throw SweepError("--array-size", "is only used with --emit slurm") }
            if let a = arraySize, !(1...10_000).contains(a) { throw SweepError("--array-size", "must be 1...10000, got \(a)") }
            if emit != nil && dryRun { throw SweepError("--emit", "contradicts --dry-run (give one)") }
            if resultsDir.isEmpty { throw SweepError("--results-dir", "must not be empty") }
            spec = try SweepSpec.load(path: file)
        } catch let e as SweepError { throw fail(e) }
        let root = "\(resultsDir)/\(spec.name)"
        let runs = spec.runs()
        if emit != nil { print(slurmScript(spec, runs: runs.count)); return }
        if dryRun { dryRunListing(spec, shard: shardSpec, root: root); return }

        let revision = SweepRevision.current()
        let runner = SweepRunner(spec: spec, shard: shardSpec, root: root, executable: SweepRunner.selfExecutable(), progress: true, revision: revision)
        do {
            if let moved = try runner.prepare(restart: restart) { print("sweep: the old results were moved to \(moved)") }
        } catch { throw fail(error) }
        let mine = spec.runs(shard: shardSpec)
        print("sweep \(spec.name): \(spec.points.count) point(s) x \(spec.repetitions) repetition(s) = \(runs.count) run(s); shard \(shardSpec): \(mine.count) run(s); results in \(root)/ (revision \(revision))")
        let out = runner.run()
        var line = "sweep \(spec.name) shard \(shardSpec): \(out.completed) run(s) completed now, \(out.skipped) already complete, \(out.failed.count) failed"
        if !out.verdicts.isEmpty { line += "; verdicts " + out.verdicts.keys.sorted().map { "\($0) \(out.verdicts[$0]!)" }.joined(separator: ", ") }
        line += String(format: "; %.1f s", out.elapsedS)
        print(line)
        if !out.wallMs.isEmpty {
            let over = zip(out.wallMs, out.runMs).map { $0 - $1 }
            print(String(format: "overhead per run: median %.0f ms (process start, set-up, clean-up and validate(), writing\(spec.measureOverhead ? ", harness calibration" : "")) beside a median run of %.0f ms (warm-up + measured); median wall %.0f ms",
                         median(over), median(out.runMs), median(out.wallMs)))
        }
        for f in out.failed { FileHandle.standardError.write(Data("pagestorm: run failed: \(f)\n".utf8)) }
        if out.interrupted {
            print("sweep interrupted: rerun the same command to resume")
            throw ExitCode(out.interruptStatus.rawValue)
        }
        if !out.failed.isEmpty { throw ExitCode(ExitStatus.toolFailed.rawValue) }
        if shardSpec.count > 1 { print("when every shard has ended: pagestorm merge \(root) (or each shard's folder)") }
    }

    func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    func dryRunListing(_ spec: SweepSpec, shard: ShardSpec, root: String) {
        let mine = spec.runs(shard: shard)
        print("sweep \(spec.name) (\(spec.file)): \(spec.points.count) point(s) x \(spec.repetitions) repetition(s) = \(spec.points.count * spec.repetitions) run(s); fingerprint \(spec.fingerprint)")
        print("shard \(shard): \(mine.count) run(s); results in \(root)/")
        for p in spec.points {
            print("point \(p.id)  " + spec.axes.map { "\($0.key)=\(p.values[$0.name]!)" }.joined(separator: " "))
        }
        for r in mine {
            let state: String
            switch SweepFolder.state(root, r) {
            case .complete: state = "complete"
            case .failed: state = "failed (will retry)"
            case .missing: state = "to run"
            }
            print("run \(r.id) order \(r.order) seed \(r.seed) \(state)")
        }
    }

    func slurmScript(_ spec: SweepSpec, runs: Int) -> String {
        let tasks = min(arraySize ?? min(runs, 4), runs)
        let cwd = FileManager.default.currentDirectoryPath
        let exe = SweepRunner.selfExecutable()
        func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return """
        #!/bin/bash
        # pagestorm sweep \(spec.name): \(spec.points.count) point(s) x \(spec.repetitions) repetition(s) = \(runs) run(s), in \(tasks) array task(s).
        # Submit with: sbatch THIS_FILE. Each task runs shard $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT
        # (pagestorm reads them); a task that is run again resumes (complete runs are skipped).
        #SBATCH --job-name=pagestorm-\(spec.name)
        #SBATCH --array=0-\(tasks - 1)
        #SBATCH --chdir=\(cwd)
        #SBATCH --output=\(resultsDir)/\(spec.name)-slurm-%A_%a.out
        ##SBATCH --exclusive   # recommended for quiet measurements: one task per node
        set -euo pipefail
        exec \(q(exe)) sweep \(q(spec.file)) --results-dir \(q(resultsDir))
        # When every task has ended: \(exe) merge \(resultsDir)/\(spec.name)
        """
    }

    /// One run, in the child process the runner started.
    func runChild(_ runID: String) throws {
        guard let output = childOutput, let fp = childFingerprint else {
            throw fail(SweepError("--child", "needs --child-output and --child-fingerprint (it is the runner's, not for use by hand)"))
        }
        let spec: SweepSpec
        do { spec = try SweepSpec.load(path: file) } catch { throw fail(error) }
        guard spec.fingerprint == fp else {
            throw fail(SweepError(file, "changed while the sweep ran (fingerprint \(spec.fingerprint), the sweep started with \(fp)); rerun the sweep"))
        }
        let all = spec.runs()
        guard let run = all.first(where: { $0.id == runID }), let point = spec.points.first(where: { $0.id == run.point }) else {
            throw fail(SweepError("--child", "no run '\(runID)' in \(file)"))
        }
        let w: Workload
        do { w = try spec.workload(point: point, seed: run.seed) } catch {
            throw fail(SweepError(file, "point \(point.id): \(error)"))
        }
        var options = RunOptions()
        options.workloadFile = spec.workloadPath
        options.progress = false
        options.handleInterrupts = true
        options.measureOverhead = spec.measureOverhead
        options.shard = ShardInfo(sweep: spec.name, index: run.order, count: all.count, parameters: point.values)
        let result: RunResult
        do { result = try StressRun.run(w, options: options) } catch {
            FileHandle.standardError.write(Data("pagestorm: \(error)\n".utf8))
            throw ExitCode(error.status.rawValue)
        }
        do { try ResultsFile.replace(result, at: output) } catch {
            FileHandle.standardError.write(Data("pagestorm: cannot write \(output): \(error.localizedDescription)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("verdict: \(result.status.verdict)")
        if result.exitStatus != .ok { throw ExitCode(result.exitStatus.rawValue) }
    }
}

/// `pagestorm merge DIR...`: joins the folders of a sweep's shards and writes
/// one summary per point, as JSON and CSV. docs/sweeps.md.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join a sweep's result folders (shards, machines) into one; write summary.json, summary.csv and merge.json.",
        discussion: """
        Every folder must hold the same sweep (fingerprint) run by the same revision. Missing runs (with the failure \
        that left them out, if any) and duplicates are reported. Exit codes: 0 every run is there; 1 runs are missing \
        (the summary covers the others); 2 bad input (not a sweep folder, folders of different sweeps or revisions, an unreadable run).
        """)

    @Argument(help: "Result folders of one sweep: results/<sweep>, or each shard's folder.")
    var dirs: [String] = []
    @Option(help: "Where the merged sweep goes (default: the folder itself when one is given, else results/<sweep>-merged).")
    var output: String?

    func run() throws {
        do {
            guard !dirs.isEmpty else { throw SweepError("merge", "give at least one sweep results folder") }
            for d in dirs {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: d, isDirectory: &isDir), isDir.boolValue else { throw SweepError(d, "no such folder") }
            }
            var out = output
            if out == nil {
                if dirs.count == 1 { out = dirs[0] } else {
                    let m = try? ResultsFile.read(SweepManifest.self, from: "\(dirs[0])/\(SweepManifest.fileName)")
                    out = "results/\(m?.name ?? "sweep")-merged"
                }
            }
            let (report, summary) = try SweepMerge.merge(dirs, output: out!)
            print("merge: sweep \(report.sweep) (fingerprint \(report.fingerprint), revision \(report.revision)): \(dirs.count) folder(s), \(report.complete) of \(report.runs) run(s), \(summary.points.count) point(s)")
            if report.missing.isEmpty { print("missing: none") } else {
                print("missing: \(report.missing.count) run(s)")
                for m in report.missing { print("  \(m.run)\(m.failure.map { ": \($0)" } ?? "")") }
            }
            if report.duplicates.isEmpty { print("duplicates: none") } else {
                print("duplicates: \(report.duplicates.count) run(s) in more than one folder (the first kept)")
                for d in report.duplicates { print("  \(d.run): \(d.files.joined(separator: ", "))\(d.identical ? " (identical)" : " (different)")") }
            }
            print("wrote \(out!)/summary.json, \(out!)/summary.csv, \(out!)/merge.json")
            if !report.missing.isEmpty { throw ExitCode(1) }
        } catch let e as SweepError {
            FileHandle.standardError.write(Data("pagestorm: \(e)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
    }
}
