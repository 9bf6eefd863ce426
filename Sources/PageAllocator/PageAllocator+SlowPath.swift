import Topology

extension PageAllocator {
    /// __alloc_pages_slowpath(), in the kernel's order. Steps the later
    /// reclaim/OOM/retry work plugs into are marked; at this stage the path
    /// honours the reserve flags, drains the per-CPU lists once, and fails
    /// with a typed error when memory is short. It never loops.
    @usableFromInline @inline(never)
    func allocSlowPath(order: Order, flags: GFP, preferredNode: Int, cpu: Int, owner: UInt16,
                       reserve: ReserveAccess) throws(AllocError) -> PageBlock {
        let type = ZoneType.highest(for: flags)
        let (list, count) = zonelist(node: preferredNode, type: type, thisNode: flags.contains(.thisNode))
        guard count > 0 else { throw .noEligibleZone(flags: flags) }
        var largest = 0
        for i in 0..<count { largest = max(largest, zones[Int(list[i])].info.pointee.managed) }
        guard order.pages <= largest else { throw .requestLargerThanArena(order: order.rawValue, largestZonePages: largest) }
        let first = zones[Int(list[0])]
        first.bumpRare(.allocSlowpath)

        // Step 0: fault injection (should_fail_alloc_page) plugs in here.

        // Step 1: gfp_to_alloc_flags(): the MIN watermark and the reserve
        // shares of the flags. (Waking kswapd plugs in here.)
        var allocFlags = AllocFlags.from(gfp: flags, order: order.rawValue)
        if let b = getPageFromFreelist(order: order.rawValue, level: .min, flags: allocFlags, list: list, count: count,
                                       classzone: type.rawValue, preferredNode: preferredNode, cpu: cpu, owner: owner) {
            return b
        }

        // Reserve access of the task (ALLOC_OOM, ALLOC_NO_WATERMARKS) replaces the flags.
        let reserveFlags = reserve.reserveFlags(for: flags)
        if !reserveFlags.isEmpty {
            allocFlags = reserveFlags.union(allocFlags.intersection(.kswapd))
            if let b = getPageFromFreelist(order: order.rawValue, level: .min, flags: allocFlags, list: list, count: count,
                                           classzone: type.rawValue, preferredNode: preferredNode, cpu: cpu, owner: owner) {
                return b
            }
        }

        // Step 3: a caller that cannot reclaim gives up now.
        if flags.allowsBlocking {
            // Steps 4-8: direct reclaim, should_reclaim_retry, the OOM killer
            // and the NOFAIL loop plug in here (the slow-path issue). What
            // exists now is the drain after the first reclaim failure: pages
            // parked in other CPUs' lists go back to the buddy, then one retry.
            if drainAllCPUs() > 0,
               let b = getPageFromFreelist(order: order.rawValue, level: .min, flags: allocFlags, list: list, count: count,
                                           classzone: type.rawValue, preferredNode: preferredNode, cpu: cpu, owner: owner) {
                return b
            }
        }
        first.bumpRare(.allocFail)
        throw .outOfMemory(order: order.rawValue, flags: flags)
    }

    /// get_page_from_freelist() with an explicit watermark level and flags.
    @usableFromInline
    func getPageFromFreelist(order: Int, level: WatermarkLevel, flags: AllocFlags, list: UnsafeMutablePointer<Int32>, count: Int,
                             classzone: Int, preferredNode: Int, cpu: Int, owner: UInt16) -> PageBlock? {
        for i in 0..<count {
            let zone = zones[Int(list[i])]
            if !flags.contains(.noWatermarks) &&
                !watermarkOK(zone, order: order, mark: mark(zone, level), classzone: classzone, flags: flags) {
                continue
            }
            if let b = rmqueue(zone, order: order, cpu: cpu, preferredNode: preferredNode, owner: owner) { return b }
        }
        return nil
    }
}
