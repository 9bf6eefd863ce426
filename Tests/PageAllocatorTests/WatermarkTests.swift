// __zone_watermark_ok(): reserve shares per flag set, the order adjustment,
// lowmem_reserve, and the same rules observed end to end: how far each kind
// of caller may drain a zone before the allocator says out of memory.
import Testing
@testable import PageAllocator
import Topology

@Suite struct WatermarkTests {
    static let plain: AllocFlags = []
    static let high: AllocFlags = .minReserve
    static let atomic: AllocFlags = [.minReserve, .nonBlock]
    static let oom: AllocFlags = .oom
    static let oomHigh: AllocFlags = [.oom, .minReserve]
    static let oomAtomic: AllocFlags = [.oom, .minReserve, .nonBlock]

    /// (mark, plain, HIGH, ATOMIC, OOM, OOM+HIGH, OOM+ATOMIC), in the
    /// kernel's integer steps: min -= min/2; min -= min/4; min -= min/2.
    @Test(arguments: [
        [1000, 1000, 500, 375, 500, 250, 188],
        [1024, 1024, 512, 384, 512, 256, 192],
        [5014, 5014, 2507, 1881, 2507, 1254, 941],
        [7, 7, 4, 3, 4, 2, 2],
        [1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ])
    func reserveThresholds(_ row: [Int]) {
        let mark = row[0]
        let flags = [Self.plain, Self.high, Self.atomic, Self.oom, Self.oomHigh, Self.oomAtomic]
        for (f, expected) in zip(flags, row.dropFirst()) {
            #expect(PageAllocator.reserveThreshold(mark: mark, flags: f) == expected, "mark \(mark) flags \(f.rawValue)")
        }
        // NON_BLOCK alone (GFP_NOWAIT) gets no reserve; kswapd and highatomic change nothing.
        #expect(PageAllocator.reserveThreshold(mark: mark, flags: .nonBlock) == mark)
        #expect(PageAllocator.reserveThreshold(mark: mark, flags: [.kswapd, .highAtomic]) == mark)
    }

    /// The shares of a large mark: 100%, 50%, 37.5%, 50%, 25%, 18.75%.
    @Test func reserveSharesOfALargeMark() {
        let mark = 1 << 20
        let shares = [(Self.plain, 1.0), (Self.high, 0.5), (Self.atomic, 0.375), (Self.oom, 0.5), (Self.oomHigh, 0.25), (Self.oomAtomic, 0.1875)]
        for (f, share) in shares {
            #expect(PageAllocator.reserveThreshold(mark: mark, flags: f) == Int(Double(mark) * share))
        }
    }

    @Test func zoneWatermarkOKBoundaries() {
        let none: (Int) -> Bool = { _ in Issue.record("order 0 asked for blocks"); return false }
        // Order 0: passes iff free > threshold + reserve.
        for (f, t) in [(Self.plain, 1000), (Self.high, 500), (Self.atomic, 375), (Self.oom, 500), (Self.oomHigh, 250), (Self.oomAtomic, 188)] {
            #expect(!PageAllocator.zoneWatermarkOK(free: t, order: 0, mark: 1000, lowmemReserve: 0, flags: f, hasBlock: none))
            #expect(PageAllocator.zoneWatermarkOK(free: t + 1, order: 0, mark: 1000, lowmemReserve: 0, flags: f, hasBlock: none))
            #expect(!PageAllocator.zoneWatermarkOK(free: t + 300, order: 0, mark: 1000, lowmemReserve: 300, flags: f, hasBlock: none))
            #expect(PageAllocator.zoneWatermarkOK(free: t + 301, order: 0, mark: 1000, lowmemReserve: 300, flags: f, hasBlock: none))
        }
        // NO_WATERMARKS passes even with nothing free.
        #expect(PageAllocator.zoneWatermarkOK(free: 0, order: 5, mark: 1000, lowmemReserve: 500, flags: .noWatermarks, hasBlock: { _ in false }))
        // Order 3: (1 << 3) - 1 = 7 pages are not usable, and some list of order >= 3 must hold a block.
        #expect(!PageAllocator.zoneWatermarkOK(free: 1007, order: 3, mark: 1000, lowmemReserve: 0, flags: [], hasBlock: { _ in true }))
        #expect(PageAllocator.zoneWatermarkOK(free: 1008, order: 3, mark: 1000, lowmemReserve: 0, flags: [], hasBlock: { _ in true }))
        var asked: [Int] = []
        #expect(!PageAllocator.zoneWatermarkOK(free: 5000, order: 3, mark: 1000, lowmemReserve: 0, flags: [], hasBlock: { asked.append($0); return false }))
        #expect(asked == Array(3...10))
        asked = []
        #expect(PageAllocator.zoneWatermarkOK(free: 5000, order: 3, mark: 1000, lowmemReserve: 0, flags: [], hasBlock: { asked.append($0); return $0 == 7 }))
        #expect(asked == [3, 4, 5, 6, 7])
    }

    // MARK: end to end

    /// One 2048-page zone with min_free_kbytes 4096: MIN 1024, LOW 1280.
    /// Order-4 allocations until the allocator refuses; the free pages left
    /// are the threshold of the caller's reserve access (the sequence
    /// 2048 - 16k stops at the first value with free - 15 <= threshold).
    @Test(arguments: [
        (GFP.kernel, ReserveAccess.none, 1024),
        (GFP.noFS, .none, 1024),
        (GFP.noWait, .none, 1024),                     // NON_BLOCK without __GFP_HIGH: no reserve
        (GFP([.kernel, .high]), .none, 512),            // MIN_RESERVE
        (GFP.atomic, .none, 384),                       // MIN_RESERVE + NON_BLOCK: 37.5%
        (GFP([.atomic, .noMemalloc]), .none, 512),      // NOMEMALLOC: not harder than __GFP_HIGH
        (GFP.kernel, .oomVictim, 512),                  // ALLOC_OOM
        (GFP.atomic, .oomVictim, 384),                  // OOM flags replace ATOMIC's, which went lower already
        (GFP.kernel, .memalloc, 0),                     // NO_WATERMARKS
        (GFP([.kernel, .memalloc]), .none, 0),
        (GFP([.kernel, .memalloc, .noMemalloc]), .memalloc, 1024),
    ])
    func callersDrainAZoneDownToTheirThreshold(flags: GFP, reserve: ReserveAccess, floor: Int) throws {
        let a = try makeSmall(pages: 2048, minFreeKbytes: 4096)
        let d = a.zoneDescription(0)
        #expect((d.min, d.low, d.high) == (1024, 1280, 1536))
        var held: [PageBlock] = []
        var refusal: AllocError?
        while refusal == nil && held.count <= 128 {
            do { held.append(try a.allocate(order: 4, flags: flags, cpu: CPUID(0), reserve: reserve)) } catch { refusal = error }
        }
        #expect(refusal == .outOfMemory(order: 4, flags: flags))
        #expect(a.freePages(zone: 0) == floor)
        #expect(held.count == (2048 - floor) / 16)
        let c = a.counters(zone: 0)
        // The fast path (LOW) served every allocation down to 1280 free: 48 of them.
        #expect(c[.allocSlowpath] == held.count - 48 + 1)
        #expect(c[.allocFail] == 1)
        #expect(c[.pgalloc] == held.count * 16)
        let acct = try a.validate()
        #expect(acct.allocated == held.count * 16 && acct.buddyFree == floor)
        // Everything works again after freeing.
        for b in held { try a.free(b) }
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
        // The order-10 block whose last piece came back last sits at the head of its list.
        let again = try a.allocate(order: 4, flags: flags, cpu: CPUID(0), reserve: reserve)
        #expect(again.pfn == PFN(held.count > 64 ? 1024 : 0))
        #expect(a.counters(zone: 0)[.allocSlowpath] == c[.allocSlowpath])
    }

    /// Order-0 requests: the same floors, give or take the per-CPU refill
    /// (batch 1 here, refills of 2): the buddy never goes below the floor by more
    /// than one refill, and pages cached on the list are used up first.
    @Test(arguments: [(GFP.kernel, 1024), (GFP.atomic, 384), (GFP([.kernel, .high]), 512)])
    func orderZeroFloors(flags: GFP, floor: Int) throws {
        let a = try makeSmall(pages: 2048, minFreeKbytes: 4096)
        var n = 0
        while true {
            do { _ = try a.allocate(order: 0, flags: flags, cpu: CPUID(0)); n += 1 } catch {
                #expect(error == .outOfMemory(order: 0, flags: flags))
                break
            }
        }
        let free = a.freePages(zone: 0)
        #expect(free <= floor && free >= floor - 1)
        // A caller that may block drains the per-CPU lists before giving up;
        // GFP_ATOMIC may leave the refill's second page cached.
        let cached = a.perCPUPages(zone: 0)
        #expect(flags.allowsBlocking ? cached == 0 : cached <= 1)
        #expect(n == 2048 - free - cached)
        try a.validate()
    }

    /// lowmem_reserve keeps Normal requests out of the lower zone's reserve:
    /// DMA 1024 + Normal 2048 pages, min_free_kbytes 3072 (MIN 256 and 512),
    /// DMA's ratio 4 so reserve[DMA][Normal] = 2048 / 4 = 512.
    @Test func lowmemReserveProtectsLowerZones() throws {
        let a = try makeAllocator(zones: [ZoneSpec(.dma, pages: 1024), ZoneSpec(.normal, pages: 2048)],
                                  minFreeKbytes: 3072, ratios: [4, 4, 32, 0])
        let dma = a.zoneDescription(0), normal = a.zoneDescription(1)
        #expect(dma.min == 256 && normal.min == 512)
        #expect(dma.lowmemReserve == [0, 0, 512, 512]) // no DMA32 zone above DMA
        var held: [PageBlock] = []
        func drain(_ flags: GFP) -> AllocError? {
            while true {
                do { held.append(try a.allocate(order: 4, flags: flags, cpu: CPUID(0))) } catch { return error }
            }
        }
        #expect(drain(.kernel) == .outOfMemory(order: 4, flags: .kernel))
        // Normal down to its MIN; DMA only down to MIN + reserve.
        #expect(a.freePages(zone: 1) == 512)
        #expect(a.freePages(zone: 0) == 256 + 512)
        // The highest zone first: Normal served until its LOW failed.
        #expect(held.first?.zoneIndex == 1)
        // A DMA request has no reserve against itself: it goes down to MIN.
        let dmaFlags: GFP = [.kernel, .dma]
        #expect(drain(dmaFlags) == .outOfMemory(order: 4, flags: dmaFlags))
        #expect(a.freePages(zone: 0) == 256)
        #expect(a.freePages(zone: 1) == 512)
        let acct = try a.validate()
        #expect(acct.allocated == held.count * 16 && acct.allocated == 3072 - 768)
        for b in held { try a.free(b) }
        let after = try a.validate()
        #expect(after.buddyFree == 3072)
    }

    /// The fast path's shortcut (one relaxed load, allowed CPUs x threshold of
    /// drift) decides exactly like the slow check when the counter is exact.
    @Test func fastCheckAgreesWithTheExactRule() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 4, zones: [ZoneSpec(.normal, pages: 4096)], minFreeKbytes: 4096)
        let z = a.zones[0]
        let low = a.zoneDescription(0).low
        for target in [4096, low + 200, low + 9, low + 1, low, low - 1, 10] {
            var held: [PageBlock] = []
            while a.freePages(zone: 0) > target {
                held.append(try a.allocate(order: 0, cpu: CPUID(held.count % 4), reserve: .memalloc))
            }
            a.drainAllCPUs()
            let free = a.freePages(zone: 0)
            for order in 0...4 {
                for (f, mark) in [(AllocFlags(), low), (Self.atomic, low), (Self.oom, low / 3)] {
                    let exact = PageAllocator.zoneWatermarkOK(free: free, order: order, mark: mark, lowmemReserve: 0, flags: f) { z.freeBlocks($0) > 0 }
                    #expect(a.watermarkOK(z, order: order, mark: mark, classzone: 2, flags: f) == exact,
                            "free \(free) order \(order) flags \(f.rawValue)")
                }
            }
            for (i, b) in held.enumerated() { try a.free(b, cpu: CPUID(i % 4)) }
            a.drainAllCPUs()
        }
    }

    // MARK: the per-CPU above-LOW flag

    /// The order-0 fast path trusts CPU 0's flag only while the zone is
    /// clearly above LOW. CPU 1 takes the zone down with order-4 blocks (the
    /// buddy path: folds of CPU 1's counter delta). CPU 0's flag must be gone
    /// by the time the exact count could fail LOW, and an order-0 request on
    /// CPU 0, whose per-CPU list still holds pages, must then take the exact
    /// check and fail LOW (the slow path), not use its cached pages.
    @Test func aZoneNearLowTakesTheExactCheck() throws {
        // 8 CPUs: a drift (8 x the vmstat threshold) wider than one order-4 block, so the zone can be
        // placed between LOW and the flag's mark below.
        let a = try makeAllocator(nodes: 1, cpusPerNode: 8, zones: [ZoneSpec(.normal, pages: 4096)], minFreeKbytes: 4096)
        let z = a.zones[0]
        let low = a.zoneDescription(0).low
        let fastMark = z.info.pointee.fastMark
        #expect(fastMark == low + z.info.pointee.maxDrift)
        #expect(!a.aboveLowFlag(zone: 0, cpu: 0))
        try a.free(try a.allocate(order: 0, cpu: CPUID(0)), cpu: CPUID(0))
        #expect(a.aboveLowFlag(zone: 0, cpu: 0), "the first check far above LOW sets the flag")
        #expect(a.perCPUPages(zone: 0) > 0)
        var held: [PageBlock] = []
        // Down to LOW: whenever CPU 0's flag is set, the exact count passes LOW by more than the drift.
        while a.freePages(zone: 0) > low {
            held.append(try a.allocate(order: 4, cpu: CPUID(1)))
            if a.aboveLowFlag(zone: 0, cpu: 0) {
                #expect(a.freePages(zone: 0) > low, "flag set with \(a.freePages(zone: 0)) free, LOW \(low)")
                #expect(z.freePages.pointee.load(ordering: .relaxed) > fastMark)
            }
        }
        #expect(!a.aboveLowFlag(zone: 0, cpu: 0))
        let slow = a.counters(zone: 0)[.allocSlowpath]
        let cached = a.perCPUPages(zone: 0)
        #expect(cached > 0)
        let b = try a.allocate(order: 0, cpu: CPUID(0))
        #expect(a.counters(zone: 0)[.allocSlowpath] == slow + 1, "LOW fails: the slow path, not CPU 0's cached pages")
        #expect(!a.aboveLowFlag(zone: 0, cpu: 0))
        // Give back until the zone is above LOW but within the drift of it: the fast path
        // passes the exact check without the slow path, and does not set the flag.
        try a.free(b, cpu: CPUID(0))
        while a.freePages(zone: 0) <= low, let h = held.popLast() { try a.free(h, cpu: CPUID(1)) }
        let free = a.freePages(zone: 0)
        if free > low && z.freePages.pointee.load(ordering: .relaxed) <= fastMark {
            let before = a.counters(zone: 0)[.allocSlowpath]
            try a.free(try a.allocate(order: 0, cpu: CPUID(0)), cpu: CPUID(0))
            #expect(a.counters(zone: 0)[.allocSlowpath] == before)
            #expect(!a.aboveLowFlag(zone: 0, cpu: 0), "\(free) free: not clearly above LOW")
        } else {
            Issue.record("could not place the zone between LOW and the flag's mark: \(free) free, LOW \(low), mark \(fastMark)")
        }
        for h in held { try a.free(h, cpu: CPUID(1)) }
        a.drainAllCPUs()
        // Far above again: the next check sets the flag.
        try a.free(try a.allocate(order: 0, cpu: CPUID(0)), cpu: CPUID(0))
        #expect(a.aboveLowFlag(zone: 0, cpu: 0))
        let acct = try a.validate()
        #expect(acct.allocated == 0)
    }

    /// A reservation that leaves the zone at the flag's mark clears every CPU's flag at once.
    @Test func aReservationClearsTheFlags() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 4096)], minFreeKbytes: 4096)
        let z = a.zones[0]
        for c in 0..<2 { try a.free(try a.allocate(order: 0, cpu: CPUID(c)), cpu: CPUID(c)) }
        #expect(a.aboveLowFlag(zone: 0, cpu: 0) && a.aboveLowFlag(zone: 0, cpu: 1))
        let tx = try #require(a.registerTask(name: "tx"))
        let room = z.freePages.pointee.load(ordering: .relaxed) - z.info.pointee.fastMark
        #expect(room > 10)
        let r = try a.reserve(pages: room - 5, owner: tx, cpu: CPUID(0))
        #expect(a.aboveLowFlag(zone: 0, cpu: 0) && a.aboveLowFlag(zone: 0, cpu: 1), "5 pages above the mark: kept")
        _ = try a.reserve(pages: 5, owner: tx, cpu: CPUID(0))
        #expect(!a.aboveLowFlag(zone: 0, cpu: 0) && !a.aboveLowFlag(zone: 0, cpu: 1), "at the mark: cleared everywhere")
        _ = a.commit(r)
        #expect(try a.validate().allocated == 0)
    }
}
