import ArgumentParser
import Foundation
import PageAllocator
import StressHarness
import Topology

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a kernel page-allocation trace (ftrace kmem:mm_page_alloc, mm_page_free, mm_page_free_batched; plain, xz or gzip) on the allocator.",
        discussion: """
        One worker per traced CPU replays that CPU's events in order, with the traced order and gfp_flags; a free \
        frees the block allocated for the same pfn, on the freeing CPU. Frees of pfns the trace never allocated are \
        skipped and counted. At the end whatever is still allocated is freed, validate() runs, and the page \
        accounting is printed. Default topology: one node with as many CPUs as the trace (#P:N); default arena: \
        twice the trace's peak of live pages plus 16 MiB. See docs/replay.md. \
        Exit codes: 0 ok; 1 some allocations failed here; 2 bad trace or flags; 3 validate() failed; \
        4 livelock (an allocation looped past --stall-ms).
        """)

    enum Timing: String, ExpressibleByArgument, CaseIterable {
        case fast, trace
    }

    @Argument(help: "The trace: text of /sys/kernel/tracing/trace (or `trace-cmd report`), plain, xz- or gzip-compressed.")
    var file: String

    @Option(help: "fast: as fast as possible, each CPU's events in order; trace: honour the timestamps.")
    var timing: Timing = .fast

    @Option(help: "With --timing=trace: replay this many times faster than traced (0.5 = half speed).")
    var speed: Double?

    @Option(help: "Write the JSON results here (default: results/replay-NAME-TIMESTAMP.json).")
    var output: String?

    @Option(name: .customLong("wait-timeout-ms"), help: "How long a free waits for its allocation on another CPU before giving up.")
    var waitTimeoutMs: Int = 10_000

    @Option(name: .customLong("stall-ms"), help: "Watchdog: when one allocation loops this long (e.g. __GFP_NOFAIL in a full arena), shut the allocator down and end with verdict livelock (0 = never).")
    var stallMs: Int = 10_000

    @Flag(name: .customLong("no-pin"), help: "Do not pin workers to CPUs.")
    var noPin = false

    @OptionGroup var topology: TopologyOptions

    func validate() throws {
        if let speed {
            guard timing == .trace else { throw ValidationError("--speed needs --timing=trace (fast mode has no clock to scale)") }
            guard speed > 0, speed <= 1_000_000, speed.isFinite else { throw ValidationError("--speed must be > 0 and at most 1000000, got \(speed)") }
        }
        guard (1...3_600_000).contains(waitTimeoutMs) else { throw ValidationError("--wait-timeout-ms must be 1...3600000, got \(waitTimeoutMs)") }
        try RunCommand.refuseExisting(output)
        guard (0...3_600_000).contains(stallMs) else { throw ValidationError("--stall-ms must be 0...3600000, got \(stallMs)") }
    }

    func run() throws {
        let startedAt = Date()
        let trace: Trace, source: TraceSource
        do {
            (trace, source) = try TraceFile.load(path: file)
        } catch {
            FileHandle.standardError.write(Data("pagestorm replay: \(error)\n".utf8))
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        let plan = ReplayPlan(trace: trace)

        // The allocator: the trace's CPUs on one declared node unless topology
        // flags are given; an arena sized from the trace's peak unless given.
        let topologyGiven = topology.nodes != nil || topology.cpusPerNode != nil
        let arenaGiven = topology.arenaMiB != nil || topology.zones != nil
        var cfg = try topology.config(defaultPagesPerNode: plan.suggestedPagesPerNode(pageSize: topology.pageSize))
        if !topologyGiven {
            do { cfg.topology = try Topology.declared(nodes: 1, cpusPerNode: max(1, trace.cpuCount)) } catch { throw ValidationError("\(error)") }
        }
        let allocator: PageAllocator
        do { allocator = try PageAllocator(cfg) } catch { throw ValidationError("\(error)") }

        var options = ReplayOptions()
        options.timing = timing == .trace ? .trace : .fast
        options.speed = speed ?? 1
        options.waitTimeoutNs = UInt64(waitTimeoutMs) * 1_000_000
        options.pin = !noPin
        options.stallTimeoutNs = UInt64(stallMs) * 1_000_000

        printHeader(trace: trace, source: source, plan: plan, allocator: allocator, arenaGiven: arenaGiven, options: options)
        let result = TraceReplay(plan: plan, allocator: allocator, options: options).run()
        printResult(result, trace: trace, allocator: allocator)

        let report = ReplayReport(startedAt: ISO8601DateFormatter().string(from: startedAt), machine: .current(topology: allocator.topology),
                                  trace: trace, source: source, allocator: allocator,
                                  arenaSizedFrom: arenaGiven ? "flags" : "trace peak", options: options, result: result)
        var path = output ?? ReplayCommand.defaultOutput(traceName: source.name, at: startedAt)
        do {
            path = try ResultsFile.write(report, to: path)
        } catch {
            FileHandle.standardError.write(Data("pagestorm replay: cannot write \(path): \(error)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("wrote \(path)")
        if result.exitStatus != .ok { throw ExitCode(result.exitStatus.rawValue) }
    }

    /// results/replay-NAME-<ResultsFile.stamp>.json, NAME without .xz/.gz/.trace/.txt/.dat.
    static func defaultOutput(traceName: String, at date: Date) -> String {
        var name = traceName
        for ext in [".xz", ".gz", ".trace", ".txt", ".dat", ".log"] where name.hasSuffix(ext) && name.count > ext.count {
            name.removeLast(ext.count)
        }
        name = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        return "results/replay-\(name)-\(ResultsFile.stamp(date)).json"
    }

    func printHeader(trace: Trace, source: TraceSource, plan: ReplayPlan, allocator a: PageAllocator, arenaGiven: Bool, options: ReplayOptions) {
        let comp = source.compression == "none" ? "" : "\(source.compression), "
        let cpus = trace.declaredCPUs.map { "#P:\($0)" } ?? "\(trace.cpuCount) CPUs seen"
        print("pagestorm replay: \(source.name) (\(comp)\(source.bytes) bytes, sha256 \(source.sha256.prefix(16))...): \(trace.lineCount) lines, \(trace.style), \(cpus), span \(fmt(Double(plan.summary.spanNs) / 1e9, 3)) s")
        let zones = a.config.zones.map(\.description).joined(separator: ",")
        let sized = arenaGiven ? "from the flags" : "from the trace's peak of \(plan.summary.peakLivePages) live pages"
        print("allocator: \(a.topology); zones \(zones) per node, \(a.totalPages) pages of \(a.pageSize) bytes (\(sized)); min_free_kbytes \(a.minFreeKbytes)")
        if plan.cpuCount > a.cpuCount {
            print("note: the trace has \(plan.cpuCount) CPUs and the allocator \(a.cpuCount): trace CPU k replays on allocator CPU k % \(a.cpuCount)")
        }
        switch options.timing {
        case .fast: print("timing: fast (each CPU's events in order; a free waits for its allocation on another CPU)")
        case .trace: print("timing: trace timestamps at \(fmt(options.speed, 2))x speed")
        }
    }

    func printResult(_ r: ReplayResult, trace: Trace, allocator a: PageAllocator) {
        let s = r.plan
        print("")
        print("trace events  " + ["alloc", "alloc-fail", "free", "batched", "unknown-free", "unknown-batch", "cross-CPU"].map { pad($0, 14, right: true) }.joined())
        for e in r.traceCPUs {
            print(pad("  cpu\(e.traceCPU)", 14) + [e.allocs, e.tracedAllocFailures, e.frees, e.freesBatched, e.unknownFrees, e.unknownFreesBatched, e.crossCPUFrees].map { pad("\($0)", 14, right: true) }.joined())
        }
        print(pad("  total", 14) + [s.allocEvents - s.tracedAllocFailures, s.tracedAllocFailures, s.freeEvents, s.freeBatchedEvents, s.unknownFrees, s.unknownFreesBatched, s.crossCPUFrees].map { pad("\($0)", 14, right: true) }.joined())
        print("")
        var cols = ["allocs", "failed", "frees", "batched", "waits", "wait-ms", "timeouts"]
        if r.timing == "trace" { cols += ["late>1ms", "max-lag-ms"] }
        print("replayed      " + cols.map { pad($0, 11, right: true) }.joined())
        for c in r.perCPU + [r.totals] {
            let name = c.traceCPU < 0 ? "  total" : "  cpu\(c.traceCPU)->\(c.allocatorCPU)"
            var v = ["\(c.allocs)", "\(c.allocsFailed)", "\(c.frees)", "\(c.freesBatched)", "\(c.crossCPUWaits)", fmt(Double(c.crossCPUWaitNs) / 1e6, 1), "\(c.waitTimeouts)"]
            if r.timing == "trace" { v += ["\(c.lateOps)", fmt(Double(c.maxLagNs) / 1e6, 2)] }
            print(pad(name, 14) + v.map { pad($0, 11, right: true) }.joined())
        }
        print("")
        print("skipped (not replayed):")
        print("  frees of pfns with no allocation in the trace: \(s.unknownFrees) mm_page_free + \(s.unknownFreesBatched) mm_page_free_batched (allocated before the capture, or lost)")
        print("  allocations that failed in the traced kernel (NULL page): \(s.tracedAllocFailures)")
        print("  frees of blocks whose allocation failed here: \(r.totals.freesOfFailedAllocs)")
        let other = trace.otherEvents.isEmpty ? "none" : trace.otherEvents.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("  other events: \(other)")
        let lost = trace.lostEvents.isEmpty ? "none" : trace.lostEvents.sorted { $0.key < $1.key }.map { "cpu\($0.key) \($0.value)" }.joined(separator: ", ")
        print("  lost-event markers: \(lost)")
        if let inBuf = trace.entriesInBuffer, let written = trace.entriesWritten, written > inBuf {
            print("  the ring buffer overwrote \(written - inBuf) older events before the capture (entries-in-buffer/entries-written \(inBuf)/\(written))")
        }
        if !trace.unmodelledGFPFlags.isEmpty {
            print("  gfp flags this model has no bit for (ignored): " + trace.unmodelledGFPFlags.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
        }
        print("anomalies: mm_page_free order differs from the allocation: \(s.orderMismatches); mm_page_free_batched (prints order=0) of order>0 blocks: \(s.batchedFreesOfHigherOrder); allocations of a pfn the trace still held: \(s.allocsOfLivePFN)")
        for ex in s.orderMismatchExamples { print("  \(ex)") }
        if r.totals.allocsFailed > 0 {
            print("allocation failures here: \(r.totals.allocsFailed) (" + r.allocFailuresByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                  + "; " + r.allocFailuresByOrder.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
        } else {
            print("allocation failures here: 0")
        }
        if r.watchdog != "ok" {
            print("watchdog: \(r.watchdog)")
        }
        if r.totals.waitTimeouts > 0 {
            print("warning: \(r.totals.waitTimeouts) frees gave up waiting for their allocation on another CPU (--wait-timeout-ms); those blocks were freed at cleanup")
        }
        print("")
        print("throughput: \(r.totals.replayedOps) ops (allocs + frees) in \(fmt(r.wallSeconds, 3)) s = \(fmt(r.opsPerSecond / 1e6, 3)) M ops/s")
        print("latency ns    " + ["count", "p50", "p90", "p99", "p99.9", "max"].map { pad($0, 10, right: true) }.joined())
        for k in ["alloc", "free"] {
            guard let l = r.latencyNs[k] else { continue }
            print(pad("  \(k)", 14) + ["\(l.count)", fmt(l.p50, 0), fmt(l.p90, 0), fmt(l.p99, 0), fmt(l.p999, 0), fmt(l.max, 0)].map { pad($0, 10, right: true) }.joined())
        }
        print("")
        print("cleanup: freed \(r.cleanupBlocks) blocks (\(r.cleanupPages) pages) still allocated at the end (the trace left \(s.leftAllocatedBlocks) blocks, \(s.leftAllocatedPages) pages)")
        if let acct = r.accounting {
            print("validate(): ok; managed \(acct.managed) = buddy \(acct.buddyFree) + per-CPU \(acct.perCPU) + allocated \(acct.allocated) (\(acct.allocatedBlocks) blocks)")
        } else {
            print("validate(): FAILED\n\(r.validation)")
        }
        for e in r.freeErrorExamples { print("free refused: \(e)") }
        print("verdict: \(r.verdict)")
    }
}
