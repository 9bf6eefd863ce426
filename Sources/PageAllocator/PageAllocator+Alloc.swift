import Synchronization
import Topology

extension PageAllocator {
    /// Allocates a block of `1 << order` pages.
    ///
    /// The fast path (get_page_from_freelist with ALLOC_WMARK_LOW): walk the
    /// zonelist of the preferred node (default: the calling CPU's node), and
    /// take the first zone whose LOW watermark passes; orders 0...3 come from
    /// the CPU's per-CPU list (trylock; refill from the buddy on a miss), larger
    /// ones from the buddy under the zone lock. Anything else goes to the
    /// outlined slow path.
    ///
    /// - Parameters:
    ///   - node: preferred node; nil = the node of `cpu`.
    ///   - cpu: the logical CPU whose per-CPU cache to use; nil = the CPU this
    ///     thread runs on now (sched_getcpu). Declared topologies pass it.
    ///   - owner: a tag recorded in the block's metadata (a worker/task id).
    ///   - reserve: reserves the calling task may use (OOM victim, PF_MEMALLOC).
    @inline(__always)
    public func allocate(order: Order, flags: GFP = .kernel, node: NodeID? = nil, cpu: CPUID? = nil,
                         owner: UInt16 = 0, reserve: ReserveAccess = .none) throws(AllocError) -> PageBlock {
        let c: Int
        if let cpu {
            guard UInt(bitPattern: cpu.rawValue) < UInt(cpuCount) else { throw .noSuchCPU(cpu.rawValue, cpuCount: cpuCount) }
            c = cpu.rawValue
        } else {
            c = currentCPUIndex()
        }
        let n: Int
        if let node {
            guard UInt(bitPattern: node.rawValue) < UInt(nodeCount) else { throw .noSuchNode(node.rawValue, nodeCount: nodeCount) }
            n = node.rawValue
        } else {
            n = cpuNode[c]
        }
        let type = ZoneType.highest(for: flags)
        let (list, count) = zonelist(node: n, type: type, thisNode: flags.contains(.thisNode))
        var i = 0
        while i < count {
            let zone = zones[Int(list[i])]
            if watermarkOK(zone, order: order.rawValue, mark: zone.info.pointee.wmarkLow, classzone: type.rawValue, flags: []) {
                if let block = rmqueue(zone, order: order.rawValue, cpu: c, preferredNode: n, owner: owner) {
                    return block
                }
            }
            i &+= 1
        }
        return try allocSlowPath(order: order, flags: flags, preferredNode: n, cpu: c, owner: owner, reserve: reserve)
    }

    /// Allocates with an unchecked integer order: `.invalidOrder` if outside 0...10.
    public func allocate(order: Int, flags: GFP = .kernel, node: NodeID? = nil, cpu: CPUID? = nil,
                         owner: UInt16 = 0, reserve: ReserveAccess = .none) throws(AllocError) -> PageBlock {
        try allocate(order: Order(order), flags: flags, node: node, cpu: cpu, owner: owner, reserve: reserve)
    }

    /// rmqueue(): per-CPU list for orders 0...3 (buddy when its trylock
    /// fails), buddy under the zone lock for larger orders.
    @inlinable @inline(__always)
    func rmqueue(_ zone: Zone, order: Int, cpu: Int, preferredNode: Int, owner: UInt16) -> PageBlock? {
        if order <= Order.pcpMax {
            let slot = zone.pcp(cpu)
            if slot.lock.tryLock() {
                let idx = rmqueuePCPLocked(zone, slot: slot, order: order, cpu: cpu)
                if idx == PageMeta.none {
                    slot.lock.unlock()
                    return nil
                }
                zone.meta[Int(idx)].state = .allocated
                zone.meta[Int(idx)].owner = owner
                slot.bump(.pgalloc, 1 << order)
                countNUMA(zone, preferredNode: preferredNode, cpu: cpu) { slot.bump($0) }
                slot.lock.unlock()
                return makeBlock(zone, idx: idx, order: order)
            }
        }
        return rmqueueBuddy(zone, order: order, cpu: cpu, preferredNode: preferredNode, owner: owner, pcpContended: order <= Order.pcpMax)
    }

    /// Pops a block from the per-CPU list of `order`, refilling it on a miss.
    /// Caller holds the slot's lock. Returns PageMeta.none if the buddy is empty.
    @inlinable @inline(__always)
    func rmqueuePCPLocked(_ zone: Zone, slot: PerCPUPages, order: Int, cpu: Int) -> UInt32 {
        var idx = slot.heads[order]
        if idx == PageMeta.none {
            idx = refillPCPLocked(zone, slot: slot, order: order, cpu: cpu)
            if idx == PageMeta.none { return idx }
        } else {
            slot.bump(.pcpAllocHit)
        }
        slot.heads[order] = zone.meta[Int(idx)].next
        slot.lengths[order] &-= 1
        slot.count.pointee &-= 1 << order
        return idx
    }

    /// rmqueue_bulk(): one zone-lock hold moves `max(batch >> order, 2)`
    /// blocks to the per-CPU list, in pfn-taken order. Grows `high` toward
    /// high_max by one batch (6.7's auto-tuning on a miss).
    @usableFromInline @inline(never)
    func refillPCPLocked(_ zone: Zone, slot: PerCPUPages, order: Int, cpu: Int) -> UInt32 {
        let batch = slot.batch.pointee
        let want = max(batch >> order, 2)
        let m = zone.meta
        var first = PageMeta.none, last = PageMeta.none
        var got = 0
        zone.lockZone()
        while got < want, let idx = zone.rmqueueSmallestLocked(order: order) {
            m[Int(idx)].state = .pcp
            m[Int(idx)].next = PageMeta.none
            if last == PageMeta.none { first = idx } else { m[Int(last)].next = idx }
            last = idx
            got &+= 1
        }
        zone.unlockZone()
        guard got > 0 else { return PageMeta.none }
        modFreePages(zone, cpu: cpu, -(got << order))
        slot.heads[order] = first
        slot.lengths[order] &+= got
        slot.count.pointee &+= got << order
        slot.bump(.pcpRefill)
        slot.bump(.pcpRefillPages, got << order)
        if slot.high.pointee < slot.highMax.pointee {
            slot.high.pointee = min(slot.high.pointee + batch, slot.highMax.pointee)
        }
        return first
    }

    /// rmqueue_buddy(): one block straight from the buddy under the zone lock.
    @usableFromInline @inline(never)
    func rmqueueBuddy(_ zone: Zone, order: Int, cpu: Int, preferredNode: Int, owner: UInt16, pcpContended: Bool) -> PageBlock? {
        zone.lockZone()
        guard let idx = zone.rmqueueSmallestLocked(order: order) else {
            zone.unlockZone()
            return nil
        }
        zone.meta[Int(idx)].state = .allocated
        zone.meta[Int(idx)].owner = owner
        zone.bumpLocked(.pgalloc, 1 << order)
        if pcpContended { zone.bumpLocked(.pcpLockContended) }
        countNUMA(zone, preferredNode: preferredNode, cpu: cpu) { zone.bumpLocked($0) }
        // Under the zone lock, so validate() never sees the lists and NR_FREE_PAGES disagree.
        modFreePages(zone, cpu: cpu, -(1 << order))
        zone.unlockZone()
        return makeBlock(zone, idx: idx, order: order)
    }

    /// zone_statistics(): numa_hit/miss on the zone, numa_foreign on the
    /// preferred node's first zone, numa_local/other by the CPU's node.
    @inlinable @inline(__always)
    func countNUMA(_ zone: Zone, preferredNode: Int, cpu: Int, _ bump: (VMEvent) -> Void) {
        let zn = zone.info.pointee.node
        if zn == preferredNode {
            bump(.numaHit)
        } else {
            bump(.numaMiss)
            zones[preferredNode &* zonesPerNode &+ zonesPerNode &- 1].bumpRare(.numaForeign)
        }
        bump(zn == cpuNode[cpu] ? .numaLocal : .numaOther)
    }

    @inlinable @inline(__always)
    func makeBlock(_ zone: Zone, idx: UInt32, order: Int) -> PageBlock {
        let info = zone.info.pointee
        return PageBlock(address: info.memory + (Int(idx) << info.pageShift), pfn: info.startPFN &+ Int(idx),
                         order: order, node: info.node, zone: info.index, pageShift: info.pageShift)
    }
}
