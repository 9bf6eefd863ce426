import Foundation
import Testing
import PageAllocator
import Topology
@testable import StressHarness

/// Memory-only (CPU-less) nodes and node numbers with gaps in workloads:
/// `[topology] node_ids` and `cpus_per_node` with 0, group keys and policies
/// written with node numbers, results and numastat by number, the matrix
/// (a memory-only node is a memory column, never a CPU row), and bad input.
@Suite struct MemoryOnlyNodeWorkloadTests {
    /// Nodes 0 (cpu 0), 2 (memory only) and 4 (cpu 1).
    func gapped(_ group: String, ops: String = "order = 0\nfree = \"immediate\"", run: String = "ops = 1000") -> String {
        """
        [topology]
        nodes = 3
        cpus_per_node = [1, 0, 1]
        node_ids = [0, 2, 4]
        distances = [[10, 15, 21], [15, 10, 21], [21, 21, 10]]
        [memory]
        arena_mib = 4
        [run]
        \(run)
        [[group]]
        name = "w"
        \(group)
        [[group.op]]
        \(ops)
        """
    }

    @Test func decodesNumbersIntoIndices() throws {
        let w = try parse(gapped("cpunodebind = \"4\"\nmempolicy = \"bind=2\"", ops: "order = 0\nnode = 2"))
        #expect(w.topology.nodeIDs == [0, 2, 4] && w.topology.cpusPerNode == [1, 0, 1])
        #expect(w.groups[0].nodes == [2] && w.groups[0].mempolicy == "bind=2" && w.groups[0].ops[0].node == 1)
        let t = try w.topology.build()
        #expect(t.machineNode == [0, 2, 4] && t.memoryOnlyNodes == [1])
        // pin = "node" without nodes: only the nodes with CPUs (one worker per CPU).
        let v = try parse(gapped("pin = \"node\""))
        #expect(v.groups[0].nodes == [0, 2] && v.groups[0].workers == 2)
        let plan = RunPlan(v, topology: t)
        #expect(plan.workers.map(\.pinLabel) == ["node0", "node4"])
        // The matrix's built-in workload carries node_ids through its TOML text.
        let m = try NodeMatrix.builtinWorkload(topology: TopologySpec.describing(t), durationMs: 10, arenaMiB: 4)
        #expect(m.topology.nodeIDs == [0, 2, 4] && m.topology.cpusPerNode == [1, 0, 1])
    }

    /// bind=2 from node 0's CPU: every allocation on the memory-only node;
    /// results and numastat name the columns node0 node2 node4.
    @Test func bindToTheMemoryOnlyNodeRuns() throws {
        let r = try run(gapped("cpunodebind = \"0\"\nmempolicy = \"bind=2\""))
        #expect(r.status.verdict == "ok")
        let byNode = try #require(r.counters.numaByNode)
        #expect(byNode.count == 3 && byNode[1]["numa_hit"] == r.throughput.allocs && byNode[1]["numa_other"] == r.throughput.allocs)
        #expect(byNode[0]["numa_hit"] == 0 && byNode[2]["numa_hit"] == 0)
        let s = try #require(r.numastat)
        #expect(s.nodeNames == [0, 2, 4])
        #expect(s.table().split(separator: "\n")[0].split(separator: " ") == ["node0", "node2", "node4"])
        #expect(r.summary().contains("  node2: numa_hit \(r.throughput.allocs)"))
        #expect(r.workers[0].pinnedTo == "node0")
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
    }

    @Test(arguments: [
        ("cpunodebind = \"2\"", "cpunodebind", "group 'w': cpunodebind \"2\": node 2 is memory-only (no CPUs to run workers on); nodes with CPUs: 0,4"),
        ("pin = \"node\"\nnodes = [4, 2]", "nodes", "group 'w': node 2 is memory-only"),
        ("pin = \"node\"\nnodes = [1]", "nodes", "group 'w': node 1 does not exist: nodes 0,2,4 (memory-only: 2)"),
        ("cpunodebind = \"0-1\"", "cpunodebind", "group 'w': cpunodebind \"0-1\": '0-1': node 1 does not exist (nodes: 0,2,4)"),
        ("mempolicy = \"bind=3\"", "mempolicy", "group 'w': mempolicy \"bind=3\": '3': node 3 does not exist (nodes: 0,2,4)"),
        ("mempolicy = \"interleave=\"", "mempolicy", "group 'w': mempolicy \"interleave=\": '': the node list is empty"),
        ("mempolicy = \"preferred-many=0,,2\"", "mempolicy", "an empty item between commas"),
        ("mempolicy = \"weighted-interleave=2:0\"", "mempolicy", "weight 0 of node(s) 2 is outside 1...255"),
    ])
    func badGroupInputNamesGroupAndValue(_ line: String, _ key: String, _ message: String) throws {
        do { _ = try parse(gapped(line)); Issue.record("accepted: \(line)") } catch {
            #expect(error.message.contains(message), "\(error)")
            #expect(error.field == "group[0].\(key)", "\(error)")
        }
    }

    @Test(arguments: [
        ("node_ids = [0, 2, 4]", "node_ids = [0, 4, 2]", "topology.node_ids", "must ascend, each number once (2 after 4)"),
        ("node_ids = [0, 2, 4]", "node_ids = [0, 2]", "topology.node_ids", "lists 2 node(s) but nodes = 3"),
        ("node_ids = [0, 2, 4]", "node_ids = [0, 2, 64]", "topology.node_ids", "must be at most 63"),
        ("cpus_per_node = [1, 0, 1]", "cpus_per_node = [0, 0, 0]", "topology.cpus_per_node", "no node has a CPU"),
        ("cpus_per_node = [1, 0, 1]", "cpus_per_node = [1, -1, 1]", "topology.cpus_per_node", "must not be negative"),
        ("order = 0\nfree = \"immediate\"", "order = 0\nnode = 3", "group[0].op[0].node", "group 'w': node = 3: node 3 does not exist: nodes 0,2,4 (memory-only: 2)"),
    ])
    func badTopologyAndOpInput(_ from: String, _ to: String, _ field: String, _ message: String) throws {
        let text = gapped("").replacingOccurrences(of: from, with: to)
        do { _ = try parse(text); Issue.record("accepted: \(to)") } catch {
            #expect(error.message.contains(message), "\(error)")
            #expect(error.field == field, "\(error)")
        }
    }

    @Test func mempolicyOverrideTakesNumbers() throws {
        let w = try parse(gapped(""))
        #expect(try w.settingMemPolicies(["w=interleave=0,2"]).groups[0].mempolicy == "interleave=0,2")
        do { _ = try w.settingMemPolicies(["w=bind=1"]); Issue.record("accepted bind=1") } catch {
            #expect(error.message == "--mempolicy 'w=bind=1': group 'w': '1': node 1 does not exist (nodes: 0,2,4)")
        }
    }

    /// The matrix: rows node0 and node4 (CPU nodes), columns node0 node2 node4;
    /// the memory-only column has its allocations there. The heat map the same.
    @Test func matrixHasAMemoryColumnButNoCPURowForTheMemoryOnlyNode() throws {
        let t = try Topology.declared(cpusPerNode: [1, 0], distance: [[10, 17], [17, 10]], nodeIDs: [0, 2])
        let w = try NodeMatrix.builtinWorkload(topology: TopologySpec.describing(t), durationMs: 20, arenaMiB: 4)
        let cells = try NodeMatrix.matrix(w, topology: try w.topology.build(), touchPages: 16)
        #expect(cells.map(\.cpuNode) == [0, 0] && cells.map(\.memNode) == [0, 2])
        // Every allocation of a cell whose run ended cleanly is on its memory node. (On a loaded machine a
        // 20 ms cell's workers can end "toolFailed" when they leave the allocator late: not asserted on.)
        #expect(cells.contains { $0.verdict == "ok" }, "\(cells)")
        // (A cell with no allocation in its window, which a loaded machine can give a 20 ms cell, has no share: 0.)
        for c in cells where c.verdict == "ok" && c.allocsPerSecond > 0 { #expect(c.onMemNode == 1, "\(c)") }
        let text = NodeMatrix.format(cells)
        #expect(text.contains("cpu\\mem           node0       node2\n") && !text.contains("\nnode2 "))
        let doc = NumaMatrixResult(workload: "m", startedAt: "", machine: MachineInfo.current(topology: t), topology: "\(t)", nodes: 2,
                                   modelOnly: true, durationMs: 20, touchPages: 16, cells: cells)
        let svg = HTMLReport.heatMap(id: "h", title: "Allocations", unit: "allocations/s", doc) { $0.allocsPerSecond }
        #expect(svg.contains(">mem node 2<") && svg.contains(">cpu node 0<") && !svg.contains(">cpu node 2<") && !svg.contains(">mem node 1<"))
    }

    /// `fault-pages --headroom`'s parts: /proc/zoneinfo's free pages above LOW
    /// per node (read here from the model's own zoneinfo text), and a model that
    /// starts with that headroom: preferred=2 fills node 2 down to LOW, then
    /// falls back to node 0, numa_miss there and numa_foreign on node 2.
    @Test func headroomMakesThePreferredNodeRunShortInTheModel() throws {
        let t = try Topology.declared(cpusPerNode: [1, 0], distance: [[10, 17], [17, 10]], nodeIDs: [0, 2])
        var c = AllocatorConfig(topology: t, pagesPerNode: 4096)
        c.bindMemory = false
        let a = try PageAllocator(c)
        let h = PolicyFidelity.kernelHeadroom(zoneinfo: a.zoneinfo())
        #expect(h == [0: a.freePages(zone: 0) - a.zoneDescription(0).low, 2: a.freePages(zone: 1) - a.zoneDescription(1).low])
        let d = try PolicyFidelity.runModel(topology: t, policy: MemPolicy(mode: .preferred, nodes: [1]), pages: 3000, cpu: 0, headroom: [1: 1000])
        #expect(abs(d[1].numaHit - 1000) <= 64, "node 2 serves its headroom (give or take a per-CPU batch): \(d)")
        #expect(d[0].numaMiss == 3000 - d[1].numaHit && d[1].numaForeign == d[0].numaMiss && d[0].numaHit == 0)
        #expect(d[0].localNode == d[0].numaMiss && d[1].otherNode == d[1].numaHit)
    }
}
