import Synchronization

/// Read-mostly facts about a zone, read by the fast path. Written only at
/// set-up (and by later watermark changes, which happen under the zone lock).
@frozen @usableFromInline struct ZoneInfo {
    @usableFromInline var wmarkMin: Int
    @usableFromInline var wmarkLow: Int
    @usableFromInline var wmarkHigh: Int
    @usableFromInline var wmarkPromo: Int
    /// First pfn and one past the last (spanned == present == managed here).
    @usableFromInline var startPFN: Int
    @usableFromInline var endPFN: Int
    @usableFromInline var managed: Int
    /// Metadata of `startPFN`; index by `pfn - startPFN`.
    @usableFromInline var meta: UnsafeMutablePointer<PageMeta>
    /// Address of `startPFN`'s page.
    @usableFromInline var memory: UnsafeMutableRawPointer
    /// Per-CPU slots of this zone, `PerCPUPages.stride` apart.
    @usableFromInline var pcpBase: UnsafeMutableRawPointer
    @usableFromInline var pageShift: Int
    /// Largest error of `freePages` against the exact count: CPUs x threshold.
    @usableFromInline var maxDrift: Int
    /// Per-CPU vmstat fold threshold.
    @usableFromInline var vmThreshold: Int
    @usableFromInline var node: Int
    @usableFromInline var type: ZoneType
    /// Index of this zone in the allocator's zone table.
    @usableFromInline var index: Int
    @usableFromInline var batch: Int
    @usableFromInline var highMin: Int
    @usableFromInline var highMax: Int
    @usableFromInline var cpuCount: Int
    /// A PageBlock's packed bits for this zone's first pfn at order 0: the
    /// fast path adds the index and ors in the order.
    @usableFromInline var blockBits: UInt64 = 0
    /// The per-CPU above-LOW flag's level: LOW + the largest lowmem_reserve
    /// of a classzone whose fast path starts at this zone + maxDrift.
    /// Int.max (the flag is never set) for a zone no fast path starts at.
    @usableFromInline var fastMark: Int = .max
}

/// A zone: a handle on one 1152-byte block of raw memory laid out in cache lines.
///
/// ```
///   0  zone lock (Atomic<Int>)                        own line: contended
/// 128  NR_FREE_PAGES (Atomic<Int>), then ZoneInfo     read-mostly line(s)
/// 440  pages reserved by transactions (Atomic<Int>)
/// 448  lowmem_reserve[4] (Int)
/// 512  buddy: freeHead[11], freeTail[11] (UInt32), nrFree[11] (Int),
///      counters[VMEvent.count] (Int)                  under the zone lock
/// 896  rare atomics: counters bumped outside any lock, one per VMEvent
/// ```
/// Invariants (checked by `PageAllocator.validate()`):
/// - each free list is a well-formed doubly linked list whose members are
///   `.buddy` heads of that order, aligned to their size in pfn space, inside
///   the zone; `nrFree[o]` counts the blocks (not pages) of list `o`;
/// - no two free buddies of the same order are left unmerged;
/// - NR_FREE_PAGES plus every CPU's delta equals the pages on the free lists.
///
/// Lock contract (what protects each field; `Locked` in a function's name
/// means its caller holds the zone lock):
/// | field | protected by |
/// |---|---|
/// | `lock` | itself: an atomic word (TTAS spinlock), taken after any per-CPU slot, never before one |
/// | `freePages` (NR_FREE_PAGES) | an atomic, relaxed: folded into from per-CPU deltas (`modFreePages`), read locklessly by the watermark checks (a statistic within `maxDrift`) |
/// | `info` (ZoneInfo) | nothing: written once at set-up, before the allocator is shared; read-only after (the fast path reads it without a lock) |
/// | `reserved` | an atomic changed only by compare-and-swap (Reservations.swift); read relaxed by the watermark checks |
/// | `lowmemReserve` | nothing: set-up only |
/// | `freeHead`, `freeTail` | the zone lock |
/// | `nrFree` | written under the zone lock; relaxed atomics so that the watermark check and `shouldReclaimRetry` may read them without it (as the kernel reads nr_free) |
/// | `lockedCounters` | the zone lock (the statistics read them under it) |
/// | `rare` | atomics (relaxed): slow-path events counted outside any lock; statistics |
/// | page metadata (`info.meta`) | per block, whoever holds the block: see PageMeta |
/// Each CPU's slot of this zone (`pcp(_:)`) has its own contract (PerCPUPages).
@frozen @usableFromInline struct Zone {
    @usableFromInline let base: UnsafeMutableRawPointer
    @inlinable init(base: UnsafeMutableRawPointer) { self.base = base }

    static let byteSize = 1152
    /// One rare atomic per event: `counters(zone:)` reads them all.
    static let rareCount = VMEvent.count

    @inlinable var lock: RawSpinLock { RawSpinLock(base.assumingMemoryBound(to: Atomic<Int>.self)) }
    /// NR_FREE_PAGES without the per-CPU deltas (zone_page_state()).
    @inlinable var freePages: UnsafeMutablePointer<Atomic<Int>> { (base + 128).assumingMemoryBound(to: Atomic<Int>.self) }
    @inlinable var info: UnsafeMutablePointer<ZoneInfo> { (base + 136).assumingMemoryBound(to: ZoneInfo.self) }
    @inlinable var lowmemReserve: UnsafeMutablePointer<Int> { (base + 448).assumingMemoryBound(to: Int.self) }
    /// Pages held back by reservations (Chinner): everyone else sees this
    /// much less free memory; a transaction may use its own share.
    @inlinable var reserved: UnsafeMutablePointer<Atomic<Int>> { (base + 440).assumingMemoryBound(to: Atomic<Int>.self) }
    @inlinable var freeHead: UnsafeMutablePointer<UInt32> { (base + 512).assumingMemoryBound(to: UInt32.self) }
    @inlinable var freeTail: UnsafeMutablePointer<UInt32> { (base + 560).assumingMemoryBound(to: UInt32.self) }
    /// Blocks per order. Written under the zone lock; read without it by the
    /// watermark check and shouldReclaimRetry (as the kernel reads nr_free),
    /// so relaxed atomics: plain moves on x86, and no data race.
    @inlinable var nrFree: UnsafeMutablePointer<Atomic<Int>> { (base + 608).assumingMemoryBound(to: Atomic<Int>.self) }
    /// nr_free[order], relaxed.
    @inlinable @inline(__always) func freeBlocks(_ order: Int) -> Int { nrFree[order].load(ordering: .relaxed) }
    /// Counters written only under the zone lock.
    @inlinable var lockedCounters: UnsafeMutablePointer<Int> { (base + 704).assumingMemoryBound(to: Int.self) }
    /// Counters bumped without a lock (slow path only).
    @inlinable var rare: UnsafeMutablePointer<Atomic<Int>> { (base + 896).assumingMemoryBound(to: Atomic<Int>.self) }

    @inlinable var meta: UnsafeMutablePointer<PageMeta> { info.pointee.meta }

    /// The per-CPU slot of `cpu`.
    @inlinable func pcp(_ cpu: Int) -> PerCPUPages {
        PerCPUPages(base: info.pointee.pcpBase + cpu &* PerCPUPages.stride)
    }

    /// Allocates and lays out a zone block. `info` fields are filled by the caller.
    static func make(info: ZoneInfo) -> Zone {
        precondition(MemoryLayout<ZoneInfo>.size <= 440 - 136, "ZoneInfo outgrew its lines")
        precondition(704 + VMEvent.count * 8 <= 896, "zone counters outgrew their lines")
        precondition(896 + rareCount * 8 <= byteSize, "rare counters outgrew the zone block")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: byteSize, alignment: 128)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
        raw.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        var info = info
        info.blockBits = PageBlock.bits(pfn: info.startPFN, order: 0, node: info.node, zone: info.index, pageShift: info.pageShift)
        (raw + 128).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (raw + 136).bindMemory(to: ZoneInfo.self, capacity: 1).initialize(to: info)
        (raw + 440).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (raw + 448).bindMemory(to: Int.self, capacity: 4).initialize(repeating: 0, count: 4)
        // freeHead at 512 and freeTail at 560 are not contiguous (11 x 4 = 44 bytes): empty both.
        (raw + 512).bindMemory(to: UInt32.self, capacity: Order.count).initialize(repeating: PageMeta.none, count: Order.count)
        (raw + 560).bindMemory(to: UInt32.self, capacity: Order.count).initialize(repeating: PageMeta.none, count: Order.count)
        let nr = (raw + 608).bindMemory(to: Atomic<Int>.self, capacity: Order.count)
        for o in 0..<Order.count { (nr + o).initialize(to: Atomic(0)) }
        (raw + 704).bindMemory(to: Int.self, capacity: VMEvent.count).initialize(repeating: 0, count: VMEvent.count)
        let rare = (raw + 896).bindMemory(to: Atomic<Int>.self, capacity: rareCount)
        for i in 0..<rareCount { (rare + i).initialize(to: Atomic(0)) }
        return Zone(base: raw)
    }

    func destroy() {
        info.deinitialize(count: 1)
        base.deallocate()
    }

    // MARK: free lists (caller holds the zone lock)

    /// Puts the block at local index `idx` on free list `order`, marking it a
    /// buddy head. At the tail when `toTail` (a merge is likely soon).
    @inlinable @inline(__always)
    func addToFreeListLocked(_ idx: UInt32, order: Int, toTail: Bool) {
        let m = meta
        m[Int(idx)].state = .buddy
        m[Int(idx)].order = UInt8(truncatingIfNeeded: order)
        m[Int(idx)].buddyOrder = UInt8(truncatingIfNeeded: order &+ 1)
        let head = freeHead[order]
        if head == PageMeta.none {
            m[Int(idx)].next = PageMeta.none
            m[Int(idx)].prev = PageMeta.none
            freeHead[order] = idx
            freeTail[order] = idx
        } else if toTail {
            let tail = freeTail[order]
            m[Int(idx)].prev = tail
            m[Int(idx)].next = PageMeta.none
            m[Int(tail)].next = idx
            freeTail[order] = idx
        } else {
            m[Int(idx)].next = head
            m[Int(idx)].prev = PageMeta.none
            m[Int(head)].prev = idx
            freeHead[order] = idx
        }
        nrFree[order].store(freeBlocks(order) &+ 1, ordering: .relaxed)
    }

    /// O(1) unlink of a free block from list `order`. Leaves its state to the caller.
    @inlinable @inline(__always)
    func removeFromFreeListLocked(_ idx: UInt32, order: Int) {
        let m = meta
        let n = m[Int(idx)].next, p = m[Int(idx)].prev
        if p == PageMeta.none { freeHead[order] = n } else { m[Int(p)].next = n }
        if n == PageMeta.none { freeTail[order] = p } else { m[Int(n)].prev = p }
        m[Int(idx)].buddyOrder = 0
        nrFree[order].store(freeBlocks(order) &- 1, ordering: .relaxed)
    }

    @inlinable @inline(__always)
    func bumpLocked(_ e: VMEvent, _ by: Int = 1) { lockedCounters[e.rawValue] &+= by }

    @inlinable @inline(__always)
    func bumpRare(_ e: VMEvent, _ by: Int = 1) {
        rare[e.rawValue].wrappingAdd(by, ordering: .relaxed)
    }

    /// Takes the zone lock, counting the acquisition and any contention.
    @inlinable @inline(__always)
    func lockZone() {
        let contended = lock.lock()
        lockedCounters[VMEvent.zoneLockAcquire.rawValue] &+= 1
        if contended { lockedCounters[VMEvent.zoneLockContended.rawValue] &+= 1 }
    }

    @inlinable @inline(__always)
    func unlockZone() { lock.unlock() }
}
