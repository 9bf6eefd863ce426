import Topology

extension PageAllocator {
    /// alloc_pages_mpol(): an allocation under a memory policy (MemPolicy).
    ///
    /// - local, preferred, interleave: the chosen node's whole zonelist, through
    ///   `allocate(order:flags:node:...)` (the per-CPU fast path when that node is the CPU's own);
    /// - bind: the CPU's node's zonelist filtered by the policy's nodes, slow
    ///   path included: running out there fails (or reclaims and OOM-kills)
    ///   inside the policy, never falls back to another node;
    /// - preferred-many: first the policy's nodes without direct reclaim and
    ///   without warnings or NOFAIL, then (if that failed) every node with the
    ///   caller's flags;
    /// - interleave and weighted-interleave: numa_interleave (numastat's
    ///   interleave_hit) on the zone when the block landed on the chosen node;
    ///   weighted-interleave only with `config.weightedInterleaveHit` (Linux
    ///   6.13+; 6.9-6.12 counted plain interleave only).
    ///
    /// `cursor` is the task's interleave position (the kernel's il_prev):
    /// one per worker.
    @inlinable
    public func allocate(order: Order, flags: GFP = .kernel, policy: MemPolicy, cursor: inout InterleaveCursor,
                         cpu: CPUID? = nil, owner: UInt16 = 0, reserve: ReserveAccess = .none) throws(AllocError) -> PageBlock {
        let c = cpu?.rawValue ?? currentCPUIndex()
        guard UInt(bitPattern: c) < UInt(cpuCount) else { throw .noSuchCPU(c, cpuCount: cpuCount) }
        let t = policy.target(cpuNode: cpuNode[c], cursor: &cursor)
        guard t.node < nodeCount else { throw .noSuchNode(t.node, nodeCount: nodeCount) }
        let cpuID = CPUID(c)
        // task->mempolicy for the OOM killer: a bind policy's nodes (mempolicy_in_oom_domain).
        if policy.mode == .bind && owner != 0 { noteBindPolicy(owner: owner, mask: t.mask) }
        if t.mask.isAll {
            let b = try allocate(order: order, flags: flags, node: NodeID(t.node), cpu: cpuID, owner: owner, reserve: reserve)
            if t.interleave && b.node.rawValue == t.node && (policy.mode == .interleave || config.weightedInterleaveHit) {
                zones[b.zoneIndex].bumpRare(.numaInterleave)
            }
            return b
        }
        if t.thenAnywhere {
            let first = flags.union(.noWarn).subtracting([.directReclaim, .noFail])
            if let b = try? allocateGeneral(order: order, flags: first, node: NodeID(t.node), cpu: cpuID, owner: owner,
                                            reserve: reserve, nodemask: t.mask) {
                return b
            }
            return try allocateGeneral(order: order, flags: flags, node: NodeID(t.node), cpu: cpuID, owner: owner, reserve: reserve)
        }
        return try allocateGeneral(order: order, flags: flags, node: NodeID(t.node), cpu: cpuID, owner: owner,
                                   reserve: reserve, nodemask: t.mask)
    }

    /// Records a task's bind policy (its node mask) for the OOM killer's
    /// CONSTRAINT_MEMORY_POLICY eligibility: the kernel reads task->mempolicy,
    /// set once by set_mempolicy(). Here the policy arrives with each call, so
    /// the task's slot is written only when the mask differs from the one it
    /// holds (the first bind allocation of a task, or a changed policy): a
    /// steady bind allocation only reads it.
    @usableFromInline
    func noteBindPolicy(owner: UInt16, mask: NodeMask) {
        let v = Int(Int64(bitPattern: mask.bits))
        if slow.tasks.get(owner, .bindMask) != v { slow.tasks.set(owner, .bindMask, v) }
    }

    /// The first zone of a zonelist whose node is in `mask` (first_zones_zonelist); the list's first when none is.
    @usableFromInline
    func firstAllowedZone(_ list: UnsafeMutablePointer<Int32>, _ count: Int, _ mask: NodeMask) -> Int {
        for i in 0..<count where mask.contains(zones[Int(list[i])].info.pointee.node) { return Int(list[i]) }
        return count > 0 ? Int(list[0]) : 0
    }

    /// Checks a policy against this allocator's nodes: every node exists.
    public func validate(policy: MemPolicy) throws(MemPolicyError) {
        for n in policy.nodes where n >= nodeCount {
            throw .noSuchID(what: "node", id: n, valid: Array(0..<nodeCount), text: policy.description)
        }
    }
}

extension MemPolicy {
    /// The policy with node numbers (what users write) turned into the
    /// topology's node indices (what the allocator uses). Numbers ascend with
    /// indices, so the order is kept. Unknown numbers are dropped (callers parse
    /// against `topology.machineNode` first).
    public func indexed(in topology: Topology) -> MemPolicy {
        var ns: [Int] = [], ws: [Int] = []
        for (k, n) in nodes.enumerated() {
            guard let i = topology.index(ofNumber: n) else { continue }
            ns.append(i)
            if k < weights.count { ws.append(weights[k]) }
        }
        return MemPolicy(mode: mode, nodes: ns, weights: ws)
    }
}
