// Memory-only (CPU-less) nodes and node numbers with gaps on a declared
// topology: zonelists in distance order through the memory-only node, policies
// written with node numbers, numastat's columns by number, /proc layouts.
import Testing
@testable import PageAllocator
import Topology

@Suite struct MemoryOnlyNodeTests {
    /// Nodes 0 (cpu 0), 2 (memory only, nearest to 0) and 4 (cpu 1); no nodes 1 and 3.
    func allocator(pages: Int = 512) throws -> PageAllocator {
        let t = try Topology.declared(cpusPerNode: [1, 0, 1], distance: [[10, 15, 21], [15, 10, 21], [21, 21, 10]], nodeIDs: [0, 2, 4])
        var c = AllocatorConfig(topology: t, pagesPerNode: pages)
        c.bindMemory = false
        c.policy.retry = .retries(0)
        c.policy.maxStallMs = testMaxStallMs
        return try PageAllocator(c)
    }

    func policy(_ text: String, _ a: PageAllocator) throws -> MemPolicy {
        try MemPolicy.parse(text, nodes: a.topology.machineNode).indexed(in: a.topology)
    }

    @Test func zonelistsAndProcLayoutsUseNodeNumbers() throws {
        let a = try allocator()
        #expect(a.zonelistDescription(node: 0) == "0(Normal) 2(Normal) 4(Normal)")
        #expect(a.zonelistDescription(node: 1) == "2(Normal) 0(Normal) 4(Normal)")
        #expect(a.zonelistDescription(node: 2) == "4(Normal) 0(Normal) 2(Normal)")
        let zi = a.zoneinfo()
        #expect(zi.contains("Node 2, zone   Normal") && zi.contains("Node 4, zone   Normal") && !zi.contains("Node 1,"))
        #expect(a.buddyinfo().split(separator: "\n").map { $0.prefix(7) } == ["Node 0,", "Node 2,", "Node 4,"])
        let table = a.numastat().table()
        #expect(table.split(separator: "\n")[0].split(separator: " ") == ["node0", "node2", "node4"])
        // zone_highsize(): the memory-only node's per-CPU high is split over every CPU, not over none.
        let z = a.zoneDescription(1)
        #expect(z.highMax == KernelFormulas.pcpHighSize(managed: z.pages, low: z.low, batch: z.batch, cpusOfNode: a.cpuCount, fraction: 8))
        #expect(try a.validate().allocated == 0)
    }

    /// bind=2 (the memory-only node) from CPU 0: every page there, numa_hit and
    /// other_node on node 2 (no CPU is local to it); interleave=0,2 splits evenly.
    @Test func policiesWithNumbersReachTheMemoryOnlyNode() throws {
        let a = try allocator()
        var cur = InterleaveCursor()
        var held: [PageBlock] = []
        let bind = try policy("bind=2", a)
        #expect(bind.nodes == [1])
        for _ in 0..<100 { held.append(try a.allocate(order: Order(0), policy: bind, cursor: &cur, cpu: CPUID(0))) }
        #expect(held.allSatisfy { $0.node == NodeID(1) })
        var s = a.numastat()
        #expect(s.nodes[1].numaHit == 100 && s.nodes[1].otherNode == 100 && s.nodes[1].localNode == 0)
        #expect(s.nodes[0].numaHit == 0 && s.nodes[2].numaHit == 0)
        let il = try policy("interleave=0,2", a)
        for _ in 0..<100 { held.append(try a.allocate(order: Order(0), policy: il, cursor: &cur, cpu: CPUID(1))) }
        s = a.numastat()
        #expect(s.nodes[0].interleaveHit == 50 && s.nodes[1].interleaveHit == 50 && s.nodes[2].numaHit == 0)
        #expect(s.nodes[0].otherNode == 50, "CPU 1 is on node 4: its pages on node 0 are other_node")
        #expect(throws: MemPolicyError.self) { try MemPolicy.parse("bind=1", nodes: a.topology.machineNode) }
        #expect(throws: MemPolicyError.self) { try MemPolicy.parse("interleave=3-4", nodes: a.topology.machineNode) }
        for b in held { try a.free(b, cpu: CPUID(0)) }
        a.drainAllCPUs()
        #expect(try a.validate().allocated == 0)
    }

    /// Node 0 full (below LOW, then MIN): its CPU's local allocations fall back
    /// along the zonelist to the memory-only node 2 (distance 15) before node 4
    /// (21): numa_miss on node 2, numa_foreign on node 0, other_node on node 2.
    @Test func fallbackGoesToTheNearestNodeEvenWithoutCPUs() throws {
        let a = try allocator()
        var filler: [PageBlock] = []
        while let b = try? a.allocate(order: Order(0), flags: [.kernel, .thisNode], node: NodeID(0), cpu: CPUID(0)) { filler.append(b) }
        let base = a.numastat()
        var held: [PageBlock] = []
        for _ in 0..<200 { held.append(try a.allocate(order: Order(0), cpu: CPUID(0))) }
        #expect(held.allSatisfy { $0.node == NodeID(1) })
        let d = a.numastat().minus(base)
        #expect(d.nodes[1].numaMiss == 200 && d.nodes[0].numaForeign == 200 && d.nodes[1].otherNode == 200)
        #expect(d.nodes[0].numaHit == 0 && d.nodes[2].numaHit + d.nodes[2].numaMiss == 0)
        for b in held + filler { try a.free(b, cpu: CPUID(0)) }
        a.drainAllCPUs()
        #expect(try a.validate().allocated == 0)
    }
}
