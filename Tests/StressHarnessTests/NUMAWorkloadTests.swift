import Testing
import PageAllocator
@testable import StressHarness

/// Per-group memory policies and CPU placement in numactl's spellings, the
/// --mempolicy override, numastat in results, and their bad input.
@Suite struct NUMAWorkloadTests {
    /// Two declared nodes of one CPU each; `memory`: extra `[memory]` lines.
    func twoNodes(_ group: String, run: String = "ops = 2000", memory: String = "") -> String {
        """
        [topology]
        nodes = 2
        cpus_per_node = 1
        distances = [[10, 21], [21, 10]]
        [memory]
        arena_mib = 8
        \(memory)
        [run]
        \(run)
        [[group]]
        name = "w"
        \(group)
        [[group.op]]
        name = "a"
        order = 0
        free = "lifo"
        batch = 8
        """
    }

    @Test func groupKeysDecode() throws {
        let w = try parse(twoNodes("cpunodebind = \"1\"\nmempolicy = \"membind=0\""))
        #expect(w.groups[0].pin == "node" && w.groups[0].nodes == [1] && w.groups[0].mempolicy == "bind=0")
        let v = try parse(twoNodes("physcpubind = \"0-1\"\nmempolicy = \"interleave=all\""))
        #expect(v.groups[0].pin == "cpu" && v.groups[0].cpus == [0, 1] && v.groups[0].mempolicy == "interleave=0-1")
        #expect(try parse(twoNodes("")).groups[0].mempolicy == nil)
    }

    @Test(arguments: [
        ("mempolicy = \"bind=2\"", "group 'w': mempolicy \"bind=2\": '2': node 2 does not exist (nodes: 0-1)"),
        ("mempolicy = \"interleave=\"", "the node list is empty"),
        ("mempolicy = \"interleave=0,,1\"", "an empty item between commas"),
        ("mempolicy = \"weighted-interleave=0:0,1:1\"", "weight 0 of node(s) 0 is outside 1...255"),
        ("mempolicy = \"spread\"", "unknown memory policy 'spread'"),
        ("cpunodebind = \"3\"", "group 'w': cpunodebind \"3\": '3': node 3 does not exist"),
        ("physcpubind = \"0-5\"", "group 'w': physcpubind \"0-5\": '0-5': cpu 2 does not exist"),
        ("cpunodebind = \"0\"\npin = \"cpu\"", "cpunodebind replaces pin/cpus/nodes"),
        ("cpunodebind = \"0\"\nphyscpubind = \"0\"", "give cpunodebind or physcpubind, not both"),
    ])
    func badInputNamesGroupAndValue(_ line: String, _ message: String) throws {
        do { _ = try parse(twoNodes(line)); Issue.record("accepted: \(line)") } catch {
            #expect(error.message.contains(message), "\(error)")
            #expect(error.line >= 11 && error.field.hasPrefix("group[0]."), "\(error)")
        }
    }

    @Test func interleaveRunSplitsAcrossNodesAndResultsCarryNumastat() throws {
        let r = try run(twoNodes("physcpubind = \"0\"\nmempolicy = \"interleave=0,1\""))
        #expect(r.status.verdict == "ok")
        let byNode = try #require(r.counters.numaByNode)
        let on0 = byNode[0]["numa_hit"]!, on1 = byNode[1]["numa_hit"]!
        #expect(on0 > 0 && abs(on0 - on1) <= 1, "\(byNode)")
        #expect(byNode[0]["numa_interleave"] == on0 && byNode[1]["numa_interleave"] == on1)
        #expect(byNode[1]["numa_other"] == on1 && byNode[0]["numa_local"] == on0)
        let s = try #require(r.numastat)
        #expect(s.nodes.count == 2 && s.nodes[1].interleaveHit >= on1 && s.nodes[1].otherNode >= on1)
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
    }

    @Test func bindRunUsesOnlyItsNodeAndPerOpNodeOverridesThePolicy() throws {
        let r = try run(twoNodes("physcpubind = \"0\"\nmempolicy = \"bind=1\"") + "\n[[group.op]]\nname = \"pinned\"\norder = 0\nnode = 0\n")
        let byNode = try #require(r.counters.numaByNode)
        let draws = r.operations.first { $0.op == "pinned" }!.draws
        #expect(byNode[0]["numa_hit"] == draws, "the op's node = 0 is alloc_pages_node(): the policy does not apply")
        #expect(byNode[1]["numa_hit"]! > 0 && byNode[1]["numa_other"] == byNode[1]["numa_hit"])
        #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
    }

    @Test func mempolicyOverride() throws {
        let w = try parse(twoNodes(""))
        #expect(try w.settingMemPolicies(["w=preferred=1"]).groups[0].mempolicy == "preferred=1")
        #expect(try w.settingMemPolicies(["all=local"]).groups[0].mempolicy == nil)
        for (s, m) in [("x=bind=0", "no group is named 'x'"), ("w=bind=9", "node 9 does not exist"), ("bind", "expected GROUP=POLICY")] {
            do { _ = try w.settingMemPolicies([s]); Issue.record("accepted \(s)") } catch { #expect(error.message.contains(m), "\(error)") }
        }
        let p = try w.settingMemPolicies(["w=bind=1"])
        #expect(throws: OverrideError(message: "group 'w': mempolicy 'bind=1' needs NUMA nodes, and allocator 'peer' has none (memory policies apply to pagestorm-buddy only)")) {
            try p.checkMemPoliciesSupported(by: "peer", supported: false)
        }
        try p.checkMemPoliciesSupported(by: "pagestorm-buddy", supported: true)
    }
}
