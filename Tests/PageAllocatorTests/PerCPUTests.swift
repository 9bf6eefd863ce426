// Per-CPU page lists: refill sizes, pcp_high auto-tuning, draining at
// high, the trylock fallback to the buddy, and the vmstat fold of
// NR_FREE_PAGES.
import Testing
@testable import PageAllocator
import Topology

@Suite struct PerCPUTests {
    /// A 1 GiB zone: batch 63, LOW 1286, high_min 1286, high_max 32768.
    @Test(arguments: 0...3)
    func refillTakesBatchShiftedByOrder(order: Int) throws {
        let a = try makeSmall(pages: 262_144)
        let d = a.zoneDescription(0)
        #expect((d.batch, d.low, d.highMin, d.highMax) == (63, 1286, 1286, 32768))
        let want = max(63 >> order, 2)     // 63, 31, 15, 7 blocks
        let b = try a.allocate(order: order, cpu: CPUID(0))
        let s = a.perCPUState(zone: 0, cpu: 0)
        #expect(s.count == (want - 1) << order)
        #expect(s.high == 1286 + 63)       // one refill raised high by a batch
        #expect(a.freePages(zone: 0) == 262_144 - (want << order))
        var c = a.counters(zone: 0)
        #expect(c[.pcpRefill] == 1 && c[.pcpRefillPages] == want << order && c[.pcpAllocHit] == 0)
        #expect(c[.pgalloc] == 1 << order)
        // The next allocation is a hit on the list, in pfn order.
        let b2 = try a.allocate(order: order, cpu: CPUID(0))
        #expect(b2.pfn.rawValue == b.pfn.rawValue + (1 << order))
        c = a.counters(zone: 0)
        #expect(c[.pcpRefill] == 1 && c[.pcpAllocHit] == 1 && c[.pgalloc] == 2 << order)
        let acct = try a.validate()
        #expect(acct.perCPU == (want - 2) << order && acct.allocated == 2 << order)
        try a.free(b, cpu: CPUID(0)); try a.free(b2, cpu: CPUID(0))
        #expect(a.drainAllCPUs() == want << order)
        #expect(a.freeBlocks(zone: 0)[10] == 256)
    }

    /// Freeing to a CPU's list drains `batch` pages to the buddy each time the
    /// count reaches `high`; refills raise `high` by a batch up to high_max;
    /// drain(cpu:) empties the lists and resets `high` to high_min.
    @Test func freeDrainsABatchAtHighAndRefillsRaiseHigh() throws {
        // 16384 pages, 2 CPUs: batch 3, LOW 320, high_min 160, high_max 1024.
        let a = try makeAllocator(nodes: 1, cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 16384)])
        let d = a.zoneDescription(0)
        #expect((d.batch, d.low, d.highMin, d.highMax) == (3, 320, 160, 1024))
        var held: [PageBlock] = []
        for _ in 0..<400 { held.append(try a.allocate(order: 0, cpu: CPUID(0))) }
        let refills = a.counters(zone: 0)[.pcpRefill]
        #expect(refills == 134)            // ceil(400 / 3)
        #expect(a.perCPUState(zone: 0, cpu: 0).high == min(160 + 3 * refills, 1024))
        #expect(a.perCPUState(zone: 0, cpu: 0).count == 134 * 3 - 400)
        // Free everything on CPU 1, whose high is still high_min.
        var count = 0, drains = 0
        let free0 = a.freePages(zone: 0)
        for (i, b) in held.enumerated() {
            try a.free(b, cpu: CPUID(1))
            count += 1
            if count >= 160 { count -= 3; drains += 1 }
            let s = a.perCPUState(zone: 0, cpu: 1)
            #expect(s.count == count && s.high == 160, "after \(i + 1) frees")
        }
        let c = a.counters(zone: 0)
        #expect(c[.pcpDrain] == drains && c[.pcpDrainPages] == 3 * drains && drains == 81)
        #expect(a.freePages(zone: 0) == free0 + 3 * drains)
        #expect(c[.pgfree] == 400)
        try a.validate()
        #expect(a.drain(cpu: CPUID(1)) == count)
        #expect(a.perCPUState(zone: 0, cpu: 1).count == 0)
        let left = a.perCPUState(zone: 0, cpu: 0).count
        #expect(a.drain(cpu: CPUID(0)) == left)
        #expect(a.perCPUState(zone: 0, cpu: 0).high == 160)
        #expect(a.freeBlocks(zone: 0)[10] == 16)
        let acct = try a.validate()
        #expect(acct.buddyFree == 16384)
    }

    @Test func aFixedHighFractionStopsTheAutoTuning() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 16384)], highFraction: 64)
        let d = a.zoneDescription(0)
        #expect(d.highMin == 16384 / 64 / 2 && d.highMax == d.highMin)
        for _ in 0..<50 { _ = try a.allocate(order: 0, cpu: CPUID(0)) }
        #expect(a.perCPUState(zone: 0, cpu: 0).high == 128)
    }

    /// Mixed orders on one list set: drain(cpu:) empties every order, and
    /// the pages merge back.
    @Test func drainEmptiesEveryOrder() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 4096)])
        var held: [PageBlock] = []
        for o in [0, 1, 2, 3, 3, 2, 1, 0, 0] { held.append(try a.allocate(order: o, cpu: CPUID(1))) }
        for b in held { try a.free(b, cpu: CPUID(1)) }
        let cached = a.perCPUState(zone: 0, cpu: 1).count
        #expect(cached > 0 && cached == a.perCPUPages(zone: 0))
        #expect(a.drain(cpu: CPUID(0)) == 0)
        #expect(a.drain(cpu: CPUID(1)) == cached)
        #expect(a.perCPUPages(zone: 0) == 0)
        #expect(a.freeBlocks(zone: 0)[10] == 4)
        try a.validate()
    }

    /// A CPU whose list is locked (another thread in it) falls back to the
    /// buddy for both allocation and free, and counts the contention.
    @Test func lockedListFallsBackToTheBuddy() throws {
        let a = try makeSmall(pages: 1024)
        let slot = a.zones[0].pcp(0)
        // The statistics take each CPU's lock to read it, so the test reads
        // them between its own lock holds (nothing runs in between).
        slot.lock.lock()
        let b = try a.allocate(order: 0, cpu: CPUID(0))
        slot.lock.unlock()
        #expect(b.pfn == PFN(0))
        // No refill: the buddy split straight down, nothing parked.
        #expect(a.freeBlocks(zone: 0) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        #expect(a.perCPUState(zone: 0, cpu: 0).count == 0)
        var c = a.counters(zone: 0)
        #expect(c[.pcpLockContended] == 1 && c[.pcpRefill] == 0 && c[.pgalloc] == 1)
        slot.lock.lock()
        try a.free(b, cpu: CPUID(0))
        slot.lock.unlock()
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        c = a.counters(zone: 0)
        #expect(c[.pcpLockContended] == 2 && c[.pgfree] == 1)
        // Misuse is still caught on the buddy path.
        slot.lock.lock()
        #expect(throws: AllocError.doubleFree(pfn: 0, order: 10)) { try a.free(b, cpu: CPUID(0)) }
        slot.lock.unlock()
        try a.validate()
        // With the lock free again, the list is used.
        let d = try a.allocate(order: 0, cpu: CPUID(0))
        #expect(a.perCPUState(zone: 0, cpu: 0).count == 1)
        try a.free(d, cpu: CPUID(0))
    }

    /// NR_FREE_PAGES: the folded counter is within CPUs x threshold of the
    /// exact count, and the snapshot (counter + every CPU's delta) is exact.
    @Test func freePageCounterFoldsWithinTheThreshold() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 4, zones: [ZoneSpec(.normal, pages: 8192)])
        let z = a.zones[0]
        let t = a.zoneDescription(0).vmstatThreshold
        #expect(t == KernelFormulas.vmstatThreshold(managed: 8192, onlineCPUs: 4))
        var rng = SplitMix64(seed: 99)
        var held: [PageBlock] = []
        for step in 0..<1000 {
            if held.isEmpty || rng.chance(55) {
                if let b = try? a.allocate(order: rng.below(6), cpu: CPUID(rng.below(4))) { held.append(b) }
            } else {
                try a.free(held.remove(at: rng.below(held.count)), cpu: CPUID(rng.below(4)))
            }
            let exact = try a.validate().buddyFree
            #expect(a.freePages(zone: 0) == exact)
            let folded = z.freePages.pointee.load(ordering: .relaxed)
            #expect(abs(folded - exact) <= 4 * t, "step \(step): folded \(folded), exact \(exact)")
            for c in 0..<4 { #expect(abs(z.pcp(c).freeDelta.pointee.load(ordering: .relaxed)) <= t) }
        }
        for b in held { try a.free(b, cpu: CPUID(0)) }
    }

    @Test func vmstatLinesAddUp() throws {
        let a = try makeAllocator(nodes: 2, cpusPerNode: 1, zones: [ZoneSpec(.dma32, pages: 1024), ZoneSpec(.normal, pages: 2048)])
        let x = try a.allocate(order: 2, cpu: CPUID(0))                          // Normal, node 0
        let y = try a.allocate(order: 5, flags: [.kernel, .dma32], cpu: CPUID(1)) // DMA32, node 1
        let v = Dictionary(a.vmstat().map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(v["pgalloc_normal"] == 4 && v["pgalloc_dma32"] == 32)
        #expect(v["pgalloc_dma"] == nil && v["pgalloc_movable"] == nil)
        #expect(v["nr_free_pcp"] == a.allPerCPU().reduce(0, +))
        #expect(v["nr_free_pages"] == a.allFreePages().reduce(0, +))
        #expect(v["nr_free_pages"]! + v["nr_free_pcp"]! + 36 == 6144)
        #expect(v["numa_hit"] == 2 && v["numa_local"] == 2 && v["numa_miss"] == 0)
        #expect(v["pgfree"] == 0)
        try a.free(x, cpu: CPUID(1)); try a.free(y, cpu: CPUID(0))
        let w = Dictionary(a.vmstat().map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(w["pgfree"] == 36)
        // One cache line per page, like struct page: no false sharing between CPUs.
        #expect(a.metadataBytesPerPage == 64 && pageMetadataBytesPerPage == 64)
    }
}
