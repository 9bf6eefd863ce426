import Foundation
import Testing
import PageAllocator
import Topology
@testable import StressHarness

/// Weighted interleave against the real kernel: the numastat deltas Linux
/// 6.12.95 (Debian bookworm-backports) gave in the numa-lab 2-node guest,
/// copied here, against the model's for the same topology and policy; which
/// kernels count weighted interleave as interleave_hit; and `fault-pages`'
/// switch for it.
@Suite struct WeightedInterleaveFidelityTests {
    /// The guest's 2 nodes (one CPU each, distance 21).
    func twoNodes() throws -> Topology {
        try Topology.declared(cpusPerNode: [1, 1], distance: [[10, 21], [21, 10]], nodeIDs: [0, 1])
    }

    /// `scripts/numa-lab.sh --kernel backports -- fault-pages --policy weighted-interleave=0:3,1:1
    /// --pages 8192 --cpu 0` on Linux 6.12.95+deb12-amd64 (2026-11-30): node0, node1 deltas.
    /// (numa_hit, numa_miss, numa_foreign, interleave_hit, local_node, other_node)
    static let kernel612: [NodeNumaStat] = [
        NodeNumaStat(node: 0, numaHit: 6157, interleaveHit: 0, localNode: 6157, otherNode: 0),
        NodeNumaStat(node: 1, numaHit: 2052, interleaveHit: 0, localNode: 0, otherNode: 2052),
    ]

    @Test func kernelReleasesThatCountWeightedInterleaveHit() {
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "6.12.95+deb12-amd64") == false)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "6.9.0") == false)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "6.13.0-rc7") == true)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "6.18.44-fc-v445") == true)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "7.0.1") == true)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "6.1.0-57-amd64") == false)
        #expect(PolicyFidelity.countsWeightedInterleaveHit(release: "weird") == nil)
    }

    /// The model with 6.12's rule agrees with 6.12's counters on every node within 0.5% of
    /// the pages (3/4 on node 0 as local_node, 1/4 on node 1 as other_node, no interleave_hit);
    /// with 6.13's rule it disagrees on exactly the interleave_hit rows, so the comparison can fail.
    @Test func modelMatchesLinux612sWeightedInterleaveCounters() throws {
        let p = MemPolicy(mode: .weightedInterleave, nodes: [0, 1], weights: [3, 1])
        let m612 = try PolicyFidelity.runModel(topology: twoNodes(), policy: p, pages: 8192, cpu: 0, weightedInterleaveHit: false)
        #expect(m612[0].numaHit == 6144 && m612[0].localNode == 6144 && m612[1].numaHit == 2048 && m612[1].otherNode == 2048)
        #expect(m612.allSatisfy { $0.interleaveHit == 0 && $0.numaMiss == 0 && $0.numaForeign == 0 })
        #expect(PolicyFidelity.disagreements(kernel: Self.kernel612, model: m612, pages: 8192, tolerance: 0.005).isEmpty)
        let m613 = try PolicyFidelity.runModel(topology: twoNodes(), policy: p, pages: 8192, cpu: 0, weightedInterleaveHit: true)
        #expect(m613[0].interleaveHit == 6144 && m613[1].interleaveHit == 2048)
        let bad = PolicyFidelity.disagreements(kernel: Self.kernel612, model: m613, pages: 8192, tolerance: 0.05)
        #expect(bad.count == 2 && bad.allSatisfy { $0.contains("interleave_hit") }, "\(bad)")
    }

    /// The command: on a declared topology the model counts as 6.13+ unless told otherwise, says
    /// which rule it used, and refuses a bad value with exit 2.
    @Test func faultPagesSaysWhichRuleTheModelUses() throws {
        let base = ["fault-pages", "--nodes", "2", "--policy", "weighted-interleave=0:3,1:1", "--pages", "4096", "--cpu", "0"]
        var (code, out, err) = try UserFacingTests.pagestorm(base, cwd: repoRoot.path)
        #expect(code == 0, "\(err)")
        #expect(out.contains("counted as interleave_hit (as Linux 6.13+ does)"), "\(out)")
        #expect(out.range(of: #"interleave_hit\s+3072\s+1024"#, options: .regularExpression) != nil, "\(out)")
        (code, out, err) = try UserFacingTests.pagestorm(base + ["--weighted-interleave-hit", "no"], cwd: repoRoot.path)
        #expect(code == 0 && out.contains("not counted as interleave_hit"), "\(out)\(err)")
        #expect(out.range(of: #"interleave_hit\s+0\s+0"#, options: .regularExpression) != nil && out.contains("3072"), "\(out)")
        (code, out, err) = try UserFacingTests.pagestorm(base + ["--weighted-interleave-hit", "maybe"], cwd: repoRoot.path)
        #expect(code == 2 && err.contains("--weighted-interleave-hit must be auto, yes or no, got 'maybe'"), "\(err)")
    }
}

/// `[memory] weighted_interleave_hit` in a workload run: the same 3:1 split and numa_hit either
/// way; interleave_hit counted by default (6.13+) and not with false (6.9-6.12).
@Suite struct WeightedInterleaveWorkloadTests {
    /// NUMAWorkloadTests' two declared nodes, one group under weighted interleave 0:3,1:1.
    func workload(_ memoryLine: String) -> String {
        NUMAWorkloadTests().twoNodes("physcpubind = \"0\"\nmempolicy = \"weighted-interleave=0:3,1:1\"", memory: memoryLine)
    }

    @Test func memoryKeyChoosesTheKernelsInterleaveHitRule() throws {
        #expect(try parse(workload("")).memory.weightedInterleaveHit == nil)
        #expect(try parse(workload("weighted_interleave_hit = false")).memory.weightedInterleaveHit == false)
        for (line, counted) in [("", true), ("weighted_interleave_hit = false", false)] {
            let r = try run(workload(line))
            #expect(r.status.verdict == "ok")
            let byNode = try #require(r.counters.numaByNode)
            let on0 = byNode[0]["numa_hit"]!, on1 = byNode[1]["numa_hit"]!
            #expect(on0 > 0 && abs(on0 - 3 * on1) <= 3, "3:1 split: \(byNode)")
            #expect(byNode[0]["numa_local"] == on0 && byNode[1]["numa_other"] == on1)
            #expect((byNode[0]["numa_interleave"] ?? 0) == (counted ? on0 : 0) && (byNode[1]["numa_interleave"] ?? 0) == (counted ? on1 : 0), "\(line): \(byNode)")
            let s = try #require(r.numastat)
            #expect(counted ? s.nodes[1].interleaveHit >= on1 : s.nodes.allSatisfy { $0.interleaveHit == 0 }, "\(s.nodes)")
            #expect(r.memoryCheck.validate == "ok" && r.memoryCheck.accounting?.allocated == 0)
        }
        do { _ = try parse(workload("weighted_interleave_hit = 2")); Issue.record("accepted a number") } catch {
            #expect(error.field.hasSuffix("weighted_interleave_hit") && "\(error)".contains("weighted_interleave_hit"), "\(error)")
        }
    }
}
