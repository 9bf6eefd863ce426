import ArgumentParser
import Foundation
import StressHarness

/// Reports a HistoryError with its exit code (2 bad input, 3 the tool failed).
func historyFailure(_ cmd: String, _ e: HistoryError) -> ExitCode {
    FileHandle.standardError.write(Data("pagestorm \(cmd): \(e.message)\n".utf8))
    return ExitCode(e.badInput ? ExitStatus.badInput.rawValue : ExitStatus.toolFailed.rawValue)
}

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Append results to the history database (SQLite, default results/history.sqlite); --rebuild DIR makes it again from the JSON results.",
        discussion: """
        Each RESULTS is a results file (pagestorm.run/1, pagestorm.bench/1, pagestorm.instructions/1), comma-separated \
        files, or a directory searched recursively (a sweep's <point>/rep-<n>.json files are recorded with their point). \
        Every run is keyed by the binary's revision, its start time, the machine and the workload (and sweep point), with \
        every metric compare reads. The same file recorded twice is recorded once. The JSON files stay the source of truth: \
        --rebuild DIR empties the database and records every results file under DIR. \
        Exit codes: 0 recorded; 2 bad input (a missing or malformed file, another schema version, a database that is not a \
        pagestorm history); 3 the tool failed.
        """)

    @Argument(help: "Results files, comma-separated files or directories.")
    var results: [String] = []
    @Option(help: "The history database.")
    var db: String = History.defaultPath
    @Option(help: "Empty the database and record every results file under this directory.")
    var rebuild: String?

    func validate() throws {
        if rebuild == nil && results.isEmpty { throw ValidationError("give results files or directories to record, or --rebuild DIR") }
        if rebuild != nil && !results.isEmpty { throw ValidationError("--rebuild DIR takes no other results (got \(results.joined(separator: " ")))") }
    }

    func run() throws {
        do {
            let h = try History(path: db, create: true)
            if let rebuild {
                let s = try h.rebuild(from: rebuild)
                print("rebuilt \(db) from \(rebuild): \(s.added) run(s)\(s.alreadyThere > 0 ? ", \(s.alreadyThere) duplicate file(s) recorded once" : "")")
            } else {
                let s = try h.record(results)
                print("recorded \(s.added) run(s) in \(db)\(s.alreadyThere > 0 ? "; \(s.alreadyThere) already there" : ""); \(try h.runCount()) run(s) in all")
            }
        } catch { throw historyFailure("record", error) }
    }
}

extension HistoryFormat: ExpressibleByArgument {}
enum HistoryFormat: String, CaseIterable { case text, json }
extension HistoryOrder: ExpressibleByArgument {}
enum HistoryOrder: String, CaseIterable { case time, commits }

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Print a metric's series over revisions from the history database and its change points (E-divisive means).",
        discussion: """
        Per workload (and sweep point) and machine: the runs in order of start time (or, with --order commits, of the \
        commit graph of --git's HEAD), consecutive runs of one revision \
        as one value (their median), and the change points that the E-divisive means method (Matteson & James 2014, \
        as MongoDB's CI and Hunter use it) finds: a permutation test (--permutations, seeded) decides each, and each \
        names the revision where the series changed, the medians before and after and the shift in %. Runs flagged \
        untrustworthy are left out of timing metrics unless --trust-flagged. METRIC is a metric id as compare prints \
        them in JSON, e.g. throughput/calls_per_s, latency/alloc o0 GFP_KERNEL/p99, instructions/order0.pcp.1t. \
        Exit codes: 0 printed; 2 bad input (no database, unknown metric, no run matching the filters); 3 the tool failed.
        """)

    @Argument(help: "The metric id.")
    var metric: String
    @Option(help: "Only this workload (its name, or bench / instructions).")
    var workload: String?
    @Option(help: "Only this sweep point.")
    var point: String?
    @Option(help: "Only machines whose description contains this.")
    var machine: String?
    @Option(help: "The history database.")
    var db: String = History.defaultPath
    @Option(help: "Permutations of the significance test of each change point.")
    var permutations: Int = 199
    @Option(name: .customLong("p-value"), help: "Significance level of a change point.")
    var pValue: Double = 0.05
    @Option(help: "Seed of the permutations.")
    var seed: UInt64 = 0x5EED
    @Option(name: .customLong("min-size"), help: "The fewest revisions on each side of a change point (at least 2).")
    var minSize: Int = 3
    @Flag(name: .customLong("trust-flagged"), help: "Keep runs flagged untrustworthy in timing series.")
    var trustFlagged = false
    @Option(help: "Output: text or json.")
    var format: HistoryFormat = .text
    @Option(help: "Order of the runs: time (start time) or commits (the commit graph of --git's HEAD, oldest first; runs of revisions not in it are left out and counted).")
    var order: HistoryOrder = .time
    @Option(help: "The git checkout whose commit graph --order commits uses.")
    var git: String = "."

    func validate() throws {
        guard (9...100_000).contains(permutations) else { throw ValidationError("--permutations must be 9...100000, got \(permutations)") }
        guard pValue > 0 && pValue < 1 else { throw ValidationError("--p-value must be between 0 and 1 (exclusive), got \(pValue)") }
        guard (2...1000).contains(minSize) else { throw ValidationError("--min-size must be 2...1000, got \(minSize)") }
    }

    func run() throws {
        let analyses: [HistoryAnalysis]
        do {
            let h = try History(path: db, create: false)
            let (info, series) = try h.samples(metric: metric, workload: workload, point: point, machine: machine)
            guard let info, !series.isEmpty else {
                let known = try h.metricIDs()
                if !known.contains(metric) {
                    let hint = Suggest.nearest(metric, among: known).map { "; did you mean '\($0)'?" } ?? ""
                    throw HistoryError("unknown metric '\(metric)' in \(db)\(hint) (\(known.count) metric(s) recorded, e.g. \(known.prefix(5).joined(separator: ", ")))")
                }
                throw HistoryError("no run in \(db) has \(metric) for\(workload.map { " workload \($0)" } ?? "")\(point.map { " point \($0)" } ?? "")\(machine.map { " machine *\($0)*" } ?? "")")
            }
            var d = EDivisive()
            d.permutations = permutations
            d.pValue = pValue
            d.seed = seed
            d.minSize = minSize
            let graph = order == .commits ? try CommitOrder.load(gitDir: git) : nil
            analyses = series.map { key, samples in
                guard let graph else {
                    return HistoryAnalysis.analyse(series: key, metric: metric, info: info, samples: samples, trustFlagged: trustFlagged, detector: d)
                }
                let (ordered, apart) = graph.order(samples)
                var a = HistoryAnalysis.analyse(series: key, metric: metric, info: info, samples: ordered, trustFlagged: trustFlagged, detector: d)
                a.order = "commits"
                a.notInCommitGraph = apart.count
                return a
            }
        } catch let e as HistoryError { throw historyFailure("history", e) }
        switch format {
        case .json: print(String(decoding: try ResultsFile.encoder().encode(analyses), as: UTF8.self))
        case .text: print(analyses.map { $0.text() }.joined(separator: "\n"), terminator: "")
        }
    }
}
