import CNUMA

/// Errors in a topology description. Each names what is wrong.
public enum TopologyError: Error, Equatable, CustomStringConvertible {
    case noNodes
    case noCPUs(node: Int)
    case noCPUsAnywhere
    case badNodeIDs(ids: [Int], reason: String)
    case distanceMatrixShape(expected: Int, rows: [Int])
    case distanceInvalid(from: Int, to: Int, value: Int, reason: String)
    case cpuOutOfRange(cpu: Int, available: Int)
    case nodeOutOfRange(node: Int, available: Int)

    public var description: String {
        switch self {
        case .noNodes: return "topology: at least one node is required"
        case .noCPUs(let n): return "topology: node \(n) has no CPUs (every node needs at least one)"
        case .noCPUsAnywhere: return "topology: no node has a CPU (memory-only nodes need at least one node with CPUs beside them)"
        case .badNodeIDs(let ids, let why): return "topology: node ids \(ids.map(String.init).joined(separator: ",")): \(why)"
        case .distanceMatrixShape(let e, let rows):
            return "topology: distance matrix must be \(e)x\(e), got rows of lengths \(rows)"
        case .distanceInvalid(let a, let b, let v, let why):
            return "topology: distance[\(a)][\(b)] = \(v) is invalid: \(why)"
        case .cpuOutOfRange(let c, let n): return "topology: cpu \(c) does not exist (this topology has \(n) CPUs, 0..\(n - 1))"
        case .nodeOutOfRange(let c, let n): return "topology: node \(c) does not exist (this topology has \(n) nodes, 0..\(n - 1))"
        }
    }
}

/// Nodes, their CPUs, and the node distance matrix.
///
/// A topology is either *discovered* from the machine (libnuma, or one node
/// when `numa_available() < 0`) or *declared* (for example two nodes of one
/// CPU each on a one-node machine). A declared topology's logical CPUs are
/// mapped onto the machine's real CPUs round-robin for pinning, and the
/// allocator maps whatever CPU a thread runs on back to a logical CPU.
///
/// Invariants: at least one node and at least one CPU; a node may have no
/// CPUs (a memory-only node, as CXL or PMEM nodes are); CPUs are numbered
/// 0..<cpuCount with no gaps and each belongs to exactly one node; `distance`
/// is nodeCount x nodeCount, 10 on the diagonal, > 10 elsewhere.
///
/// Node *indices* (NodeID, and every per-node array here and in the
/// allocator) are dense, 0..<nodeCount. Node *numbers*, what users write and
/// read (`bind=2`, numastat's `node2` column), are `machineNode`: the machine's
/// numbers for a discovered topology (which may have gaps: nodes 0 and 2), the
/// declared `node_ids` (default 0..<nodeCount) for a declared one. Numbers
/// ascend with indices.
public struct Topology: Sendable, Equatable, CustomStringConvertible {
    public struct Node: Sendable, Equatable {
        public let id: NodeID
        public let cpus: [CPUID]
        /// Bytes of memory the machine reports for this node, if known.
        public let memoryBytes: Int?
    }

    public let nodes: [Node]
    /// distance[a][b] as numa_distance reports it (10 = local).
    public let distance: [[Int]]
    /// True when declared rather than read from the machine.
    public let isDeclared: Bool
    /// True when memory can really be bound to nodes (libnuma, several real nodes, not declared).
    public let canBindMemory: Bool
    /// For each logical CPU, the real CPU a worker on it is pinned to.
    public let realCPU: [Int]
    /// For each node index, its number: the machine's node number behind it
    /// (libnuma's, which may have gaps where the machine has no node), or the
    /// declared number (`node_ids`; default the index). Ascending.
    public let machineNode: [Int]
    /// Number of CPUs the machine has.
    public let machineCPUs: Int

    public var nodeCount: Int { nodes.count }
    /// The number users see for node index `node` (machineNode).
    @inlinable public func number(of node: Int) -> Int { machineNode[node] }
    /// The index of the node numbered `number`, or nil when there is none.
    public func index(ofNumber number: Int) -> Int? { machineNode.firstIndex(of: number) }
    /// Whether node index `node` has CPUs (false: a memory-only node).
    public func hasCPUs(_ node: Int) -> Bool { !nodes[node].cpus.isEmpty }
    /// Indices of the nodes with CPUs, ascending.
    public var cpuNodes: [Int] { nodes.indices.filter { hasCPUs($0) } }
    /// Indices of the memory-only nodes (no CPUs), ascending.
    public var memoryOnlyNodes: [Int] { nodes.indices.filter { !hasCPUs($0) } }
    /// A CPU that works on behalf of `node` (its kswapd, a reclaimed page's
    /// free): its first CPU, or for a memory-only node the first CPU of the
    /// nearest node with CPUs (the kernel runs a CPU-less node's kswapd on any CPU).
    public func homeCPU(of node: Int) -> CPUID {
        if let c = nodes[node].cpus.first { return c }
        for n in fallbackOrder(from: NodeID(node)) { if let c = nodes[n.rawValue].cpus.first { return c } }
        return CPUID(0)
    }
    public var cpuCount: Int { realCPU.count }
    public var allCPUs: [CPUID] { (0..<cpuCount).map(CPUID.init) }

    /// The node that owns a logical CPU.
    public func node(of cpu: CPUID) -> NodeID { NodeID(cpuNode[cpu.rawValue]) }
    private let cpuNode: [Int]

    /// The node order a zonelist follows for `node`: by distance, nearest
    /// first, ties broken by node number (the kernel's find_next_best_node
    /// without its load balancing).
    public func fallbackOrder(from node: NodeID) -> [NodeID] {
        let row = distance[node.rawValue]
        return (0..<nodeCount).sorted { a, b in
            if a == node.rawValue { return true }
            if b == node.rawValue { return false }
            return row[a] != row[b] ? row[a] < row[b] : a < b
        }.map(NodeID.init)
    }

    init(nodes: [Node], distance: [[Int]], isDeclared: Bool, canBindMemory: Bool, realCPU: [Int], machineCPUs: Int,
         machineNode: [Int]? = nil) throws(TopologyError) {
        guard !nodes.isEmpty else { throw .noNodes }
        guard nodes.contains(where: { !$0.cpus.isEmpty }) else { throw .noCPUsAnywhere }
        let k = nodes.count
        let numbers = machineNode ?? Array(0..<k)
        guard numbers.count == k else { throw .badNodeIDs(ids: numbers, reason: "\(numbers.count) id(s) for \(k) node(s)") }
        for i in numbers.indices.dropFirst() where numbers[i] <= numbers[i - 1] {
            throw .badNodeIDs(ids: numbers, reason: "must ascend, each once (\(numbers[i]) after \(numbers[i - 1]))")
        }
        // Declared numbers must fit a node mask (0...63); the default 0..<k is left to the allocator's own limit.
        if let bad = numbers.first(where: { $0 < 0 || (isDeclared && machineNode != nil && $0 > 63) }) {
            throw .badNodeIDs(ids: numbers, reason: "\(bad) is outside 0...63 (node masks hold 64 nodes)")
        }
        guard distance.count == k, distance.allSatisfy({ $0.count == k }) else {
            throw .distanceMatrixShape(expected: k, rows: distance.map(\.count))
        }
        for a in 0..<k {
            for b in 0..<k {
                let d = distance[a][b]
                if a == b && d != 10 { throw .distanceInvalid(from: a, to: b, value: d, reason: "the local distance must be 10") }
                if a != b && d <= 10 { throw .distanceInvalid(from: a, to: b, value: d, reason: "a remote distance must be greater than 10") }
                if a != b && d > 254 { throw .distanceInvalid(from: a, to: b, value: d, reason: "distances are at most 254") }
            }
        }
        var owner = [Int](repeating: -1, count: realCPU.count)
        for n in nodes {
            for c in n.cpus {
                guard c.rawValue >= 0, c.rawValue < realCPU.count else { throw .cpuOutOfRange(cpu: c.rawValue, available: realCPU.count) }
                owner[c.rawValue] = n.id.rawValue
            }
        }
        self.nodes = nodes
        self.distance = distance
        self.isDeclared = isDeclared
        self.canBindMemory = canBindMemory
        self.realCPU = realCPU
        self.machineCPUs = machineCPUs
        self.machineNode = numbers
        self.cpuNode = owner.map { max($0, 0) }
    }

    public var description: String {
        var s = "\(nodeCount) node(s), \(cpuCount) CPU(s)\(isDeclared ? " (declared)" : "")"
        for n in nodes {
            s += "; node\(machineNode[n.id.rawValue]): " + (n.cpus.isEmpty ? "memory only" : "cpus \(n.cpus.map { String($0.rawValue) }.joined(separator: ","))")
        }
        return s
    }
}
