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
        if v > t || v < -t {
            let x = slot.freeDelta.pointee.exchange(0, ordering: .relaxed)
            zone.freePages.pointee.wrappingAdd(x, ordering: .relaxed)
        }
    }

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
