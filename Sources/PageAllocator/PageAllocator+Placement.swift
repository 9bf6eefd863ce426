import Topology

/// What became of binding one node's arena to its node at set-up.
public enum ArenaBinding: Sendable, Equatable, CustomStringConvertible {
    /// numa_tonode_memory bound it to this machine node.
    case bound(machineNode: Int)
    /// Not bound, and why: "one node", "declared topology", "no libnuma",
    /// "bind_memory = false", or "numa_tonode_memory failed".
    case notBound(String)

    public var description: String {
        switch self {
        case .bound(let m): return "bound to node \(m)"
        case .notBound(let why): return "not bound (\(why))"
        }
    }

    /// Binds `[arena, arena+length)` to the machine node behind `node` where
    /// the topology can, and says what happened.
    /// `binder` is NUMAMemory.bind; tests pass their own.
    static func bind(_ arena: UnsafeMutableRawPointer, length: Int, node: Int, topology t: Topology, enabled: Bool,
                     binder: (UnsafeMutableRawPointer, Int, Int) -> Bool = { NUMAMemory.bind($0, length: $1, to: $2) }) -> ArenaBinding {
        guard enabled else { return .notBound("bind_memory = false") }
        guard t.canBindMemory else {
            if t.isDeclared { return .notBound("declared topology") }
            return .notBound(Topology.numaAvailable ? "one node" : "no libnuma")
        }
        let m = t.machineNode[node]
        return binder(arena, length, m) ? .bound(machineNode: m) : .notBound("numa_tonode_memory failed")
    }
}

/// Where one node's arena really is: its binding, the kernel's memory policy
/// at the arena, and the nodes backing a sample of its pages (move_pages).
public struct ArenaPlacement: Sendable, Equatable, Codable {
    /// The node's number (topology.number(of:): its index unless the topology numbers nodes with gaps).
    public var node: Int
    /// The machine node it stands for (a declared node stands for none).
    public var machineNode: Int?
    /// "bound to node 1", "not bound (one node)", ...
    public var binding: String
    /// get_mempolicy at the arena's first page: "bind 1", "default", or "unavailable".
    public var policy: String
    /// Pages sampled (evenly spread over the arena).
    public var sampled: Int
    /// Sampled pages by the node backing them ("node1": 16).
    public var pagesByNode: [String: Int]
    /// Sampled pages not faulted in (move_pages: ENOENT) or that move_pages could not answer for.
    public var unknown: Int
    /// Bound, the policy binds exactly the machine node, and every sampled page is on it.
    public var verified: Bool

    /// "node1: bound to node 1, policy bind 1; 16 sampled pages: 16 on node1 (verified)".
    public var line: String {
        var pages = pagesByNode.sorted { $0.key < $1.key }.map { "\($0.value) on \($0.key)" }.joined(separator: ", ")
        if unknown > 0 { pages += (pages.isEmpty ? "" : ", ") + "\(unknown) unknown" }
        if pages.isEmpty { pages = "none answered" }
        return "node\(node): \(binding), policy \(policy); \(sampled) sampled pages: \(pages)" + (verified ? " (verified)" : "")
    }
}

extension PageAllocator {
    /// Checks where each node's arena is: its binding, the memory policy the
    /// kernel holds for it, and which nodes back `samplesPerNode` pages spread
    /// evenly over it. The sampled pages are first faulted in without being
    /// written (MADV_POPULATE_WRITE), so the check sees where the kernel puts
    /// the arena's pages whichever CPU faults them; their contents are
    /// unchanged, so it is safe at any time. Costs a few system calls per
    /// node; never fails (what it cannot learn it reports as unknown).
    public func checkPlacement(samplesPerNode: Int = 16) -> [ArenaPlacement] {
        let perNodePages = config.zones.reduce(0) { $0 + $1.pages }
        let k = max(1, min(samplesPerNode, perNodePages))
        return (0..<nodeCount).map { n in
            let base = zones[n * zonesPerNode].info.pointee.memory
            let pages = (0..<k).map { i in base + ((i * perNodePages + perNodePages / 2) / k) * pageSize }
            for p in pages { NUMAMemory.populate(p, length: pageSize) }
            let status = NUMAMemory.nodes(ofPages: pages) ?? Array(repeating: -1, count: k)
            var byNode: [String: Int] = [:]
            var unknown = 0
            for s in status {
                if s >= 0 { byNode["node\(s)", default: 0] += 1 } else { unknown += 1 }
            }
            let machine: Int? = topology.isDeclared ? nil : topology.machineNode[n]
            let policy = NUMAMemory.policy(at: base)
            var verified = false
            if case .bound(let m) = arenaBinding[n] {
                verified = policy?.binds(to: m) == true && byNode == ["node\(m)": k]
            }
            return ArenaPlacement(node: topology.number(of: n), machineNode: machine, binding: arenaBinding[n].description,
                                  policy: policy?.description ?? "unavailable", sampled: k, pagesByNode: byNode,
                                  unknown: unknown, verified: verified)
        }
    }
}

extension PageAllocator {
    /// The zonelist an allocation preferring `node` walks, as
    /// "Node(zone)" entries: the order the allocator falls back in.
    public func zonelistDescription(node: Int, type: ZoneType = .movable) -> String {
        let (list, count) = zonelist(node: node, type: type, thisNode: false)
        return (0..<count).map { i in
            let z = zones[Int(list[i])].info.pointee
            return "\(topology.number(of: z.node))(\(z.type.name))"
        }.joined(separator: " ")
    }
}
