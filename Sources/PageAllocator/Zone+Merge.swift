extension Zone {
    /// __free_one_page(): returns a block to the buddy, merging with its buddy
    /// (`pfn ^ (1 << order)`) while that buddy is a free head of the same
    /// order inside this zone. The merged block goes to the head of its list,
    /// or to the tail when the next-order buddy is free too (likely to merge).
    /// Caller holds the zone lock and adjusts NR_FREE_PAGES.
    @inlinable
    func freeOneLocked(_ idx: UInt32, order: Int) {
        let info = self.info.pointee
        let m = info.meta
        var pfn = info.startPFN &+ Int(idx)
        var o = order
        while o < Order.maxOrder {
            let buddyPFN = pfn ^ (1 << o)
            guard buddyPFN >= info.startPFN, buddyPFN &+ (1 << o) <= info.endPFN else { break }
            let b = buddyPFN &- info.startPFN
            // buddyOrder, not state: see PageMeta.buddyOrder (no race with the per-CPU paths).
            guard m[b].buddyOrder == UInt8(truncatingIfNeeded: o &+ 1) else { break }
            removeFromFreeListLocked(UInt32(truncatingIfNeeded: b), order: o)
            m[b].state = .tail
            m[pfn &- info.startPFN].state = .tail
            pfn &= buddyPFN
            o &+= 1
        }
        var toTail = false
        if o < Order.maxOrder - 1 {
            let higherBuddy = (pfn & ~(1 << o)) ^ (1 << (o &+ 1))
            if higherBuddy >= info.startPFN, higherBuddy &+ (1 << (o &+ 1)) <= info.endPFN {
                let hb = higherBuddy &- info.startPFN
                toTail = m[hb].buddyOrder == UInt8(truncatingIfNeeded: o &+ 2)
            }
        }
        addToFreeListLocked(UInt32(truncatingIfNeeded: pfn &- info.startPFN), order: o, toTail: toTail)
    }

    /// Seeds the free lists with maximal aligned blocks covering
    /// `[startPFN, endPFN)`, as memblock_free_pages() does at boot.
    /// Returns the pages added.
    func seedFreeListsLocked() -> Int {
        let info = self.info.pointee
        var pfn = info.startPFN
        var added = 0
        while pfn < info.endPFN {
            var o = Order.maxOrder
            while o > 0 && (pfn & ((1 << o) - 1) != 0 || pfn + (1 << o) > info.endPFN) { o -= 1 }
            addToFreeListLocked(UInt32(pfn - info.startPFN), order: o, toTail: true)
            pfn += 1 << o
            added += 1 << o
        }
        return added
    }
}
