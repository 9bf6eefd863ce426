import ArgumentParser
import Foundation
import PageAllocator
import StressHarness

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the allocator's paths: ns per alloc+free pair (median of runs) and the ratio to a calibration loop.",
        discussion: "Build in release first (make bench, or swift build -c release). Writes a JSON report with --output.")
    @OptionGroup var topology: TopologyOptions

    @Option(help: "Pairs per measurement.")
    var iterations: Int = 2_000_000
    @Option(help: "Runs per measurement; the median is reported.")
    var runs: Int = 5
    @Option(help: "Threads for the multi-threaded rows.")
    var threads: Int = 2
    @Option(help: "Write the JSON report here.")
    var output: String?
    @Option(name: .customLong("pcp-lock"), help: "How the per-CPU lists are owned: auto (rseq where available, else trylock), rseq (refused where unavailable) or trylock.")
    var pcpLock: String = "auto"
    @Option(help: "Run only these measurements (comma-separated): \(Bench.keys.joined(separator: ", ")); with --peers: \(PeerBench.keys.joined(separator: ", ")).")
    var only: String?
    @Flag(help: "Measure pagestorm and every installed peer allocator (glibc, jemalloc, mimalloc, tcmalloc, kernel) side by side, in interleaved rounds.")
    var peers = false
    @Option(help: "The allocators to set beside pagestorm (comma-separated: glibc, jemalloc, mimalloc, tcmalloc, kernel; implies --peers). `pagestorm` alone: the allocator's own paths (the default).")
    var allocator: String?
    @Option(name: .customLong("duration-ms"), help: "With --peers: measured ms of each workload-shape run (the same flag as `run`'s).")
    var durationMs: Int = 200
    /// The old spelling, kept working but no longer shown.
    @Option(name: .customLong("shape-ms"), help: .hidden)
    var oldShapeMs: Int?
    var shapeMs: Int { oldShapeMs ?? durationMs }
    @Flag(help: "Count instructions per operation of the single-threaded benchmarks under valgrind --tool=callgrind (repeatable to the instruction); writes schema pagestorm.instructions/1 with --output.")
    var instructions = false
    @Option(help: "With --instructions: callgrind (valgrind; exact, the trylock path), perf (perf stat -e instructions:u; needs a hardware counter, the rseq path) or auto (perf where the machine has a counter, else callgrind).")
    var counter: InstructionCounter = .callgrind
    @Option(help: ArgumentHelp("Internal: run one benchmark's pair loop only (what --instructions runs under callgrind).", visibility: .hidden))
    var probe: String?

    func validate() throws {
        if counter != .callgrind && !instructions { throw ValidationError("--counter \(counter.rawValue) only applies with --instructions") }
        if let probe, !Instructions.keys.contains(probe) { throw ValidationError("--probe: unknown key '\(probe)'; known: \(Instructions.keys.joined(separator: ", "))") }
        if instructions, let only {
            for k in only.split(separator: ",") where !Instructions.keys.contains(String(k)) {
                throw ValidationError("--instructions --only: '\(k)' is not a single-threaded benchmark; known: \(Instructions.keys.joined(separator: ", "))")
            }
        }
        guard iterations >= 1000 else { throw ValidationError("--iterations must be at least 1000, got \(iterations)") }
        guard (1...101).contains(runs) else { throw ValidationError("--runs must be 1...101, got \(runs)") }
        if let allocator {
            for a in allocator.split(separator: ",") where AllocatorName(parsing: String(a)) == nil {
                throw ValidationError(PeerError.unknown(String(a)).message)
            }
        }
        guard (10...60_000).contains(shapeMs) else { throw ValidationError("--duration-ms must be 10...60000, got \(shapeMs)") }
        if let only, peerMode {
            for k in only.split(separator: ",") where !PeerBench.keys.contains(String(k)) {
                throw ValidationError("--only: unknown measurement '\(k)' for --peers; known: \(PeerBench.keys.joined(separator: ", "))")
            }
        } else if let only {
            for k in only.split(separator: ",") where !Bench.keys.contains(String(k)) {
                throw ValidationError("--only: unknown measurement '\(k)'; known: \(Bench.keys.joined(separator: ", "))")
            }
        }
        try RunCommand.refuseExisting(output)
        guard SlowPathPolicy.PCPLock(rawValue: pcpLock) != nil else { throw ValidationError("--pcp-lock must be auto, rseq or trylock, got '\(pcpLock)'") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1...256, got \(threads)") }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write(Data("pagestorm bench: this is a debug build; numbers are meaningless. Use `make bench` or `swift build -c release`.\n".utf8))
        #endif
        // 1 GiB per node unless told otherwise: batch 63, as any zone >= 1 GiB.
        var cfg = try topology.config(defaultPagesPerNode: (1 << 30) / topology.pageSize)
        cfg.policy.pcpLock = SlowPathPolicy.PCPLock(rawValue: pcpLock) ?? .auto
        if peerMode { return try runPeers(config: cfg) }
        if let probe {
            let failures = try Instructions.probe(config: cfg, key: probe, iterations: iterations)
            if failures > 0 { throw ExitCode(ExitStatus.toolFailed.rawValue) }
            return
        }
        if instructions { return try runInstructions() }
        var bench = Bench(config: cfg, iterations: iterations, runs: runs, threads: threads) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        bench.only = only.map { Set($0.split(separator: ",").map(String.init)) }
        let report: BenchReport
        do { report = try bench.run() } catch let e as ConfigError {
            throw ValidationError("\(e)")   // a configuration that cannot be built is bad input (exit 2)
        }
        print("pagestorm bench: \(report.machine.cpuModel), \(report.machine.cores) cores, \(report.machine.kernel), swift \(report.machine.swiftVersion), rev \(report.machine.gitRevision)")
        print("iterations \(iterations) x runs \(runs); medians; ratio = value / calibration in the same run; pcp_lock \(report.pcpLock ?? "trylock")")
        if let note = report.pcpLockNote { print(note) }
        print("")
        print(pad("measurement", 70) + pad("median", 10, right: true) + "  " + pad("unit", 8) + pad("ratio", 8, right: true) + "   runs")
        for r in report.rows {
            var line = pad(r.name, 70) + pad(fmt(r.median), 10, right: true) + "  " + pad(r.unit, 8) + pad(fmt(r.ratioToCalibration), 8, right: true)
            line += "   " + r.runs.map { fmt($0, 1) }.joined(separator: " ")
            print(line)
            for (k, v) in r.notes.sorted(by: { $0.key < $1.key }) { print(pad("  " + k.replacingOccurrences(of: "_", with: " "), 70) + pad(fmt(v) + "x", 10, right: true)) }
        }
        if let output {
            let path = try ResultsFile.write(report, to: output)
            print("\nwrote \(path)")
        }
    }
}

extension BenchCommand {
    /// `--instructions`: each single-threaded benchmark at --iterations/4 and --iterations pairs under callgrind.
    func runInstructions() throws {
        let keys = only.map { $0.split(separator: ",").map(String.init) } ?? Instructions.keys
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).path
        let self_ = FileManager.default.isExecutableFile(atPath: exe) ? exe : (Bundle.main.executablePath ?? exe)
        let high = iterations == 2_000_000 ? 200_000 : iterations
        if counter == .perf {
            let (ok, why) = PerfStat.available()
            if !ok {
                FileHandle.standardError.write(Data("pagestorm bench: --counter perf: \(why)\n".utf8))
                throw ExitCode(ExitStatus.badInput.rawValue)
            }
        }
        let report: InstructionsReport
        do {
            let log: (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
            var useCounter = counter
            if useCounter == .auto {
                let (ok, why) = PerfStat.available()
                useCounter = ok ? .perf : .callgrind
                if !ok { log("--counter auto: \(why); counting with callgrind") }
            }
            report = useCounter == .perf
                ? try PerfStat.measure(executable: self_, probeArgs: topology.passThroughArguments, keys: keys, low: high / 4, high: high, log: log)
                : try Instructions.measure(executable: self_, probeArgs: topology.passThroughArguments, keys: keys, low: high / 4, high: high, log: log)
        } catch let e as InstructionsError {
            FileHandle.standardError.write(Data("pagestorm bench: \(e)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("pagestorm bench --instructions: \(report.tool); rev \(report.machine.gitRevision)")
        print("instructions per alloc+free pair = (count at \(high) pairs - count at \(high / 4)) / \(high - high / 4)")
        print("")
        for r in report.rows {
            print(pad(r.name, 60) + pad(String(format: "%.2f", r.instructionsPerOp), 12, right: true) + "  instr/pair"
                  + (r.cpuLookupPerOp.map { String(format: "  (%.2f in sched_getcpu; %.2f without)", $0, r.instructionsPerOp - $0) } ?? ""))
        }
        if report.rows.contains(where: { $0.cpuLookupPerOp != nil }) {
            print("sched_getcpu: valgrind registers no rseq area, so each CPU lookup calls it; with glibc's rseq it is one load")
        }
        if let output {
            try ResultsFile.write(report, to: output)
            print("\nwrote \(output)")
        }
    }
}

func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
    s.count >= w ? s : (right ? String(repeating: " ", count: w - s.count) + s : s + String(repeating: " ", count: w - s.count))
}

enum InstructionCounter: String, CaseIterable, ExpressibleByArgument { case callgrind, perf, auto }
