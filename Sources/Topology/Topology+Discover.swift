import CNUMA

extension Topology {
    /// The machine's topology: libnuma's nodes, CPUs and distances, or one
    /// node holding every CPU when `numa_available() < 0` (no other libnuma
    /// call is made then). Nodes without CPUs (memory-only) are left out.
    public static func discover() -> Topology {
        cnuma_init()
        let cpus = Int(cnuma_cpu_count())
        let numa = cnuma_available() != 0
        let nodeCount = numa ? Int(cnuma_node_count()) : 1
        var cpusOf = [[Int]](repeating: [], count: nodeCount)
        for c in 0..<cpus {
            let n = numa ? Int(cnuma_node_of_cpu(Int32(c))) : 0
            cpusOf[min(max(n, 0), nodeCount - 1)].append(c)
        }
        // Keep nodes that have CPUs; renumber densely but keep distances.
        let kept = (0..<nodeCount).filter { !cpusOf[$0].isEmpty }
        var realCPU: [Int] = []
        var nodes: [Node] = []
        for (i, n) in kept.enumerated() {
            let logical = cpusOf[n].map { c -> CPUID in realCPU.append(c); return CPUID(realCPU.count - 1) }
            let size = numa ? Int(cnuma_node_size(Int32(n))) : physicalMemoryBytes()
            nodes.append(Node(id: NodeID(i), cpus: logical, memoryBytes: size > 0 ? size : nil))
        }
        let distance = kept.map { a in kept.map { b in
            let d = Int(cnuma_distance(Int32(a), Int32(b)))
            return a == b ? 10 : (d > 10 ? d : 20)
        } }
        // Safe: discovered values satisfy the invariants by construction.
        return try! Topology(nodes: nodes, distance: distance, isDeclared: false,
                             canBindMemory: numa && kept.count > 1, realCPU: realCPU, machineCPUs: cpus)
    }

    /// A declared topology: `nodes` nodes of `cpusPerNode` logical CPUs each,
    /// with a distance matrix (default: 10 local, 20 remote). Logical CPU i is
    /// pinned to real CPU i % (CPUs of the machine).
    public static func declared(nodes: Int, cpusPerNode: Int, distance: [[Int]]? = nil) throws(TopologyError) -> Topology {
        guard nodes >= 1 else { throw .noNodes }
        guard cpusPerNode >= 1 else { throw .noCPUs(node: 0) }
        let machine = Int(cnuma_cpu_count())
        var ns: [Node] = []
        var real: [Int] = []
        for n in 0..<nodes {
            var cs: [CPUID] = []
            for _ in 0..<cpusPerNode { cs.append(CPUID(real.count)); real.append(real.count % machine) }
            ns.append(Node(id: NodeID(n), cpus: cs, memoryBytes: nil))
        }
        let d = distance ?? (0..<nodes).map { a in (0..<nodes).map { b in a == b ? 10 : 20 } }
        return try Topology(nodes: ns, distance: d, isDeclared: true, canBindMemory: false, realCPU: real, machineCPUs: machine)
    }

    /// A declared topology with explicit per-node CPU counts.
    public static func declared(cpusPerNode counts: [Int], distance: [[Int]]? = nil) throws(TopologyError) -> Topology {
        guard !counts.isEmpty else { throw .noNodes }
        let machine = Int(cnuma_cpu_count())
        var ns: [Node] = []
        var real: [Int] = []
        for (n, c) in counts.enumerated() {
            guard c >= 1 else { throw .noCPUs(node: n) }
            var cs: [CPUID] = []
            for _ in 0..<c { cs.append(CPUID(real.count)); real.append(real.count % machine) }
            ns.append(Node(id: NodeID(n), cpus: cs, memoryBytes: nil))
        }
        let d = distance ?? (0..<counts.count).map { a in (0..<counts.count).map { b in a == b ? 10 : 20 } }
        return try Topology(nodes: ns, distance: d, isDeclared: true, canBindMemory: false, realCPU: real, machineCPUs: machine)
    }

    static func physicalMemoryBytes() -> Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 0
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension Topology {
    /// Whether libnuma reports NUMA support on this machine (numa_available() >= 0).
    public static var numaAvailable: Bool { cnuma_init(); return cnuma_available() != 0 }
}
