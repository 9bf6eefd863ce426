extension Zone {
    /// __rmqueue_smallest(): takes the smallest free block of order >= `order`,
    /// splits it down (expand()), and returns the local index of the lowest
    /// pfn, now an unlinked head of `order` whose state the caller sets.
    /// Caller holds the zone lock; NR_FREE_PAGES is the caller's to adjust.
    @inlinable
    func rmqueueSmallestLocked(order: Int) -> UInt32? {
        var current = order
        while current < Order.count {
            let idx = freeHead[current]
            if idx != PageMeta.none {
                removeFromFreeListLocked(idx, order: current)
                expandLocked(idx, low: order, high: current)
                meta[Int(idx)].order = UInt8(truncatingIfNeeded: order)
                return idx
            }
            current &+= 1
        }
        return nil
    }

    /// expand(): halves a block of order `high` down to `low`, pushing each
    /// UPPER half onto the free list one order lower (at the head).
    @inlinable @inline(__always)
    func expandLocked(_ idx: UInt32, low: Int, high: Int) {
        var h = high
        var size: UInt32 = 1 << UInt32(h)
        while h > low {
            h &-= 1
            size >>= 1
            addToFreeListLocked(idx &+ size, order: h, toTail: false)
        }
    }
}
