// Every misuse gives its typed AllocError and changes nothing: validate()
// passes and every free list, per-CPU list and counter of free pages is as
// it was before the call.
import Testing
@testable import PageAllocator
import Topology

@Suite struct MisuseTests {
    /// Runs `body`, which must throw `expected`, and checks that nothing moved.
    func refused(_ a: PageAllocator, _ expected: AllocError, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) throws {
        let before = try Snapshot(a)
        #expect(throws: expected, sourceLocation: sourceLocation) { try body() }
        let after = try Snapshot(a)
        #expect(after == before, "the refused call changed the allocator", sourceLocation: sourceLocation)
    }

    /// Two nodes, one Normal zone of 1024 pages each, 2 CPUs per node; some blocks held.
    func populated() throws -> (PageAllocator, [PageBlock]) {
        let a = try makeAllocator(nodes: 2, cpusPerNode: 2, zones: [ZoneSpec(.normal, pages: 1024)])
        var held: [PageBlock] = []
        for (i, o) in [0, 0, 1, 2, 3, 4, 5, 0, 2].enumerated() {
            held.append(try a.allocate(order: o, node: NodeID(i % 2), cpu: CPUID(i % 4)))
        }
        return (a, held)
    }

    @Test func doubleFreeFromThePerCPUList() throws {
        let (a, held) = try populated()
        let b = held[0]
        try a.free(b, cpu: CPUID(1))
        #expect(a.perCPUPages(zone: b.zoneIndex) > 0)
        try refused(a, .doubleFree(pfn: b.pfn.rawValue, order: 0)) { try a.free(b, cpu: CPUID(1)) }
        try refused(a, .doubleFree(pfn: b.pfn.rawValue, order: 0)) { try a.free(b, cpu: CPUID(3)) }
        try refused(a, .doubleFree(pfn: b.pfn.rawValue, order: 0)) { try a.free(pfn: b.pfn, order: .zero, cpu: CPUID(0)) }
    }

    @Test func doubleFreeInTheBuddy() throws {
        let (a, held) = try populated()
        let b = held[5] // order 4, freed straight to the buddy
        #expect(b.order.rawValue == 4)
        try a.free(b)
        try refused(a, .doubleFree(pfn: b.pfn.rawValue, order: 4)) { try a.free(b) }
        // Drained order-0 pages sit in the buddy as heads too.
        let c = held[1]
        try a.free(c, cpu: CPUID(0))
        a.drainAllCPUs()
        // It merged with its neighbour parked by the refill: now the head of a larger free block.
        let meta = a.zones[c.zoneIndex].meta[c.pfn.rawValue - a.zoneDescription(c.zoneIndex).startPFN.rawValue]
        #expect(meta.state == .buddy && meta.order > 0)
        try refused(a, .doubleFree(pfn: c.pfn.rawValue, order: Int(meta.order))) { try a.free(c, cpu: CPUID(0)) }
    }

    /// Freed, merged into a larger free block, then freed again.
    @Test func doubleFreeAfterTheBlockMerged() throws {
        let a = try makeSmall(pages: 1024)
        let x = try a.allocate(order: 4), y = try a.allocate(order: 4)
        #expect((x.pfn, y.pfn) == (PFN(0), PFN(16)))
        try a.free(y)
        try a.free(x) // merges with 16, and on up to order 10
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        // 16 is now a tail inside the order-10 block at 0.
        try refused(a, .doubleFree(pfn: 16, order: 4)) { try a.free(y) }
        // 0 heads the merged block, of order 10.
        try refused(a, .doubleFree(pfn: 0, order: 10)) { try a.free(x) }
        // The same through the per-CPU lists: two order-0 pages that merged after a drain.
        let p = try a.allocate(order: 0, cpu: CPUID(0)), q = try a.allocate(order: 0, cpu: CPUID(0))
        try a.free(q, cpu: CPUID(0)); try a.free(p, cpu: CPUID(0))
        a.drainAllCPUs()
        #expect(a.freeBlocks(zone: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        try refused(a, .doubleFree(pfn: q.pfn.rawValue, order: 0)) { try a.free(q, cpu: CPUID(0)) }
    }

    /// Pfns that were never handed out: inside or at the head of a free
    /// block, cached on a per-CPU list by a refill, or inside an allocated block.
    @Test func freeingAPfnNeverAllocated() throws {
        let a = try makeSmall(pages: 1024)
        // A fresh zone: pfn 0 heads the free order-10 block, pfn 5 is inside it.
        try refused(a, .notAllocated(pfn: 0)) { try a.free(pfn: PFN(0), order: .zero) }
        try refused(a, .notAllocated(pfn: 5)) { try a.free(pfn: PFN(5), order: .zero) }
        try refused(a, .notAllocated(pfn: 512)) { try a.free(pfn: PFN(512), order: try! Order(9)) }
        let b = try a.allocate(order: 2, cpu: CPUID(0)) // refill takes pfns 0 and 4; 4 waits on the list
        #expect(b.pfn == PFN(0))
        // Inside the allocated block.
        for p in 1...3 {
            try refused(a, .notAllocated(pfn: p)) { try a.free(pfn: PFN(p), order: .zero) }
            try refused(a, .notAllocated(pfn: p)) { try a.free(pfn: PFN(p), order: try! Order(2)) }
        }
        // On the per-CPU list, never handed out.
        #expect(a.perCPUState(zone: 0, cpu: 0).count == 4)
        try refused(a, .notAllocated(pfn: 4)) { try a.free(pfn: PFN(4), order: try! Order(2)) }
        // A free buddy head made by the split.
        try refused(a, .notAllocated(pfn: 8)) { try a.free(pfn: PFN(8), order: try! Order(3)) }
        try refused(a, .notAllocated(pfn: 8)) { try a.free(pfn: PFN(8), order: try! Order(5)) }
        try a.free(b, cpu: CPUID(0))
    }

    @Test func wrongOrder() throws {
        let (a, held) = try populated()
        let b2 = held[3], b5 = held[6]
        #expect(b2.order.rawValue == 2 && b5.order.rawValue == 5)
        for given in [0, 1, 3, 4, 10] {
            try refused(a, .wrongOrder(pfn: b2.pfn.rawValue, allocated: 2, given: given)) {
                try a.free(pfn: b2.pfn, order: try! Order(given), cpu: CPUID(2))
            }
            try refused(a, .wrongOrder(pfn: b5.pfn.rawValue, allocated: 5, given: given)) {
                try a.free(pfn: b5.pfn, order: try! Order(given), cpu: CPUID(0))
            }
        }
        // The right order still works afterwards.
        try a.free(pfn: b2.pfn, order: b2.order, cpu: CPUID(2))
        try a.free(pfn: b5.pfn, order: b5.order)
        try a.validate()
    }

    @Test func orderOutOfRange() throws {
        let (a, _) = try populated()
        #expect(throws: AllocError.invalidOrder(11)) { try Order(11) }
        #expect(throws: AllocError.invalidOrder(-1)) { try Order(-1) }
        #expect(throws: AllocError.invalidOrder(Int.max)) { try Order(Int.max) }
        #expect(try Order(10).pages == 1024 && Order.zero.pages == 1)
        try refused(a, .invalidOrder(11)) { _ = try a.allocate(order: 11) }
        try refused(a, .invalidOrder(-3)) { _ = try a.allocate(order: -3, cpu: CPUID(0)) }
        try refused(a, .invalidOrder(64)) { _ = try a.allocate(order: 64, flags: .atomic) }
    }

    @Test func nodeThatDoesNotExist() throws {
        let (a, held) = try populated()
        try refused(a, .noSuchNode(2, nodeCount: 2)) { _ = try a.allocate(order: 0, node: NodeID(2), cpu: CPUID(0)) }
        try refused(a, .noSuchNode(-1, nodeCount: 2)) { _ = try a.allocate(order: 4, node: NodeID(-1), cpu: CPUID(0)) }
        try refused(a, .noSuchNode(255, nodeCount: 2)) { _ = try a.allocate(order: 0, node: NodeID(255)) }
        _ = held
    }

    @Test func cpuThatDoesNotExist() throws {
        let (a, held) = try populated()
        try refused(a, .noSuchCPU(4, cpuCount: 4)) { _ = try a.allocate(order: 0, cpu: CPUID(4)) }
        try refused(a, .noSuchCPU(-1, cpuCount: 4)) { _ = try a.allocate(order: 5, cpu: CPUID(-1)) }
        try refused(a, .noSuchCPU(4, cpuCount: 4)) { try a.free(held[0], cpu: CPUID(4)) }
        try refused(a, .noSuchCPU(-2, cpuCount: 4)) { try a.free(held[5], cpu: CPUID(-2)) }
        try refused(a, .noSuchCPU(9, cpuCount: 4)) { try a.free(pfn: held[2].pfn, order: held[2].order, cpu: CPUID(9)) }
        // The block is still allocated: freeing it properly works.
        try a.free(held[0], cpu: CPUID(3))
    }

    @Test func requestLargerThanTheArena() throws {
        let a = try makeSmall(pages: 512)
        try refused(a, .requestLargerThanArena(order: 10, largestZonePages: 512)) { _ = try a.allocate(order: 10) }
        try refused(a, .requestLargerThanArena(order: 10, largestZonePages: 512)) { _ = try a.allocate(order: 10, reserve: .memalloc) }
        // Order 9 fits (with access to the reserves).
        let b = try a.allocate(order: 9, reserve: .memalloc)
        #expect(b.pages == 512)
        try a.free(b)
        // Two zones: the largest eligible one counts; GFP_DMA may only use DMA.
        let z = try makeAllocator(zones: [ZoneSpec(.dma, pages: 100), ZoneSpec(.normal, pages: 300)])
        try refused(z, .requestLargerThanArena(order: 9, largestZonePages: 300)) { _ = try z.allocate(order: 9) }
        try refused(z, .requestLargerThanArena(order: 7, largestZonePages: 100)) { _ = try z.allocate(order: 7, flags: [.kernel, .dma]) }
    }

    @Test func pfnOutsideTheAllocator() throws {
        // Node 0 spans pfns 0..<1500; node 1 starts at 2048.
        let a = try makeAllocator(nodes: 2, zones: [ZoneSpec(.normal, pages: 1500)])
        #expect(a.zoneDescription(1).startPFN == PFN(2048))
        let held = try a.allocate(order: 3, node: NodeID(1))
        for p in [-1, 1500, 1600, 2047, 2048 + 1500, 1 << 20, Int.max] {
            try refused(a, .pfnOutOfRange(pfn: p)) { try a.free(pfn: PFN(p), order: .zero) }
        }
        // A block naming a zone the allocator does not have, or a pfn outside its zone.
        let forged = PageBlock(address: held.address, pfn: 5, order: 0, node: 0, zone: 7, pageShift: 12)
        try refused(a, .pfnOutOfRange(pfn: 5)) { try a.free(forged) }
        let outside = PageBlock(address: held.address, pfn: 1600, order: 0, node: 0, zone: 0, pageShift: 12)
        try refused(a, .pfnOutOfRange(pfn: 1600)) { try a.free(outside) }
        let otherZone = PageBlock(address: held.address, pfn: held.pfn.rawValue, order: 3, node: 0, zone: 0, pageShift: 12)
        try refused(a, .pfnOutOfRange(pfn: held.pfn.rawValue)) { try a.free(otherZone) }
        try a.free(held)
    }

    @Test func flagsNamingAZoneTheTopologyLacks() throws {
        let a = try makeAllocator(nodes: 2, zones: [ZoneSpec(.normal, pages: 1024)])
        let dma: GFP = [.kernel, .dma], dma32: GFP = [.kernel, .dma32]
        try refused(a, .noEligibleZone(flags: dma)) { _ = try a.allocate(order: 0, flags: dma) }
        try refused(a, .noEligibleZone(flags: dma32)) { _ = try a.allocate(order: 3, flags: dma32, node: NodeID(1)) }
        try refused(a, .noEligibleZone(flags: [.atomic, .dma])) { _ = try a.allocate(order: 0, flags: [.atomic, .dma], reserve: .memalloc) }
        // A DMA32 zone serves GFP_DMA32 but not GFP_DMA.
        let b = try makeAllocator(zones: [ZoneSpec(.dma32, pages: 1024), ZoneSpec(.normal, pages: 1024)])
        try refused(b, .noEligibleZone(flags: dma)) { _ = try b.allocate(order: 0, flags: dma) }
        let x = try b.allocate(order: 0, flags: dma32)
        #expect(x.zoneIndex == 0)
        try b.free(x)
    }

    /// After every kind of refusal, a full cleanup leaves every page free.
    @Test func nothingIsLostAfterAllRefusals() throws {
        let (a, held) = try populated()
        _ = try? a.allocate(order: 11)
        _ = try? a.allocate(order: 0, node: NodeID(7))
        _ = try? a.allocate(order: 0, cpu: CPUID(70))
        _ = try? a.allocate(order: 0, flags: [.kernel, .dma])
        try? a.free(pfn: PFN(1 << 30), order: .zero)
        try? a.free(pfn: held[3].pfn, order: .zero)
        try? a.free(pfn: PFN(held[3].pfn.rawValue + 1), order: .zero)
        for (i, b) in held.enumerated() { try a.free(b, cpu: CPUID((i + 1) % 4)) }
        try? a.free(held[0])
        try? a.free(held[5])
        a.drainAllCPUs()
        let acct = try a.validate()
        #expect(acct.allocated == 0 && acct.perCPU == 0 && acct.buddyFree == 2048)
        #expect(a.allFreeBlocks() == [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]])
    }

    @Test func errorsDescribeThemselves() {
        #expect(AllocError.doubleFree(pfn: 0x10, order: 4).description.contains("double free of pfn 0x10"))
        #expect(AllocError.notAllocated(pfn: 0x5).description.contains("never allocated"))
        #expect(AllocError.wrongOrder(pfn: 8, allocated: 2, given: 3).description.contains("order 2 but freed with order 3"))
        #expect(AllocError.outOfMemory(order: 4, flags: .kernel).description == "out of memory: order:4, mode:0xcc0(GFP_KERNEL)")
        #expect(AllocError.noSuchNode(2, nodeCount: 2).description.contains("0...1"))
        #expect(AllocError.invalidOrder(11).description.contains("0...10"))
    }
}
