import CNUMA
import Foundation
import PageAllocator
import Synchronization
import Topology

/// `pagestorm numa`: the CPU-node x memory-node matrix, the fallback order
/// under pressure, and a policy comparison.
public enum NodeMatrix {
    /// One cell: workers on `cpuNode`'s CPUs, memory bound to `memNode`. Both
    /// are node numbers (the topology's, which may skip numbers); a memory-only
    /// node is a memory node of some cells and the CPU node of none.
    public struct Cell: Codable, Sendable, Equatable {
        public var cpuNode: Int
        public var memNode: Int
        public var allocsPerSecond: Double
        public var allocP50Ns: UInt64
        public var allocP99Ns: UInt64
        /// Writing `touchPages` pages bound to memNode from a thread on cpuNode, GB/s (10^9 bytes).
        public var touchGBps: Double
        /// Allocations that landed on memNode (numa_hit + numa_miss of that node over the window) / all.
        public var onMemNode: Double
        public var verdict: String
    }

    /// The built-in workload: one worker per CPU of the chosen node allocating
    /// order 0, writing the whole page, freeing it at once.
    public static func builtinWorkload(topology t: TopologySpec, durationMs: Int, arenaMiB: Int) throws(WorkloadError) -> Workload {
        let topo = t.kind == "machine" ? "kind = \"machine\"" :
            "kind = \"declared\"\nnodes = \(t.nodes)\ncpus_per_node = [\(t.cpusPerNode.map(String.init).joined(separator: ", "))]\n" +
            (t.nodeIDs.map { "node_ids = [\($0.map(String.init).joined(separator: ", "))]\n" } ?? "") +
            "distances = [\(t.distances.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", "))]"
        let text = """
        name = "numa-matrix"
        description = "order-0 alloc, write the whole page, free; for pagestorm numa"
        source = "pagestorm numa (built-in)"
        [topology]
        \(topo)
        [memory]
        arena_mib = \(arenaMiB)
        [run]
        duration_ms = \(durationMs)
        warmup_ms = 20
        [[group]]
        name = "matrix"
        pin = "node"
        [[group.op]]
        name = "alloc-touch-free"
        order = 0
        free = "immediate"
        touch = 4096
        """
        return try Workload.parse(text, file: "numa-matrix (built-in)", defaultName: "numa-matrix")
    }

    /// The workload with every group's workers on `cpuNode` (a node index with
    /// CPUs; one worker per CPU of it) under `policy` (nil: the group's own;
    /// node numbers, as users write them).
    public static func placed(_ w: Workload, topology: Topology, cpuNode: Int, policy: String?) -> Workload {
        var v = w
        for g in v.groups.indices {
            v.groups[g].pin = "node"
            v.groups[g].nodes = [cpuNode]
            v.groups[g].cpus = Array(0..<topology.cpuCount)
            v.groups[g].workers = topology.nodes[cpuNode].cpus.count
            if let policy { v.groups[g].mempolicy = policy == "local" ? nil : policy }
        }
        return v
    }

    /// Runs one placement and measures the touch bandwidth after it.
    public static func measure(_ w: Workload, topology: Topology, cpuNode: Int, memNode: Int?, touchPages: Int) throws -> (RunResult, Double) {
        let gbps = Mutex<Double>(0)
        var options = RunOptions()
        options.measureOverhead = false
        let cpu = topology.nodes[cpuNode].cpus[0]
        let real = topology.realCPU[cpu.rawValue]
        options.afterRun = { a in
            gbps.withLock { $0 = touchBandwidth(a, cpu: cpu, realCPU: real, memNode: memNode, pages: touchPages) }
        }
        let r = try StressRun.run(w, options: options)
        return (r, gbps.withLock { $0 })
    }

    /// Pages bound to `memNode` (nil: local) allocated from `cpu`, then written
    /// whole 4 times from a thread pinned to its real CPU; best of the 4 passes, GB/s.
    static func touchBandwidth(_ a: PageAllocator, cpu: CPUID, realCPU: Int, memNode: Int?, pages: Int) -> Double {
        try? Affinity.pinCurrentThread(toRealCPU: realCPU)
        defer { unpin() }
        let policy = memNode.map { MemPolicy(mode: .bind, nodes: [$0]) } ?? .local
        var cursor = InterleaveCursor()
        var held: [PageBlock] = []
        for _ in 0..<pages {
            guard let b = try? a.allocate(order: Order(unchecked: 0), policy: policy, cursor: &cursor, cpu: cpu) else { break }
            held.append(b)
        }
        defer { for b in held { try? a.free(b, cpu: cpu) } }
        guard !held.isEmpty else { return 0 }
        var best = Double.infinity
        for pass in 0..<4 {
            let t0 = cnuma_monotonic_ns()
            for b in held { memset(b.address, Int32(pass + 1), b.byteCount) }
            best = min(best, Double(cnuma_monotonic_ns() - t0))
        }
        return Double(held.count * a.pageSize) / best
    }

    /// Lets the calling thread run on every CPU again.
    static func unpin() {
        let n = Int(cnuma_cpu_count())
        let all = (0..<n).map(Int32.init)
        _ = all.withUnsafeBufferPointer { cnuma_pin_current_thread_set($0.baseAddress, Int32(n)) }
    }

    static func allocRow(_ r: RunResult) -> ClassLatency? {
        r.latency.filter { $0.opClass.call == .alloc }.max { $0.calls < $1.calls }
    }

    /// The matrix: every node with CPUs x every node (memory-only ones
    /// included), memory bound with `bind`.
    public static func matrix(_ w: Workload, topology: Topology, touchPages: Int, log: ((String) -> Void)? = nil) throws -> [Cell] {
        var cells: [Cell] = []
        for c in topology.cpuNodes {
            for m in 0..<topology.nodeCount {
                let (r, gbps) = try measure(placed(w, topology: topology, cpuNode: c, policy: "bind=\(topology.number(of: m))"), topology: topology,
                                            cpuNode: c, memNode: m, touchPages: touchPages)
                let secs = Double(max(r.timing.measuredNs, 1)) / 1e9
                let row = allocRow(r)
                let byNode = r.counters.numaByNode ?? []
                let all = byNode.reduce(0) { $0 + ($1["numa_hit"] ?? 0) + ($1["numa_miss"] ?? 0) }
                let here = m < byNode.count ? (byNode[m]["numa_hit"] ?? 0) + (byNode[m]["numa_miss"] ?? 0) : 0
                cells.append(Cell(cpuNode: topology.number(of: c), memNode: topology.number(of: m), allocsPerSecond: Double(r.throughput.allocs) / secs,
                                  allocP50Ns: row?.summary.p50 ?? 0, allocP99Ns: row?.summary.p99 ?? 0, touchGBps: gbps,
                                  onMemNode: all > 0 ? Double(here) / Double(all) : 0, verdict: r.status.verdict))
                log?("cpu node \(topology.number(of: c)), memory node \(topology.number(of: m)): \(r.status.verdict)")
            }
        }
        return cells
    }

    /// The matrix as text: one block per measure, rows CPU nodes, columns
    /// memory nodes (by number), then remote/local per row.
    public static func format(_ cells: [Cell]) -> String {
        func cell(_ c: Int, _ m: Int) -> Cell? { cells.first { $0.cpuNode == c && $0.memNode == m } }
        func col(_ s: String) -> String { String(repeating: " ", count: max(0, 12 - s.count)) + s }
        let rows = Array(Set(cells.map(\.cpuNode))).sorted(), cols = Array(Set(cells.map(\.memNode))).sorted()
        var out = ""
        func block(_ title: String, _ f: (Cell) -> String) {
            out += title + "\n" + "cpu\\mem    " + cols.map { col("node\($0)") }.joined() + "\n"
            for c in rows { out += "node\(c)".padding(toLength: 11, withPad: " ", startingAt: 0) + cols.map { m in col(cell(c, m).map(f) ?? "-") }.joined() + "\n" }
        }
        block("allocations/s") { rate($0.allocsPerSecond) }
        block("alloc p50 (ns)") { String($0.allocP50Ns) }
        block("alloc p99 (ns)") { String($0.allocP99Ns) }
        block("touch GB/s") { String(format: "%.2f", $0.touchGBps) }
        block("remote/local (allocations/s of the local cell / this cell; touch GB/s the same)") { x in
            guard let l = cell(x.cpuNode, x.cpuNode), x.allocsPerSecond > 0, x.touchGBps > 0 else { return "-" }
            return String(format: "%.2f/%.2f", l.allocsPerSecond / x.allocsPerSecond, l.touchGBps / x.touchGBps)
        }
        block("share of allocations on the memory node") { String(format: "%.0f%%", $0.onMemNode * 100) }
        return out
    }

    public static func rate(_ x: Double) -> String {
        x >= 1e6 ? String(format: "%.2fM", x / 1e6) : x >= 1e3 ? String(format: "%.1fk", x / 1e3) : String(format: "%.0f", x)
    }

    /// Fallback order under pressure: node `node` (an index, with CPUs) filled below its LOW
    /// watermark (with __GFP_THISNODE), then `pages` order-0 allocations from
    /// its first CPU: pages per node, in the order they were first used,
    /// beside the zonelist's distance order.
    public static func fallback(config: AllocatorConfig, node: Int, pages: Int) throws -> (zonelist: [Int], used: [(node: Int, pages: Int)]) {
        var c = config
        c.bindMemory = false
        let a = try PageAllocator(c)
        let cpu = a.topology.nodes[node].cpus[0]
        var filler: [PageBlock] = []
        let low = a.zoneDescription(node * a.zonesPerNode + a.zonesPerNode - 1).low
        while a.freePages(zone: node * a.zonesPerNode + a.zonesPerNode - 1) > low,
              let b = try? a.allocate(order: Order(unchecked: 0), flags: [.kernel, .thisNode], node: NodeID(node), cpu: cpu) {
            filler.append(b)
        }
        var used: [(node: Int, pages: Int)] = []
        var held: [PageBlock] = []
        for _ in 0..<pages {
            guard let b = try? a.allocate(order: Order(unchecked: 0), cpu: cpu) else { break }
            held.append(b)
            if let last = used.last, last.node == b.node.rawValue { used[used.count - 1].pages += 1 } else { used.append((b.node.rawValue, 1)) }
        }
        for b in held + filler { try a.free(b, cpu: cpu) }
        return (a.topology.fallbackOrder(from: NodeID(node)).map(\.rawValue), used)
    }

    /// One row of the policy comparison.
    public struct PolicyRow: Sendable {
        public var policy: String
        public var allocsPerSecond: Double
        public var p50: UInt64, p99: UInt64
        /// Over the window, per node: allocations placed there (numa_hit + numa_miss), interleave_hit, other_node.
        public var placedByNode: [Int]
        public var interleaveHit: Int
        public var otherNode: Int
        public var placement: String
        public var verdict: String
    }

    public static func comparePolicies(_ w: Workload, topology: Topology, cpuNode: Int, policies: [String]) throws -> [PolicyRow] {
        try policies.map { p in
            let (r, _) = try measure(placed(w, topology: topology, cpuNode: cpuNode, policy: p), topology: topology, cpuNode: cpuNode,
                                     memNode: nil, touchPages: 0)
            let byNode = r.counters.numaByNode ?? []
            let row = allocRow(r)
            let verified = (r.memoryCheck.placement ?? []).filter(\.verified).count
            let place = (r.memoryCheck.placement ?? []).isEmpty ? "not checked" :
                verified == topology.nodeCount ? "every arena verified on its node" : "arenas \((r.memoryCheck.placement ?? []).first?.binding ?? "not bound (?)")"
            return PolicyRow(policy: p, allocsPerSecond: Double(r.throughput.allocs) / (Double(max(r.timing.measuredNs, 1)) / 1e9),
                             p50: row?.summary.p50 ?? 0, p99: row?.summary.p99 ?? 0,
                             placedByNode: byNode.map { ($0["numa_hit"] ?? 0) + ($0["numa_miss"] ?? 0) },
                             interleaveHit: byNode.reduce(0) { $0 + ($1["numa_interleave"] ?? 0) },
                             otherNode: byNode.reduce(0) { $0 + ($1["numa_other"] ?? 0) }, placement: place, verdict: r.status.verdict)
        }
    }
}

/// `pagestorm numa --output FILE`: the CPU-node x memory-node matrix (schema
/// "pagestorm.numa/1"), which `pagestorm report` draws as heat maps.
public struct NumaMatrixResult: Codable, Sendable, Equatable {
    public static let schemaName = "pagestorm.numa/1"
    public var schema: String = NumaMatrixResult.schemaName
    public var workload: String
    public var startedAt: String
    public var machine: MachineInfo
    /// The topology the matrix ran on (its description).
    public var topology: String
    public var nodes: Int
    /// Every node's memory is the same real memory (a declared topology, or
    /// no memory binding): differences are the model's, not the hardware's.
    public var modelOnly: Bool
    public var durationMs: Int
    public var touchPages: Int
    public var cells: [NodeMatrix.Cell]

    public init(workload: String, startedAt: String, machine: MachineInfo, topology: String, nodes: Int, modelOnly: Bool,
                durationMs: Int, touchPages: Int, cells: [NodeMatrix.Cell]) {
        self.workload = workload
        self.startedAt = startedAt
        self.machine = machine
        self.topology = topology
        self.nodes = nodes
        self.modelOnly = modelOnly
        self.durationMs = durationMs
        self.touchPages = touchPages
        self.cells = cells
    }
}
