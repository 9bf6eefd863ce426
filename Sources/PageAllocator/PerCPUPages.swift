import Synchronization

/// One CPU's page cache for one zone (struct per_cpu_pages), a handle on
/// `stride` bytes of raw memory:
///
/// ```
///   0  owner word (Atomic<Int>): 0 free; see PageAllocator+PCPLock.swift
///   8  vmstat delta of NR_FREE_PAGES (Atomic<Int>), folded past the threshold
///  16  count, high, batch, high_min, high_max (Int)
///  56  list heads for orders 0...3 (UInt32, singly linked by PageMeta.next)
/// 128  counters[VMEvent.count] (Int), written only under this slot's lock
/// ```
/// Invariants: `count` is the pages on the four lists; every list member is a
/// `.pcp` head of that list's order. Slots are 384 bytes apart, so no two
/// CPUs share a cache line (or an adjacent-line prefetch pair).
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
            (s + 128).bindMemory(to: Int.self, capacity: VMEvent.count).initialize(repeating: 0, count: VMEvent.count)
        }
        return raw
    }
}
