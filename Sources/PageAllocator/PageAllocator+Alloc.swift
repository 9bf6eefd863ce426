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
    @inlinable @inline(__always)
    public func allocate(order: Order, flags: GFP = .kernel, node: NodeID? = nil, cpu: CPUID? = nil,
                         owner: UInt16 = 0, reserve: ReserveAccess = .none) throws(AllocError) -> PageBlock {
        // Fast path: the local node's first eligible zone, this CPU's list,
        // a LOW watermark that is clearly met, and a non-empty list.
        let o = order.rawValue
        // The zone type's row of cpuFast, before any branch: it depends on
        // the flags and on `let`s only, so a loop that allocates with the same
        // flags computes it once (the CPU is then a scaled index into it).
        let t = ZoneType.highestIndex(for: flags)
        let row = cpuFast + t &* cpuCount
        if reserve != .transaction {
            let c = cpu?.rawValue ?? thisCPU()
            // thisCPU() is always in range: only a CPU the caller names is checked.
            if cpu == nil || UInt(bitPattern: c) < UInt(bitPattern: cpuCount), node == nil || node!.rawValue == cpuNode[c] {
                // cpuFast is all nil when the fast path is off (fastMaxOrder < 0).
                if let sb = row[c] {
                    let slot = PerCPUPages(base: sb)
                    // The above-LOW flag is 0 or 1, so `flag > o` is "order 0 and
                    // the flag set" in one compare, and order 0 is always one the
                    // fast path serves here (fastMaxOrder >= 0, or cpuFast has no
                    // slot): the order limit is needed only for the other cases,
                    // which take the check they took before (fastLowCheck for
                    // order 0, watermarkOK for orders 1...fastMaxOrder).
                    if slot.aboveLow.pointee.load(ordering: .relaxed) > o
                        || (o <= fastMaxOrder
                            && (o == 0 ? fastLowCheck(slot: slot, classzone: t)
                                       : watermarkOK(slot.zone, order: o, mark: slot.zone.info.pointee.wmarkLow, classzone: t, flags: []))),
                       tryTakeSlotFast(slot, cpu: c) {
                        let idx = slot.heads[o]
                        // A zone has at most 2^30 pages (maxPagesPerNode), so
                        // a list member's index is >= 0 as Int32 and only
                        // PageMeta.none (0xffffffff) is negative: a sign test.
                        if Int32(bitPattern: idx) >= 0 {
                            let m = slot.meta
                            slot.heads[o] = m[Int(idx)].next
                            slot.excess.pointee &-= Int(slot.pagesOf[o])
                            m[Int(idx)].state = .allocated
                            m[Int(idx)].owner = owner
                            slot.counters[VMEvent.fastAlloc.rawValue &+ o] &+= 1
                            releaseSlot(slot)
                            return slot.block(idx: idx, order: o)
                        }
                        releaseSlot(slot)
                    }
                }
            }
            // The CPU looked up above goes along (no second lookup).
            return try allocateGeneral(order: order, flags: flags, node: node, cpu: cpu ?? CPUID(c), owner: owner, reserve: reserve)
        }
        return try allocateGeneral(order: order, flags: flags, node: node, cpu: cpu, owner: owner, reserve: reserve)
    }

    /// get_page_from_freelist() over the whole zonelist, then the slow path.
    @usableFromInline @inline(never)
    func allocateGeneral(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16,
                         reserve: ReserveAccess, nodemask: NodeMask = .all) throws(AllocError) -> PageBlock {
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
        // should_fail_alloc_page(): before anything else; no reclaim, no OOM, no warning.
        if faultInjectionOn, let inj = slow.injector, inj.shouldFail(order: order.rawValue, gfp: flags) {
            injectedFailure(order: order.rawValue, flags: flags, owner: owner, cpu: c)
            throw .injectedFailure(order: order.rawValue, flags: flags)
        }
        // Memory groups: charge first (reclaim / OOM inside the group when full).
        var charged = 0
        if memcgOn && owner != 0 {
            charged = try chargeGroup(task: owner, pages: order.pages, order: order.rawValue, flags: flags, cpu: c)
        }
        do {
            let b = try allocateUncharged(order: order, flags: flags, node: n, cpu: c, owner: owner, reserve: reserve, nodemask: nodemask)
            if reserve == .transaction { consumeReservation(zone: b.zoneIndex, owner: owner, pages: b.pages) }
            return b
        } catch {
            if charged != 0 { slow.groups.add(charged, .usage, -order.pages) }
            throw error
        }
    }

    @usableFromInline
    func allocateUncharged(order: Order, flags: GFP, node n: Int, cpu c: Int, owner: UInt16, reserve: ReserveAccess,
                           nodemask: NodeMask = .all) throws(AllocError) -> PageBlock {
        let type = ZoneType.highest(for: flags)
        let (list, count) = zonelist(node: n, type: type, thisNode: flags.contains(.thisNode))
        // The first pass: get_page_from_freelist() at LOW (ALLOC_WMARK_LOW).
        if let b = getPageFromFreelist(order: order.rawValue, level: .low, flags: [], list: list, count: count, classzone: type.rawValue,
                                       cpu: c, owner: owner, reserve: reserve, nodemask: nodemask) {
            return b
        }
        return try allocSlowPath(order: order, flags: flags, preferredNode: n, cpu: c, owner: owner, reserve: reserve, nodemask: nodemask)
    }

    /// Allocates with an unchecked integer order: `.invalidOrder` if outside 0...10.
    public func allocate(order: Int, flags: GFP = .kernel, node: NodeID? = nil, cpu: CPUID? = nil,
                         owner: UInt16 = 0, reserve: ReserveAccess = .none) throws(AllocError) -> PageBlock {
        try allocate(order: Order(order), flags: flags, node: node, cpu: cpu, owner: owner, reserve: reserve)
    }

    @usableFromInline @inline(never)
    func injectedFailure(order: Int, flags: GFP, owner: UInt16, cpu: Int) {
        guard let inj = slow.injector else { return }
        let s = inj.settings
        let line: String? = s.verbose > 0 && !flags.contains(.noWarn)
            ? "FAULT_INJECTION: forcing a failure. name fail_page_alloc, interval \(s.interval), probability \(s.probability), space \(inj.space.load(ordering: .relaxed)), times \(inj.times.load(ordering: .relaxed)) (\(taskName(owner, cpu: cpu)) order:\(order) mode:\(flags.hex)(\(flags)))"
            : nil
        slow.warnings.record(comm: taskName(owner, cpu: cpu), order: order, gfp: flags, nodemask: "(null)", injected: true, extra: line)
    }

    /// rmqueue(): per-CPU list for orders 0...3 (buddy when its trylock
    /// fails), buddy under the zone lock for larger orders.
    @inlinable @inline(__always)
    func rmqueue(_ zone: Zone, order: Int, cpu: Int, preferredZone: Int, owner: UInt16) -> PageBlock? {
        if order <= pcpMaxOrder {
            let slot = zone.pcp(cpu)
            if tryTakeSlot(slot, cpu: cpu) {
                let idx = rmqueuePCPLocked(zone, slot: slot, order: order, cpu: cpu)
                if idx == PageMeta.none {
                    releaseSlot(slot)
                    return nil
                }
                zone.meta[Int(idx)].state = .allocated
                zone.meta[Int(idx)].owner = owner
                slot.bump(.pgalloc, 1 << order)
                countNUMA(zone, preferredZone: preferredZone, cpu: cpu) { slot.bump($0) }
                releaseSlot(slot)
                return makeBlock(zone, idx: idx, order: order)
            }
        }
        return rmqueueBuddy(zone, order: order, cpu: cpu, preferredZone: preferredZone, owner: owner, pcpContended: order <= pcpMaxOrder)
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
        slot.excess.pointee &-= 1 << order
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
        slot.excess.pointee &+= got << order
        slot.bump(.pcpRefill)
        slot.bump(.pcpRefillPages, got << order)
        if slot.high < slot.highMax.pointee {
            slot.high = min(slot.high + batch, slot.highMax.pointee)
        }
        return first
    }

    /// rmqueue_buddy(): one block straight from the buddy under the zone lock.
    @usableFromInline @inline(never)
    func rmqueueBuddy(_ zone: Zone, order: Int, cpu: Int, preferredZone: Int, owner: UInt16, pcpContended: Bool) -> PageBlock? {
        zone.lockZone()
        guard let idx = zone.rmqueueSmallestLocked(order: order) else {
            zone.unlockZone()
            return nil
        }
        zone.meta[Int(idx)].state = .allocated
        zone.meta[Int(idx)].owner = owner
        zone.bumpLocked(.pgalloc, 1 << order)
        if pcpContended { zone.bumpLocked(.pcpLockContended) }
        countNUMA(zone, preferredZone: preferredZone, cpu: cpu) { zone.bumpLocked($0) }
        // Under the zone lock, so validate() never sees the lists and NR_FREE_PAGES disagree.
        modFreePages(zone, cpu: cpu, -(1 << order))
        zone.unlockZone()
        return makeBlock(zone, idx: idx, order: order)
    }

    /// zone_statistics(): numa_hit when the zone is on the preferred zone's
    /// node, else numa_miss on the zone and numa_foreign on the preferred
    /// zone (the zonelist's first: the highest zone the request may use on
    /// the preferred node); numa_local/other by the CPU's node.
    @inlinable @inline(__always)
    func countNUMA(_ zone: Zone, preferredZone: Int, cpu: Int, _ bump: (VMEvent) -> Void) {
        let zn = zone.info.pointee.node
        let preferred = zones[preferredZone]
        if zn == preferred.info.pointee.node {
            bump(.numaHit)
        } else {
            bump(.numaMiss)
            preferred.bumpRare(.numaForeign)
        }
        bump(zn == cpuNode[cpu] ? .numaLocal : .numaOther)
    }

    @inlinable @inline(__always)
    func makeBlock(_ zone: Zone, idx: UInt32, order: Int) -> PageBlock {
        let info = zone.info
        return PageBlock(address: info.pointee.memory + (Int(idx) &<< info.pointee.pageShift),
                         packed: (info.pointee.blockBits &+ UInt64(idx)) | UInt64(truncatingIfNeeded: order) &<< 32)
    }
}
