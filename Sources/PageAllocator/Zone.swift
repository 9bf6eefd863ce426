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
/// The offsets are `Zone.Field`'s rows (the one table; accessors go through
/// it, debug builds check indexes and types: RawLayout.swift).
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

    static var byteSize: Int { Field.byteSize }
    /// One rare atomic per event: `counters(zone:)` reads them all.
    static let rareCount = VMEvent.count

    /// The zone block's offset table, one row per field (the map above).
    /// Accessors below go through it; `Field.layoutProblems()` (tested) finds
    /// overlaps, misalignment and fields past the block.
    @usableFromInline enum Field: Int, RawLayout {
        case lock, freePages, info, reserved, lowmemReserve, freeHead, freeTail, nrFree, lockedCounters, rare

        @usableFromInline static var byteSize: Int { 1152 }
        @usableFromInline static var baseAlignment: Int { 128 }

        @inlinable var offset: Int {
            switch self {
            case .lock: 0
            case .freePages: 128
            case .info: 136
            case .reserved: 440
            case .lowmemReserve: 448
            case .freeHead: 512
            case .freeTail: 560
            case .nrFree: 608
            case .lockedCounters: 704
            case .rare: 896
            }
        }

        @usableFromInline var row: RawFieldRow {
            switch self {
            case .lock, .freePages, .reserved: RawFieldRow(offset, Atomic<Int>.self)
            // ZoneInfo may grow up to `reserved`.
            case .info: RawFieldRow(offset, ZoneInfo.self, space: Field.reserved.offset - offset)
            case .lowmemReserve: RawFieldRow(offset, Int.self, count: ZoneType.count)
            case .freeHead, .freeTail: RawFieldRow(offset, UInt32.self, count: Order.count)
            case .nrFree: RawFieldRow(offset, Atomic<Int>.self, count: Order.count)
            case .lockedCounters: RawFieldRow(offset, Int.self, count: VMEvent.count)
            case .rare: RawFieldRow(offset, Atomic<Int>.self, count: Zone.rareCount)
            }
        }
    }

    @inlinable var lock: RawSpinLock { RawSpinLock(base.rawField(Field.lock, as: Atomic<Int>.self)) }
    /// NR_FREE_PAGES without the per-CPU deltas (zone_page_state()).
    @inlinable var freePages: UnsafeMutablePointer<Atomic<Int>> { base.rawField(Field.freePages, as: Atomic<Int>.self) }
    @inlinable var info: UnsafeMutablePointer<ZoneInfo> { base.rawField(Field.info, as: ZoneInfo.self) }
    /// lowmem_reserve[classzone]; debug builds check the index.
    @inlinable var lowmemReserve: RawElements<Int> { RawElements(base.rawField(Field.lowmemReserve, as: Int.self), count: ZoneType.count) }
    /// Pages held back by reservations (Chinner): everyone else sees this
    /// much less free memory; a transaction may use its own share.
    @inlinable var reserved: UnsafeMutablePointer<Atomic<Int>> { base.rawField(Field.reserved, as: Atomic<Int>.self) }
    @inlinable var freeHead: RawElements<UInt32> { RawElements(base.rawField(Field.freeHead, as: UInt32.self), count: Order.count) }
    @inlinable var freeTail: RawElements<UInt32> { RawElements(base.rawField(Field.freeTail, as: UInt32.self), count: Order.count) }
    /// Blocks per order. Written under the zone lock; read without it by the
    /// watermark check and shouldReclaimRetry (as the kernel reads nr_free),
    /// so relaxed atomics: plain moves on x86, and no data race.
    @inlinable var nrFree: RawElements<Atomic<Int>> { RawElements(base.rawField(Field.nrFree, as: Atomic<Int>.self), count: Order.count) }
    /// nr_free[order], relaxed.
    @inlinable @inline(__always) func freeBlocks(_ order: Int) -> Int { nrFree[order].load(ordering: .relaxed) }
    /// Counters written only under the zone lock, indexed by VMEvent.
    @inlinable var lockedCounters: RawElements<Int> { RawElements(base.rawField(Field.lockedCounters, as: Int.self), count: VMEvent.count) }
    /// Counters bumped without a lock (slow path only).
    @inlinable var rare: RawElements<Atomic<Int>> { RawElements(base.rawField(Field.rare, as: Atomic<Int>.self), count: VMEvent.count) }

    @inlinable var meta: UnsafeMutablePointer<PageMeta> { info.pointee.meta }

    /// The per-CPU slot of `cpu`. Debug builds check the CPU.
    @inlinable func pcp(_ cpu: Int) -> PerCPUPages {
        assert(UInt(bitPattern: cpu) < UInt(bitPattern: info.pointee.cpuCount), "zone \(info.pointee.index): cpu \(cpu) of \(info.pointee.cpuCount)")
        return PerCPUPages(slots: info.pointee.pcpBase, cpu: cpu)
    }

    /// Allocates and lays out a zone block. `info` fields are filled by the caller.
    static func make(info: ZoneInfo) -> Zone {
        let problems = Field.layoutProblems()
        precondition(problems.isEmpty, "zone layout: \(problems)")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: byteSize, alignment: Field.baseAlignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
        func atomics(_ f: Field) {
            let p = (raw + f.offset).bindMemory(to: Atomic<Int>.self, capacity: f.row.count)
            for i in 0..<f.row.count { (p + i).initialize(to: Atomic(0)) }
        }
        var info = info
        info.blockBits = PageBlock.bits(pfn: info.startPFN, order: 0, node: info.node, zone: info.index, pageShift: info.pageShift)
        for f in [Field.lock, .freePages, .reserved, .nrFree, .rare] { atomics(f) }
        (raw + Field.info.offset).bindMemory(to: ZoneInfo.self, capacity: 1).initialize(to: info)
        (raw + Field.lowmemReserve.offset).bindMemory(to: Int.self, capacity: ZoneType.count).initialize(repeating: 0, count: ZoneType.count)
        // freeHead and freeTail are not contiguous (11 x 4 = 44 bytes each): empty both.
        for f in [Field.freeHead, .freeTail] {
            (raw + f.offset).bindMemory(to: UInt32.self, capacity: Order.count).initialize(repeating: PageMeta.none, count: Order.count)
        }
        (raw + Field.lockedCounters.offset).bindMemory(to: Int.self, capacity: VMEvent.count).initialize(repeating: 0, count: VMEvent.count)
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
