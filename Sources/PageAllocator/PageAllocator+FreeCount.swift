import Synchronization

extension PageAllocator {
    /// __mod_zone_page_state(NR_FREE_PAGES): adds `delta` to `cpu`'s delta and
    /// folds it into the zone counter once it passes the vmstat threshold.
    /// Relaxed: the counter is a statistic; the free lists themselves are
    /// published by the zone lock.
    @inlinable @inline(__always)
    func modFreePages(_ zone: Zone, cpu: Int, _ delta: Int) {
        let slot = zone.pcp(cpu)
        let t = zone.info.pointee.vmThreshold
        let v = slot.freeDelta.pointee.wrappingAdd(delta, ordering: .relaxed).newValue
        if v > t || v < -t { foldFreePages(zone, slot: slot) }
    }

    /// The fold: moves `slot`'s delta into NR_FREE_PAGES, then refreshes the
    /// above-LOW flags: every CPU's is cleared when the zone is now at or
    /// below `fastMark`, else this CPU's is set. Sequentially consistent
    /// (x86: the read-modify-write is a locked instruction either way), which
    /// the flag's argument needs: docs/allocator.md, "The above-LOW flag".
    @usableFromInline @inline(never)
    func foldFreePages(_ zone: Zone, slot: PerCPUPages) {
        let x = slot.freeDelta.pointee.exchange(0, ordering: .relaxed)
        let now = zone.freePages.pointee.wrappingAdd(x, ordering: .sequentiallyConsistent).newValue
        if now &- zone.reserved.pointee.load(ordering: .sequentiallyConsistent) > zone.info.pointee.fastMark {
            setAboveLow(zone, slot: slot)
        } else {
            clearAboveLow(zone)
        }
    }

    /// Sets one CPU's flag, then looks again: if the zone dropped to the mark
    /// meanwhile, takes it back (a concurrent clearer's stores may have come
    /// first, and then this re-check sees its fold).
    @usableFromInline @inline(never)
    func setAboveLow(_ zone: Zone, slot: PerCPUPages) {
        slot.aboveLow.pointee.store(1, ordering: .sequentiallyConsistent)
        let free = zone.freePages.pointee.load(ordering: .sequentiallyConsistent)
        if free &- zone.reserved.pointee.load(ordering: .sequentiallyConsistent) <= zone.info.pointee.fastMark {
            slot.aboveLow.pointee.store(0, ordering: .sequentiallyConsistent)
        }
    }

    /// Clears every CPU's flag of `zone` (only those that are set: near LOW
    /// this runs on every fold, and most flags are already 0).
    @usableFromInline
    func clearAboveLow(_ zone: Zone) {
        for c in 0..<cpuCount {
            let f = zone.pcp(c).aboveLow
            if f.pointee.load(ordering: .sequentiallyConsistent) != 0 { f.pointee.store(0, ordering: .sequentiallyConsistent) }
        }
    }

    /// The order-0 fast path's LOW check at classzone `classzone`: the
    /// calling CPU's flag when it is set, else the full check
    /// (`watermarkOK`, same answer as before the flag existed), which sets
    /// the flag when the zone is above `fastMark`.
    @inlinable @inline(__always)
    func fastLowOK(slot: PerCPUPages, classzone: Int) -> Bool {
        if slot.aboveLow.pointee.load(ordering: .relaxed) != 0 { return true }
        return fastLowCheck(slot: slot, classzone: classzone)
    }

    @usableFromInline @inline(never)
    func fastLowCheck(slot: PerCPUPages, classzone: Int) -> Bool {
        let zone = slot.zone
        let ok = watermarkOK(zone, order: 0, mark: zone.info.pointee.wmarkLow, classzone: classzone, flags: [])
        if ok && zone.freePages.pointee.load(ordering: .relaxed) &- zone.reserved.pointee.load(ordering: .relaxed) > zone.info.pointee.fastMark {
            setAboveLow(zone, slot: slot)
        }
        return ok
    }

    /// The flag of (cpu, zone), for tests.
    func aboveLowFlag(zone: Int, cpu: Int) -> Bool { zones[zone].pcp(cpu).aboveLow.pointee.load(ordering: .relaxed) != 0 }

    /// zone_page_state_snapshot(NR_FREE_PAGES): the zone counter plus every
    /// CPU's unfolded delta. Exact when no operation is in flight.
    @usableFromInline
    func freePagesSnapshot(_ zone: Zone) -> Int {
        var v = zone.freePages.pointee.load(ordering: .relaxed)
        for c in 0..<cpuCount { v &+= zone.pcp(c).freeDelta.pointee.load(ordering: .relaxed) }
        return v
    }

    /// The watermark check the allocator makes. The order-0 case with no
    /// reserve flags is decided by one relaxed load when the counter is more
    /// than the largest per-CPU drift above the mark; anything closer reads an
    /// exact snapshot (zone_watermark_ok_safe's idea).
    @inlinable @inline(__always)
    func watermarkOK(_ zone: Zone, order: Int, mark: Int, classzone: Int, flags: AllocFlags, credit: Int = 0) -> Bool {
        let held = zone.reserved.pointee.load(ordering: .relaxed) &- credit
        let free = zone.freePages.pointee.load(ordering: .relaxed) &- held
        let info = zone.info
        if order == 0 && flags.isEmpty && free &- info.pointee.maxDrift > mark &+ zone.lowmemReserve[classzone] {
            return true
        }
        return watermarkOKSlow(zone, order: order, mark: mark, classzone: classzone, flags: flags, free: free, held: held)
    }

    /// The careful check: an exact snapshot when close to the mark. `held`
    /// is what reservations hold back from this caller.
    @usableFromInline @inline(never)
    func watermarkOKSlow(_ zone: Zone, order: Int, mark: Int, classzone: Int, flags: AllocFlags, free: Int, held: Int) -> Bool {
        if flags.contains(.noWatermarks) { return true }
        var free = free
        let threshold = PageAllocator.reserveThreshold(mark: mark, flags: flags) + zone.lowmemReserve[classzone] + (1 << order) - 1
        if abs(free - threshold) <= zone.info.pointee.maxDrift { free = freePagesSnapshot(zone) - held }
        return PageAllocator.zoneWatermarkOK(free: free, order: order, mark: mark, lowmemReserve: zone.lowmemReserve[classzone], flags: flags) {
            zone.freeBlocks($0) > 0
        }
    }

    @inlinable @inline(__always)
    func mark(_ zone: Zone, _ level: WatermarkLevel) -> Int {
        switch level {
        case .min: return zone.info.pointee.wmarkMin
        case .low: return zone.info.pointee.wmarkLow
        case .high: return zone.info.pointee.wmarkHigh
        }
    }
}
