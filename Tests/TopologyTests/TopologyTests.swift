import Foundation
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
        #expect(throws: TopologyError.noCPUsAnywhere) { try Topology.declared(cpusPerNode: [0, 0]) }
    }

    /// Pins a thread of its own: the test's thread belongs to Swift
    /// Testing's shared pool, and a pin left on it would confine every later
    /// test on that thread (and the threads they start) to CPU 0.
    @Test func pinningToARealCPUWorks() throws {
        final class Outcome: @unchecked Sendable { var pinError: Errno?; var cpu = -1 }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do throws(Errno) { try Affinity.pinCurrentThread(toRealCPU: 0); outcome.cpu = Affinity.currentRealCPU } catch { outcome.pinError = error }
            done.signal()
        }
        thread.start()
        try #require(done.wait(timeout: .now() + 10) == .success, "the pinned thread did not finish in 10 s")
        #expect(outcome.pinError == nil)
        #expect(outcome.cpu == 0)
    }
}

/// discover()'s construction from the machine's facts, on made-up machines.
@Suite struct DiscoveredTopologyTests {
    /// Machine nodes 0 (a gap: no CPUs, no memory), 1 and 2 (one CPU each):
    /// nodes 1 and 2 become the topology's indices 0 and 1 and keep their numbers.
    @Test func nodeNumbersWithoutCPUsOrMemoryAreLeftOutAndMachineNumbersKept() {
        let d = [[10, 21, 31], [21, 10, 17], [31, 17, 10]]
        let t = Topology.fromMachine(cpus: 2, nodeCount: 3, numa: true, nodeOfCPU: { $0 + 1 },
                                     nodeBytes: { $0 == 0 ? -1 : 1 << (20 + $0) }, distance: { d[$0][$1] })
        #expect(t.nodeCount == 2)
        #expect(t.machineNode == [1, 2])
        #expect(t.distance == [[10, 17], [17, 10]])
        #expect(t.nodes.map(\.memoryBytes) == [1 << 21, 1 << 22])
        #expect(t.realCPU == [0, 1])
        #expect(t.canBindMemory)
        #expect(!t.isDeclared)
    }

    /// Machine nodes 0 (cpu 0), 1 (a gap), 2 (memory only) and 3 (cpu 1), as
    /// QEMU's `-numa node,nodeid=2,memdev=m` without cpus= makes: the memory-only
    /// node is kept (index 1, number 2) with no CPUs; its arena can be bound.
    @Test func memoryOnlyNodesAreKeptAndGapsSkipped() {
        let d = [[10, 0, 21, 31], [0, 0, 0, 0], [21, 0, 10, 31], [31, 0, 31, 10]]
        let t = Topology.fromMachine(cpus: 2, nodeCount: 4, numa: true, nodeOfCPU: { $0 == 0 ? 0 : 3 },
                                     nodeBytes: { $0 == 1 ? -1 : 1 << 28 }, distance: { d[$0][$1] })
        #expect(t.machineNode == [0, 2, 3])
        #expect(t.cpuNodes == [0, 2] && t.memoryOnlyNodes == [1])
        #expect(t.nodes[1].cpus.isEmpty && t.nodes[1].memoryBytes == 1 << 28)
        #expect(t.distance == [[10, 21, 31], [21, 10, 31], [31, 31, 10]])
        #expect(t.number(of: 1) == 2 && t.index(ofNumber: 3) == 2 && t.index(ofNumber: 1) == nil)
        #expect(t.node(of: CPUID(1)) == NodeID(2))
        #expect(t.homeCPU(of: 1) == CPUID(0), "a memory-only node's work runs on the nearest node with CPUs")
        #expect(t.canBindMemory)
        #expect(t.description == "3 node(s), 2 CPU(s); node0: cpus 0; node2: memory only; node3: cpus 1")
    }

    /// The memonly guest of scripts/numa-lab.sh with CPU 2 taken offline: nodes 0 (cpu 0), 1 (cpu 1),
    /// 2 (cpu 2 offline, no memory: a gap) and 3 (memory only). The offline CPU (no node: -1) is left
    /// out, not put on node 0 (before: "node0: cpus 0,1; node1: cpus 2", a worker pinned to it failed).
    @Test func offlineCPUsAreLeftOutAndTheirEmptyNodeIsAGap() {
        let d = [[10, 21, 21, 17], [21, 10, 21, 31], [21, 21, 10, 31], [17, 31, 31, 10]]
        let t = Topology.fromMachine(cpus: 3, nodeCount: 4, numa: true, nodeOfCPU: { $0 == 2 ? -1 : $0 },
                                     nodeBytes: { $0 == 2 ? -1 : 1 << 28 }, distance: { d[$0][$1] })
        #expect(t.machineNode == [0, 1, 3])
        #expect(t.cpuCount == 2 && t.realCPU == [0, 1])
        #expect(t.memoryOnlyNodes == [2] && t.index(ofNumber: 2) == nil)
        #expect(t.description == "3 node(s), 2 CPU(s); node0: cpus 0; node1: cpus 1; node3: memory only")
        #expect(t.distance == [[10, 21, 17], [21, 10, 31], [17, 31, 10]])
    }

    /// Declared: counts of 0 are memory-only nodes, node_ids number the nodes.
    @Test func declaredMemoryOnlyNodesAndNodeIDs() throws {
        let t = try Topology.declared(cpusPerNode: [1, 0, 2], distance: [[10, 15, 21], [15, 10, 21], [21, 21, 10]], nodeIDs: [0, 2, 5])
        #expect(t.nodeCount == 3 && t.cpuCount == 3 && t.machineNode == [0, 2, 5])
        #expect(t.cpuNodes == [0, 2] && t.memoryOnlyNodes == [1])
        #expect(t.node(of: CPUID(2)) == NodeID(2))
        #expect(t.fallbackOrder(from: NodeID(0)) == [NodeID(0), NodeID(1), NodeID(2)])
        #expect(t.homeCPU(of: 1) == CPUID(0))
        #expect(t.description.contains("node2: memory only; node5: cpus 1,2"))
        #expect(throws: TopologyError.badNodeIDs(ids: [0, 2, 1], reason: "must ascend, each once (1 after 2)")) {
            try Topology.declared(cpusPerNode: [1, 1, 1], nodeIDs: [0, 2, 1])
        }
        #expect(throws: TopologyError.self) { try Topology.declared(cpusPerNode: [1, 1], nodeIDs: [0, 0]) }
        #expect(throws: TopologyError.self) { try Topology.declared(cpusPerNode: [1, 1], nodeIDs: [0]) }
        #expect(throws: TopologyError.self) { try Topology.declared(cpusPerNode: [1, 1], nodeIDs: [0, 64]) }
        #expect(throws: TopologyError.noCPUsAnywhere) { try Topology.declared(cpusPerNode: [0], nodeIDs: [3]) }
    }

    @Test func oneNodeMachineCannotBind() {
        let t = Topology.fromMachine(cpus: 4, nodeCount: 1, numa: true, nodeOfCPU: { _ in 0 },
                                     nodeBytes: { _ in 1 << 30 }, distance: { $0 == $1 ? 10 : 20 })
        #expect(t.nodeCount == 1 && t.cpuCount == 4)
        #expect(t.machineNode == [0])
        #expect(!t.canBindMemory)
    }

    @Test func declaredNodesAreTheirOwnNumbers() throws {
        let t = try Topology.declared(nodes: 3, cpusPerNode: 1)
        #expect(t.machineNode == [0, 1, 2])
        #expect(Topology.discover().machineNode.count == Topology.discover().nodeCount)
    }
}
