import Synchronization

/// One CPU's page cache for one zone (struct per_cpu_pages), a handle on
/// `stride` bytes of raw memory:
///
/// ```
///   0  owner word (Atomic<Int>): 0 free; see PageAllocator+PCPLock.swift
///   8  vmstat delta of NR_FREE_PAGES (Atomic<Int>), folded past the threshold
///  16  count, high, batch, high_min, high_max (Int)
///  56  list heads for orders 0...3 (UInt32, singly linked by PageMeta.next)
///  72  "free pages clearly above LOW" flag (Atomic<Int>, 0/1), see aboveLow
///  80  copies of the zone's base, meta, memory, blockBits and pageShift
///      (set once at start): the order-0 fast path reads one line
/// 128  counters[VMEvent.count] (Int), written only under this slot's lock
/// ```
/// Invariants: `count` is the pages on the four lists; every list member is a
/// `.pcp` head of that list's order. Slots are 384 bytes apart, so no two
/// CPUs share a cache line (or an adjacent-line prefetch pair).
///
/// Lock contract: the slot is protected by its owner word (`pcp_lock`,
/// PageAllocator+PCPLock.swift and docs/allocator.md): with rseq, the thread
/// on the slot's own CPU owns it through a restartable sequence (one plain
/// store of 2), anyone else by compare-and-swap of its token plus a
/// membarrier; with trylock, by compare-and-swap 0 -> 1. Nobody waits for a
/// slot on the fast path; a multi-slot taker (drain all, validate()) never
/// holds one while waiting for another. The zone lock is taken inside a slot,
/// never the other way round.
/// | field | protected by |
/// |---|---|
/// | owner word (`lock`, `word`) | itself: an atomic (rseq commit is a plain store on the slot's own CPU) |
/// | `freeDelta` | an atomic (relaxed): any path that changes the buddy's free pages adds to the delta of the CPU it runs as, often under the zone lock but not under this slot; read locklessly by `freePagesSnapshot` |
/// | `count`, `heads` (the four lists) | the slot's owner |
/// | `high` | the slot's owner (grows by `batch` on a refill miss, back to `high_min` on a drain) |
/// | `batch`, `highMin`, `highMax` | nothing: set-up only |
/// | `counters` | the slot's owner; the statistics take the slot to read them (exact, no atomics) |
/// | metadata of pages on the lists (`state`, `order`, `owner`, `next`) | the slot's owner (PageMeta) |
/// | `aboveLow` | an atomic: set only by the thread on this CPU (then re-checked), cleared by anyone whose fold or reservation leaves the zone at or below its fast mark (sequentially consistent; docs/allocator.md, "The above-LOW flag"); read relaxed by the fast path |
/// | `zone`, `meta`, `memory`, `blockBits`, `pageShift` | nothing: written once at set-up, before any thread can see the allocator |
@frozen @usableFromInline struct PerCPUPages {
    @usableFromInline let base: UnsafeMutableRawPointer
    @inlinable init(base: UnsafeMutableRawPointer) { self.base = base }

    @inlinable static var stride: Int { 384 }
    @inlinable static var lists: Int { Order.pcpMax + 1 }

    @inlinable var lock: RawSpinLock { RawSpinLock(base.assumingMemoryBound(to: Atomic<Int>.self)) }
    /// The owner word as a plain pointer, for the rseq sequence in the C shim.
    @inlinable var word: UnsafeMutablePointer<Int> { base.assumingMemoryBound(to: Int.self) }
    @inlinable var freeDelta: UnsafeMutablePointer<Atomic<Int>> { (base + 8).assumingMemoryBound(to: Atomic<Int>.self) }
    @inlinable var count: UnsafeMutablePointer<Int> { (base + 16).assumingMemoryBound(to: Int.self) }
    @inlinable var high: UnsafeMutablePointer<Int> { (base + 24).assumingMemoryBound(to: Int.self) }
    @inlinable var batch: UnsafeMutablePointer<Int> { (base + 32).assumingMemoryBound(to: Int.self) }
    @inlinable var highMin: UnsafeMutablePointer<Int> { (base + 40).assumingMemoryBound(to: Int.self) }
    @inlinable var highMax: UnsafeMutablePointer<Int> { (base + 48).assumingMemoryBound(to: Int.self) }
    @inlinable var heads: UnsafeMutablePointer<UInt32> { (base + 56).assumingMemoryBound(to: UInt32.self) }
    @inlinable var counters: UnsafeMutablePointer<Int> { (base + 128).assumingMemoryBound(to: Int.self) }
    /// 1 only while the zone's NR_FREE_PAGES minus its reserved pages is
    /// above `ZoneInfo.fastMark` (LOW + lowmem_reserve + the largest per-CPU
    /// drift): the order-0 fast path then skips the watermark arithmetic.
    /// Set by this CPU (after a check or a fold that saw the zone above the
    /// mark, re-checked after the store); cleared on every CPU by any fold or
    /// reservation that leaves the zone at or below it. docs/allocator.md,
    /// "The above-LOW flag", argues why it never says yes when the exact
    /// check would say no.
    @inlinable var aboveLow: UnsafeMutablePointer<Atomic<Int>> { (base + 72).assumingMemoryBound(to: Atomic<Int>.self) }
    /// The zone this slot belongs to (read-only after start).
    @inlinable var zone: Zone { Zone(base: (base + 80).load(as: UnsafeMutableRawPointer.self)) }
    /// Copies of ZoneInfo.meta, .memory, .blockBits, .pageShift (read-only after start).
    @inlinable var meta: UnsafeMutablePointer<PageMeta> { (base + 88).load(as: UnsafeMutablePointer<PageMeta>.self) }
    @inlinable var memory: UnsafeMutableRawPointer { (base + 96).load(as: UnsafeMutableRawPointer.self) }
    @inlinable var blockBits: UInt64 { (base + 104).load(as: UInt64.self) }
    @inlinable var pageShift: Int { (base + 112).load(as: Int.self) }

    /// Fills the read-only copies of `zone`'s facts.
    func setZone(_ zone: Zone) {
        let i = zone.info.pointee
        (base + 80).storeBytes(of: zone.base, as: UnsafeMutableRawPointer.self)
        (base + 88).storeBytes(of: i.meta, as: UnsafeMutablePointer<PageMeta>.self)
        (base + 96).storeBytes(of: i.memory, as: UnsafeMutableRawPointer.self)
        (base + 104).storeBytes(of: i.blockBits, as: UInt64.self)
        (base + 112).storeBytes(of: i.pageShift, as: Int.self)
    }

    /// The block of local index `idx`, order `order` (makeBlock from the slot's copies).
    @inlinable @inline(__always)
    func block(idx: UInt32, order: Int) -> PageBlock {
        PageBlock(address: memory + (Int(idx) &<< pageShift),
                  packed: (blockBits &+ UInt64(idx)) | UInt64(truncatingIfNeeded: order) &<< 32)
    }

    @inlinable @inline(__always)
    func bump(_ e: VMEvent, _ by: Int = 1) { counters[e.rawValue] &+= by }

    /// Lays out `cpus` slots for a zone.
    static func makeSlots(cpus: Int, batch: Int, highMin: Int, highMax: Int) -> UnsafeMutableRawPointer {
        precondition(128 + VMEvent.count * 8 <= stride, "pcp counters outgrew the slot")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: stride * cpus, alignment: 128)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: stride * cpus)
        for c in 0..<cpus {
            let s = raw + c * stride
            s.bindMemory(to: Atomic<Int>.self, capacity: 2).initialize(to: Atomic(0))
            (s + 8).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
            (s + 16).bindMemory(to: Int.self, capacity: 5).initialize(from: [0, highMin, batch, highMin, highMax], count: 5)
            (s + 56).bindMemory(to: UInt32.self, capacity: 4).initialize(repeating: PageMeta.none, count: 4)
            (s + 72).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
            (s + 128).bindMemory(to: Int.self, capacity: VMEvent.count).initialize(repeating: 0, count: VMEvent.count)
        }
        return raw
    }
}
