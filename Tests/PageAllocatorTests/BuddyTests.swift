// Split (expand) and merge (__free_one_page) on small allocators, checked
// through the free lists (buddyinfo rows) after every step.
import Testing
@testable import PageAllocator
import Topology

@Suite struct BuddyTests {
    /// Orders 0...10 from a fresh 1024-page zone: the block is the zone's
    /// first pfn, and the split leaves one free block at each order k...9.
    @Test(arguments: 0...10)
    func allocatingFromAFreshZoneSplitsTheTopBlock(order: Int) throws {
        let a = try makeSmall(pages: 1024)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        let b = try a.allocate(order: order, cpu: CPUID(0), reserve: .memalloc)
        #expect(b.pfn == a.zoneDescription(0).startPFN)
        #expect(b.order.rawValue == order && b.pages == 1 << order && b.byteCount == (1 << order) * 4096)
        #expect(b.node == NodeID(0) && b.zoneIndex == 0)
        // Orders up to 3 refill the per-CPU list with max(batch >> order, 2) = 2 blocks:
        // the second one is parked there. Draining puts it back (its buddy is allocated).
        let parked = order <= Order.pcpMax ? 1 << order : 0
        #expect(a.perCPUPages(zone: 0) == parked)
        a.drainAllCPUs()
        var expected = [Int](repeating: 0, count: Order.count)
        for o in order..<Order.maxOrder { expected[o] = 1 }
        #expect(a.freeBlocks(zone: 0) == expected)
        #expect(try a.validate().allocated == 1 << order)
        try a.free(b, cpu: CPUID(0))
        a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        let acct = try a.validate()
        #expect(acct.buddyFree == 1024 && acct.allocated == 0 && acct.perCPU == 0)
    }

    @Test func orderZeroWithoutDrainingAccountsForTheBatch() throws {
        let a = try makeSmall(pages: 1024)
        let b = try a.allocate(order: 0, cpu: CPUID(0))
        #expect(b.pfn == PFN(0))
        // The refill took pfn 0 and pfn 1 (split down from order 10); pfn 1 waits on the list.
        #expect(a.freeBlocks(zone: 0) == [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        #expect(a.perCPUState(zone: 0, cpu: 0).count == 1)
        let c = try a.allocate(order: 0, cpu: CPUID(0))
        #expect(c.pfn == PFN(1))
        #expect(a.perCPUPages(zone: 0) == 0)
        try a.free(b, cpu: CPUID(0))
        try a.free(c, cpu: CPUID(0))
        #expect(a.perCPUPages(zone: 0) == 2)
        #expect(a.drainAllCPUs() == 2)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        try a.validate()
    }

    /// expand() hands out the lowest pfn and pushes upper halves, so
    /// successive order-4 allocations walk the zone in pfn order.
    @Test func successiveSplitsWalkThePfnSpaceInOrder() throws {
        let a = try makeSmall(pages: 1024)
        var got: [PageBlock] = []
        for _ in 0..<64 { got.append(try a.allocate(order: 4, cpu: CPUID(0), reserve: .memalloc)) }
        #expect(got.map(\.pfn.rawValue) == Array(stride(from: 0, to: 1024, by: 16)))
        #expect(a.freeBlocks(zone: 0) == [Int](repeating: 0, count: 11))
        #expect(throws: AllocError.outOfMemory(order: 0, flags: .kernel)) {
            try a.allocate(order: 0, cpu: CPUID(0), reserve: .memalloc)
        }
        // Free in reverse: each free merges as far as its buddies allow.
        for b in got.reversed() { try a.free(b) ; try a.validate() }
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    }

    /// Blocks merge only with their buddy (pfn ^ (1 << order)), not with any neighbour.
    @Test func blocksMergeOnlyWithTheirBuddy() throws {
        let a = try makeSmall(pages: 1024)
        let b0 = try a.allocate(order: 4), b16 = try a.allocate(order: 4)
        let b32 = try a.allocate(order: 4), b48 = try a.allocate(order: 4)
        #expect([b0, b16, b32, b48].map(\.pfn.rawValue) == [0, 16, 32, 48])
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0])
        // 16 and 32 are adjacent but not buddies (16's buddy is 0, 32's is 48).
        try a.free(b16)
        try a.free(b32)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 2, 0, 1, 1, 1, 1, 0])
        try a.validate()
        // 48 merges with 32 into an order-5 block at 32, whose buddy (0) is still held.
        try a.free(b48)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
        try a.validate()
        // 0 merges with 16, then with 32, then all the way up.
        try a.free(b0)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        try a.validate()
    }

    /// The same on order-0 pages through the per-CPU lists, drained each time.
    @Test func orderZeroBuddiesMergeOnlyPairwise() throws {
        let a = try makeSmall(pages: 1024)
        var p: [PageBlock] = []
        for _ in 0..<4 { p.append(try a.allocate(order: 0, cpu: CPUID(0))) }
        #expect(p.map(\.pfn.rawValue) == [0, 1, 2, 3])
        a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        try a.free(p[1], cpu: CPUID(0)); try a.free(p[2], cpu: CPUID(0)); a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [2, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        try a.free(p[3], cpu: CPUID(0)); a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
        try a.free(p[0], cpu: CPUID(0)); a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        try a.validate()
    }

    /// A merged block goes to the tail of its list when its next-order buddy
    /// is free (buddy_merge_likely), else to the head; allocation takes the head.
    @Test func mergedBlockGoesToTheTailWhenAMergeIsLikely() throws {
        let a = try makeSmall(pages: 1024)
        var held: [Int: PageBlock] = [:]
        for _ in 0..<64 { let b = try a.allocate(order: 4, reserve: .memalloc); held[b.pfn.rawValue] = b }
        // 512: buddy 528 held, next-order buddy 544 held -> head. List 4: [512]
        try a.free(held.removeValue(forKey: 512)!)
        // 32 then 48 -> order-5 block at 32. List 4: [512], list 5: [32]
        try a.free(held.removeValue(forKey: 32)!)
        try a.free(held.removeValue(forKey: 48)!)
        #expect(a.freeBlocks(zone: 0)[4...5] == [1, 1])
        // 16: buddy 0 held, but its order-5 buddy 32 is free -> tail. List 4: [512, 16]
        try a.free(held.removeValue(forKey: 16)!)
        #expect(a.freeBlocks(zone: 0)[4] == 2)
        try a.validate()
        let first = try a.allocate(order: 4, reserve: .memalloc)
        let second = try a.allocate(order: 4, reserve: .memalloc)
        #expect(first.pfn == PFN(512))
        #expect(second.pfn == PFN(16))
        // A block freed with no likely merge goes to the head: it comes back first.
        try a.free(first)
        try a.free(held.removeValue(forKey: 768)!) // buddy 784 held, 800 held -> head
        #expect(try a.allocate(order: 4, reserve: .memalloc).pfn == PFN(768))
    }

    /// Zones that do not start on a max-order boundary: blocks never merge
    /// across the zone boundary even when the pfn buddy is free next door.
    @Test func noMergingAcrossZoneBoundaries() throws {
        let a = try makeAllocator(zones: [ZoneSpec(.dma, pages: 16), ZoneSpec(.normal, pages: 1008)])
        let dma = a.zoneDescription(0), normal = a.zoneDescription(1)
        #expect(dma.startPFN == PFN(0) && normal.startPFN == PFN(16))
        #expect(a.freeBlocks(zone: 0) == expectedSeed(start: 0, end: 16))
        #expect(a.freeBlocks(zone: 1) == expectedSeed(start: 16, end: 1024))
        #expect(a.freeBlocks(zone: 1) == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
        // GFP_KERNEL prefers Normal: its smallest order-4 block is pfn 16, whose buddy 0 is DMA's.
        let b = try a.allocate(order: 4)
        #expect(b.pfn == PFN(16) && b.zoneIndex == 1)
        try a.free(b)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(a.freeBlocks(zone: 1) == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0])
        try a.validate()
        // GFP_DMA takes pfn 0 from DMA.
        let d = try a.allocate(order: 4, flags: [.kernel, .dma], reserve: .memalloc)
        #expect(d.pfn == PFN(0) && d.zoneIndex == 0)
        try a.free(d)
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        try a.validate()
    }

    @Test(arguments: [(3840, 327_680 - 300_000), (1, 2047), (100, 1000), (1023, 1025), (4096, 5000)])
    func seedingIsMaximalAlignedBlocks(dmaPages: Int, normalPages: Int) throws {
        let a = try makeAllocator(nodes: 2, zones: [ZoneSpec(.dma, pages: dmaPages), ZoneSpec(.normal, pages: normalPages)])
        for zi in 0..<a.zoneCount {
            let d = a.zoneDescription(zi)
            #expect(a.freeBlocks(zone: zi) == expectedSeed(start: d.startPFN.rawValue, end: d.startPFN.rawValue + d.pages))
            #expect(a.freePages(zone: zi) == d.pages)
        }
        // Node 1 starts on the next 1024-page boundary after node 0.
        let node1 = a.zoneDescription(2).startPFN.rawValue
        #expect(node1 % 1024 == 0 && node1 >= dmaPages + normalPages && node1 < dmaPages + normalPages + 1024)
        let acct = try a.validate()
        #expect(acct.managed == 2 * (dmaPages + normalPages) && acct.buddyFree == acct.managed)
    }

    /// Every small layout: a DMA zone of d pages (which shifts where Normal
    /// starts) and a Normal zone of n pages. Allocate every page with mixed
    /// orders, free in a shuffled order, and the free lists must come back
    /// exactly as seeded.
    @Test(arguments: [1, 2, 3, 5, 8, 13, 16, 24])
    func everySmallLayoutAllocatesEverythingAndMergesBack(dmaPages: Int) throws {
        for normalPages in 1...72 {
            let a = try makeAllocator(zones: [ZoneSpec(.dma, pages: dmaPages), ZoneSpec(.normal, pages: normalPages)])
            let seeds = a.allFreeBlocks()
            #expect(seeds[0] == expectedSeed(start: 0, end: dmaPages))
            #expect(seeds[1] == expectedSeed(start: dmaPages, end: dmaPages + normalPages))
            var rng = SplitMix64(seed: UInt64(dmaPages * 1000 + normalPages))
            var held = Holdings(pageSize: 4096)
            while true {
                let order = rng.below(5)
                do {
                    let b = try a.allocate(order: order, cpu: CPUID(0), reserve: .memalloc)
                    if let p = held.add(b, tag: 7, allocator: a) { Issue.record("\(p)"); return }
                } catch .outOfMemory {
                    // PF_MEMALLOC skips reclaim and so the drain: drain by hand.
                    if order == 0 && a.drainAllCPUs() == 0 { break }
                } catch .requestLargerThanArena(let o, let largest) {
                    #expect(o == order && largest == max(dmaPages, normalPages) && 1 << o > largest)
                }
            }
            let full = try a.validate()
            #expect(full.allocated == dmaPages + normalPages && full.buddyFree == 0 && full.perCPU == 0,
                    "layout \(dmaPages)+\(normalPages): \(full)")
            #expect(held.pages == dmaPages + normalPages)
            while !held.blocks.isEmpty {
                let (b, ok) = held.remove(at: rng.below(held.blocks.count))
                #expect(ok)
                try a.free(b, cpu: CPUID(0))
            }
            a.drainAllCPUs()
            #expect(a.allFreeBlocks() == seeds, "layout \(dmaPages)+\(normalPages)")
            let acct = try a.validate()
            #expect(acct.buddyFree == dmaPages + normalPages)
        }
    }
}
