import Topology

/// One node's numastat: the six counters of /sys/devices/system/node/nodeN/numastat
/// (current kernel definitions, Documentation/admin-guide/numastat.rst) and
/// the node's memory, for numastat's `-m` table.
///
/// - numa_hit: allocations on this node that were intended for it;
/// - numa_miss: allocations on this node although another node was intended
///   (the intended node counts the same allocation as numa_foreign);
/// - numa_foreign: allocations intended for this node that went elsewhere;
/// - interleave_hit: interleave-policy allocations that got this node when it was the node chosen;
/// - local_node: allocations on this node by a CPU of this node;
/// - other_node: allocations on this node by a CPU of another node.
///
/// (Documentation before 2021 swapped the descriptions of numa_miss and
/// numa_foreign; the kernel's code never changed.) Counted once per
/// allocation whatever its order, as Linux 6.x does: rmqueue_pcplist() and
/// rmqueue_buddy() call zone_statistics(preferred_zone, zone, 1) (nr_account
/// 1; PGALLOC counts 1 << order pages); only __alloc_pages_bulk() passes the
/// number of order-0 pages it took. interleave_hit is per allocation too.
public struct NodeNumaStat: Codable, Sendable, Equatable {
    public var node: Int
    public var numaHit: Int
    public var numaMiss: Int
    public var numaForeign: Int
    public var interleaveHit: Int
    public var localNode: Int
    public var otherNode: Int
    /// Memory, in pages: managed, free in the buddy, free in per-CPU lists,
    /// and on the LRUs (clean and dirty page cache, anonymous).
    public var totalPages: Int
    public var freePages: Int
    public var perCPUPages: Int
    public var fileCleanPages: Int
    public var fileDirtyPages: Int
    public var anonPages: Int

    public init(node: Int, numaHit: Int = 0, numaMiss: Int = 0, numaForeign: Int = 0, interleaveHit: Int = 0,
                localNode: Int = 0, otherNode: Int = 0, totalPages: Int = 0, freePages: Int = 0, perCPUPages: Int = 0,
                fileCleanPages: Int = 0, fileDirtyPages: Int = 0, anonPages: Int = 0) {
        self.node = node; self.numaHit = numaHit; self.numaMiss = numaMiss; self.numaForeign = numaForeign
        self.interleaveHit = interleaveHit; self.localNode = localNode; self.otherNode = otherNode
        self.totalPages = totalPages; self.freePages = freePages; self.perCPUPages = perCPUPages
        self.fileCleanPages = fileCleanPages; self.fileDirtyPages = fileDirtyPages; self.anonPages = anonPages
    }

    /// The six counters in the sysfs file's order, with its names.
    public var counters: [(name: String, value: Int)] {
        [("numa_hit", numaHit), ("numa_miss", numaMiss), ("numa_foreign", numaForeign),
         ("interleave_hit", interleaveHit), ("local_node", localNode), ("other_node", otherNode)]
    }

    /// Counters of `self` minus those of `base` (memory is kept as in `self`).
    public func minus(_ base: NodeNumaStat) -> NodeNumaStat {
        var r = self
        r.numaHit -= base.numaHit; r.numaMiss -= base.numaMiss; r.numaForeign -= base.numaForeign
        r.interleaveHit -= base.interleaveHit; r.localNode -= base.localNode; r.otherNode -= base.otherNode
        return r
    }
}

/// numastat of every node, and its three layouts.
public struct NumaStat: Codable, Sendable, Equatable {
    public var pageSize: Int
    public var nodes: [NodeNumaStat]
    /// The machine node number behind each node (for the column names; equal to the index on declared topologies).
    public var nodeNames: [Int]?

    public init(pageSize: Int, nodes: [NodeNumaStat], nodeNames: [Int]? = nil) {
        self.pageSize = pageSize
        self.nodes = nodes
        self.nodeNames = nodeNames
    }

    public func name(_ i: Int) -> Int { nodeNames.flatMap { $0.count > i ? $0[i] : nil } ?? nodes[i].node }

    /// /sys/devices/system/node/nodeN/numastat, as node_read_numastat() prints it.
    public func sysfs(node i: Int) -> String {
        nodes[i].counters.map { "\($0.name) \($0.value)\n" }.joined()
    }

    /// The numastat tool's default layout (no options): one column per node, in pages.
    public func table() -> String {
        func col(_ s: String) -> String { String(repeating: " ", count: max(0, 16 - s.count)) + s }
        func label(_ s: String) -> String { s + String(repeating: " ", count: max(0, 16 - s.count)) }
        var out = label("") + nodes.indices.map { col("node\(name($0))") }.joined() + "\n"
        for (k, key) in ["numa_hit", "numa_miss", "numa_foreign", "interleave_hit", "local_node", "other_node"].enumerated() {
            out += label(key) + nodes.map { col(String($0.counters[k].value)) }.joined() + "\n"
        }
        return out
    }

    /// numastat -m: per-node memory in MB with a Total column. Rows as
    /// /proc/meminfo names them where the kernel has the quantity
    /// (MemTotal, MemFree, MemUsed, FilePages, Dirty, AnonPages), plus
    /// FreePerCPU (pages free in per-CPU lists: counted free by MemFree in
    /// the kernel's meminfo, which this layout splits out) and Clean (clean page cache).
    public func memoryTable() -> String {
        func col(_ s: String) -> String { String(repeating: " ", count: max(0, 16 - s.count)) + s }
        func label(_ s: String) -> String { s + String(repeating: " ", count: max(0, 16 - s.count)) }
        let mb = Double(pageSize) / 1_048_576
        func row(_ key: String, _ f: (NodeNumaStat) -> Int) -> String {
            let vs = nodes.map { Double(f($0)) * mb }
            return label(key) + (vs + [vs.reduce(0, +)]).map { col(fixed2($0)) }.joined() + "\n"
        }
        var out = "\nPer-node system memory usage (in MBs):\n"
        out += label("") + nodes.indices.map { col("Node \(name($0))") }.joined() + col("Total") + "\n"
        out += label("") + Array(repeating: " ---------------", count: nodes.count + 1).joined() + "\n"
        out += row("MemTotal") { $0.totalPages }
        out += row("MemFree") { $0.freePages + $0.perCPUPages }
        out += row("MemUsed") { $0.totalPages - $0.freePages - $0.perCPUPages }
        out += row("FreePerCPU") { $0.perCPUPages }
        out += row("FilePages") { $0.fileCleanPages + $0.fileDirtyPages }
        out += row("Clean") { $0.fileCleanPages }
        out += row("Dirty") { $0.fileDirtyPages }
        out += row("AnonPages") { $0.anonPages }
        return out
    }

    /// Counters of `self` minus `base`, node by node.
    public func minus(_ base: NumaStat) -> NumaStat {
        var r = self
        for i in r.nodes.indices where i < base.nodes.count { r.nodes[i] = r.nodes[i].minus(base.nodes[i]) }
        return r
    }
}

/// "%.2f" without Foundation.
func fixed2(_ x: Double) -> String {
    let c = Int((abs(x) * 100).rounded())
    let frac = c % 100
    return (x < 0 && c != 0 ? "-" : "") + "\(c / 100)." + (frac < 10 ? "0" : "") + "\(frac)"
}

extension PageAllocator {
    /// numastat of every node since the allocator was made (as /sys counts since boot).
    public func numastat() -> NumaStat {
        var out = (0..<nodeCount).map { NodeNumaStat(node: $0) }
        for z in 0..<zoneCount {
            let n = zones[z].info.pointee.node
            let c = counters(zone: z)
            out[n].numaHit += c[.numaHit]
            out[n].numaMiss += c[.numaMiss]
            out[n].numaForeign += c[.numaForeign]
            out[n].interleaveHit += c[.numaInterleave]
            out[n].localNode += c[.numaLocal]
            out[n].otherNode += c[.numaOther]
            out[n].totalPages += zones[z].info.pointee.managed
            out[n].freePages += freePages(zone: z)
            out[n].perCPUPages += perCPUPages(zone: z)
        }
        for (n, lru) in slow.lrus.enumerated() where n < nodeCount {
            lru.lists.withLock { l in
                func pages(_ k: ReclaimableKind) -> Int { l[k.rawValue].items[l[k.rawValue].head...].reduce(0) { $0 + $1.block.pages } }
                out[n].fileCleanPages += pages(.clean)
                out[n].fileDirtyPages += pages(.dirty)
                out[n].anonPages += pages(.anon)
            }
        }
        return NumaStat(pageSize: pageSize, nodes: out, nodeNames: topology.machineNode)
    }
}
