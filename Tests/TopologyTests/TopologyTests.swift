import Testing
@testable import Topology

@Suite struct TopologyTests {
    @Test func discoveredTopologyIsConsistent() {
        let t = Topology.discover()
        #expect(t.nodeCount >= 1)
        #expect(t.cpuCount >= 1)
        #expect(t.distance.count == t.nodeCount)
        for n in t.nodes { #expect(!n.cpus.isEmpty) }
        for c in t.allCPUs { #expect(t.node(of: c).rawValue < t.nodeCount) }
    }

    @Test func declaredTwoNodesOneCPUEach() throws {
        let t = try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[10, 21], [21, 10]])
        #expect(t.nodeCount == 2)
        #expect(t.cpuCount == 2)
        #expect(t.node(of: CPUID(1)) == NodeID(1))
        #expect(t.fallbackOrder(from: NodeID(1)) == [NodeID(1), NodeID(0)])
        #expect(t.isDeclared)
        #expect(!t.canBindMemory)
    }

    @Test func fallbackOrderFollowsDistance() throws {
        let d = [[10, 30, 20], [30, 10, 20], [20, 20, 10]]
        let t = try Topology.declared(nodes: 3, cpusPerNode: 1, distance: d)
        #expect(t.fallbackOrder(from: NodeID(0)) == [NodeID(0), NodeID(2), NodeID(1)])
        #expect(t.fallbackOrder(from: NodeID(2)) == [NodeID(2), NodeID(0), NodeID(1)])
    }

    @Test func badDistanceMatricesAreRejected() {
        #expect(throws: TopologyError.self) { try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[10, 21]]) }
        #expect(throws: TopologyError.self) { try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[10, 5], [5, 10]]) }
        #expect(throws: TopologyError.self) { try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[11, 20], [20, 10]]) }
        #expect(throws: TopologyError.self) { try Topology.declared(nodes: 0, cpusPerNode: 1) }
        #expect(throws: TopologyError.self) { try Topology.declared(cpusPerNode: [1, 0]) }
    }

    @Test func pinningToARealCPUWorks() throws {
        try Affinity.pinCurrentThread(toRealCPU: 0)
        #expect(Affinity.currentRealCPU == 0)
    }
}
