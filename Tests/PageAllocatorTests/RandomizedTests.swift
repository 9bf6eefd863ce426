// Seeded random operation sequences with validate() after every step:
// mixed orders 0...10, mixed GFP flags and reserve access, explicit CPUs
// (frees on another CPU than the allocation), drains and misuse mixed in.
import Testing
@testable import PageAllocator
import Topology

@Suite struct RandomizedTests {
    static let flagChoices: [GFP] = [
        .kernel, .kernel, .kernel, .atomic, .noWait, .noFS, .noIO, [.kernel, .high], [.atomic, .noWarn],
        [.kernel, .dma32], [.kernel, .thisNode], [.kernel, .zero, .comp], [.noFS, .noFail], .kernelAccount,
        [.atomic, .noMemalloc], [.kernel, .memalloc], .user, .highUserMovable,
    ]

    /// 2 nodes x (DMA32 1024 + Normal 1024 pages), 2 CPUs per node.
    static func allocator(pageSize: Int = 4096) throws -> PageAllocator {
        var c = AllocatorConfig(topology: try Topology.declared(nodes: 2, cpusPerNode: 2),
                                zones: [ZoneSpec(.dma32, pages: 1024), ZoneSpec(.normal, pages: 1024)])
        c.pageSize = pageSize
        c.bindMemory = false
        c.policy.retry = .retries(0) // see makeAllocator
        c.policy.maxStallMs = testMaxStallMs
        return try PageAllocator(c)
    }

    /// One random operation sequence. Returns the trace of (op, pfn) for reproducibility checks.
    @discardableResult
    static func run(seed: UInt64, steps: Int, validateEveryStep: Bool = true, pageSize: Int = 4096) throws -> [Int] {
        let a = try allocator(pageSize: pageSize)
        #expect(a.pageSize == pageSize && a.pageShift == pageSize.trailingZeroBitCount)
        let seeds = a.allFreeBlocks()
        var rng = SplitMix64(seed: seed)
        var held = Holdings(pageSize: a.pageSize)
        var allocCPU: [Int: Int] = [:]      // pfn -> CPU it was allocated on
        var trace: [Int] = []
        var outcomes = [String: Int]()
        var lastFreed: PageBlock?
        for step in 0..<steps {
            let roll = rng.below(100)
            if roll < 3 {
                // Drain one CPU or all.
                if rng.chance(50) { a.drain(cpu: CPUID(rng.below(4))) } else { a.drainAllCPUs() }
                outcomes["drain", default: 0] += 1
            } else if roll < 6, let f = lastFreed, held.owner[f.pfn.rawValue] != f.pfn.rawValue || held.blocks.first(where: { $0.pfn == f.pfn })?.order != f.order {
                // Free again what was freed last. Unless the same block was handed
                // out again, that is a double free; if the pfn is now inside a held
                // block it was never allocated as a head; if it heads a held block
                // of another order, the order is wrong.
                let expected: AllocError
                switch held.owner[f.pfn.rawValue] {
                case nil: expected = .doubleFree(pfn: f.pfn.rawValue, order: -1)
                case f.pfn.rawValue?:
                    let now = held.blocks.first(where: { $0.pfn == f.pfn })!.order.rawValue
                    expected = .wrongOrder(pfn: f.pfn.rawValue, allocated: now, given: f.order.rawValue)
                default: expected = .notAllocated(pfn: f.pfn.rawValue)
                }
                let snap = try Snapshot(a)
                do {
                    try a.free(f, cpu: CPUID(rng.below(4)))
                    Issue.record("step \(step): second free of \(f) succeeded")
                    return trace
                } catch .doubleFree(let p, _) where p == f.pfn.rawValue {
                    // The reported order is that of the free block now holding the pfn.
                    #expect(expected == .doubleFree(pfn: p, order: -1), "step \(step)")
                    outcomes["doubleFree", default: 0] += 1
                } catch {
                    #expect(error == expected, "step \(step)")
                    outcomes["reused", default: 0] += 1
                }
                #expect(try Snapshot(a) == snap)
                trace.append(-2)
            } else if roll < 8, !held.blocks.isEmpty {
                // Free with the wrong order.
                let b = held.blocks[rng.below(held.blocks.count)]
                let wrong = (b.order.rawValue + 1 + rng.below(10)) % 11
                let snap = try Snapshot(a)
                #expect(throws: AllocError.wrongOrder(pfn: b.pfn.rawValue, allocated: b.order.rawValue, given: wrong)) {
                    try a.free(pfn: b.pfn, order: try Order(wrong), cpu: CPUID(rng.below(4)))
                }
                #expect(try Snapshot(a) == snap)
                trace.append(-3)
            } else if held.blocks.isEmpty || roll < 56 {
                // Allocate: mostly small orders, sometimes up to 10.
                let order = rng.chance(80) ? rng.below(4) : 4 + rng.below(7)
                let flags = flagChoices[rng.below(flagChoices.count)]
                let node: NodeID? = rng.chance(40) ? nil : NodeID(rng.below(2))
                let cpu = rng.below(4)
                let reserve: ReserveAccess = rng.chance(90) ? .none : (rng.chance(50) ? .oomVictim : .memalloc)
                let allocatedBefore = validateEveryStep ? try a.validate().allocated : held.pages
                do {
                    let b = try a.allocate(order: order, flags: flags, node: node, cpu: CPUID(cpu), owner: UInt16(step & 0x7fff), reserve: reserve)
                    if let problem = held.add(b, tag: UInt64(step), allocator: a) {
                        Issue.record("step \(step): \(problem)")
                        return trace
                    }
                    #expect(b.order.rawValue == order)
                    let zoneType = a.zoneDescription(b.zoneIndex).type
                    if flags.contains(.dma32) { #expect(zoneType == .dma32) }
                    if flags.contains(.thisNode) { #expect(b.node == (node ?? a.topology.node(of: CPUID(cpu)))) }
                    allocCPU[b.pfn.rawValue] = cpu
                    trace.append(b.pfn.rawValue << 4 | order)
                    outcomes["alloc", default: 0] += 1
                } catch .timedOut(let o, let f, _) {
                    // Only __GFP_NOFAIL loops until max_stall_ms under retries=0.
                    #expect(o == order && f == flags && flags.contains(.noFail))
                    trace.append(-1)
                    outcomes["oom", default: 0] += 1
                } catch .outOfMemory(let o, let f) {
                    #expect(o == order && f == flags)
                    if validateEveryStep { #expect(try a.validate().allocated == allocatedBefore) }
                    trace.append(-1)
                    outcomes["oom", default: 0] += 1
                }
            } else {
                // Free a random block, on another CPU than the one that allocated it.
                let i = rng.below(held.blocks.count)
                let (b, intact) = held.remove(at: i)
                #expect(intact, "step \(step): \(b) was overwritten while held")
                let from = allocCPU.removeValue(forKey: b.pfn.rawValue)!
                let cpu = (from + 1 + rng.below(3)) % 4
                if rng.chance(80) { try a.free(b, cpu: CPUID(cpu)) } else { try a.free(pfn: b.pfn, order: b.order, cpu: CPUID(cpu)) }
                lastFreed = b
                trace.append(-(b.pfn.rawValue << 4) - 16)
                outcomes["free", default: 0] += 1
            }
            if validateEveryStep || step % 64 == 0 {
                let acct = try a.validate()
                #expect(acct.allocated == held.pages, "step \(step)")
                #expect(acct.allocatedBlocks == held.blocks.count, "step \(step)")
                #expect(acct.managed == 4096 && acct.buddyFree + acct.perCPU + acct.allocated == 4096)
            }
        }
        // Every kind of outcome happened.
        for k in ["alloc", "free", "oom", "drain", "doubleFree"] { #expect(outcomes[k, default: 0] > 0, "no \(k) in seed \(seed): \(outcomes)") }
        // Give everything back: the free lists return exactly as seeded.
        while !held.blocks.isEmpty {
            let (b, intact) = held.remove(at: held.blocks.count - 1)
            #expect(intact)
            try a.free(b, cpu: CPUID(rng.below(4)))
        }
        let end = try a.validate()
        #expect(end.allocated == 0 && end.buddyFree + end.perCPU == 4096)
        a.drainAllCPUs()
        #expect(try a.validate().buddyFree == 4096)
        #expect(a.allFreeBlocks() == seeds)
        return trace
    }

    @Test(arguments: [1, 2, 0xDEAD_BEEF, 0x5EED_0000_0000_0042] as [UInt64])
    func randomSequencesKeepEveryInvariant(seed: UInt64) throws {
        try Self.run(seed: seed, steps: 2000)
    }

    /// A longer run checking every 64 steps, where memory runs out often.
    @Test func longSequence() throws {
        try Self.run(seed: 7, steps: 10000, validateEveryStep: false)
    }

    /// Larger pages: block sizes, addresses and the kB-based formulas follow the page size.
    @Test(arguments: [16384, 65536])
    func largerPages(pageSize: Int) throws {
        try Self.run(seed: UInt64(pageSize), steps: 500, pageSize: pageSize)
        let a = try Self.allocator(pageSize: pageSize)
        let kb = pageSize / 1024
        #expect(a.minFreeKbytes == KernelFormulas.minFreeKbytes(lowmemKbytes: 4096 * kb))
        let d = a.zoneDescription(1)
        #expect(d.min == a.minFreeKbytes / kb * 1024 / 4096)
        #expect(d.batch == KernelFormulas.pcpBatch(managed: 1024, pageSize: pageSize))
        #expect(d.vmstatThreshold == KernelFormulas.vmstatThreshold(managed: 1024, onlineCPUs: 4, pageSize: pageSize))
        let b = try a.allocate(order: 3, cpu: CPUID(0))
        #expect(b.byteCount == 8 * pageSize && b.bytes.count == 8 * pageSize)
        b.bytes[b.byteCount - 1] = 0x5a
        #expect(b.bytes[b.byteCount - 1] == 0x5a)
        try a.free(b, cpu: CPUID(1))
    }

    @Test func sameSeedSameTrace() throws {
        let t1 = try Self.run(seed: 12345, steps: 400)
        let t2 = try Self.run(seed: 12345, steps: 400)
        let t3 = try Self.run(seed: 54321, steps: 400)
        #expect(t1 == t2)
        #expect(t1 != t3)
    }

    /// Run out of memory with every flag set and order: always a typed
    /// .outOfMemory, never a crash; after freeing, everything works again.
    @Test func exhaustionThenRecovery() throws {
        let a = try Self.allocator()
        var rng = SplitMix64(seed: 2024)
        var held = Holdings(pageSize: a.pageSize)
        // Take everything, with NO_WATERMARKS, from the largest order down.
        // PF_MEMALLOC does not reclaim (so does not drain): drain by hand between passes.
        repeat {
            for order in stride(from: 10, through: 0, by: -1) {
                while let b = try? a.allocate(order: order, cpu: CPUID(rng.below(4)), reserve: .memalloc) {
                    #expect(held.add(b, tag: UInt64(order), allocator: a) == nil)
                }
            }
        } while a.drainAllCPUs() > 0
        #expect(held.pages == 4096)
        let full = try a.validate()
        #expect(full.allocated == 4096 && full.buddyFree == 0 && full.perCPU == 0)
        for flags in Self.flagChoices {
            for order in 0...10 {
                for reserve in [ReserveAccess.none, .oomVictim, .memalloc] {
                    let expected: AllocError = flags.contains(.noFail) && flags.allowsBlocking && reserve != .memalloc
                        ? .timedOut(order: order, flags: flags, milliseconds: testMaxStallMs)
                        : .outOfMemory(order: order, flags: flags)
                    #expect(throws: expected) {
                        try a.allocate(order: order, flags: flags, node: NodeID(rng.below(2)), cpu: CPUID(rng.below(4)), reserve: reserve)
                    }
                }
            }
        }
        #expect(try a.validate() == full)
        // Every attempt failed and counted, except the NOFAIL ones that timed out instead.
        let timedOut = Self.flagChoices.filter { $0.contains(.noFail) && $0.allowsBlocking }.count * 11 * 2
        #expect(a.totalCounters()[.allocFail] == Self.flagChoices.count * 11 * 3 + 11 - timedOut)
        // Free it all on other CPUs, then every zone hands out its top blocks again.
        while !held.blocks.isEmpty {
            let (b, ok) = held.remove(at: rng.below(held.blocks.count))
            #expect(ok)
            try a.free(b, cpu: CPUID(rng.below(4)))
        }
        a.drainAllCPUs()
        #expect(try a.validate().buddyFree == 4096)
        for zi in 0..<a.zoneCount { #expect(a.freeBlocks(zone: zi) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) }
        let d = a.zoneDescription(1)
        let big = try a.allocate(order: 10, flags: [.kernel, .thisNode], node: NodeID(0), cpu: CPUID(0), reserve: .memalloc)
        #expect(big.zoneIndex == 1 && big.pfn == d.startPFN)
        try a.free(big)
    }
}
