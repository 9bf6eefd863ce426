import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM to the sweep: counted here; the runner passes one
/// SIGINT to the run in progress (which then writes partial results) and
/// starts no other run. Runs are in their own process group, so Ctrl-C at a
/// terminal reaches them only through the runner: once.
private let sweepSignals = Atomic<Int>(0)
/// The first of those signals (SIGINT or SIGTERM): the sweep's exit status says which (130 or 143).
private let sweepFirstSignal = Atomic<Int32>(0)

/// Runs the runs of one shard of a sweep, each in a child process of the
/// same binary (`pagestorm sweep FILE --child RUN ...`), so that a crash or
/// a hang ends that run only. Each run's results go to a temporary file and
/// are moved to `<point>/rep-<n>.json` once complete, never over an existing one.
public struct SweepRunner {
    public var spec: SweepSpec
    public var shard: ShardSpec
    /// `results/<sweep name>` (or `<--results-dir>/<sweep name>`).
    public var root: String
    /// The binary to run children with (this one).
    public var executable: String
    /// Print a progress line (only when stdout is a terminal).
    public var progress: Bool
    /// Extra arguments for every child (topology flags are not passed: the sweep's workload says it all).
    public var revision: String

    public init(spec: SweepSpec, shard: ShardSpec, root: String, executable: String, progress: Bool, revision: String) {
        self.spec = spec
        self.shard = shard
        self.root = root
        self.executable = executable
        self.progress = progress
        self.revision = revision
    }

    public struct Outcome: Sendable {
        public var planned = 0
        /// Complete before this invocation (resumed past).
        public var skipped = 0
        public var completed = 0
        public var failed: [String] = []
        public var interrupted = false
        /// The signal that interrupted the sweep (SIGINT or SIGTERM; 0: none, or
        /// a run interrupted on its own).
        public var signal: Int32 = 0
        /// The exit status of an interrupted sweep: 143 after SIGTERM, else 130 (as `run`).
        public var interruptStatus: ExitStatus { signal == SIGTERM ? .terminated : .interrupted }
        /// Verdicts of the runs completed now.
        public var verdicts: [String: Int] = [:]
        /// Wall time of each run's child, from spawn to its result in place, in ms.
        public var wallMs: [Double] = []
        /// Each run's own time (warm-up + measured), in ms.
        public var runMs: [Double] = []
        public var elapsedS: Double = 0
    }

    /// The executable path of this process.
    public static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CommandLine.arguments[0]
    }

    /// Checks the results folder against the sweep: a folder of another
    /// sweep or revision is refused, unless `restart`, which moves the old
    /// folder aside (nothing is deleted). Writes the manifest.
    public func prepare(restart: Bool) throws(SweepError) -> String? {
        let fm = FileManager.default
        let manifestPath = "\(root)/\(SweepManifest.fileName)"
        var movedTo: String? = nil
        if fm.fileExists(atPath: root) {
            var differs: String? = nil
            if fm.fileExists(atPath: manifestPath) {
                let old: SweepManifest
                do { old = try ResultsFile.read(SweepManifest.self, from: manifestPath) } catch {
                    throw SweepError(manifestPath, "cannot read the sweep manifest: \(error); move the folder away or rerun with --restart")
                }
                if old.fingerprint != spec.fingerprint {
                    differs = "holds the results of a different version of this sweep (fingerprint \(old.fingerprint), now \(spec.fingerprint)): the sweep file or its base workload changed"
                } else if old.revision != revision {
                    differs = "was run by revision \(old.revision), this binary is \(revision)"
                }
            } else if let items = try? fm.contentsOfDirectory(atPath: root), !items.isEmpty {
                differs = "exists and is not a sweep results folder (no \(SweepManifest.fileName))"
            }
            if restart || differs != nil {
                guard restart else {
                    throw SweepError(spec.file, "\(root) \(differs!); rerun with --restart to move it aside (to \(root).replaced-<UTC time>; nothing is deleted) and start over")
                }
                let dest = "\(root).replaced-\(ResultsFile.stamp())"
                do { try fm.moveItem(atPath: root, toPath: dest) } catch {
                    throw SweepError(root, "cannot move the old results aside to \(dest): \(error.localizedDescription)")
                }
                movedTo = dest
            }
        }
        do { try ResultsFile.replace(spec.manifest(revision: revision), at: manifestPath) } catch {
            throw SweepError(manifestPath, "cannot write the sweep manifest: \(error.localizedDescription)")
        }
        return movedTo
    }

    /// Runs the shard's runs that have no complete result, in the sweep's order.
    public func run() -> Outcome {
        installSignals()
        var out = Outcome()
        let runs = spec.runs(shard: shard)
        out.planned = runs.count
        let todo = runs.filter { SweepFolder.state(root, $0) != .complete }
        out.skipped = runs.count - todo.count
        let start = Date()
        let tty = progress && isatty(STDOUT_FILENO) != 0
        let points = Dictionary(spec.points.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for (i, run) in todo.enumerated() {
            if sweepSignals.load(ordering: .relaxed) > 0 { out.interrupted = true; break }
            if tty {
                let el = Date().timeIntervalSince(start)
                let eta = i > 0 ? " ETA \(clock(el / Double(i) * Double(todo.count - i)))" : ""
                let line = "[\(out.skipped + i)/\(runs.count)] \(run.point) rep \(run.rep)  elapsed \(clock(el))\(eta)"
                FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
            }
            let bound = boundMs(points[run.point]!, seed: run.seed)
            let t0 = Date()
            let r = runOne(run, boundMs: bound)
            switch r {
            case .complete(let res):
                out.completed += 1
                out.verdicts[res.status.verdict, default: 0] += 1
                out.wallMs.append(Date().timeIntervalSince(t0) * 1000)
                out.runMs.append(Double(res.timing.warmupNs + res.timing.measuredNs) / 1e6)
            case .failed(let message):
                out.failed.append("\(run.id): \(message)")
            case .interrupted:
                out.interrupted = true
            }
            if out.interrupted { break }
        }
        if tty { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        out.signal = sweepFirstSignal.load(ordering: .relaxed)
        out.elapsedS = Date().timeIntervalSince(start)
        return out
    }

    enum RunEnd { case complete(RunResult), failed(String), interrupted }

    /// How long a run may take before the runner ends it: its warm-up and
    /// duration (or its op-count timeout), the stop grace, and a minute for set-up and writing.
    func boundMs(_ p: SweepPoint, seed: UInt64) -> Int {
        guard let w = try? spec.workload(point: p, seed: seed) else { return 600_000 }
        return w.run.warmupMs + (w.run.durationMs ?? w.run.timeoutMs) + w.harness.livelockMs + 10_000 + 60_000
    }

    func runOne(_ run: SweepRun, boundMs: Int) -> RunEnd {
        let fm = FileManager.default
        let dir = "\(root)/\(run.point)"
        try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pid = getpid()
        let tmp = "\(dir)/.rep-\(run.rep).\(pid).tmp.json"
        let log = "\(dir)/.rep-\(run.rep).\(pid).log"
        let args = ["sweep", spec.file, "--child", run.id, "--child-output", tmp, "--child-fingerprint", spec.fingerprint]
        var failure = SweepRunFailure(run: run.id, seed: run.seed, revision: revision, at: ISO8601DateFormatter().string(from: Date()),
                                      kind: "", message: "", exitCode: nil, signal: nil, outputTail: "")
        defer { try? fm.removeItem(atPath: log) }
        let spawned = spawn(executable, args, log: log)
        guard let child = spawned.pid else {
            failure.kind = "could not start"
            failure.message = spawned.error
            return record(failure, run)
        }
        // Wait, bounded; pass one SIGINT on to the run when the sweep is interrupted.
        let t0 = Date()
        var forwarded = 0
        var killedForTime = false
        var status: Int32 = 0
        var sleepUs: UInt32 = 500
        while true {
            let r = waitpid(child, &status, WNOHANG)
            if r == child { break }
            if r < 0 && errno != EINTR { failure.kind = "error"; failure.message = "waitpid failed: errno \(errno)"; return record(failure, run) }
            let sig = sweepSignals.load(ordering: .relaxed)
            if sig > forwarded { kill(child, SIGINT); forwarded = sig }
            let el = Date().timeIntervalSince(t0) * 1000
            if !killedForTime && el > Double(boundMs) {
                killedForTime = true
                kill(child, SIGINT)
            } else if killedForTime && el > Double(boundMs) + 15_000 {
                kill(child, SIGKILL)
            }
            usleep(sleepUs)
            sleepUs = min(sleepUs * 2, 20_000)
        }
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        let signal = status & 0x7f
        let tail = tailOf(log)
        if fm.fileExists(atPath: tmp), let res = try? ResultsFile.read(RunResult.self, from: tmp) {
            if res.status.stopReason == "interrupted" || res.status.stopReason == "terminated" {
                let keep = "\(dir)/rep-\(run.rep).partial-\(pid).json"
                _ = rename(tmp, keep)
                if killedForTime {
                    failure.kind = "timed out"
                    failure.message = "the run took more than \(boundMs) ms and was stopped; its partial results are in \(keep)"
                    failure.exitCode = exited ? code : nil
                    failure.outputTail = tail
                    return record(failure, run)
                }
                return .interrupted
            }
            let final = SweepFolder.path(root, run)
            if link(tmp, final) != 0 {
                let e = errno
                unlink(tmp)
                failure.kind = "error"
                failure.message = e == EEXIST ? "\(final) appeared while the run went (another process ran it); kept that one" : "cannot move the results into place: errno \(e)"
                return e == EEXIST ? .complete(res) : record(failure, run)
            }
            unlink(tmp)
            try? fm.removeItem(atPath: SweepFolder.failedPath(root, run))
            return .complete(res)
        }
        try? fm.removeItem(atPath: tmp)
        if forwarded > 0 && !killedForTime { return .interrupted }
        failure.outputTail = tail
        if killedForTime {
            failure.kind = "timed out"
            failure.message = "the run took more than \(boundMs) ms and was killed"
        } else if !exited {
            failure.kind = "crashed"
            failure.signal = signal
            failure.message = "the run's process was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        } else if code == ExitStatus.badInput.rawValue {
            failure.kind = "could not start"
            failure.exitCode = code
            failure.message = lastLine(tail) ?? "exit code 2 (bad input)"
        } else {
            failure.kind = "no results"
            failure.exitCode = code
            failure.message = "exit code \(code) and no results file" + (lastLine(tail).map { ": \($0)" } ?? "")
        }
        return record(failure, run)
    }

    func record(_ f: SweepRunFailure, _ run: SweepRun) -> RunEnd {
        try? ResultsFile.replace(f, at: SweepFolder.failedPath(root, run))
        return .failed("\(f.kind): \(f.message)")
    }

    func tailOf(_ path: String) -> String {
        guard let d = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: d.suffix(4000), as: UTF8.self)
    }

    func lastLine(_ s: String) -> String? {
        s.split(separator: "\n").last { $0.contains("pagestorm:") || $0.contains("error") || $0.contains("Fatal") }.map(String.init)
            ?? s.split(separator: "\n").last.map(String.init)
    }

    /// posix_spawn in a new process group, stdin from /dev/null, stdout and stderr to `log`.
    func spawn(_ path: String, _ args: [String], log: String) -> (pid: pid_t?, error: String) {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &fa, &attr, argv, environ)
        if rc != 0 { return (nil, "posix_spawn \(path): \(String(cString: strerror(rc)))") }
        return (pid, "")
    }

    func installSignals() {
        sweepSignals.store(0, ordering: .relaxed)
        sweepFirstSignal.store(0, ordering: .relaxed)
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { sig in
            _ = sweepFirstSignal.compareExchange(expected: 0, desired: sig, ordering: .relaxed)
            // A third signal ends the sweep at once (the run in progress has had two).
            if sweepSignals.wrappingAdd(1, ordering: .relaxed).newValue >= 3 { _exit(sweepFirstSignal.load(ordering: .relaxed) == SIGTERM ? 143 : 130) }
        }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = SA_RESTART
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
    }

    func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm%02ds", t / 3600, t / 60 % 60, t % 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
