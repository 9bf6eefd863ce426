// Arena binding and the placement check (get_mempolicy + move_pages of
// sampled pages). These run on any machine: on a one-node machine the check
// must say "not bound" and why, and never crash or claim a verification.
import Testing
@testable import PageAllocator
@testable import Topology

@Suite struct PlacementTests {
    func sampledTotal(_ p: ArenaPlacement) -> Int { p.pagesByNode.values.reduce(p.unknown, +) }

    @Test func oneNodeMachineReportsNotBound() throws {
        let machine = Topology.discover()
        try #require(machine.nodeCount == 1, "this test is for one-node machines")
        let a = try PageAllocator(AllocatorConfig(topology: machine, zones: [ZoneSpec(.normal, pages: 4096)]))
        let why = Topology.numaAvailable ? "one node" : "no libnuma"
        #expect(a.arenaBinding == [.notBound(why)])
        let p = a.checkPlacement(samplesPerNode: 8)
        #expect(p.count == 1)
        #expect(p[0].binding == "not bound (\(why))")
        #expect(p[0].machineNode == 0)
        #expect(p[0].sampled == 8 && sampledTotal(p[0]) == 8)
        #expect(!p[0].verified)
        if Topology.numaAvailable {
            // The sampled pages were faulted in: the kernel says where they are.
            #expect(p[0].pagesByNode == ["node0": 8])
            #expect(p[0].policy == "default")
        } else {
            #expect(p[0].policy == "unavailable")
        }
        #expect(p[0].line.hasPrefix("node0: not bound (\(why)), policy "))
        _ = try a.validate()
    }

    @Test func declaredNodesAreNeverBound() throws {
        let topo = try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[10, 21], [21, 10]])
        let a = try PageAllocator(AllocatorConfig(topology: topo, zones: [ZoneSpec(.normal, pages: 2048)]))
        #expect(a.arenaBinding == [.notBound("declared topology"), .notBound("declared topology")])
        let p = a.checkPlacement()
        #expect(p.map(\.node) == [0, 1])
        #expect(p.allSatisfy { !$0.verified && $0.machineNode == nil && $0.sampled == 16 && sampledTotal($0) == 16 })
        #expect(a.zonelistDescription(node: 1) == "1(Normal) 0(Normal)")
    }

    @Test func bindMemoryFalseIsReported() throws {
        var c = AllocatorConfig(topology: Topology.discover(), zones: [ZoneSpec(.normal, pages: 1024)])
        c.bindMemory = false
        let a = try PageAllocator(c)
        #expect(a.arenaBinding.allSatisfy { $0 == .notBound("bind_memory = false") })
        #expect(a.checkPlacement(samplesPerNode: 4).allSatisfy { !$0.verified && $0.sampled == 4 })
    }

    /// The check leaves the arena's contents alone (it faults pages in without writing).
    @Test func checkingDoesNotChangeAllocatedPages() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 1, zones: [ZoneSpec(.normal, pages: 1024)])
        var held: [PageBlock] = []
        for i in 0..<64 {
            let b = try a.allocate(order: 2, flags: .kernel)
            fill(b, pageSize: a.pageSize, tag: UInt64(i))
            held.append(b)
        }
        _ = a.checkPlacement(samplesPerNode: 1024)
        for (i, b) in held.enumerated() {
            #expect(check(b, pageSize: a.pageSize, tag: UInt64(i)))
            try a.free(b)
        }
        #expect(try a.validate().allocated == 0)
    }

    /// A discovered topology whose machine has no node 0 (a gap: no CPUs, no
    /// memory): the arena of the topology's node 0 is bound to machine node 1.
    @Test func bindingUsesTheMachineNodeNumber() throws {
        let d = [[10, 21, 21], [21, 10, 21], [21, 21, 10]]
        let t = Topology.fromMachine(cpus: 2, nodeCount: 3, numa: true, nodeOfCPU: { $0 + 1 },
                                     nodeBytes: { $0 == 0 ? -1 : 1 << 30 }, distance: { d[$0][$1] })
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        var asked: [Int] = []
        for n in 0..<2 {
            let b = ArenaBinding.bind(page, length: 4096, node: n, topology: t, enabled: true) { _, _, m in asked.append(m); return true }
            #expect(b == .bound(machineNode: n + 1))
        }
        #expect(asked == [1, 2])
        let failed = ArenaBinding.bind(page, length: 4096, node: 0, topology: t, enabled: true) { _, _, _ in false }
        #expect(failed == .notBound("numa_tonode_memory failed"))
        #expect(ArenaBinding.bind(page, length: 4096, node: 0, topology: t, enabled: false) { _, _, _ in true } == .notBound("bind_memory = false"))
    }
}
