/// Where a page is. Only block heads carry a state other than `.tail`.
///
/// Invariant: `state[pfn] != .tail` exactly when pfn is the first page of a
/// current block (free in the buddy, in a per-CPU list, or allocated), and
/// then `order[pfn]` is that block's order. Split makes new heads, merge turns
/// absorbed heads back into tails, so the rule costs O(1) per operation.
/// Freshly mmap'd metadata is all zeroes, i.e. all tails.
@usableFromInline enum PageState: UInt8 {
    case tail = 0
    /// Head of a free block on a buddy free list (PageBuddy).
    case buddy = 1
    /// Head of a free block on a per-CPU list.
    case pcp = 2
    /// Head of an allocated block.
    case allocated = 3
}

/// Out-of-line metadata of one page: 12 bytes used, padded to one 64-byte
/// cache line (like Linux's struct page), kept in one mmap'd array per
/// zone and indexed by `pfn - zone.startPFN`. `next`/`prev` link free lists
/// by local index (`PageMeta.none` ends a list).
///
/// Lock contract. The metadata of a block's head belongs to whoever holds
/// the block: the zone lock while it is on a buddy free list, the owner of
/// the per-CPU slot (`pcp_lock`: the rseq owner, an outside taker or the
/// trylock holder; docs/allocator.md) while it is on that slot's list, and
/// the allocating caller while it is allocated, until its free hands it to
/// one of the two. Moves between the buddy and a per-CPU list (refill,
/// drain) happen with the slot owned and the zone lock held. Tails are
/// written only under the zone lock (split makes heads, merge makes tails).
/// | field | written by | read by |
/// |---|---|---|
/// | `next` | zone lock (buddy lists) or the slot owner (per-CPU lists) | the same holder |
/// | `prev` | zone lock (buddy lists only) | zone lock |
/// | `state`, `order` | whoever holds the block (above) | the same; `validate()` with every slot and zone lock held; a free's misuse check reads the head it is given (a racing double free is the caller's data race, as in the kernel) |
/// | `owner` | the allocating path at allocation, the free path at free (`freedMark`) | the same, and misuse detection |
/// | `buddyOrder` | zone lock only | zone lock only (the merge reads it, never `state`) |
/// No field is atomic: with the rule above no two threads touch one field at once.
@frozen @usableFromInline struct PageMeta {
    @usableFromInline var next: UInt32
    @usableFromInline var prev: UInt32
    @usableFromInline var state: PageState
    @usableFromInline var order: UInt8
    /// Who allocated the block (a worker/task tag); meaningful on allocated heads.
    /// On a page that is not allocated: `freedMark` if a free of a block headed
    /// by this pfn succeeded since it was last allocated, else 0 (never handed
    /// out). Lets a bad free tell a double free from a pfn never allocated.
    @usableFromInline var owner: UInt16
    /// `order + 1` while this page heads a block on a buddy free list of that
    /// order, else 0 (PageBuddy + buddy_order). Written and read only under
    /// the zone lock, so the merge reads this and never `state`, which the
    /// per-CPU paths write under their own locks: the two never touch the same
    /// byte concurrently (no data race, without atomics on the fast path).
    @usableFromInline var buddyOrder: UInt8
    /// Pads the record to one 64-byte cache line, as Linux's struct page is:
    /// pages next to each other in pfn often sit on different CPUs' lists,
    /// and with smaller records their alloc/free writes would bounce one
    /// shared line between cores (measured: 2 threads at 0.4x one thread).
    @usableFromInline var _pad: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    @inlinable static var none: UInt32 { .max }
    /// Byte offset of `state`; `order` is the next byte (checked at start-up).
    @inlinable static var stateOffset: Int { 8 }
    /// `state | order << 8`: the two bytes the free fast path checks, in one load.
    @inlinable @inline(__always)
    static func stateAndOrder(_ p: UnsafeMutablePointer<PageMeta>) -> UInt16 {
        UInt16(littleEndian: UnsafeRawPointer(p).load(fromByteOffset: stateOffset, as: UInt16.self))
    }
    /// What stateAndOrder reads for an allocated head of `order`.
    @inlinable static func allocatedHead(order: Int) -> UInt16 { UInt16(PageState.allocated.rawValue) | UInt16(order) << 8 }
    /// A pair no head holds (state 0xff).
    @inlinable static var noHead: UInt16 { 0xffff }
    @inlinable static var freedMark: UInt16 { .max }
}

/// Bytes of metadata per page.
public let pageMetadataBytesPerPage = MemoryLayout<PageMeta>.stride
