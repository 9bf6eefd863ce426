import CNUMA
import PageAllocator
import Synchronization

/// The blocks a replay holds: one slot per traced allocation (the pre-pass
/// numbers them), shared by every replay worker. This is the pfn -> block map
/// of the replay, resolved ahead of time: a free carries the slot of its
/// allocation, so no hashing and no lock is needed at replay time.
///
/// Protocol, per slot: exactly one worker allocates (the traced CPU of the
/// allocation) and at most one frees (the traced CPU of the free).
/// - `pending` -> `live`: the allocator writes the block, then stores `live`
///   with release ordering (pairs with the acquiring load in `state`).
/// - `pending` -> `failed`: the allocation failed in our allocator.
/// - `live` -> `freed`: the freeing worker, after an acquiring load saw `live`.
/// After all workers are joined, the main thread frees what is still `live`.
///
/// Unsafe code of the replay lives here and nowhere else.
final class ReplaySlots: @unchecked Sendable {
    static let pending: UInt8 = 0
    static let live: UInt8 = 1
    static let failed: UInt8 = 2
    static let freed: UInt8 = 3

    let count: Int
    private let states: UnsafeMutablePointer<Atomic<UInt8>>
    private let blocks: UnsafeMutablePointer<PageBlock>

    init(count: Int) {
        self.count = count
        states = .allocate(capacity: max(count, 1))
        for i in 0..<count { (states + i).initialize(to: Atomic(ReplaySlots.pending)) }
        blocks = .allocate(capacity: max(count, 1))
    }

    deinit {
        states.deinitialize(count: count)
        states.deallocate()
        blocks.deallocate()
    }

    /// Records the block of `slot` and makes it visible (release).
    @inline(__always)
    func publish(_ slot: Int, _ block: PageBlock) {
        precondition(slot >= 0 && slot < count)
        (blocks + slot).initialize(to: block)
        states[slot].store(ReplaySlots.live, ordering: .releasing)
    }

    /// The allocation of `slot` failed: wakes a waiting free (release).
    @inline(__always)
    func markFailed(_ slot: Int) {
        precondition(slot >= 0 && slot < count)
        states[slot].store(ReplaySlots.failed, ordering: .releasing)
    }

    /// The state of `slot` (acquire: pairs with `publish`/`markFailed`).
    @inline(__always)
    func state(_ slot: Int) -> UInt8 {
        precondition(slot >= 0 && slot < count)
        return states[slot].load(ordering: .acquiring)
    }

    /// Takes the block of a `live` slot and marks it freed. The caller saw
    /// `live` through `state` (or `waitForState`) and is the slot's only freer.
    @inline(__always)
    func take(_ slot: Int) -> PageBlock {
        precondition(slot >= 0 && slot < count)
        let b = blocks[slot]
        states[slot].store(ReplaySlots.freed, ordering: .relaxed)
        return b
    }

    /// Waits until `slot` leaves `pending`, or until `deadlineNs`
    /// (CLOCK_MONOTONIC); returns the state then (`pending` on timeout).
    /// Spins briefly, then yields, then sleeps 20 us at a time.
    func waitForState(_ slot: Int, deadlineNs: UInt64) -> UInt8 {
        var spins = 0
        while true {
            let s = state(slot)
            if s != ReplaySlots.pending { return s }
            spins &+= 1
            if spins < 64 {
                cnuma_cpu_relax()
            } else if spins < 256 {
                sched_yield()
            } else {
                if cnuma_monotonic_ns() >= deadlineNs { return ReplaySlots.pending }
                sleepNanoseconds(20_000)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// What the replay's watchdog watches: for each worker, the cycle count at
/// which its current `allocate` began (0: not inside the allocator), and how
/// many workers have finished. Relaxed atomics: the watchdog only needs to
/// see a stamp eventually, and it never acts on a stamp younger than its
/// timeout.
final class ReplayWatch: @unchecked Sendable {
    let count: Int
    private let since: UnsafeMutablePointer<Atomic<UInt64>>
    let finished = Atomic<Int>(0)

    init(workers: Int) {
        count = workers
        since = .allocate(capacity: max(workers, 1))
        for i in 0..<max(workers, 1) { (since + i).initialize(to: Atomic(0)) }
    }

    deinit {
        since.deinitialize(count: max(count, 1))
        since.deallocate()
    }

    @inline(__always) func enter(_ w: Int, at ticks: UInt64) { since[w].store(max(ticks, 1), ordering: .relaxed) }
    @inline(__always) func leave(_ w: Int) { since[w].store(0, ordering: .relaxed) }
    func entered(_ w: Int) -> UInt64 { since[w].load(ordering: .relaxed) }
}
