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

/// Out-of-line metadata of one page: 12 bytes, kept in one mmap'd array per
/// zone and indexed by `pfn - zone.startPFN`. `next`/`prev` link free lists
/// by local index (`PageMeta.none` ends a list).
@frozen @usableFromInline struct PageMeta {
    @usableFromInline var next: UInt32
    @usableFromInline var prev: UInt32
    @usableFromInline var state: PageState
    @usableFromInline var order: UInt8
    /// Who allocated the block (a worker/task tag); meaningful on allocated heads.
    @usableFromInline var owner: UInt16

    @usableFromInline static let none: UInt32 = .max
    @usableFromInline static let freedMark: UInt16 = .max
}

/// Bytes of metadata per page.
public let pageMetadataBytesPerPage = MemoryLayout<PageMeta>.stride
