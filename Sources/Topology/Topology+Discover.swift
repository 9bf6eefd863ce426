import CNUMA

extension Topology {
    /// The machine's topology: libnuma's nodes, CPUs and distances, or one
    /// node holding every CPU when `numa_available() < 0` (no other libnuma
    /// call is made then). Memory-only nodes (memory, no CPUs) are kept;
    /// node numbers the machine skips (no CPUs, no memory) are left out, and so
    /// are offline CPUs (a worker cannot run there; libnuma knows no node of theirs).
    public static func discover() -> Topology {
        cnuma_init()
        let cpus = Int(cnuma_cpu_count())
        let numa = cnuma_available() != 0
        let nodeCount = numa ? Int(cnuma_node_count()) : 1
        return fromMachine(
            cpus: cpus, nodeCount: nodeCount, numa: numa,
            nodeOfCPU: { cnuma_cpu_online(Int32($0)) == 0 ? -1 : numa ? Int(cnuma_node_of_cpu(Int32($0))) : 0 },
            nodeBytes: { numa ? Int(cnuma_node_size(Int32($0))) : physicalMemoryBytes() },
            distance: { Int(cnuma_distance(Int32($0), Int32($1))) })
    }

    /// Builds a discovered topology from the machine's facts (what discover()
    /// reads through libnuma; tests pass made-up machines). Node numbers with
    /// neither CPUs nor memory (gaps: numa_node_size64 says -1) are left out,
    /// the rest indexed densely; memory-only nodes are kept. `machineNode`
    /// keeps each node's number on the machine (memory binding and every
    /// node number shown to users). A CPU whose node is negative (offline) is
    /// left out: logical CPUs map to the online ones only.
    static func fromMachine(cpus: Int, nodeCount: Int, numa: Bool, nodeOfCPU: (Int) -> Int,
                            nodeBytes: (Int) -> Int, distance: (Int, Int) -> Int) -> Topology {
        var cpusOf = [[Int]](repeating: [], count: nodeCount)
        for c in 0..<cpus {
            let n = nodeOfCPU(c)
            if n < 0 { continue }
            cpusOf[min(n, nodeCount - 1)].append(c)
        }
        // Keep nodes that have CPUs or memory; index densely but keep numbers and distances.
        let bytes = (0..<nodeCount).map { nodeBytes($0) }
        let kept = (0..<nodeCount).filter { !cpusOf[$0].isEmpty || bytes[$0] > 0 }
        var realCPU: [Int] = []
        var nodes: [Node] = []
        for (i, n) in kept.enumerated() {
            let logical = cpusOf[n].map { c -> CPUID in realCPU.append(c); return CPUID(realCPU.count - 1) }
            let size = bytes[n]
            nodes.append(Node(id: NodeID(i), cpus: logical, memoryBytes: size > 0 ? size : nil))
        }
        let matrix = kept.map { a in kept.map { b in
            let d = distance(a, b)
            return a == b ? 10 : (d > 10 ? d : 20)
        } }
        // Safe: discovered values satisfy the invariants by construction.
        return try! Topology(nodes: nodes, distance: matrix, isDeclared: false,
                             canBindMemory: numa && kept.count > 1, realCPU: realCPU, machineCPUs: cpus, machineNode: kept)
    }

    /// A declared topology: `nodes` nodes of `cpusPerNode` logical CPUs each,
    /// with a distance matrix (default: 10 local, 20 remote). Logical CPU i is
    /// pinned to online CPU i % (online CPUs of the machine), round-robin.
    public static func declared(nodes: Int, cpusPerNode: Int, distance: [[Int]]? = nil) throws(TopologyError) -> Topology {
        guard nodes >= 1 else { throw .noNodes }
        guard cpusPerNode >= 1 else { throw .noCPUs(node: 0) }
        let machine = Int(cnuma_cpu_count())
        let online = onlineCPUs(machine)
        var ns: [Node] = []
        var real: [Int] = []
        for n in 0..<nodes {
            var cs: [CPUID] = []
            for _ in 0..<cpusPerNode { cs.append(CPUID(real.count)); real.append(online[real.count % online.count]) }
            ns.append(Node(id: NodeID(n), cpus: cs, memoryBytes: nil))
        }
        let d = distance ?? (0..<nodes).map { a in (0..<nodes).map { b in a == b ? 10 : 20 } }
        return try Topology(nodes: ns, distance: d, isDeclared: true, canBindMemory: false, realCPU: real, machineCPUs: machine)
    }

    /// A declared topology with explicit per-node CPU counts. A count of 0
    /// declares a memory-only node (at least one node needs CPUs). `nodeIDs`
    /// numbers the nodes (ascending, 0...63, e.g. [0, 2]: no node 1); default 0..<count.
    public static func declared(cpusPerNode counts: [Int], distance: [[Int]]? = nil, nodeIDs: [Int]? = nil) throws(TopologyError) -> Topology {
        guard !counts.isEmpty else { throw .noNodes }
        let machine = Int(cnuma_cpu_count())
        let online = onlineCPUs(machine)
        var ns: [Node] = []
        var real: [Int] = []
        for (n, c) in counts.enumerated() {
            guard c >= 0 else { throw .noCPUs(node: nodeIDs.map { n < $0.count ? $0[n] : n } ?? n) }
            var cs: [CPUID] = []
            for _ in 0..<c { cs.append(CPUID(real.count)); real.append(online[real.count % online.count]) }
            ns.append(Node(id: NodeID(n), cpus: cs, memoryBytes: nil))
        }
        let d = distance ?? (0..<counts.count).map { a in (0..<counts.count).map { b in a == b ? 10 : 20 } }
        return try Topology(nodes: ns, distance: d, isDeclared: true, canBindMemory: false, realCPU: real, machineCPUs: machine,
                            machineNode: nodeIDs)
    }

    /// The machine's online CPUs, ascending (all of 0..<machine when sysfs says nothing): a declared
    /// topology's logical CPUs map onto these round-robin.
    static func onlineCPUs(_ machine: Int) -> [Int] {
        let on = (0..<machine).filter { cnuma_cpu_online(Int32($0)) != 0 }
        return on.isEmpty ? Array(0..<machine) : on
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
