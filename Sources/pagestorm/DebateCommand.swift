import ArgumentParser
import Foundation
import StressHarness

struct DebateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debate",
        abstract: "Run the scenarios of the 2015 allocation-failure debate under each policy argued for them, and print one table.",
        discussion: """
        Rows: each scenario file of Workloads/ (scenario1-9) under the policies that were argued for it (legacy, \
        kernel, retries=N, sync OOM + reserves, NOFAIL with and without emergency reserves, the caller loop, \
        NOFS allowed to fail, reservations, fault injection, memory groups). \
        Columns: successful allocations per second, p99.9 allocation latency, failures by level of need, OOM kills, \
        stalls and the verdict (for repeated rows, the verdicts over the seeds: the hang rate). Every run is bounded \
        by the watchdog. Writes results/debate-<UTC time>-<pid>.json and .md, and each run's results under \
        results/debate-<UTC time>-<pid>/. Build in release for numbers that mean anything.
        """)

    @Option(help: "Multiply every run's duration (and the watchdog's thresholds) by this, e.g. 0.25 for a quick table.")
    var scale: Double = 1
    @Option(help: "Runs (seeds 1...N) of each repeated row (the hang-rate rows).")
    var seeds: Int = 5
    @Option(help: "Only these scenario files, comma-separated (e.g. scenario1-oom-victim-lock).")
    var only: String?
    @Option(name: .customLong("workloads"), help: "The directory holding the scenario files.")
    var workloadsDir: String = "Workloads"
    @Option(name: .customLong("output-dir"), help: "Where the table and the runs' results go.")
    var outputDir: String = "results"
    @Flag(help: "Print only the table.")
    var quiet = false

    func validate() throws {
        let scenarios = ((try? FileManager.default.contentsOfDirectory(atPath: workloadsDir)) ?? []).filter { $0.hasPrefix("scenario") && $0.hasSuffix(".toml") }
        if scenarios.isEmpty {
            throw ValidationError("cannot find \(workloadsDir)/scenario*.toml (in \(FileManager.default.currentDirectoryPath)): run debate from the repository's root, or give --workloads DIR, the folder that holds the scenario files")
        }
        guard scale > 0 && scale <= 10 else { throw ValidationError("--scale must be more than 0 and at most 10, got \(scale)") }
        guard (1...100).contains(seeds) else { throw ValidationError("--seeds must be 1...100, got \(seeds)") }
        if let only {
            let known = Set(Debate.rows.map(\.scenario)).union(Debate.rows.map { String($0.scenario.dropLast(5)) })
            for s in only.split(separator: ",") where !known.contains(String(s)) {
                throw ValidationError("--only: no debate scenario is named '\(s)'; known: \(Set(Debate.rows.map { String($0.scenario.dropLast(5)) }).sorted().joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write(Data("pagestorm debate: this is a debug build; throughput and latency are meaningless. Use swift build -c release.\n".utf8))
        #endif
        let stamp = "debate-" + ResultsFile.stamp()
        var o = Debate.Options()
        o.scale = scale
        o.seeds = seeds
        o.workloadsDir = workloadsDir
        o.only = Set((only ?? "").split(separator: ",").map(String.init))
        o.runsDir = URL(fileURLWithPath: outputDir).appendingPathComponent(stamp).path
        if !quiet { o.log = { line in print(line); fflush(nil) } }
        let report: DebateReport
        do { report = try Debate.run(o) } catch let e as WorkloadError {
            FileHandle.standardError.write(Data("pagestorm: \(e)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        } catch let e as RunFailure {
            FileHandle.standardError.write(Data("pagestorm: \(e)\n".utf8))
            throw ExitCode(e.status.rawValue)
        }
        let md = report.markdown()
        print("")
        print(md)
        var json = URL(fileURLWithPath: outputDir).appendingPathComponent(stamp + ".json").path
        var mdPath = URL(fileURLWithPath: outputDir).appendingPathComponent(stamp + ".md").path
        do {
            json = try ResultsFile.write(report, to: json)
            mdPath = try ResultsFile.write(data: Data((md + "\n").utf8), to: mdPath)
        } catch {
            FileHandle.standardError.write(Data("pagestorm: cannot write \(json): \(error.localizedDescription)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("table: \(mdPath) and \(json); each run: \(o.runsDir!)/")
    }
}
