import Topology

extension PageAllocator {
    /// Frees a block. Orders 0...3 go to the calling CPU's per-CPU list (the
    /// list drains `batch` pages to the buddy once it holds `high`), others,
    /// or any when the trylock fails, straight to the buddy.
    ///
    /// Misuse (double free, a pfn never allocated, the wrong order, a pfn
    /// outside the allocator) throws and changes nothing. Detection is exact
    /// for frees that do not race with another free of the same block.
    @inlinable @inline(__always)
    public func free(_ block: PageBlock, cpu: CPUID? = nil) throws(AllocError) {
        // Fast path: an order the per-CPU lists take, no memory groups, a
        // zone and pfn that exist, this CPU's slot free, the block's head
        // allocated with this order. Anything else: freeGeneral (same checks,
        // same errors, the buddy when the slot is taken).
        // The CPU first: under valgrind (and without glibc's rseq area) the
        // lookup is a call, and nothing decoded from the block is live across it.
        let c = cpu?.rawValue ?? thisCPU()
        let o = Int(block.order8), zi = block.zoneIndex
        // freeZones has a row for every zone byte: one that names no zone has
        // 0 managed pages, so the range check below refuses it.
        let fz = freeZones
        let idx = Int(block.pfn32) &- fz[zi]
        if UInt(bitPattern: idx) < UInt(bitPattern: fz[PageAllocator.freeZoneRows &+ zi]),
           cpu == nil || UInt(bitPattern: c) < UInt(bitPattern: cpuCount) {
            let slot = PerCPUPages(slots: UnsafeMutableRawPointer(bitPattern: fz[2 &* PageAllocator.freeZoneRows &+ zi]).unsafelyUnwrapped, cpu: c)
            let m = slot.meta
            // The head's state and order bytes against the order's expected
            // pair (allocated, order); orders above freeFastMaxOrder expect a
            // pair no head holds, so one compare is the order limit and the
            // misuse check. The head belongs to the caller until this free
            // hands it over, so it is read before the slot is taken.
            if PageMeta.stateAndOrder(m + idx) == PageAllocator.freeExpect(fz, order: o), tryTakeSlot(slot, cpu: c) {
                m[idx].state = .pcp
                m[idx].owner = PageMeta.freedMark
                m[idx].next = slot.heads[o]
                slot.heads[o] = UInt32(truncatingIfNeeded: idx)
                let n = Int(slot.pagesOf[o])
                slot.counters[VMEvent.pgfree.rawValue] &+= n
                // count += n; count >= high: excess += n; excess >= 0 (the
                // add's own sign flag).
                slot.excess.pointee &+= n
                if slot.excess.pointee >= 0 {
                    freePCPBulkLocked(slot.zone, slot: slot, pages: slot.batch.pointee, cpu: c)
                }
                releaseSlot(slot)
                return
            }
        }
        // The CPU looked up above goes along (no second lookup for the orders
        // and cases the inline path does not take).
        // Only the packed word: the block's address is not needed, so a
        // caller's copy of it is not kept live across the CPU lookup.
        try freeGeneral(packed: block.packed, cpu: cpu ?? CPUID(c))
    }

    /// free() for everything the inline fast path does not take: checks the
    /// zone, pfn and CPU (throwing what is wrong), then freeBlock.
    @usableFromInline @inline(never)
    func freeGeneral(packed: UInt64, cpu: CPUID?) throws(AllocError) {
        let block = PageBlock(address: UnsafeMutableRawPointer(bitPattern: 1).unsafelyUnwrapped, packed: packed) // decoding only
        let zi = block.zoneIndex
        guard zi < zoneCount else { throw .pfnOutOfRange(pfn: Int(block.pfn32)) }
        let zone = zones[zi]
        let pfn = Int(block.pfn32)
        let info = zone.info
        guard pfn >= info.pointee.startPFN, pfn < info.pointee.endPFN else { throw .pfnOutOfRange(pfn: pfn) }
        let c: Int
        if let cpu {
            guard UInt(bitPattern: cpu.rawValue) < UInt(cpuCount) else { throw .noSuchCPU(cpu.rawValue, cpuCount: cpuCount) }
            c = cpu.rawValue
        } else {
            c = thisCPU()
        }
        try freeBlock(zone, idx: UInt32(truncatingIfNeeded: pfn &- info.pointee.startPFN), order: Int(block.order8), cpu: c)
    }

    /// Frees by pfn and order (what a trace replayer knows).
    public func free(pfn: PFN, order: Order, cpu: CPUID? = nil) throws(AllocError) {
        guard let zi = zoneIndex(containing: pfn) else { throw .pfnOutOfRange(pfn: pfn.rawValue) }
        let zone = zones[zi]
        let c: Int
        if let cpu {
            guard UInt(bitPattern: cpu.rawValue) < UInt(cpuCount) else { throw .noSuchCPU(cpu.rawValue, cpuCount: cpuCount) }
            c = cpu.rawValue
        } else {
            c = currentCPUIndex()
        }
        try freeBlock(zone, idx: UInt32(pfn.rawValue - zone.info.pointee.startPFN), order: order.rawValue, cpu: c)
    }

    @inlinable @inline(__always)
    func freeBlock(_ zone: Zone, idx: UInt32, order: Int, cpu: Int) throws(AllocError) {
        if memcgOn { return try freeBlockCharged(zone, idx: idx, order: order, cpu: cpu) }
        try freeBlockRaw(zone, idx: idx, order: order, cpu: cpu)
    }

    /// A free that also uncharges the owner's memory group.
    @usableFromInline @inline(never)
    func freeBlockCharged(_ zone: Zone, idx: UInt32, order: Int, cpu: Int) throws(AllocError) {
        let m = zone.meta
        let owner = m[Int(idx)].state == .allocated ? m[Int(idx)].owner : 0
        try freeBlockRaw(zone, idx: idx, order: order, cpu: cpu)
        unchargeGroup(task: owner, pages: 1 << order)
    }

    @inlinable @inline(__always)
    func freeBlockRaw(_ zone: Zone, idx: UInt32, order: Int, cpu: Int) throws(AllocError) {
        let m = zone.meta
        if order <= pcpMaxOrder {
            let slot = zone.pcp(cpu)
            if tryTakeSlot(slot, cpu: cpu) {
                if m[Int(idx)].state != .allocated || Int(m[Int(idx)].order) != order {
                    releaseSlot(slot)
                    throw badFree(zone, idx: idx, order: order)
                }
                m[Int(idx)].state = .pcp
                m[Int(idx)].owner = PageMeta.freedMark
                m[Int(idx)].next = slot.heads[order]
                slot.heads[order] = idx
                slot.excess.pointee &+= 1 << order
                slot.bump(.pgfree, 1 << order)
                if slot.excess.pointee >= 0 {
                    freePCPBulkLocked(zone, slot: slot, pages: slot.batch.pointee, cpu: cpu)
                }
                releaseSlot(slot)
                return
            }
        }
        try freeToBuddy(zone, idx: idx, order: order, cpu: cpu, pcpContended: order <= pcpMaxOrder)
    }

    /// free_one_page(): straight to the buddy under the zone lock.
    @usableFromInline @inline(never)
    func freeToBuddy(_ zone: Zone, idx: UInt32, order: Int, cpu: Int, pcpContended: Bool) throws(AllocError) {
        let m = zone.meta
        zone.lockZone()
        guard m[Int(idx)].state == .allocated, Int(m[Int(idx)].order) == order else {
            zone.unlockZone()
            throw badFree(zone, idx: idx, order: order)
        }
        m[Int(idx)].owner = PageMeta.freedMark
        zone.freeOneLocked(idx, order: order)
        zone.bumpLocked(.pgfree, 1 << order)
        if pcpContended { zone.bumpLocked(.pcpLockContended) }
        // Under the zone lock, so validate() never sees the lists and NR_FREE_PAGES disagree.
        modFreePages(zone, cpu: cpu, 1 << order)
        zone.unlockZone()
    }

    /// Names what is wrong with freeing (`idx`, `order`). A free pfn is a
    /// double free if it was freed before (`PageMeta.freedMark`), else it was
    /// never allocated. Cold.
    @usableFromInline @inline(never)
    func badFree(_ zone: Zone, idx: UInt32, order: Int) -> AllocError {
        let m = zone.meta
        let info = zone.info.pointee
        let pfn = info.startPFN + Int(idx)
        switch m[Int(idx)].state {
        case .allocated: return .wrongOrder(pfn: pfn, allocated: Int(m[Int(idx)].order), given: order)
        case .buddy, .pcp:
            if m[Int(idx)].owner != PageMeta.freedMark { return .notAllocated(pfn: pfn) }
            return .doubleFree(pfn: pfn, order: Int(m[Int(idx)].order))
        case .tail:
            // Inside a free block that absorbed it (freed twice, then merged)?
            for o in 1...Order.maxOrder {
                let head = pfn & ~((1 << o) - 1)
                guard head >= info.startPFN else { break }
                let h = m[head - info.startPFN]
                if (h.state == .buddy || h.state == .pcp) && Int(h.order) >= o {
                    if m[Int(idx)].owner != PageMeta.freedMark { return .notAllocated(pfn: pfn) }
                    return .doubleFree(pfn: pfn, order: order)
                }
                if h.state == .allocated && Int(h.order) >= o { break }
            }
            return .notAllocated(pfn: pfn)
        }
    }

    /// free_pcppages_bulk(): returns about `pages` pages from the slot's lists
    /// to the buddy under one zone-lock hold, round-robin over the orders.
    /// Caller holds the slot's lock.
    @usableFromInline @inline(never)
    func freePCPBulkLocked(_ zone: Zone, slot: PerCPUPages, pages: Int, cpu: Int) {
        let m = zone.meta
        var freed = 0
        var order = 0
        var emptyLook = 0
        zone.lockZone()
        while freed < pages && slot.count > 0 && emptyLook < PerCPUPages.lists {
            let idx = slot.heads[order]
            if idx == PageMeta.none {
                emptyLook += 1
            } else {
                emptyLook = 0
                slot.heads[order] = m[Int(idx)].next
                slot.excess.pointee -= 1 << order
                zone.freeOneLocked(idx, order: order)
                freed += 1 << order
            }
            order = order == Order.pcpMax ? 0 : order + 1
        }
        zone.unlockZone()
        if freed > 0 {
            modFreePages(zone, cpu: cpu, freed)
            slot.bump(.pcpDrain)
            slot.bump(.pcpDrainPages, freed)
        }
    }

    /// drain_pages(cpu): empties one CPU's lists in every zone. Returns pages drained.
    @discardableResult
    public func drain(cpu: CPUID) -> Int {
        precondition(cpu.rawValue >= 0 && cpu.rawValue < cpuCount, "drain(cpu:): no such cpu \(cpu.rawValue)")
        var total = 0
        lockCPUSlots(cpu.rawValue)
        for z in 0..<zoneCount {
            let zone = zones[z]
            let slot = zone.pcp(cpu.rawValue)
            let n = slot.count
            if n > 0 { freePCPBulkLocked(zone, slot: slot, pages: n, cpu: cpu.rawValue) }
            slot.high = slot.highMin.pointee
            total += n
        }
        unlockCPUSlots(cpu.rawValue)
        return total
    }

    /// drain_all_pages(): empties every CPU's lists. Returns pages drained.
    @discardableResult
    public func drainAllCPUs() -> Int {
        var total = 0
        for c in 0..<cpuCount { total += drain(cpu: CPUID(c)) }
        return total
    }
}
