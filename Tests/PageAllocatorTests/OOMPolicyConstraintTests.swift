// The OOM killer inside a bind policy (mm/oom_kill.c: constrained_alloc,
// oom_cpuset_eligible -> mempolicy_in_oom_domain): CONSTRAINT_MEMORY_POLICY,
// victims only among tasks that can free memory on the policy's nodes, and
// totalpages = the pages of those nodes.
import Testing
@testable import PageAllocator
import Topology

@Suite struct OOMPolicyConstraintTests {
    /// Two nodes of 4096 pages, one CPU each; no retries after an OOM; a
    /// victim that never exits ends the caller's wait at max_stall_ms.
    func allocator() throws -> PageAllocator {
        var c = AllocatorConfig(topology: try Topology.declared(nodes: 2, cpusPerNode: 1, distance: [[10, 21], [21, 10]]), pagesPerNode: 4096)
        c.bindMemory = false
        c.policy.retry = .retries(0)
        c.policy.maxStallMs = 300
        return try PageAllocator(c)
    }

    /// Allocates under `policy` as `owner` from CPU `cpu` until the allocator refuses.
    func exhaust(_ a: PageAllocator, _ policy: MemPolicy, owner: UInt16, cpu: Int) -> [PageBlock] {
        var cur = InterleaveCursor()
        var held: [PageBlock] = []
        while let b = try? a.allocate(order: Order(0), flags: .kernel, policy: policy, cursor: &cur, cpu: CPUID(cpu), owner: owner) {
            held.append(b)
        }
        return held
    }

    /// bind=1 runs out. The biggest task is bound to node 0: killing it frees
    /// nothing on node 1, so it is not eligible; the biggest eligible one (no
    /// policy: it may hold memory anywhere) is chosen.
    @Test func aBindOOMSkipsTasksBoundToOtherNodes() throws {
        let a = try allocator()
        let far = try #require(a.registerTask(name: "far"))
        let free = try #require(a.registerTask(name: "anywhere"))
        let near = try #require(a.registerTask(name: "near"))
        var cur = InterleaveCursor()
        let farPage = try a.allocate(order: Order(0), policy: MemPolicy(mode: .bind, nodes: [0]), cursor: &cur, cpu: CPUID(0), owner: far)
        a.setTaskRSS(far, pages: 3000)
        a.setTaskRSS(free, pages: 300)
        let held = exhaust(a, MemPolicy(mode: .bind, nodes: [1]), owner: near, cpu: 0)
        #expect(!held.isEmpty && held.allSatisfy { $0.node == NodeID(1) })
        let kill = try #require(a.oomEvents().first { $0.kind == "kill" })
        #expect(kill.victim == Int(free), "not 'far' (bound to node 0, 3000 pages): \(a.oomEvents())")
        #expect(kill.constraint == "CONSTRAINT_MEMORY_POLICY nodemask=1")
        #expect(kill.badness == 300)
        for b in held { try a.free(b, cpu: CPUID(0)) }
        try a.free(farPage, cpu: CPUID(0))
        a.drainAllCPUs()
        #expect(try a.validate().allocated == 0)
    }

    /// totalpages under the constraint is node 1's pages (4096), not all
    /// (8192): oom_score_adj 500 adds 500 * (4096 / 1000) = 2000 points.
    /// A local (unconstrained) OOM counts every page and knows no constraint.
    @Test func totalPagesAreThePolicysNodes() throws {
        let a = try allocator()
        let adj = try #require(a.registerTask(name: "adj", oomScoreAdj: 500))
        let near = try #require(a.registerTask(name: "near"))
        let held = exhaust(a, MemPolicy(mode: .bind, nodes: [1]), owner: near, cpu: 1)
        let kill = try #require(a.oomEvents().first { $0.kind == "kill" })
        #expect(kill.victim == Int(adj) && kill.badness == 500 * (4096 / 1000))
        for b in held { try a.free(b, cpu: CPUID(1)) }
        a.drainAllCPUs()

        let b = try allocator()
        let adj2 = try #require(b.registerTask(name: "adj", oomScoreAdj: 500))
        let all = try #require(b.registerTask(name: "all"))
        let held2 = exhaust(b, .local, owner: all, cpu: 0)
        let kill2 = try #require(b.oomEvents().first { $0.kind == "kill" })
        #expect(kill2.victim == Int(adj2) && kill2.badness == 500 * (8192 / 1000) && kill2.constraint == nil)
        for x in held2 { try b.free(x, cpu: CPUID(0)) }
        b.drainAllCPUs()
        #expect(try a.validate().allocated == 0 && b.validate().allocated == 0)
    }
}
