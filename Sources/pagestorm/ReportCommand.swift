import ArgumentParser
import Foundation
import StressHarness

/// `pagestorm report RESULTS... --output report.html`: one self-contained
/// HTML page of charts (docs/report.md).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draw results as one self-contained HTML page (inline SVG charts, no script, no network).",
        discussion: """
        RESULTS are run results files (pagestorm.run/1), sweep results folders (merged or not, or their summary.json), \
        debate files (pagestorm.debate/1), load curves (pagestorm.loadcurve/1) and NUMA matrices (pagestorm numa --output, \
        pagestorm.numa/1), in any mix; each becomes a section, in the order given. An unknown or unreadable input is one \
        error naming it (exit 2); nothing is written then.
        """)
    @Argument(help: "Results files and sweep folders.")
    var results: [String] = []
    @Option(name: .shortAndLong, help: "The HTML file to write (replaced if it exists).")
    var output: String = "report.html"

    func run() throws {
        guard !results.isEmpty else { throw failBadInput("report: give at least one results file or sweep folder") }
        var inputs: [ReportInput] = []
        for r in results {
            do { inputs.append(try ReportInput.load(r)) } catch { throw failBadInput("report: \(error)") }
        }
        var report = HTMLReport(inputs: inputs, generatedAt: ResultsFile.timestamp(Date()), revision: BuildStamp.revision)
        let html = report.html()
        do {
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(html.utf8).write(to: url, options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("pagestorm: report: cannot write \(output): \(error.localizedDescription)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("report: \(output) (\(inputs.count) input\(inputs.count == 1 ? "" : "s"), \(html.utf8.count / 1024) KiB)")
    }
}
