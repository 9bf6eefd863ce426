import Testing
import PageAllocator
@testable import StressHarness

/// gate-eval's finer injection knob: a fraction of one more 8-byte word
/// touched per page, dithered over the allocations without a random draw
/// (`OpSpec.touchFraction`, `HotOp.nextTouchWords`).
@Suite struct TouchDitherTests {
    func timing() -> WorkerTiming {
        WorkerTiming(opsMode: true, opsTarget: 100, warmupTicks: 0, durationTicks: 0, bucketTicks: 1 << 40, maxBuckets: 4,
                     intervalTicks: 0, mulQ32: 1 << 32, nsPerTick: 1, sampleMask: 0, pageSize: 4096)
    }

    /// The compiled op of a one-op workload whose op touches `touch` bytes and `fraction` of a word more.
    func hotOp(touch: Int, fraction: Double?) throws -> HotOp {
        var w = try parse(small("[[group]]\nworkers = 1\n[[group.op]]\ntouch = \(touch)\n"))
        w.groups[0].ops[0].touchFraction = fraction
        let plan = RunPlan(w, topology: testMachine)
        return HotOp(plan.workers[0].ops[0], pool: -1)
    }

    @Test func theDithersMeanIsExact() throws {
        // A quarter: every fourth allocation gets the extra word, exactly.
        var q = try hotOp(touch: 64, fraction: 0.25)
        defer { q.destroy() }
        let quarter = (0..<4000).map { _ in q.nextTouchWords() }
        #expect(Set(quarter) == [8, 9])
        #expect(quarter.reduce(0, +) == 4000 * 8 + 1000)
        #expect((0..<4000).filter { quarter[$0] == 9 } == Array(stride(from: 3, to: 4000, by: 4)), "evenly spread, no draw")
        // 0.3 is not a binary fraction: in 2^-32 steps, the extra words of the first N allocations are
        // floor(N q / 2^32) exactly, for every N (within 1 of 0.3 N).
        var t = try hotOp(touch: 64, fraction: 0.3)
        defer { t.destroy() }
        let qf = UInt64(HotOp.q32(0.3))
        var extra: UInt64 = 0
        for n in 1...100_000 {
            extra += UInt64(t.nextTouchWords() - 8)
            if n % 997 == 0 || n == 100_000 {
                #expect(extra == (UInt64(n) * qf) >> 32, "after \(n)")
            }
        }
        #expect(abs(Double(extra) - 30_000) < 1)
        // Off (nil, 0, or a fraction that rounds to 0 in 2^-32 steps): touch / 8 words every time, the accumulator untouched.
        for f in [nil, 0, 1e-12] as [Double?] {
            var o = try hotOp(touch: 64, fraction: f)
            defer { o.destroy() }
            #expect(o.touchFractionQ32 == 0)
            #expect((0..<100).allSatisfy { _ in o.nextTouchWords() == 8 } && o.touchAccumulator == 0)
        }
        // An op that touches the whole page cannot take one more word: the plan drops the fraction.
        var full = try hotOp(touch: 4096, fraction: 0.5)
        defer { full.destroy() }
        #expect(full.touchFractionQ32 == 0 && full.nextTouchWords() == 512)
    }

    /// The extra word is written, remembered with the block, and checked before the free like the others.
    @Test func verifyChecksTheDitheredWord() throws {
        var w = try parse(small("[[group]]\nworkers = 1\n[[group.op]]\nfree = \"keep\"\nlive = 1\nprefill = true\ntouch = 64\n"))
        w.groups[0].ops[0].touchFraction = 0.75
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        WorkerTests.withNullWorker(w, memory: memory, timing: timing()) { worker in
            // One allocation's worth of the accumulator spent (0.75): the prefilled block is the one with the extra word.
            #expect(worker.mem.ops[0].nextTouchWords() == 8)
            worker.prefill()
            #expect(worker.mem.pools[0].count == 1)
            #expect(worker.mem.pools[0].slot(0).pointee.words == 9)
            let words = memory.assumingMemoryBound(to: UInt64.self)
            #expect(words[8] != 0, "the ninth word was written")
            #expect(words[9] == 0, "and no more")
            words[8] ^= 1 // one flipped bit in the dithered word
            #expect(worker.freeEverything() == (pools: 1, inbound: 0))
            #expect(worker.c.corruptions == 1)
            #expect(worker.record.firstProblem?.contains("page 0, word 8") == true)
        }
    }

    /// No random draw: a deterministic run with a fraction makes the same allocator calls as without
    /// (identical exact counters), and every touched word holds its pattern.
    @Test func theDitherDrawsNothingAndCorruptsNothing() throws {
        let base = try Deterministic.apply(try Workload.load(path: repoRoot.appendingPathComponent("Workloads/gate-timing.toml").path, machine: testMachine), ops: 20_000)
        var o = RunOptions()
        o.measureOverhead = false
        o.stopGraceMs = testStopGraceMs
        let plain = try StressRun.run(GateEval.variant(base, extraTouch: 40), options: o)
        let dithered = GateEval.variant(base, extraTouch: 41.5)
        #expect(dithered.groups[0].ops[0].touch == 104 && dithered.groups[0].ops[0].touchFraction == 0.1875)
        let d = try StressRun.run(dithered, options: o)
        for r in [plain, d] { #expect(r.memoryCheck.corruptions == 0 && r.memoryCheck.freeErrors == 0 && r.status.verdict == "ok") }
        #expect(d.throughput.operations == plain.throughput.operations && d.counters.vmstatDelta == plain.counters.vmstatDelta)
        #expect(d.operations.map(\.draws) == plain.operations.map(\.draws))
        #expect(d.workers.map(\.calls) == plain.workers.map(\.calls) && d.workers.map(\.failures) == plain.workers.map(\.failures))
    }
}
