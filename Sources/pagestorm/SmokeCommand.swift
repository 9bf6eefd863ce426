import ArgumentParser
import Foundation
import PageAllocator
import StressHarness
import Synchronization

struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoke",
        abstract: "The default job: the built-in default workload (Workloads/default.toml) on every CPU, its summary and verdict, then zoneinfo.",
        discussion: "Topology and arena flags replace the workload's. Same exit codes as `run`.")
    @OptionGroup var topology: TopologyOptions

    @Option(name: .customLong("duration-ms"), help: "How long the workload runs (measured, after its 100 ms warm-up), in milliseconds (the same flag as `run`'s).")
    var durationMs: Int = 1000
    /// The old spelling, kept working but no longer shown.
    @Option(name: .customLong("milliseconds"), help: .hidden)
    var oldMilliseconds: Int?
    var milliseconds: Int { oldMilliseconds ?? durationMs }
    @Option(help: "Seed of the workers' generators.")
    var seed: UInt64 = 1
    @Option(help: "Also write the results JSON here.")
    var output: String?

    func validate() throws {
        guard (1...3_600_000).contains(milliseconds) else { throw ValidationError("--duration-ms must be 1...3600000, got \(milliseconds)") }
        try RunCommand.refuseExisting(output)
    }

    func run() throws {
        // 256 MiB per node unless told otherwise (the default workload's arena).
        let config = try topology.config(defaultPagesPerNode: (256 << 20) / topology.pageSize)
        let w = Workload.builtinDefault(machine: config.topology).applying(WorkloadOverrides(durationMs: milliseconds, seed: seed))
        let zoneinfo = Mutex<String>("")
        var options = RunOptions()
        options.allocatorConfig = config
        options.progress = true
        options.handleInterrupts = true
        options.afterRun = { a in
            let text = a.zoneinfo()
            zoneinfo.withLock { $0 = text }
        }
        let code = try RunCommand.execute(w, options: options, output: output, quiet: false, trailer: {
            print("")
            print(zoneinfo.withLock { $0 }, terminator: "")
        })
        if code != .ok { throw ExitCode(code.rawValue) }
    }
}
