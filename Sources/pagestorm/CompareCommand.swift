import ArgumentParser
import Foundation
import StressHarness

extension CompareFormat: ExpressibleByArgument {}

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two results: files, sets of repetitions, or sweep directories (points paired by id); an mmtests-style table.",
        discussion: """
        BASE and NEW are each a results file (pagestorm.run/1, pagestorm.bench/1 or pagestorm.instructions/1), \
        several files separated by commas (repetitions), a directory of results files (repetitions), or a sweep \
        directory (<point id>/rep-<n>.json). Per metric: harmonic mean for rates, arithmetic mean otherwise, stddev, \
        coefficient of variation, min, max, the change in % (+ better, - worse), a Mann-Whitney U test (exact for \
        small samples) and a bootstrap 95% interval of the ratio of medians; *-12.3%* marks a significant change. \
        Exit codes: 0 compared; 2 bad input (missing or unreadable files, different schema versions); 3 the tool failed.
        """)

    @Argument(help: "The baseline: a results file, comma-separated files, a directory of repetitions, or a sweep directory.")
    var base: String
    @Argument(help: "The new results, in any of the same forms.")
    var new: String
    @Option(help: "Output format: text, markdown, json, csv.")
    var format: CompareFormat = .text
    @Option(help: "Write the output here instead of standard output.")
    var output: String?
    @Option(help: "Significance level of the U test.")
    var alpha: Double = 0.05
    @Option(help: "Only metrics whose id matches one of these globs (comma-separated), e.g. 'throughput/*,latency/*/p99'.")
    var metrics: String?
    @Flag(name: .customLong("trust-flagged"), help: "Let repetitions flagged untrustworthy (noise) decide timing changes.")
    var trustFlagged = false
    @Flag(inversion: .prefixedNo, help: "Pair repetitions by file name (rep-<n>.json: pagestorm ab's rounds) and mark timing changes by the paired rule. Default: paired when BASE and NEW are <dir>/a and <dir>/b of one pagestorm ab run (<dir>/ab.json).")
    var paired: Bool?

    func validate() throws {
        guard alpha > 0 && alpha < 1 else { throw ValidationError("--alpha must be between 0 and 1 (exclusive), got \(alpha)") }
    }

    func run() throws {
        var o = CompareOptions()
        o.alpha = alpha
        o.trustFlagged = trustFlagged
        o.metricFilter = metrics.map { $0.split(separator: ",").map(String.init) }
        let c: Comparison
        do {
            let bp = try ResultSet.load(base), np = try ResultSet.load(new)
            o.paired = try choosePairing(command: "compare", flag: paired, thresholds: nil, defaultPaired: false, base: base, new: new, basePoints: bp, newPoints: np)
            c = Comparer.compare(base: bp, new: np, baseName: base, newName: new, options: o)
        } catch let e as ExitCode { throw e } catch {
            FileHandle.standardError.write(Data("pagestorm compare: \(error)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        if c.points.isEmpty {
            FileHandle.standardError.write(Data("pagestorm compare: no point of \(new) pairs with a point of \(base) (points are paired by id)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        for p in c.points where p.baseReps < 2 || p.newReps < 2 {
            FileHandle.standardError.write(Data("pagestorm compare: warning: \(p.id.isEmpty ? "" : "point \(p.id): ")\(p.baseReps) vs \(p.newReps) repetitions: fewer than 2 a side, so no test; timing changes are shown, never marked significant\n".utf8))
        }
        try emit(CompareRender.render(c, as: format), to: output)
    }
}

/// Pairing for compare/check/ab: the flag, the thresholds file, the default, an ab manifest (see
/// PairingChoice). Asked for (flag or thresholds) but impossible: bad input, exit 2; found by
/// itself but impossible: a warning on stderr, unpaired.
func choosePairing(command: String, flag: Bool?, thresholds: Bool?, defaultPaired: Bool, base: String, new: String,
                   basePoints: [PointSet], newPoints: [PointSet]) throws -> Bool {
    let (want, source) = PairingChoice.resolve(flag: flag, thresholds: thresholds, defaultPaired: defaultPaired, base: base, new: new)
    guard want else { return false }
    if let problem = Comparer.pairingProblem(base: basePoints, new: newPoints) {
        if source == .flag || source == .thresholds {
            FileHandle.standardError.write(Data("pagestorm \(command): cannot pair the repetitions (\(source == .flag ? "--paired" : "paired = true in the thresholds file")): \(problem)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        FileHandle.standardError.write(Data("pagestorm \(command): warning: not paired (\(source.rawValue)): \(problem); timings decided by the U test\n".utf8))
        return false
    }
    if source == .abManifest { FileHandle.standardError.write(Data("pagestorm \(command): \(base) and \(new) are the two sides of a pagestorm ab run: timings paired by round (--no-paired to compare them as independent sets)\n".utf8)) }
    return true
}

/// Writes text to a file (atomically) or standard output; I/O failure is exit 3.
func emit(_ text: String, to path: String?) throws {
    guard let path else { print(text); return }
    do {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((text + "\n").utf8).write(to: url, options: .atomic)
    } catch {
        FileHandle.standardError.write(Data("pagestorm: cannot write \(path): \(error.localizedDescription)\n".utf8))
        throw ExitCode(ExitStatus.toolFailed.rawValue)
    }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "A CI regression gate: compare NEW with a baseline under thresholds and give a verdict with its own exit code.",
        discussion: """
        By default exact counters of deterministic runs and instructions per operation gate; timings only report \
        (a thresholds file can make them gate). A run flagged untrustworthy never decides a timing regression \
        unless trust_flagged = true. Exit codes: 0 unchanged; 10 regressed; 11 improved only; 12 no baseline; \
        2 bad input (missing NEW, an unreadable or malformed thresholds file, different schema versions); 3 the tool failed. \
        With $GITHUB_STEP_SUMMARY set, a Markdown summary is appended to that file.
        """)

    @Option(help: "The baseline (file, comma-separated files, directory of repetitions, or sweep directory). Missing: verdict no-baseline.")
    var baseline: String
    @Argument(help: "The new results, in any of the same forms.")
    var new: String
    @Option(help: "A thresholds file (TOML): alpha, trust_flagged, [[rule]] match/relative/absolute/worse/gate. See README.")
    var thresholds: String?
    @Option(help: "Print the verdict as: text (decisions that changed, headline, verdict) or json (every metric's decision).")
    var format: String = "text"
    @Option(help: "Also write the JSON verdict here.")
    var json: String?
    @Flag(help: "Also print the full comparison table.")
    var verbose = false
    @Flag(help: "Also append NEW to the history database (see pagestorm record), whatever the verdict.")
    var record = false
    @Option(help: "The history database --record appends to.")
    var db: String = History.defaultPath
    @Flag(inversion: .prefixedNo, help: "Decide timings with the paired rule on repetitions paired by file name (rep-<n>.json: pagestorm ab's rounds). Default: the thresholds file's `paired`, else paired when BASE and NEW are <dir>/a and <dir>/b of one pagestorm ab run.")
    var paired: Bool?

    func validate() throws {
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json, got \(format)") }
    }

    func run() throws {
        var th = Thresholds()
        if let thresholds {
            do { th = try Thresholds.load(path: thresholds) } catch {
                FileHandle.standardError.write(Data("pagestorm check: \(error)\n".utf8))
                throw ExitCode(ExitStatus.badInput.rawValue)
            }
        }
        let newPoints: [PointSet]
        do { newPoints = try ResultSet.load(new) } catch {
            FileHandle.standardError.write(Data("pagestorm check: \(error)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        var report: CheckReport
        if !FileManager.default.fileExists(atPath: baseline) && !baseline.contains(",") {
            report = CheckReport(verdict: .noBaseline, headline: nil, regressingPoints: [],
                                 decisions: [], warnings: ["no baseline at \(baseline)"], comparison: nil)
        } else {
            let basePoints: [PointSet]
            do { basePoints = try ResultSet.load(baseline) } catch {
                FileHandle.standardError.write(Data("pagestorm check: \(error)\n".utf8))
                throw ExitCode(ExitStatus.badInput.rawValue)
            }
            var o = CompareOptions()
            o.alpha = th.alpha
            o.trustFlagged = th.trustFlagged
            o.pairedRule = th.pairedRule
            o.paired = try choosePairing(command: "check", flag: paired, thresholds: th.paired, defaultPaired: false, base: baseline, new: new, basePoints: basePoints, newPoints: newPoints)
            let c = Comparer.compare(base: basePoints, new: newPoints, baseName: baseline, newName: new, options: o)
            report = Checker.decide(c, thresholds: th)
            if verbose && format == "text" { print(CompareRender.text(c)); print("") }
        }
        if format == "json" {
            print(String(decoding: try ResultsFile.encoder().encode(report), as: UTF8.self))
        } else {
            for w in report.warnings { print("warning: \(w)") }
            for d in report.decisions where d.decision != "unchanged" && (d.gate || d.decision != "not-significant") {
                print("\(d.point.isEmpty ? "" : "[\(d.point)] ")\(d.label) (\(d.unit)): \(d.decision)\(d.gate ? "" : " [reports only]"): \(d.reason)")
            }
            let gated = report.decisions.filter(\.gate).count
            print("checked \(report.decisions.count) metric(s), \(gated) gating, over \(report.comparison?.points.count ?? 0) point(s)")
            if !report.regressingPoints.filter({ !$0.isEmpty }).isEmpty { print("regressing points: \(report.regressingPoints.joined(separator: ", "))") }
            if let h = report.headline { print(h) }
            print("check: \(report.verdict.rawValue)")
        }
        if let json {
            do { try ResultsFile.write(report, to: json) } catch {
                FileHandle.standardError.write(Data("pagestorm check: cannot write \(json): \(error.localizedDescription)\n".utf8))
                throw ExitCode(ExitStatus.toolFailed.rawValue)
            }
        }
        if let summary = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !summary.isEmpty {
            let md = Checker.markdown(report)
            if let h = FileHandle(forWritingAtPath: summary) {
                h.seekToEndOfFile(); h.write(Data(md.utf8)); h.closeFile()
            } else if !FileManager.default.createFile(atPath: summary, contents: Data(md.utf8)) {
                FileHandle.standardError.write(Data("pagestorm check: cannot append to $GITHUB_STEP_SUMMARY (\(summary))\n".utf8))
            }
        }
        if record {
            do {
                let s = try History(path: db, create: true).record([new])
                print("recorded \(s.added) run(s) in \(db)\(s.alreadyThere > 0 ? "; \(s.alreadyThere) already there" : "")")
            } catch { throw historyFailure("check --record", error) }
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}
