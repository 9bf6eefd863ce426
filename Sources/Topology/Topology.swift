import CNUMA

/// Errors in a topology description. Each names what is wrong.
public enum TopologyError: Error, Equatable, CustomStringConvertible {
    case noNodes
    case noCPUs(node: Int)
    case distanceMatrixShape(expected: Int, rows: [Int])
    case distanceInvalid(from: Int, to: Int, value: Int, reason: String)
    case cpuOutOfRange(cpu: Int, available: Int)
    case nodeOutOfRange(node: Int, available: Int)

    public var description: String {
        switch self {
        case .noNodes: return "topology: at least one node is required"
        case .noCPUs(let n): return "topology: node \(n) has no CPUs (every node needs at least one)"
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
/// Invariants: at least one node; every node has at least one CPU; CPUs are
/// numbered 0..<cpuCount with no gaps and each belongs to exactly one node;
/// `distance` is nodeCount x nodeCount, 10 on the diagonal, > 10 elsewhere.
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
    /// For each node, the machine's node number behind it (libnuma's, which
    /// a discovered topology may skip: nodes without CPUs are left out and the
    /// rest renumbered densely). A declared topology's nodes are their own numbers.
    public let machineNode: [Int]
    /// Number of CPUs the machine has.
    public let machineCPUs: Int

    public var nodeCount: Int { nodes.count }
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
        for n in nodes where n.cpus.isEmpty { throw .noCPUs(node: n.id.rawValue) }
        let k = nodes.count
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
        self.machineNode = machineNode ?? Array(0..<k)
        self.cpuNode = owner.map { max($0, 0) }
    }

    public var description: String {
        var s = "\(nodeCount) node(s), \(cpuCount) CPU(s)\(isDeclared ? " (declared)" : "")"
        for n in nodes { s += "; node\(n.id.rawValue): cpus \(n.cpus.map { String($0.rawValue) }.joined(separator: ","))" }
        return s
    }
}
