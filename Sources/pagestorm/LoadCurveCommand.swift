import ArgumentParser
import Foundation
import StressHarness

struct LoadCurveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadcurve",
        abstract: "Run an open-loop workload at a series of offered rates and print latency against load, and the knee.",
        discussion: """
        Every open-loop group of the workload runs at each rate of --rates (operations per second per worker), one \
        run per rate, from the lowest. For each rate: offered rate (per worker and in total), achieved rate, whether \
        every worker kept its schedule, p50/p99/p99.9/max of the allocation calls (every allocation class merged, each \
        timed from its operation's intended start) and the schedule lag at the end. The knee is the highest rate whose \
        p99 stays under --p99-bound (and every lower rate's too). Writes results/loadcurve-<workload>-<UTC time>-<pid>.json \
        (schema pagestorm.loadcurve/1, in docs/harness.md). Exit codes: 0 the curve was measured (overloaded points \
        are part of a curve); 2 bad input; 3 a run ended in error; 130 interrupted by Ctrl-C, 143 by SIGTERM (the partial curve is written). \
        Build in release for numbers that mean anything.
        """)

    @Argument(help: "A workload file with at least one open-loop group (e.g. Workloads/open-loop-latency.toml).")
    var workload: String

    @Option(help: "Offered rates per worker, comma-separated, with k/M/G suffixes allowed: e.g. 10k,50k,100k,500k,1M,5M.")
    var rates: String
    @Option(name: .customLong("p99-bound"), help: "The knee's bound on p99: ns, or with a unit (500ns, 100us, 2ms, 1s).")
    var p99Bound: String

    @Option(name: .customLong("duration-ms"), help: "Measured time of each run, instead of the workload's.")
    var durationMs: Int?
    @Option(name: .customLong("warmup-ms"), help: "Warm-up of each run in ms (not measured).")
    var warmupMs: Int?
    @Option(help: "Seed of the workers' random generators.")
    var seed: UInt64?
    @Option(help: "Write the curve's JSON here (default: results/loadcurve-<workload>-<UTC time>.json).")
    var output: String?
    @Flag(name: .customLong("no-results"), help: "Do not write the JSON file.")
    var noResults = false
    @Flag(help: "Print only the table and the knee.")
    var quiet = false

    /// "10k" -> 10000; nil when not a number.
    static func parseRate(_ s: String) -> Double? {
        var t = s.trimmingCharacters(in: .whitespaces)
        var m = 1.0
        if let last = t.last, let f = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9][String(last)] { m = f; t.removeLast() }
        guard let v = Double(t) else { return nil }
        return v * m
    }

    /// "100us" -> 100000 ns; nil when not a duration.
    static func parseNs(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces)
        for (suffix, f) in [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)] where t.hasSuffix(suffix) {
            return Double(t.dropLast(suffix.count)).map { $0 * f }
        }
        return Double(t)
    }

    func parsedRates() throws -> [Double] {
        var out: [Double] = []
        for part in rates.split(separator: ",", omittingEmptySubsequences: false) {
            guard let r = Self.parseRate(String(part)) else {
                throw ValidationError("--rates: '\(part)' is not a rate (a number of operations per second per worker, e.g. 50000 or 50k)")
            }
            guard r.isFinite, r > 0, r <= 1e9 else { throw ValidationError("--rates: \(part) must be more than 0 and at most 1e9 operations per second per worker") }
            out.append(r)
        }
        guard Set(out).count == out.count else { throw ValidationError("--rates: a rate is given twice") }
        return out.sorted()
    }

    func validate() throws {
        _ = try parsedRates()
        guard let b = Self.parseNs(p99Bound), b.isFinite, b > 0 else {
            throw ValidationError("--p99-bound: '\(p99Bound)' is not a positive duration (ns, or 500ns, 100us, 2ms, 1s)")
        }
        if let d = durationMs, !(1...86_400_000).contains(d) { throw ValidationError("--duration-ms must be 1...86400000, got \(d)") }
        if let w = warmupMs, !(0...3_600_000).contains(w) { throw ValidationError("--warmup-ms must be 0...3600000, got \(w)") }
        if output != nil && noResults { throw ValidationError("--output and --no-results contradict each other") }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write(Data("pagestorm loadcurve: this is a debug build; the rates it can keep are meaningless. Use swift build -c release.\n".utf8))
        #endif
        func fail(_ message: String, _ status: ExitStatus) -> ExitCode {
            FileHandle.standardError.write(Data("pagestorm: \(message)\n".utf8))
            return ExitCode(status.rawValue)
        }
        let w: Workload
        do { w = try Workload.load(path: workload) } catch { throw fail("\(error)", .badInput) }
        var o = LoadCurve.Options(rates: try parsedRates(), p99BoundNs: Self.parseNs(p99Bound)!)
        o.overrides = WorkloadOverrides(durationMs: durationMs, warmupMs: warmupMs, seed: seed)
        o.run.workloadFile = workload
        o.run.handleInterrupts = true
        o.run.measureOverhead = false
        o.run.warningSink = RunCommand.stderrSink
        if !quiet {
            o.log = { line in FileHandle.standardError.write(Data(("loadcurve: " + line + "\n").utf8)) }
            do {
                let first = try LoadCurve.workloads(w, options: o)[0]
                let length = first.run.mode == "ops" ? "\(first.run.ops ?? 0) operations per worker" : "\(first.run.durationMs ?? 0) ms"
                let workers = first.groups.filter { $0.loop == "open" }.reduce(0) { $0 + $1.workers }
                print("pagestorm loadcurve: \(w.name) (\(workload)); \(workers) open-loop worker(s); \(o.rates.count) rate(s), each \(length) after \(first.run.warmupMs) ms warm-up; p99 bound \(p99Bound)")
            } catch { throw fail("\(error)", error.status) }
        }
        let curve: LoadCurveResult
        do { curve = try LoadCurve.run(w, workloadFile: workload, options: o) } catch { throw fail("\(error)", error.status) }
        for line in curve.table() { print(line) }
        if !noResults {
            let path = output ?? "results/loadcurve-\(curve.workload)-\(ResultsFile.stamp()).json"
            do {
                let written = try ResultsFile.write(curve, to: path, uniquify: output == nil)
                print("results: \(written)\(curve.partial ? " (partial)" : "")")
            } catch { throw fail("\(error)", .toolFailed) }
        }
        if curve.points.contains(where: { $0.verdict == "error" }) { throw ExitCode(ExitStatus.toolFailed.rawValue) }
        if curve.partial { throw ExitCode((curve.stoppedBy ?? .interrupted).rawValue) }
    }
}
