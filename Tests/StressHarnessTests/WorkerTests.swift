import Testing
import PageAllocator
@testable import StressHarness

/// The worker's building blocks on their own, against the null backend.
@Suite struct WorkerTests {
    func timing() -> WorkerTiming {
        WorkerTiming(opsMode: true, opsTarget: 100, warmupTicks: 0, durationTicks: 0, bucketTicks: 1 << 40, maxBuckets: 4,
                     intervalTicks: 0, mulQ32: 1 << 32, nsPerTick: 1, sampleMask: 0, pageSize: 4096)
    }

    @Test func corruptedPatternsAreCaught() throws {
        let w = try parse(small("[[group]]\nworkers = 1\n[[group.op]]\nfree = \"keep\"\nlive = 1\nprefill = true\ntouch = 64\n"))
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { memory.deallocate() }
        Self.withNullWorker(w, memory: memory, timing: timing()) { worker in
            worker.prefill()
            #expect(worker.mem.pools[0].count == 1)
            let words = memory.assumingMemoryBound(to: UInt64.self)
            #expect(words[0] != 0 && words[7] != 0, "the pattern was written")
            words[5] ^= 1 // one flipped bit in a touched word
            #expect(worker.freeEverything() == (pools: 1, inbound: 0))
            #expect(worker.c.corruptions == 1)
            #expect(worker.record.firstProblem?.contains("page 0, word 5") == true)
        }
    }

    /// The one worker of `w`'s single group against the null backend, its blocks in `memory`; `body` runs with it.
    static func withNullWorker<R>(_ w: Workload, memory: UnsafeMutableRawPointer, timing: WorkerTiming,
                                  _ body: (inout Worker<NullBackend>) throws -> R) rethrows -> R {
        let plan = RunPlan(w, topology: testMachine)
        let locks = NamedLocks(count: 0)
        defer { locks.destroy() }
        let rings = UnsafeMutablePointer<HandoffRing<Held<NullBlock>>>.allocate(capacity: 1)
        defer { rings.deallocate() }
        var worker = Worker<NullBackend>(plan: plan.workers[0], backend: NullBackend(scratch: memory), control: RunControl(workers: 1),
                                         timing: timing, rings: rings, locks: locks, lockCount: 0, seed: 1)
        return try body(&worker)
    }

    @Test func poolsReleaseInTheirOrder() {
        var p = Pool<Int>(capacity: 4)
        defer { p.buf.deallocate() }
        for i in 1...4 { p.pushBack(i) }
        #expect(p.popFront() == 1)     // fifo: oldest
        #expect(p.popBack() == 4)      // lifo: newest
        p.pushBack(5)                  // wraps around the ring
        #expect(p.remove(at: 0) == 2)  // random victim: the last takes its place
        #expect(p.count == 2)
        #expect(p.popFront() == 5 && p.popFront() == 3)
    }

    @Test func aliasTablesDrawByWeight() {
        let t = AliasTable(weights: [1, 0, 3], values: [10, 20, 30])
        defer { t.destroy() }
        var g = SplitMix64(seed: 9)
        var seen: [Int: Int] = [:]
        for _ in 0..<40_000 { seen[t.draw(g.next()), default: 0] += 1 }
        #expect(seen[20] == nil, "weight 0 is never drawn")
        let share = Double(seen[30] ?? 0) / 40_000
        #expect(share > 0.73 && share < 0.77, "30 has weight 3 of 4: \(share)")
    }

    @Test func handoffRingsAreBoundedAndOrdered() {
        let r = HandoffRing<Int>.make(capacity: 3)
        defer { r.destroy() }
        #expect(r.capacity == 4)
        for i in 0..<4 { #expect(r.tryPush(i)) }
        #expect(!r.tryPush(99), "a full ring refuses")
        #expect(r.tryPop() == 0 && r.tryPop() == 1)
        #expect(r.tryPush(4))
        #expect([r.tryPop(), r.tryPop(), r.tryPop(), r.tryPop()] == [2, 3, 4, nil])
    }
}
