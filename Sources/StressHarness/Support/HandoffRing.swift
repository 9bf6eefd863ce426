import Synchronization

/// A bounded single-producer, single-consumer ring in raw memory: how a
/// worker hands blocks to the worker that frees them (network buffers freed
/// on another CPU). One ring per (producer, consumer) pair.
///
/// Orderings: the producer's `.releasing` store of `tail` publishes the slot
/// it wrote and pairs with the consumer's `.acquiring` load of `tail`; the
/// consumer's `.releasing` store of `head` hands the slot back and pairs with
/// the producer's `.acquiring` load of `head`. `head` and `tail` sit on
/// separate cache lines.
///
/// Invariant: 0 <= tail - head <= capacity. Only the producer calls
/// `tryPush`, only the consumer `tryPop` (the owner may call both after both
/// threads stopped, at clean-up).
struct HandoffRing<Element> {
    let slots: UnsafeMutablePointer<Element>
    let mask: Int
    let indices: UnsafeMutableRawPointer

    var head: UnsafeMutablePointer<Atomic<Int>> { indices.assumingMemoryBound(to: Atomic<Int>.self) }
    var tail: UnsafeMutablePointer<Atomic<Int>> { (indices + 64).assumingMemoryBound(to: Atomic<Int>.self) }

    /// `capacity` is rounded up to a power of two.
    static func make(capacity: Int) -> HandoffRing {
        var cap = 1
        while cap < capacity { cap <<= 1 }
        let idx = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        idx.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (idx + 64).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        return HandoffRing(slots: .allocate(capacity: cap), mask: cap - 1, indices: idx)
    }

    var capacity: Int { mask + 1 }

    @inline(__always)
    func tryPush(_ e: Element) -> Bool {
        let t = tail.pointee.load(ordering: .relaxed)
        let h = head.pointee.load(ordering: .acquiring)
        if t &- h > mask { return false }
        (slots + (t & mask)).initialize(to: e)
        tail.pointee.store(t &+ 1, ordering: .releasing)
        return true
    }

    @inline(__always)
    func tryPop() -> Element? {
        let h = head.pointee.load(ordering: .relaxed)
        let t = tail.pointee.load(ordering: .acquiring)
        if h == t { return nil }
        let e = (slots + (h & mask)).move()
        head.pointee.store(h &+ 1, ordering: .releasing)
        return e
    }

    /// Elements in the ring now (exact when neither side runs).
    var count: Int { tail.pointee.load(ordering: .acquiring) &- head.pointee.load(ordering: .acquiring) }

    /// Frees the memory; the ring must be empty (Element is trivial here).
    func destroy() {
        slots.deallocate()
        indices.deallocate()
    }
}
