import Foundation
import PageAllocator
@testable import StressHarness
import Testing
import Topology

/// Replaying traces: the real fixture against an independent count of it,
/// and small synthetic traces for cross-CPU frees, anomalies, OOM, the
/// bounded wait and the trace clock. Every replay ends with validate() and
/// no page allocated.
@Suite struct ReplayTests {
    static func allocator(cpus: Int, pages: Int) throws -> PageAllocator {
        try PageAllocator(AllocatorConfig(topology: Topology.declared(nodes: 1, cpusPerNode: cpus), pagesPerNode: pages))
    }

    /// Builds an ftrace line.
    static func line(cpu: Int, us: Int, _ event: String, pfn: Int, order: Int = 0, gfp: String = "GFP_KERNEL", task: String = "t-1") -> String {
        let ts = "\(us / 1_000_000).\(String(format: "%06d", us % 1_000_000))"
        let head = "   \(task) [\(String(format: "%03d", cpu))] ..... \(ts): \(event): page=00000000abcdef01 pfn=0x\(String(pfn, radix: 16)) order=\(order)"
        return event == "mm_page_alloc" ? head + " migratetype=0 gfp_flags=\(gfp)" : head
    }

    static func run(_ lines: [String], cpus: Int = 2, pages: Int = 16384, options: ReplayOptions = ReplayOptions()) throws -> (ReplayResult, ReplayPlan) {
        let trace = try TraceParser.parse("# tracer: nop\n#P:\(cpus)\n" + lines.joined(separator: "\n"), fileName: "synthetic")
        let plan = ReplayPlan(trace: trace)
        let a = try allocator(cpus: cpus, pages: pages)
        let r = TraceReplay(plan: plan, allocator: a, options: options).run()
        return (r, plan)
    }

    /// Checks every replay must pass: the allocator is intact and holds nothing.
    static func expectClean(_ r: ReplayResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.validation == "ok", sourceLocation: sourceLocation)
        #expect(r.accounting?.allocated == 0, sourceLocation: sourceLocation)
        #expect(r.accounting?.allocatedBlocks == 0, sourceLocation: sourceLocation)
        #expect(r.totals.freeErrors == 0, sourceLocation: sourceLocation)
        if let a = r.accounting { #expect(a.buddyFree + a.perCPU == a.managed, sourceLocation: sourceLocation) }
    }

    // MARK: the real trace

    /// A deliberately simple count of the fixture, independent of TraceParser
    /// and ReplayPlan: `xz -dc`, whitespace tokens, a dictionary of live pfns.
    struct IndependentCount {
        var allocs = 0, pairedFrees = 0, pairedBatched = 0, unknownFrees = 0, unknownBatched = 0, crossCPU = 0
        var leftBlocks = 0, leftPages = 0
        var perCPUAllocs: [Int: Int] = [:]

        init(path: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["xz", "-dc", path]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            var live: [String: (order: Int, cpu: Int)] = [:]
            var leaked = 0, leakedPages = 0
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let tokens = line.split(separator: " ")
                guard let cpuTok = tokens.first(where: { $0.hasPrefix("[") && $0.hasSuffix("]") }),
                      let cpu = Int(cpuTok.dropFirst().dropLast()),
                      let pfn = tokens.first(where: { $0.hasPrefix("pfn=") }),
                      let orderTok = tokens.first(where: { $0.hasPrefix("order=") }),
                      let order = Int(orderTok.dropFirst(6)) else { continue }
                if tokens.contains("mm_page_alloc:") {
                    allocs += 1
                    perCPUAllocs[cpu, default: 0] += 1
                    if let old = live[String(pfn)] { leaked += 1; leakedPages += 1 << old.order }
                    live[String(pfn)] = (order, cpu)
                } else {
                    let batched = tokens.contains("mm_page_free_batched:")
                    if let a = live.removeValue(forKey: String(pfn)) {
                        if batched { pairedBatched += 1 } else { pairedFrees += 1 }
                        if a.cpu != cpu { crossCPU += 1 }
                    } else if batched {
                        unknownBatched += 1
                    } else {
                        unknownFrees += 1
                    }
                }
            }
            leftBlocks = live.count + leaked
            leftPages = live.values.reduce(0) { $0 + (1 << $1.order) } + leakedPages
        }
    }

    @Test func fixtureReplayMatchesAnIndependentCount() throws {
        let path = try ReplayFixture.path()
        let want = try IndependentCount(path: path)
        // Sanity of the count itself: the fixture is a real capture.
        #expect(want.allocs == 15013)
        #expect(want.pairedFrees + want.pairedBatched + want.unknownFrees + want.unknownBatched == 8819 + 6167)

        let (trace, _) = try TraceFile.load(path: path)
        let plan = ReplayPlan(trace: trace)
        #expect(plan.summary.allocEvents == want.allocs)
        #expect(plan.summary.pairedFrees == want.pairedFrees)
        #expect(plan.summary.pairedFreesBatched == want.pairedBatched)
        #expect(plan.summary.unknownFrees == want.unknownFrees)
        #expect(plan.summary.unknownFreesBatched == want.unknownBatched)
        #expect(plan.summary.crossCPUFrees == want.crossCPU)
        #expect(plan.summary.leftAllocatedBlocks == want.leftBlocks)
        #expect(plan.summary.leftAllocatedPages == want.leftPages)

        let a = try Self.allocator(cpus: trace.cpuCount, pages: plan.suggestedPagesPerNode())
        let r = TraceReplay(plan: plan, allocator: a).run()
        // Every traced allocation was made; every paired free freed its block.
        #expect(r.totals.allocs == want.allocs)
        #expect(r.totals.allocsFailed == 0)
        #expect(r.totals.frees == want.pairedFrees)
        #expect(r.totals.freesBatched == want.pairedBatched)
        #expect(r.totals.waitTimeouts == 0)
        #expect(r.perCPU.map(\.allocs) == [want.perCPUAllocs[0] ?? 0, want.perCPUAllocs[1] ?? 0])
        // What the trace never freed is freed by cleanup, and nothing else.
        #expect(r.cleanupBlocks == want.leftBlocks)
        #expect(r.cleanupPages == want.leftPages)
        #expect(r.verdict == "ok")
        Self.expectClean(r)
        // The allocator's own counters agree: every page allocated was freed.
        #expect(r.vmstat["pgalloc_normal"] == r.vmstat["pgfree"])
        #expect(r.vmstat["pgalloc_fail"] == 0)
        #expect(r.latencyNs["alloc"]?.count == want.allocs)
        #expect(r.latencyNs["free"]?.count == want.pairedFrees + want.pairedBatched)
    }

    // MARK: synthetic traces

    @Test func crossCPUFreesBothWays() throws {
        var lines: [String] = []
        var us = 1_000_000
        for i in 0..<300 { lines.append(Self.line(cpu: 0, us: us, "mm_page_alloc", pfn: 0x1000 + i)); us += 1 }
        for i in 0..<300 { lines.append(Self.line(cpu: 1, us: us, i % 2 == 0 ? "mm_page_free" : "mm_page_free_batched", pfn: 0x1000 + i)); us += 1 }
        for i in 0..<100 { lines.append(Self.line(cpu: 1, us: us, "mm_page_alloc", pfn: 0x2000 + i, order: i % 4)); us += 1 }
        for i in 0..<100 { lines.append(Self.line(cpu: 0, us: us, "mm_page_free", pfn: 0x2000 + i, order: i % 4)); us += 1 }
        let (r, plan) = try Self.run(lines)
        #expect(plan.summary.crossCPUFrees == 400)
        #expect(plan.summary.pairedFrees == 250)
        #expect(plan.summary.pairedFreesBatched == 150)
        #expect(r.totals.allocs == 400)
        #expect(r.totals.frees == 250)
        #expect(r.totals.freesBatched == 150)
        #expect(r.cleanupBlocks == 0)
        #expect(r.verdict == "ok")
        Self.expectClean(r)
    }

    /// CPU 1 frees, early in its own stream, blocks that CPU 0 allocates only
    /// after a long run of its own work: CPU 1's worker must wait for them.
    @Test func freeWaitsForItsAllocationOnAnotherCPU() throws {
        var lines: [String] = []
        var us = 1_000_000
        for i in 0..<2000 {
            lines.append(Self.line(cpu: 0, us: us, "mm_page_alloc", pfn: 0x10000 + i)); us += 1
            lines.append(Self.line(cpu: 0, us: us, "mm_page_free", pfn: 0x10000 + i)); us += 1
        }
        for i in 0..<50 { lines.append(Self.line(cpu: 0, us: us, "mm_page_alloc", pfn: 0x20000 + i, order: 1)); us += 1 }
        for i in 0..<50 { lines.append(Self.line(cpu: 1, us: us, "mm_page_free", pfn: 0x20000 + i, order: 1)); us += 1 }
        let (r, _) = try Self.run(lines)
        #expect(r.totals.allocs == 2050)
        #expect(r.totals.frees == 2050)
        #expect(r.totals.waitTimeouts == 0)
        #expect(r.cleanupBlocks == 0)
        Self.expectClean(r)
    }

    @Test func unknownFreesOrderMismatchesAndReallocatedPFNs() throws {
        let lines = [
            Self.line(cpu: 1, us: 1_000_000, "mm_page_free", pfn: 0x500), // before its allocation: unknown
            Self.line(cpu: 0, us: 1_000_001, "mm_page_alloc", pfn: 0x500),
            Self.line(cpu: 0, us: 1_000_002, "mm_page_alloc", pfn: 0x600, order: 2),
            Self.line(cpu: 0, us: 1_000_003, "mm_page_free", pfn: 0x600, order: 0), // order mismatch
            Self.line(cpu: 0, us: 1_000_004, "mm_page_alloc", pfn: 0x700, order: 1),
            Self.line(cpu: 1, us: 1_000_005, "mm_page_free_batched", pfn: 0x700), // prints order=0
            Self.line(cpu: 0, us: 1_000_006, "mm_page_alloc", pfn: 0x800),
            Self.line(cpu: 0, us: 1_000_007, "mm_page_alloc", pfn: 0x800), // 0x800 still live
            Self.line(cpu: 1, us: 1_000_008, "mm_page_free", pfn: 0x800),
            Self.line(cpu: 1, us: 1_000_009, "mm_page_free_batched", pfn: 0x900), // never allocated
            "   t-1 [000] ..... 1.000010: mm_page_alloc: page=0000000000000000 pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_NOWAIT",
        ]
        let (r, plan) = try Self.run(lines)
        let s = plan.summary
        #expect(s.unknownFrees == 1)
        #expect(s.unknownFreesBatched == 1)
        #expect(s.orderMismatches == 1)
        #expect(s.orderMismatchExamples.first?.hasPrefix("line 6: mm_page_free pfn 0x600 order 0, allocated with order 2 at line 5") == true)
        #expect(s.batchedFreesOfHigherOrder == 1)
        #expect(s.allocsOfLivePFN == 1)
        #expect(s.tracedAllocFailures == 1)
        #expect(s.leftAllocatedBlocks == 2) // 0x500 and the first 0x800
        #expect(s.leftAllocatedPages == 2)
        #expect(r.totals.allocs == 5)
        #expect(r.totals.frees == 2) // 0x600 (with its own order 2) and the second 0x800
        #expect(r.totals.freesBatched == 1)
        #expect(r.cleanupBlocks == 2)
        #expect(r.verdict == "ok")
        Self.expectClean(r)
    }

    @Test func outOfMemoryIsCountedAndFreesOfFailedBlocksAreSkipped() throws {
        var lines: [String] = []
        var us = 1_000_000
        // 200 order-3 blocks (1600 pages) into a 1024-page arena, GFP_NOWAIT
        // (no reclaim), then free them all on the same CPU (on another CPU a
        // fast replay could free each block right after its allocation).
        for i in 0..<200 { lines.append(Self.line(cpu: 0, us: us, "mm_page_alloc", pfn: 0x1000 + i * 8, order: 3, gfp: "GFP_NOWAIT")); us += 1 }
        for i in 0..<200 { lines.append(Self.line(cpu: 0, us: us, "mm_page_free", pfn: 0x1000 + i * 8, order: 3)); us += 1 }
        let (r, _) = try Self.run(lines, pages: 1024)
        #expect(r.totals.allocsFailed > 0)
        #expect(r.totals.allocs + r.totals.allocsFailed == 200)
        #expect(r.totals.frees == r.totals.allocs)
        #expect(r.totals.freesOfFailedAllocs == r.totals.allocsFailed)
        #expect(r.allocFailuresByReason["outOfMemory"] == r.totals.allocsFailed)
        #expect(r.allocFailuresByOrder["order3"] == r.totals.allocsFailed)
        #expect(r.vmstat["pgalloc_fail"] == r.totals.allocsFailed)
        #expect(r.verdict == "failures")
        #expect(r.exitStatus == .failures)
        Self.expectClean(r)
    }

    /// __GFP_NOFAIL into a full arena loops in the slow path, as in the kernel.
    /// The watchdog shuts the allocator down; the looping allocations end
    /// with `aborted`, the replay finishes with verdict livelock, and the
    /// allocator is intact. Also a zone smaller than one max-order block.
    @Test func watchdogEndsANofailLivelock() throws {
        var lines: [String] = []
        var us = 1_000_000
        for i in 0..<400 { lines.append(Self.line(cpu: 0, us: us, "mm_page_alloc", pfn: 0x1000 + i, gfp: "GFP_KERNEL|__GFP_NOFAIL")); us += 1 }
        for i in 0..<400 { lines.append(Self.line(cpu: 0, us: us, "mm_page_free", pfn: 0x1000 + i)); us += 1 }
        let opts = ReplayOptions(stallTimeoutNs: 200_000_000)
        let (r, _) = try Self.run(lines, cpus: 1, pages: 256, options: opts)
        #expect(r.verdict == "livelock")
        #expect(r.exitStatus == .livelock)
        #expect(r.watchdog.hasPrefix("trace cpu 0: one allocation made no progress"))
        #expect(r.totals.allocs > 0)
        #expect(r.totals.allocsFailed > 0)
        #expect(r.totals.allocs + r.totals.allocsFailed == 400)
        #expect(r.allocFailuresByReason["aborted"] == r.totals.allocsFailed)
        #expect(r.totals.frees == r.totals.allocs)
        Self.expectClean(r)
    }

    /// A free listed after its allocation but stamped earlier (not what ftrace
    /// writes, but a hand-edited file can): in trace time the free's worker
    /// waits for an allocation 1.5 s away, gives up after 20 ms, and cleanup
    /// frees the block. The replay ends; nothing hangs.
    @Test func waitForAnAllocationIsBounded() throws {
        let lines = [
            Self.line(cpu: 0, us: 2_500_000, "mm_page_alloc", pfn: 0x42),
            Self.line(cpu: 1, us: 1_000_000, "mm_page_free", pfn: 0x42),
        ]
        let opts = ReplayOptions(timing: .trace, speed: 1, waitTimeoutNs: 20_000_000)
        let (r, _) = try Self.run(lines, options: opts)
        #expect(r.totals.waitTimeouts == 1)
        #expect(r.totals.frees == 0)
        #expect(r.totals.allocs == 1)
        #expect(r.cleanupBlocks == 1)
        Self.expectClean(r)
    }

    /// The wait itself: a slot nobody fills returns `pending` at the deadline.
    @Test func slotWaitReturnsAtItsDeadline() {
        let slots = ReplaySlots(count: 2)
        let t0 = CycleClock.monotonicNanoseconds()
        #expect(slots.waitForState(1, deadlineNs: t0 + 20_000_000) == ReplaySlots.pending)
        let waited = CycleClock.monotonicNanoseconds() - t0
        #expect(waited >= 20_000_000)
        slots.markFailed(1)
        #expect(slots.waitForState(1, deadlineNs: t0) == ReplaySlots.failed)
    }

    @Test func traceTimingHonoursTimestampsAndSpeed() throws {
        // 41 events 1 ms apart on two CPUs: 40 ms of trace time.
        var lines: [String] = []
        for i in 0...40 {
            let cpu = i % 2
            lines.append(Self.line(cpu: cpu, us: 5_000_000 + i * 1000, i < 20 || i == 40 ? "mm_page_alloc" : "mm_page_free", pfn: 0x100 + (i < 20 ? i : i - 20)))
        }
        let (normal, plan) = try Self.run(lines, options: ReplayOptions(timing: .trace, speed: 1))
        #expect(plan.summary.spanNs == 40_000_000)
        #expect(normal.wallSeconds >= 0.039)
        #expect(normal.timing == "trace")
        Self.expectClean(normal)
        let (fast, _) = try Self.run(lines, options: ReplayOptions(timing: .trace, speed: 4))
        #expect(fast.wallSeconds >= 0.0099)
        #expect(fast.speed == 4)
        Self.expectClean(fast)
    }

    @Test func moreTracedCPUsThanAllocatorCPUs() throws {
        var lines: [String] = []
        for c in 0..<4 {
            for i in 0..<50 { lines.append(Self.line(cpu: c, us: 1_000_000 + c * 1000 + i, "mm_page_alloc", pfn: c << 16 | i)) }
        }
        for c in 0..<4 {
            for i in 0..<50 { lines.append(Self.line(cpu: 3 - c, us: 2_000_000 + c * 1000 + i, "mm_page_free", pfn: c << 16 | i)) }
        }
        let trace = try TraceParser.parse(lines.joined(separator: "\n"), fileName: "four")
        #expect(trace.cpuCount == 4)
        let a = try Self.allocator(cpus: 2, pages: 8192)
        let r = TraceReplay(trace: trace, allocator: a).run()
        #expect(r.perCPU.map(\.allocatorCPU) == [0, 1, 0, 1])
        #expect(r.totals.allocs == 200)
        #expect(r.totals.frees == 200)
        Self.expectClean(r)
    }

    @Test func reportRoundTripsThroughTheResultsFile() throws {
        let lines = [Self.line(cpu: 0, us: 1_000_000, "mm_page_alloc", pfn: 1), Self.line(cpu: 1, us: 1_000_001, "mm_page_free", pfn: 1)]
        let trace = try TraceParser.parse(lines.joined(separator: "\n"), fileName: "rt")
        let a = try Self.allocator(cpus: 2, pages: 8192)
        let r = TraceReplay(trace: trace, allocator: a).run()
        let src = TraceSource(path: "/x/rt", name: "rt", bytes: 10, sha256: String(repeating: "0", count: 64), compression: "none", textBytes: 10)
        let report = ReplayReport(startedAt: "2025-01-01T00:00:00Z", machine: .current(topology: a.topology), trace: trace, source: src,
                                  allocator: a, arenaSizedFrom: "trace peak", options: ReplayOptions(), result: r)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pagestorm-replay-\(getpid())-rt.json").path
        try ResultsFile.write(report, to: path)
        let back = try ResultsFile.read(ReplayReport.self, from: path)
        #expect(back.schemaVersion == "pagestorm.replay/1")
        #expect(back.trace.source == src)
        #expect(back.result.totals == r.totals)
        #expect(back.result.plan == r.plan)
        #expect(back.allocator.totalPages == 8192)
        try? FileManager.default.removeItem(atPath: path)
    }
}
