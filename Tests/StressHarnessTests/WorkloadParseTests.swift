import Foundation
import Testing
import PageAllocator
@testable import StressHarness
@testable import Topology

@Suite struct WorkloadParseTests {
    @Test func defaultsAreFilledIn() throws {
        let w = try parse("""
        [[group]]
        [[group.op]]
        """)
        #expect(w.name == "test")
        #expect(w.kind == .ops)
        #expect(w.topology.kind == "machine")
        #expect(w.topology.nodes == 1 && w.topology.cpusPerNode == [2])
        #expect(w.memory.zones == [ZoneRecord(type: "Normal", pages: 64 * 256)])
        #expect(w.memory.minFreeKbytes == KernelFormulas.minFreeKbytes(lowmemKbytes: 64 * 1024))
        #expect(!w.memory.minFreeKbytesGiven)
        #expect(w.memory.watermarkScaleFactor == 10)
        #expect(w.run.mode == "duration" && w.run.durationMs == 1000 && w.run.ops == nil)
        #expect(w.run.sampleEvery == 16 && w.run.bucketMs == 100 && w.run.seed == 1)
        #expect(w.policy == Policy.defaults)
        let g = try #require(w.groups.first)
        #expect(g.name == "group0" && g.workers == 2 && g.pin == "cpu" && g.cpus == [0, 1] && g.loop == "closed" && g.rate == nil)
        let op = try #require(g.ops.first)
        #expect(op.kind == .alloc && op.orders == [OrderWeight(order: 0, weight: 1)] && op.flags == "GFP_KERNEL")
        #expect(op.need == 1 && op.count == 1 && op.free == .immediate && op.touch == 0 && op.freeOn == nil && op.lock == nil)
    }

    @Test func everyFeatureParses() throws {
        let w = try parse("""
        name = "full"
        description = "all of it"
        source = "here"
        [topology]
        kind = "declared"
        nodes = 2
        cpus_per_node = [1, 2]
        distances = [[10, 21], [21, 10]]
        [memory]
        zones = [{ type = "DMA32", mib = 4 }, { type = "Normal", pages = 2048 }]
        min_free_kbytes = 1024
        watermark_scale_factor = 100
        pcp_max_order = -1
        [run]
        ops = 1_000
        warmup_ms = 5
        seed = 0x2a
        sample_every = 4
        timeout_ms = 5000
        bucket_ms = 10
        [policy]
        retry = "retries=3"
        oom = "sync"
        reaper = true
        max_stall_ms = 500
        [harness]
        nofail = "caller-loop"
        stall_ms = 250
        [reclaim]
        writeback_ns_per_page = 1000
        [fail_page_alloc]
        probability = 10
        times = -1
        min-order = 0
        ignore-gfp-wait = false
        [[lock]]
        name = "journal"
        [[group]]
        name = "prod"
        workers = 3
        pin = "node"
        nodes = [1]
        loop = "open"
        rate = 5e3
        [[group.op]]
        name = "tx"
        weight = 3
        orders = { 0 = 9, 3 = 1 }
        flags = "GFP_NOFS|__GFP_NOFAIL"
        need = 3
        count = 4
        lock = "journal"
        free = "fifo"
        batch = 8
        free_on = "cons"
        touch = 64
        node = 0
        [[group.op]]
        free = "keep"
        live = 10
        prefill = true
        [[group]]
        name = "cons"
        pin = "none"
        [[group.op]]
        kind = "consume"
        batch = 32
        """)
        #expect(w.name == "full" && w.description == "all of it" && w.source == "here")
        #expect(w.topology == TopologySpec(kind: "declared", nodes: 2, cpusPerNode: [1, 2], distances: [[10, 21], [21, 10]]))
        #expect(w.memory.zones == [ZoneRecord(type: "DMA32", pages: 1024), ZoneRecord(type: "Normal", pages: 2048)])
        #expect(w.memory.minFreeKbytes == 1024 && w.memory.minFreeKbytesGiven && w.memory.pcpMaxOrder == -1)
        #expect(w.run.mode == "ops" && w.run.ops == 1000 && w.run.seed == 42 && w.run.sampleEvery == 4)
        #expect(w.policy["retry"] == "retries=3" && w.policy["oom"] == "sync" && w.policy["reaper"] == "true" && w.policy["max_stall_ms"] == "500")
        #expect(w.policy.count == SlowPathPolicy.table.count, "every key of the allocator's table is resolved")
        #expect(w.harness.nofail == .callerLoop && w.harness.stallMs == 250 && w.harness.callerLoop)
        #expect(w.reclaim.writebackNsPerPage == 1000 && w.reclaim.swapNsPerPage == ReclaimSettings().swapNsPerPage)
        #expect(w.failPageAlloc.probability == 10 && w.failPageAlloc.times == -1 && w.failPageAlloc.minOrder == 0 && !w.failPageAlloc.ignoreGfpWait)
        let p = w.groups[0]
        #expect(p.workers == 3 && p.pin == "node" && p.nodes == [1] && p.loop == "open" && p.rate == 5000)
        let tx = p.ops[0]
        #expect(tx.orders == [OrderWeight(order: 0, weight: 9), OrderWeight(order: 3, weight: 1)])
        #expect(tx.flags == "GFP_NOFS|__GFP_NOFAIL" && tx.lock == "journal" && tx.free == .fifo && tx.batch == 8)
        #expect(tx.freeOn == "cons" && tx.touch == 64 && tx.node == 0 && tx.count == 4 && tx.need == 3)
        #expect(p.ops[1].free == .keep && p.ops[1].live == 10 && p.ops[1].prefill)
        #expect(w.groups[1].workers == 3 && w.groups[1].ops[0].kind == .consume && w.groups[1].ops[0].batch == 32)
    }

    @Test func builtinDefaultEqualsTheFileInWorkloads() throws {
        let text = try String(contentsOf: repoRoot.appendingPathComponent("Workloads/default.toml"), encoding: .utf8)
        #expect(text == Workload.builtinDefaultText)
        #expect(Workload.builtinDefault(machine: testMachine) == (try parse(text, file: "Workloads/default.toml").renamed("default")))
    }

    @Test func overridesShortenAndScale() throws {
        let w = try parse(small("""
        [[group]]
        [[group.op]]
        free = "random"
        live = 100
        """, run: "ops = 1000"))
        let d = w.applying(WorkloadOverrides(durationMs: 50, warmupMs: 0, seed: 7, sizeScale: 0.1))
        #expect(d.run.mode == "duration" && d.run.durationMs == 50 && d.run.ops == nil && d.run.seed == 7)
        #expect(d.groups[0].ops[0].live == 10)
        let o = d.applying(WorkloadOverrides(ops: 5))
        #expect(o.run.mode == "ops" && o.run.ops == 5 && o.run.durationMs == nil)
    }
}

extension Workload {
    func renamed(_ n: String) -> Workload { var w = self; w.name = n; return w }
}

/// node = "next": each worker prefers the node after its own.
@Suite struct NextNodeTests {
    static let text = """
    [topology]
    kind = "machine"
    [[group]]
    name = "n"
    pin = "node"
    [[group.op]]
    node = "next"
    [[group]]
    name = "c"
    [[group.op]]
    node = "next"
    """

    @Test func eachWorkerPrefersTheNextNode() throws {
        // A made-up machine: nodes 0..2 with two CPUs each.
        let machine = Topology.fromMachine(cpus: 6, nodeCount: 3, numa: true, nodeOfCPU: { $0 / 2 },
                                           nodeBytes: { _ in 1 << 30 }, distance: { $0 == $1 ? 10 : 21 })
        let w = try Workload.parse(Self.text, file: "t.toml", machine: machine)
        #expect(w.groups[0].ops[0].nodeOffset == 1 && w.groups[0].ops[0].node == nil)
        let plan = RunPlan(w, topology: machine)
        for p in plan.workers {
            let own: Int
            switch p.pin {
            case .node(let n): own = n
            case .cpu(let c): own = c / 2
            case .none: Issue.record("every worker here is pinned"); continue
            }
            #expect(p.ops[0].spec.node == (own + 1) % 3, "worker \(p.index) on node \(own)")
        }
        #expect(plan.workers.count == 12)
    }

    @Test func oneNodeMachineKeepsItLocal() throws {
        let w = try parse(Self.text)
        let plan = RunPlan(w, topology: testMachine)
        #expect(plan.workers.allSatisfy { $0.ops[0].spec.node == 0 })
    }
}
