import Foundation
import Synchronization
import Testing
@testable import StressHarness
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// What a user meets: the binary's revision, results that are never lost
/// (unique names, exclusive creation, concurrent writers, SIGTERM), temporary
/// files. The subprocess tests run the `pagestorm` binary that `swift test`
/// builds beside the test bundle.
@Suite struct UserFacingTests {
    // MARK: - The build stamp

    /// Built from a git checkout, the stamp is a commit of that repository
    /// (not "unknown", not the working directory's HEAD read at run time).
    @Test func theBuildStampIsARealRevisionOfThisCheckout() throws {
        let inCheckout = FileManager.default.fileExists(atPath: repoRoot.appendingPathComponent(".git").path)
        guard inCheckout else {
            // A tarball: nothing to compare with; the stamp must say so.
            #expect(BuildStamp.revision == "unknown")
            return
        }
        #expect(BuildStamp.revision != "unknown")
        #expect(BuildStamp.commit.count == 40 && BuildStamp.commit.allSatisfy(\.isHexDigit), "commit \(BuildStamp.commit)")
        #expect(BuildStamp.revision == String(BuildStamp.commit.prefix(12)) + (BuildStamp.dirty ? "-dirty" : ""))
        let type = try Self.git(["cat-file", "-t", BuildStamp.commit])
        #expect(type == "commit", "the stamped \(BuildStamp.commit) is not a commit of \(repoRoot.path)")
        // Results record the stamp, wherever the binary runs.
        #expect(MachineInfo.current().gitRevision == BuildStamp.revision)
    }

    // MARK: - Unique, exclusive results files

    @Test func stampsAreMicrosecondsAndThePid() {
        let s = ResultsFile.stamp(Date(timeIntervalSince1970: 1_796_026_570.123456))
        #expect(s == "20261130T081610.123456Z-\(getpid())", "\(s)")
        let t = ResultsFile.timestamp(Date(timeIntervalSince1970: 1_796_026_570.9999996))
        #expect(t.hasPrefix("20261130T08161") && t.count == "20261130T081610.123456Z".count, "\(t)")
        // Every subcommand's default name uses it.
        #expect(RunResult.timestamp(Date(timeIntervalSince1970: 0)) == "19700101T000000.000000Z-\(getpid())")
    }

    /// Four writers of the same name at once keep four files: none is
    /// replaced, each holds its own complete content.
    @Test func fourConcurrentWritersOfOneNameKeepFourFiles() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/same.json"
        let written = Mutex<[String: Int]>([:])
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            do {
                let value: [String: AnyCodable] = ["writer": .int(i), "payload": .string(String(repeating: "x", count: 100_000))]
                let p = try ResultsFile.write(value, to: path)
                written.withLock { $0[p] = i }
            } catch { errors.withLock { $0.append("\(error)") } }
        }
        #expect(errors.withLock { $0 }.isEmpty)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["same-2.json", "same-3.json", "same-4.json", "same.json"], "\(files)")
        for (p, i) in written.withLock({ $0 }) {
            let back = try ResultsFile.read([String: AnyCodable].self, from: p)
            #expect(back["writer"] == .int(i) && back["payload"] == .string(String(repeating: "x", count: 100_000)))
        }
    }

    @Test func anExplicitNameIsNeverReplaced() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/r.json"
        #expect(try ResultsFile.write(["a": AnyCodable.int(1)], to: path, uniquify: false) == path)
        #expect(throws: ResultsFile.WriteError.exists(path)) { try ResultsFile.write(["a": AnyCodable.int(2)], to: path, uniquify: false) }
        #expect(try ResultsFile.read([String: AnyCodable].self, from: path)["a"] == .int(1))
        #expect(try ResultsFile.write(data: Data("x".utf8), to: dir + "/notes") == dir + "/notes")
        #expect(try ResultsFile.write(data: Data("y".utf8), to: dir + "/notes") == dir + "/notes-2")
    }

    /// A writer killed between writing and linking leaves
    /// `.pagestorm-tmp-<pid>-...`; the next write in that directory removes it
    /// when its process is gone, and leaves a live writer's alone.
    @Test func orphanedTemporariesAreRemovedByTheNextWrite() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = Self.deadPid()
        let orphan = "\(ResultsFile.temporaryPrefix)\(dead)-1-default-x.json"
        let live = "\(ResultsFile.temporaryPrefix)\(getppid())-1-default-y.json"
        for n in [orphan, live] { _ = FileManager.default.createFile(atPath: dir + "/" + n, contents: Data("{".utf8)) }
        try ResultsFile.write(["a": AnyCodable.int(1)], to: dir + "/new.json")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == [live, "new.json"].sorted(), "\(left)")
        // .gitignore covers them.
        let ignore = try String(contentsOf: repoRoot.appendingPathComponent(".gitignore"), encoding: .utf8)
        #expect(ignore.split(separator: "\n").contains(".pagestorm-tmp-*"))
    }

    // MARK: - The binary, as a user runs it

    /// `pagestorm --version` names the stamped revision.
    @Test func versionPrintsTheStamp() throws {
        let (code, out, _) = try Self.pagestorm(["--version"], cwd: NSTemporaryDirectory())
        #expect(code == 0)
        #expect(out.hasPrefix("pagestorm \(BuildStamp.revision) "), "\(out)")
    }

    /// Four runs started together in one directory keep four results files,
    /// each naming a different path, each with the build's revision.
    @Test func fourConcurrentRunsKeepFourResultsFiles() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workload = dir + "/tiny.toml"
        try Self.tinyWorkload.write(toFile: workload, atomically: true, encoding: .utf8)
        let procs = try (0..<4).map { _ in try Self.start(["run", workload, "--duration-ms", "30", "--warmup-ms", "0", "--no-overhead"], cwd: dir) }
        var printed: [String] = []
        for p in procs {
            let (code, out, err) = try Self.finish(p, timeoutS: 120)
            #expect(code == 0, "exit \(code): \(err)")
            printed += out.split(separator: "\n").filter { $0.hasPrefix("results: ") }.map { String($0.dropFirst(9)) }
        }
        #expect(Set(printed).count == 4, "\(printed)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/results").filter { $0.hasSuffix(".json") }
        #expect(files.count == 4, "\(files)")
        for f in files {
            #expect(f.wholeMatch(of: /tiny-\d{8}T\d{6}\.\d{6}Z-\d+(-\d+)?\.json/) != nil, "\(f)")
            let r = try ResultsFile.read(RunResult.self, from: dir + "/results/" + f)
            #expect(r.machine.gitRevision == BuildStamp.revision)
        }
    }

    /// SIGTERM (what `timeout`, CI runners and Slurm send) ends a run like
    /// Ctrl-C: partial results written, exit 143.
    @Test func sigtermWritesPartialResults() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let workload = dir + "/tiny.toml"
        try Self.tinyWorkload.write(toFile: workload, atomically: true, encoding: .utf8)
        let p = try Self.start(["run", workload, "--duration-ms", "600000", "--warmup-ms", "0", "--no-overhead"], cwd: dir)
        // Wait until the run catches SIGTERM (its handler is installed), bounded.
        let deadline = Date().addingTimeInterval(120)
        while !Self.catches(pid: p.processIdentifier, signal: SIGTERM) && p.isRunning && Date() < deadline { usleep(20_000) }
        #expect(Self.catches(pid: p.processIdentifier, signal: SIGTERM), "the run never installed its SIGTERM handler")
        kill(p.processIdentifier, SIGTERM)
        usleep(100_000)
        let status = Self.signalLines(pid: p.processIdentifier)
        let (code, out, err) = try Self.finish(p, timeoutS: 60)
        #expect(code == 143, "exit \(code): \(err); \(status)")
        #expect(out.contains("verdict: "))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/results").filter { $0.hasSuffix(".json") }
        #expect(files.count == 1, "\(files)")
        if let f = files.first {
            let r = try ResultsFile.read(RunResult.self, from: dir + "/results/" + f)
            #expect(r.status.partial && r.status.stopReason == "terminated" && r.status.exitCode == 143)
            #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        }
    }

    /// A mistyped subcommand names itself and the nearest one, exit 2
    /// (it used to be swallowed by the default `smoke`, whose usage answered).
    @Test func aMistypedSubcommandSuggestsTheNearest() throws {
        let (code, _, err) = try Self.pagestorm(["rn", "x.toml"], cwd: NSTemporaryDirectory())
        #expect(code == 2)
        #expect(err.contains("'rn' is not a subcommand") && err.contains("did you mean 'run'"), "\(err)")
    }

    /// A missing workload file: the path, "does not exist", the closest file in Workloads/.
    @Test func aMissingWorkloadFileSuggestsTheClosest() throws {
        let (code, _, err) = try Self.pagestorm(["run", "Workloads/scenario1-oom-victim.toml"], cwd: repoRoot.path)
        #expect(code == 2)
        #expect(err.contains("Workloads/scenario1-oom-victim.toml does not exist"), "\(err)")
        #expect(err.contains("did you mean Workloads/scenario1-oom-victim-lock.toml"), "\(err)")
    }

    /// debate outside the repository says what it cannot find and how to point it there.
    @Test func debateOutsideTheRepositorySaysWhatIsMissing() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, _, err) = try Self.pagestorm(["debate", "--seeds", "1"], cwd: dir)
        #expect(code == 2)
        #expect(err.contains("Workloads/scenario*.toml") && err.contains("--workloads DIR"), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/results"), "nothing is written")
    }

    /// A policy that cannot act (no allocation reached the slow path) says so.
    @Test func aPolicyWithNoEffectSaysTheSlowPathWasNeverEntered() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.tinyWorkload.write(toFile: dir + "/tiny.toml", atomically: true, encoding: .utf8)
        let (code, out, err) = try Self.pagestorm(["run", "tiny.toml", "--duration-ms", "30", "--warmup-ms", "0", "--no-overhead", "--no-results",
                                                   "--policy", "retry=legacy"], cwd: dir)
        #expect(code == 0, "\(err)")
        let line = out.split(separator: "\n").first { $0.hasPrefix("policy: ") }.map(String.init) ?? ""
        #expect(line.contains("retry=legacy") && line.contains("the slow path, where the policy acts, was never entered"), "\(line)")
    }

    /// One spelling for the run length: smoke takes run's --duration-ms (and
    /// still the old --milliseconds, no longer shown).
    @Test func smokeTakesDurationMs() throws {
        let (_, help, _) = try Self.pagestorm(["smoke", "--help"], cwd: NSTemporaryDirectory())
        #expect(help.contains("--duration-ms") && !help.contains("--milliseconds"), "\(help)")
        for flag in ["--duration-ms", "--milliseconds"] {
            let (code, _, err) = try Self.pagestorm(["smoke", flag, "0"], cwd: NSTemporaryDirectory())
            #expect(code == 2 && err.contains("--duration-ms must be 1...3600000, got 0"), "\(flag): \(err)")
        }
    }

    /// The run length is `--duration-ms` on every subcommand that takes one:
    /// run, smoke, bench (its --peers shape runs; old --shape-ms hidden), numa, loadcurve, gate-eval.
    @Test func everyRunLengthIsDurationMs() throws {
        for sub in [["run"], ["smoke"], ["bench"], ["numa"], ["loadcurve"], ["gate-eval"]] {
            let (_, help, _) = try Self.pagestorm(sub + ["--help"], cwd: NSTemporaryDirectory())
            #expect(help.contains("--duration-ms"), "\(sub[0]) --help: \(help)")
            for old in ["--milliseconds", "--shape-ms", "--duration <", "--ms "] {
                #expect(!help.contains(old), "\(sub[0]) --help shows \(old)")
            }
        }
        for flag in ["--duration-ms", "--shape-ms"] {
            let (code, _, err) = try Self.pagestorm(["bench", "--peers", flag, "5"], cwd: NSTemporaryDirectory())
            #expect(code == 2 && err.contains("--duration-ms must be 10...60000, got 5"), "\(flag): \(err)")
        }
    }

    // MARK: - Helpers

    static let tinyWorkload = """
    [topology]
    nodes = 1
    cpus_per_node = 1

    [memory]
    arena_mib = 8

    [[group]]
    [[group.op]]
    """

    static func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("pagestorm-users-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A pid with no process (for the orphaned temporary).
    static func deadPid() -> pid_t {
        var p: pid_t = 4_000_000
        while kill(p, 0) == 0 || errno != ESRCH { p += 1 }
        return p
    }

    /// /proc/PID/status SigCgt has the signal's bit.
    static func catches(pid: pid_t, signal: Int32) -> Bool {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }

    static func signalLines(pid: pid_t) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("Sig") || $0.hasPrefix("ShdPnd") }.joined(separator: " ")
    }

    /// The `pagestorm` executable built beside this test bundle.
    static func binary() throws -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("pagestorm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = repoRoot.appendingPathComponent(".build/debug/pagestorm").path
        guard FileManager.default.isExecutableFile(atPath: fallback) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "pagestorm beside \(exe.path)"])
        }
        return fallback
    }

    final class Running: @unchecked Sendable {
        let process: Process
        let out: URL, err: URL
        init(process: Process, out: URL, err: URL) { self.process = process; self.out = out; self.err = err }
        var processIdentifier: pid_t { process.processIdentifier }
        var isRunning: Bool { process.isRunning }
    }

    static func start(_ args: [String], cwd: String) throws -> Running {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let tag = UUID().uuidString
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pagestorm-out-\(tag)")
        let err = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pagestorm-err-\(tag)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return Running(process: p, out: out, err: err)
    }

    /// Waits (bounded; kills the process past the limit) and returns its exit code and output.
    static func finish(_ r: Running, timeoutS: Double) throws -> (Int32, String, String) {
        let deadline = Date().addingTimeInterval(timeoutS)
        while r.isRunning && Date() < deadline { usleep(10_000) }
        if r.isRunning { kill(r.processIdentifier, SIGKILL); r.process.waitUntilExit() }
        defer { try? FileManager.default.removeItem(at: r.out); try? FileManager.default.removeItem(at: r.err) }
        let out = (try? String(contentsOf: r.out, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOf: r.err, encoding: .utf8)) ?? ""
        return (r.process.terminationStatus, out, err)
    }

    static func pagestorm(_ args: [String], cwd: String, timeoutS: Double = 120) throws -> (Int32, String, String) {
        try finish(try start(args, cwd: cwd), timeoutS: timeoutS)
    }

    static func git(_ args: [String], in dir: String = repoRoot.path) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A small JSON value for the writer tests.
enum AnyCodable: Codable, Equatable, Sendable {
    case int(Int), string(String)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
    }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self { case .int(let i): try c.encode(i); case .string(let s): try c.encode(s) }
    }
}
extension AnyCodable: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    init(integerLiteral v: Int) { self = .int(v) }
    init(stringLiteral v: String) { self = .string(v) }
}

/// `bench --output` rows carry their stable key beside their label.
@Suite struct BenchKeyTests {
    @Test func benchRowsCarryTheirKey() throws {
        let cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 2), zones: [ZoneSpec(.normal, pages: 8192)])
        var bench = Bench(config: cfg, iterations: 2000, runs: 1, threads: 2) { _ in }
        bench.only = ["order0.pcp.1t", "order3.buddy.1t"]
        let report = try bench.run()
        #expect(report.rows.map(\.key) == ["calibration", "order0.pcp.1t", "order3.buddy.1t"])
        let json = String(decoding: try ResultsFile.encoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"key\" : \"order0.pcp.1t\""))
    }
}
