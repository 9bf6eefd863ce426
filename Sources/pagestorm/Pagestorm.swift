import ArgumentParser
import Foundation
import StressHarness

@main
struct Pagestorm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pagestorm",
        abstract: "A per-CPU-cached, NUMA-aware buddy page allocator modelled on Linux, and a stress harness for the allocation-failure policies of the 2015 debate.",
        discussion: """
        Exit codes: 0 ok; 1 the run's verdict is `failures`; 2 bad input (flags, workload, trace); \
        3 the tool failed (an invariant broke, I/O); 4 livelock; 5 deadlock; 6 overloaded (an open-loop worker \
        did not keep its rate); 130 interrupted; \
        check: 10 regressed, 11 improved only, 12 no baseline.
        """,
        version: "pagestorm \(BuildStamp.revision) (commit \(BuildStamp.commit)\(BuildStamp.commitDate.isEmpty ? "" : ", " + BuildStamp.commitDate)), swift \(MachineInfo.swiftCompilerVersion)",
        subcommands: [Smoke.self, RunCommand.self, DebateCommand.self, ReplayCommand.self, LoadCurveCommand.self, BuddyInfo.self, ZoneInfo.self, BenchCommand.self, SweepCommand.self, MergeCommand.self, ReportCommand.self, CompareCommand.self, CheckCommand.self, RecordCommand.self, HistoryCommand.self, ABCommand.self, GateEvalCommand.self, NumastatCommand.self, NumaCommand.self, FaultPagesCommand.self, KnobsCommand.self],
        defaultSubcommand: Smoke.self)

    /// Maps argument and validation errors to exit code 2 (bad input) instead
    /// of ArgumentParser's 64, and anything unexpected to 3.
    static func main() {
        // jemalloc needs more static TLS than glibc keeps for dlopen: the tool may start itself again (PeerAllocator).
        PeerAllocator.reexecForStaticTLS = true
        // A first word that is no subcommand (smoke takes no arguments, so it
        // cannot be one of smoke's): name it and the nearest subcommand.
        if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-") {
            let names = configuration.subcommands.map { $0._commandName } + ["help"]
            if !names.contains(first) {
                let hint = Suggest.nearest(first, among: names).map { "; did you mean '\($0)'?" } ?? ""
                FileHandle.standardError.write(Data("pagestorm: '\(first)' is not a subcommand\(hint) (subcommands: \(names.dropLast().joined(separator: ", ")); `pagestorm --help` says more)\n".utf8))
                Foundation.exit(ExitStatus.badInput.rawValue)
            }
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if let e = error as? ExitCode { Foundation.exit(e.rawValue) }
            FileHandle.standardError.write(Data(("pagestorm: " + fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? ExitStatus.badInput.rawValue : ExitStatus.toolFailed.rawValue)
        }
    }
}
