// Zonelists and NUMA: node order by distance, highest eligible zone first,
// fallback to other nodes below the watermark, __GFP_THISNODE, and the
// numa_* counters.
import Testing
@testable import PageAllocator
import Topology

@Suite struct ZonelistTests {
    func list(_ a: PageAllocator, node: Int, type: ZoneType, thisNode: Bool) -> [Int] {
        let (p, n) = a.zonelist(node: node, type: type, thisNode: thisNode)
        return (0..<n).map { Int(p[$0]) }
    }

    @Test func zonelistsFollowDistanceThenZoneType() throws {
        let topo = try Topology.declared(nodes: 3, cpusPerNode: 1, distance: [[10, 30, 20], [30, 10, 20], [20, 20, 10]])
        var c = AllocatorConfig(topology: topo, zones: [ZoneSpec(.dma, pages: 64), ZoneSpec(.dma32, pages: 512), ZoneSpec(.normal, pages: 1024)])
        c.bindMemory = false
        let a = try PageAllocator(c)
        // Zone index = node * 3 + (0 DMA, 1 DMA32, 2 Normal). Node 0's order: 0, 2, 1.
        #expect(list(a, node: 0, type: .normal, thisNode: false) == [2, 1, 0, 8, 7, 6, 5, 4, 3])
        #expect(list(a, node: 0, type: .dma32, thisNode: false) == [1, 0, 7, 6, 4, 3])
        #expect(list(a, node: 0, type: .dma, thisNode: false) == [0, 6, 3])
        #expect(list(a, node: 1, type: .normal, thisNode: false) == [5, 4, 3, 8, 7, 6, 2, 1, 0])
        #expect(list(a, node: 2, type: .normal, thisNode: false) == [8, 7, 6, 2, 1, 0, 5, 4, 3])
        #expect(list(a, node: 2, type: .movable, thisNode: false) == [8, 7, 6, 2, 1, 0, 5, 4, 3])
        #expect(list(a, node: 1, type: .normal, thisNode: true) == [5, 4, 3])
        #expect(list(a, node: 1, type: .dma, thisNode: true) == [3])
        // And the zones are where the lists say.
        for zi in 0..<9 {
            let d = a.zoneDescription(zi)
            #expect(d.node == NodeID(zi / 3) && d.type == [.dma, .dma32, .normal][zi % 3])
            #expect(a.zoneIndex(containing: d.startPFN) == zi)
            #expect(a.zoneIndex(containing: PFN(d.startPFN.rawValue + d.pages - 1)) == zi)
        }
    }

    /// Two nodes of one CPU each, 2048 pages each.
    func twoNodes() throws -> PageAllocator {
        try makeAllocator(nodes: 2, cpusPerNode: 1, zones: [ZoneSpec(.normal, pages: 2048)])
    }

    @Test func allocationsComeFromThePreferredNode() throws {
        let a = try twoNodes()
        let x = try a.allocate(order: 0, node: NodeID(1), cpu: CPUID(0))
        #expect(x.node == NodeID(1) && x.zoneIndex == 1)
        let y = try a.allocate(order: 4, cpu: CPUID(1))         // the CPU's node
        #expect(y.node == NodeID(1))
        let z = try a.allocate(order: 4, cpu: CPUID(0))
        #expect(z.node == NodeID(0))
        let c0 = a.counters(zone: 0), c1 = a.counters(zone: 1)
        #expect(c1[.numaHit] == 2 && c1[.numaMiss] == 0 && c1[.numaLocal] == 1 && c1[.numaOther] == 1)
        #expect(c0[.numaHit] == 1 && c0[.numaLocal] == 1)
    }

    /// numa_foreign goes to the preferred zone: the highest zone the request
    /// may use on the preferred node (DMA32 for GFP_DMA32), not that node's
    /// highest zone.
    @Test func numaForeignIsChargedToTheRequestsPreferredZone() throws {
        let a = try makeAllocator(nodes: 2, cpusPerNode: 1, zones: [ZoneSpec(.dma32, pages: 1024), ZoneSpec(.normal, pages: 1024)])
        // Zones: 0 node0 DMA32, 1 node0 Normal, 2 node1 DMA32, 3 node1 Normal.
        let dma32: GFP = [.kernel, .dma32]
        var held: [PageBlock] = []
        while let b = try? a.allocate(order: 0, flags: [.noWait, .dma32, .thisNode], node: NodeID(0), cpu: CPUID(0)) { held.append(b) }
        a.drainAllCPUs()
        while let b = try? a.allocate(order: 0, flags: [.noWait, .dma32, .thisNode], node: NodeID(0), cpu: CPUID(0)) { held.append(b) }
        #expect(held.allSatisfy { $0.zoneIndex == 0 })
        let x = try a.allocate(order: 0, flags: dma32, node: NodeID(0), cpu: CPUID(0))
        #expect(x.zoneIndex == 2, "node 1's DMA32")
        #expect(a.counters(zone: 2)[.numaMiss] == 1)
        #expect(a.counters(zone: 0)[.numaForeign] == 1, "the preferred zone: node 0's DMA32")
        #expect(a.counters(zone: 1)[.numaForeign] == 0)
        for b in held + [x] { try a.free(b, cpu: CPUID(0)) }
        a.drainAllCPUs()
        let acct = try a.validate()
        #expect(acct.allocated == 0 && acct.buddyFree == acct.managed)
    }

    @Test func fallsBackBelowTheWatermarkAndThisNodeNever() throws {
        let a = try twoNodes()
        // Exhaust node 1 with __GFP_THISNODE|GFP_KERNEL.
        let thisNode: GFP = [.kernel, .thisNode]
        var held: [PageBlock] = []
        var refusal: AllocError?
        while refusal == nil {
            do { held.append(try a.allocate(order: 0, flags: thisNode, node: NodeID(1), cpu: CPUID(1))) } catch { refusal = error }
        }
        #expect(refusal == .outOfMemory(order: 0, flags: thisNode))
        #expect(held.allSatisfy { $0.node == NodeID(1) })
        let min1 = a.zoneDescription(1).min
        #expect(a.freePages(zone: 1) <= min1 && a.freePages(zone: 1) >= min1 - 1)
        #expect(a.freePages(zone: 0) == 2048 && a.counters(zone: 0)[.pgalloc] == 0)
        #expect(a.totalCounters()[.numaMiss] == 0)
        #expect(a.totalCounters()[.numaHit] == held.count)
        // A plain allocation preferring node 1 now lands on node 0: a numa_miss
        // on node 0's zone, a numa_foreign on node 1's, numa_other for CPU 1.
        let x = try a.allocate(order: 0, node: NodeID(1), cpu: CPUID(1))
        #expect(x.node == NodeID(0))
        #expect(a.counters(zone: 0)[.numaMiss] == 1 && a.counters(zone: 0)[.numaOther] == 1)
        #expect(a.counters(zone: 1)[.numaForeign] == 1)
        let t = a.totalCounters()
        #expect(t[.numaMiss] == 1 && t[.numaForeign] == 1 && t[.numaHit] == held.count)
        // Higher orders fall back too; __GFP_THISNODE still refuses, even with reserves.
        let y = try a.allocate(order: 6, node: NodeID(1), cpu: CPUID(0))
        #expect(y.node == NodeID(0))
        #expect(a.counters(zone: 0)[.numaLocal] == 1)
        #expect(throws: AllocError.outOfMemory(order: 0, flags: thisNode)) {
            try a.allocate(order: 0, flags: thisNode, node: NodeID(1), cpu: CPUID(0))
        }
        // With NO_WATERMARKS, __GFP_THISNODE takes node 1's last pages but never node 0's.
        while let b = try? a.allocate(order: 0, flags: thisNode, node: NodeID(1), cpu: CPUID(1), reserve: .memalloc) {
            #expect(b.node == NodeID(1))
            held.append(b)
        }
        #expect(a.freePages(zone: 1) == 0 && a.perCPUPages(zone: 1) == 0)
        #expect(held.count == 2048)
        let acct = try a.validate()
        #expect(acct.allocated == 2048 + 1 + 64)
        for b in held { try a.free(b, cpu: CPUID(0)) }
        try a.free(x); try a.free(y)
        a.drainAllCPUs()
        #expect(try a.validate().buddyFree == 4096)
    }

    /// The fast path walks the whole zonelist at LOW before any caller dips
    /// into reserves: GFP_ATOMIC preferring an exhausted node goes remote.
    @Test func reservesAreTouchedOnlyAfterEveryNodeFailsLow() throws {
        let a = try twoNodes()
        var held: [PageBlock] = []
        while let b = try? a.allocate(order: 4, flags: [.kernel, .thisNode], node: NodeID(1), cpu: CPUID(1)) { held.append(b) }
        #expect(a.freePages(zone: 1) > a.zoneDescription(1).min / 2)
        let x = try a.allocate(order: 4, flags: .atomic, node: NodeID(1), cpu: CPUID(1))
        #expect(x.node == NodeID(0))
        // Once node 0 is below LOW as well, the slow path serves node 1 first again.
        while a.freePages(zone: 0) > a.zoneDescription(0).low + 15 { held.append(try a.allocate(order: 4, node: NodeID(0), cpu: CPUID(0))) }
        let y = try a.allocate(order: 4, flags: .atomic, node: NodeID(1), cpu: CPUID(1))
        #expect(y.node == NodeID(1))
        held += [x, y]
        for b in held { try a.free(b) }
        #expect(try a.validate().buddyFree == 4096)
    }

    /// Node 0 prefers node 2 (distance 20) over node 1 (30).
    @Test func fallbackFollowsDistance() throws {
        let topo = try Topology.declared(nodes: 3, cpusPerNode: 1, distance: [[10, 30, 20], [30, 10, 20], [20, 20, 10]])
        var c = AllocatorConfig(topology: topo, pagesPerNode: 1024)
        c.bindMemory = false
        let a = try PageAllocator(c)
        func exhaust(_ node: Int) {
            while (try? a.allocate(order: 0, flags: [.kernel, .thisNode], node: NodeID(node), cpu: CPUID(node), reserve: .memalloc)) != nil {}
        }
        exhaust(0)
        #expect(try a.allocate(order: 0, node: NodeID(0), cpu: CPUID(0)).node == NodeID(2))
        exhaust(2)
        #expect(try a.allocate(order: 0, node: NodeID(0), cpu: CPUID(0)).node == NodeID(1))
        #expect(try a.allocate(order: 0, node: NodeID(2), cpu: CPUID(2)).node == NodeID(1))
        exhaust(1)
        #expect(throws: AllocError.outOfMemory(order: 0, flags: .kernel)) { try a.allocate(order: 0, node: NodeID(0), cpu: CPUID(0)) }
        try a.validate()
    }
}
