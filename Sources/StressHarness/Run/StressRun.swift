import CNUMA
import Foundation
import Histogram
import PageAllocator
import Synchronization
import Topology

/// How a run is carried out (not what it runs: that is the workload).
public struct RunOptions: Sendable {
    /// The file the workload came from (nil: built-in), recorded in the results.
    public var workloadFile: String?
    /// Use this allocator configuration instead of the workload's topology and memory (smoke's flags).
    public var allocatorConfig: AllocatorConfig?
    /// Print a live progress line (only on a terminal).
    public var progress = false
    /// Stop cleanly on SIGINT (the CLI); off in tests that run in parallel.
    public var handleInterrupts = false
    /// Time the harness loop against the null backend first.
    public var measureOverhead = true
    public var shard = ShardInfo()
    /// Tests: behave as if Ctrl-C came this many ms after the start.
    public var interruptAfterMs: Int?
    /// How long workers get to stop once told to, and to finish clean-up.
    public var stopGraceMs = 10_000
    /// Status lines (progress goes to stdout separately).
    public var log: (@Sendable (String) -> Void)?
    /// Called with the allocator after the clean-up and validate(), before it
    /// is torn down (smoke prints its zoneinfo).
    public var afterRun: (@Sendable (PageAllocator) -> Void)?
    /// Where warning lines go as they happen: warn_alloc's allocation-failure
    /// warnings, stalls in the kernel's form, the caller loop's "possible
    /// memory allocation deadlock" (the CLI: stderr). nil: kept in the results only.
    public var warningSink: (@Sendable (String) -> Void)?

    public init() {}
}

/// The run could not be carried out at all (no results to write).
public struct RunFailure: Error, CustomStringConvertible {
    public let message: String
    public let status: ExitStatus
    public var description: String { message }
}

/// Runs a workload: builds the allocator, starts one pinned pthread per
/// worker behind a barrier, watches the clock, Ctrl-C and progress, stops
/// the workers (every wait bounded), frees everything, validates, and
/// returns the results.
public enum StressRun {
    public static func run(_ workload: Workload, options: RunOptions = RunOptions()) throws(RunFailure) -> RunResult {
        // A peer allocator (`[run] allocator`, `--allocator`) runs the same workers behind PeerBackend.
        if workload.allocatorName != .pagestorm { return try PeerRun.run(workload, peer: workload.allocatorName, options: options) }
        let setup = try RunSetup(workload, options: options)
        if options.handleInterrupts { Interrupt.install() }
        defer { if options.handleInterrupts { Interrupt.uninstall() } }
        let args = WorkerThreadArgs(setup)
        let threads = Threads.start(count: setup.n) { i in workerThread(i, args) }
        var supervisor = Supervisor(setup)
        supervisor.barrier()
        supervisor.watch()
        return Teardown(s: setup).finish(supervisor, threads: threads)
    }

    /// The harness's own cost per allocator call for this workload (see HarnessOverhead).
    public static func measureOverhead(_ w: Workload, draws: Int = 100_000) -> OverheadReport {
        let clock = CycleClock.calibrate(milliseconds: 20)
        let topology = (try? w.topology.build()) ?? Topology.discover()
        let timing = WorkerTiming(opsMode: true, opsTarget: draws, warmupTicks: 0, durationTicks: 0, bucketTicks: .max / 4, maxBuckets: 16,
                                  intervalTicks: 0, mulQ32: UInt64((clock.nsPerTick * 4_294_967_296.0).rounded()), nsPerTick: clock.nsPerTick,
                                  sampleMask: UInt64(w.run.sampleEvery - 1), pageSize: w.memory.pageSize)
        return HarnessOverhead.measure(plan: RunPlan(w, topology: topology), workload: w, timing: timing, draws: draws)
    }

    static func snapshot(_ a: PageAllocator) -> [ZoneCounters] { (0..<a.zoneCount).map { a.counters(zone: $0) } }
}

/// 12.3k, 4.56M, 7.89G.
func human(_ x: Double) -> String {
    let a = abs(x)
    if a >= 1e9 { return fmt(x / 1e9, 2) + "G" }
    if a >= 1e6 { return fmt(x / 1e6, 2) + "M" }
    if a >= 1e3 { return fmt(x / 1e3, 1) + "k" }
    return fmt(x, 0)
}
