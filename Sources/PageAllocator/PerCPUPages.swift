import Synchronization

/// One CPU's page cache for one zone (struct per_cpu_pages), a handle on
/// `stride` bytes of raw memory:
///
/// ```
///   0  owner word (Atomic<Int>): 0 free; see PageAllocator+PCPLock.swift
///   8  vmstat delta of NR_FREE_PAGES (Atomic<Int>), folded past the threshold
///  16  excess = count - high, high (Int): count is the pages on the lists;
///      the free fast path's `count >= high` is `excess >= 0`: one add and
///      a sign test
///  32  list heads for orders 0...3 (UInt32, singly linked by PageMeta.next)
///  48  "free pages clearly above LOW" flag (Atomic<Int>, 0/1), see aboveLow
///  56  copies of the zone's base, meta, memory and page size, the pages of
///      each order (UInt8 x 4: 1 << order) and the
///      zone's blockBits per order (UInt64 x 4: blockBits | order << 32)
///      (set once at start): the order-0 fast path reads one line
/// 128  counters[VMEvent.count] (Int), written only under this slot's lock
/// 304  batch, high_min, high_max (Int; set-up only, read on refill and drain)
/// ```
/// (512 bytes: four lines; a power of two, so a slot's address is one shift.)
/// The offsets are `PerCPUPages.Field`'s rows (the one table; accessors go
/// through it, debug builds check indexes and types: RawLayout.swift).
/// Invariants: `count` is the pages on the four lists; every list member is a
/// `.pcp` head of that list's order (`count` = `high + excess`). Slots are 512 bytes
/// apart, so no two CPUs share a cache line (or an adjacent-line prefetch pair).
///
/// Lock contract: the slot is protected by its owner word (`pcp_lock`,
/// PageAllocator+PCPLock.swift and docs/allocator.md): with rseq, the thread
/// on the slot's own CPU owns it through a restartable sequence (one plain
/// store of 2), anyone else by compare-and-swap of its token plus a
/// membarrier; with trylock, by 0 -> 1 (lock bts, or compare-and-swap where a
/// taker waits: the word holds only 0 or 1 in that mode). Nobody waits for a
/// slot on the fast path; a multi-slot taker (drain all, validate()) never
/// holds one while waiting for another. The zone lock is taken inside a slot,
/// never the other way round.
/// | field | protected by |
/// |---|---|
/// | owner word (`lock`, `word`) | itself: an atomic (rseq commit is a plain store on the slot's own CPU) |
/// | `freeDelta` | an atomic (relaxed): any path that changes the buddy's free pages adds to the delta of the CPU it runs as, often under the zone lock but not under this slot; read locklessly by `freePagesSnapshot` |
/// | `excess` (`count` = `high + excess`), `heads` (the four lists) | the slot's owner |
/// | `high` | the slot's owner (grows by `batch` on a refill miss, back to `high_min` on a drain; `excess` moves against it, so `count` stays) |
/// | `batch`, `highMin`, `highMax` | nothing: set-up only |
/// | `counters` | the slot's owner; the statistics take the slot to read them (exact, no atomics) |
/// | metadata of pages on the lists (`state`, `order`, `owner`, `next`) | the slot's owner (PageMeta) |
/// | `aboveLow` | an atomic: set only by the thread on this CPU (then re-checked), cleared by anyone whose fold or reservation leaves the zone at or below its fast mark (sequentially consistent; docs/allocator.md, "The above-LOW flag"); read relaxed by the fast path |
/// | `zone`, `meta`, `memory`, `pageSize`, `pagesOf`, `orderBits` | nothing: written once at set-up, before any thread can see the allocator |
@frozen @usableFromInline struct PerCPUPages {
    @usableFromInline let base: UnsafeMutableRawPointer
    @inlinable init(base: UnsafeMutableRawPointer) { self.base = base }
    /// Slot `cpu` of the zone's slots at `slots` (`stride` bytes apart).
    @inlinable @inline(__always)
    init(slots: UnsafeMutableRawPointer, cpu: Int) { base = slots + cpu &* Field.byteSize }

    @inlinable static var stride: Int { Field.byteSize }
    @inlinable static var lists: Int { Order.pcpMax + 1 }

    /// The slot's offset table, one row per field (the map above). Accessors
    /// go through it; `Field.layoutProblems()` (tested) finds overlaps,
    /// misalignment and fields past the slot.
    @usableFromInline enum Field: Int, RawLayout {
        case owner, freeDelta, excess, high, heads, aboveLow
        case zone, meta, memory, pageSize, pagesOf, blockBits, counters
        case batch, highMin, highMax

        /// 512: four lines, so no two CPUs share a line or an adjacent-line prefetch pair;
        /// a power of two, so slot `c` is `slots + c << 9` (one shift, no lea + shl).
        @usableFromInline static var byteSize: Int { 512 }
        @usableFromInline static var baseAlignment: Int { 128 }

        @inlinable var offset: Int {
            switch self {
            case .owner: 0
            case .freeDelta: 8
            case .excess: 16
            case .high: 24
            case .heads: 32
            case .aboveLow: 48
            case .zone: 56
            case .meta: 64
            case .memory: 72
            case .pageSize: 80
            case .pagesOf: 88
            case .blockBits: 96
            case .counters: 128
            case .batch: 304
            case .highMin: 312
            case .highMax: 320
            }
        }

        @usableFromInline var row: RawFieldRow {
            switch self {
            case .owner, .freeDelta, .aboveLow: RawFieldRow(offset, Atomic<Int>.self)
            case .excess, .high, .batch, .highMin, .highMax, .pageSize: RawFieldRow(offset, Int.self)
            case .heads: RawFieldRow(offset, UInt32.self, count: PerCPUPages.lists)
            case .zone, .memory: RawFieldRow(offset, UnsafeMutableRawPointer.self)
            case .meta: RawFieldRow(offset, UnsafeMutablePointer<PageMeta>.self)
            case .pagesOf: RawFieldRow(offset, UInt8.self, count: PerCPUPages.lists)
            case .blockBits: RawFieldRow(offset, UInt64.self, count: PerCPUPages.lists)
            case .counters: RawFieldRow(offset, Int.self, count: VMEvent.count)
            }
        }
    }

    @inlinable var lock: RawSpinLock { RawSpinLock(base.rawField(Field.owner, as: Atomic<Int>.self)) }
    /// The owner word as a plain pointer, for the rseq sequence in the C shim.
    @inlinable var word: UnsafeMutablePointer<Int> { base.rawField(Field.owner, as: Int.self) }
    @inlinable var freeDelta: UnsafeMutablePointer<Atomic<Int>> { base.rawField(Field.freeDelta, as: Atomic<Int>.self) }
    /// `count - high`: negative while the lists hold fewer than `high`
    /// pages. The fast paths move it instead of `count`, so a free's
    /// `count >= high` is `excess >= 0` right after its add (one add to
    /// memory and a sign test: no load of `count` or `high`).
    @inlinable var excess: UnsafeMutablePointer<Int> { base.rawField(Field.excess, as: Int.self) }
    /// The word behind `high` (set it through `high`, which moves `excess` against it).
    @inlinable var highWord: UnsafeMutablePointer<Int> { base.rawField(Field.high, as: Int.self) }
    /// Pages on the four lists (`high + excess`). Setting it sets `excess`.
    @inlinable var count: Int {
        get { highWord.pointee &+ excess.pointee }
        nonmutating set { excess.pointee = newValue &- highWord.pointee }
    }
    /// pcp->high. Setting it moves `excess` by the opposite amount, so `count` is unchanged.
    @inlinable var high: Int {
        get { highWord.pointee }
        nonmutating set { excess.pointee &-= newValue &- highWord.pointee; highWord.pointee = newValue }
    }
    @inlinable var batch: UnsafeMutablePointer<Int> { base.rawField(Field.batch, as: Int.self) }
    @inlinable var highMin: UnsafeMutablePointer<Int> { base.rawField(Field.highMin, as: Int.self) }
    @inlinable var highMax: UnsafeMutablePointer<Int> { base.rawField(Field.highMax, as: Int.self) }
    /// List heads by order (0...3); debug builds check the order.
    @inlinable var heads: RawElements<UInt32> { RawElements(base.rawField(Field.heads, as: UInt32.self), count: PerCPUPages.lists) }
    /// Counters by VMEvent, written only under this slot's lock; debug builds check the index.
    @inlinable var counters: RawElements<Int> { RawElements(base.rawField(Field.counters, as: Int.self), count: VMEvent.count) }
    /// 1 only while the zone's NR_FREE_PAGES minus its reserved pages is
    /// above `ZoneInfo.fastMark` (LOW + lowmem_reserve + the largest per-CPU
    /// drift): the order-0 fast path then skips the watermark arithmetic.
    /// Set by this CPU (after a check or a fold that saw the zone above the
    /// mark, re-checked after the store); cleared on every CPU by any fold or
    /// reservation that leaves the zone at or below it. docs/allocator.md,
    /// "The above-LOW flag", argues why it never says yes when the exact
    /// check would say no.
    @inlinable var aboveLow: UnsafeMutablePointer<Atomic<Int>> { base.rawField(Field.aboveLow, as: Atomic<Int>.self) }
    /// The zone this slot belongs to (read-only after start).
    @inlinable var zone: Zone { Zone(base: base.loadField(Field.zone, as: UnsafeMutableRawPointer.self)) }
    /// Copies of ZoneInfo.meta and .memory (read-only after start).
    @inlinable var meta: UnsafeMutablePointer<PageMeta> { base.loadField(Field.meta, as: UnsafeMutablePointer<PageMeta>.self) }
    @inlinable var memory: UnsafeMutableRawPointer { base.loadField(Field.memory, as: UnsafeMutableRawPointer.self) }
    /// Bytes per page (1 << pageShift): the block's address is one multiply.
    @inlinable var pageSize: Int { base.loadField(Field.pageSize, as: Int.self) }
    /// Pages of a block of each order (1 << order): a load, not a variable shift.
    @inlinable var pagesOf: RawElements<UInt8> { RawElements(base.rawField(Field.pagesOf, as: UInt8.self), count: PerCPUPages.lists) }
    /// The zone's blockBits with each order in bits 32-39: a block's packed word is one add.
    @inlinable var orderBits: RawElements<UInt64> { RawElements(base.rawField(Field.blockBits, as: UInt64.self), count: PerCPUPages.lists) }

    /// Fills the read-only copies of `zone`'s facts.
    func setZone(_ zone: Zone) {
        let i = zone.info.pointee
        base.storeField(zone.base, Field.zone)
        base.storeField(i.meta, Field.meta)
        base.storeField(i.memory, Field.memory)
        base.storeField(1 << i.pageShift, Field.pageSize)
        for o in 0..<PerCPUPages.lists {
            pagesOf[o] = UInt8(1 << o)
            orderBits[o] = i.blockBits | UInt64(o) << 32
        }
    }

    /// The block of local index `idx`, order `order` (makeBlock from the slot's copies).
    @inlinable @inline(__always)
    func block(idx: UInt32, order: Int) -> PageBlock {
        PageBlock(address: memory + Int(idx) &* pageSize, packed: orderBits[order] &+ UInt64(idx))
    }

    @inlinable @inline(__always)
    func bump(_ e: VMEvent, _ by: Int = 1) { counters[e.rawValue] &+= by }

    /// Lays out `cpus` slots for a zone.
    static func makeSlots(cpus: Int, batch: Int, highMin: Int, highMax: Int) -> UnsafeMutableRawPointer {
        let problems = Field.layoutProblems()
        precondition(problems.isEmpty, "per-CPU slot layout: \(problems)")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: stride * cpus, alignment: Field.baseAlignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: stride * cpus)
        for c in 0..<cpus {
            let s = PerCPUPages(slots: raw, cpu: c).base
            for f in [Field.owner, .freeDelta, .aboveLow] { (s + f.offset).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0)) }
            // count 0: excess = -high = -high_min.
            for (f, v) in [(Field.excess, -highMin), (.high, highMin), (.batch, batch), (.highMin, highMin), (.highMax, highMax)] {
                (s + f.offset).bindMemory(to: Int.self, capacity: 1).initialize(to: v)
            }
            (s + Field.heads.offset).bindMemory(to: UInt32.self, capacity: lists).initialize(repeating: PageMeta.none, count: lists)
            (s + Field.pagesOf.offset).bindMemory(to: UInt8.self, capacity: lists).initialize(repeating: 0, count: lists)
            (s + Field.blockBits.offset).bindMemory(to: UInt64.self, capacity: lists).initialize(repeating: 0, count: lists)
            (s + Field.counters.offset).bindMemory(to: Int.self, capacity: VMEvent.count).initialize(repeating: 0, count: VMEvent.count)
        }
        return raw
    }
}
