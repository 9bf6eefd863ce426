import CNUMA
import Synchronization

/// A test-and-test-and-set spinlock over one `Atomic<Int>` in raw memory.
///
/// Acquire pairs with the `.releasing` store in `unlock()`. With more threads
/// than cores a holder can be preempted, so `lock()` yields after a bounded
/// spin instead of burning its time slice.
@frozen @usableFromInline struct RawSpinLock {
    @usableFromInline let word: UnsafeMutablePointer<Atomic<Int>>

    @inlinable init(_ word: UnsafeMutablePointer<Atomic<Int>>) { self.word = word }

    /// One attempt. Acquiring on success.
    @inlinable @inline(__always)
    func tryLock() -> Bool {
        word.pointee.compareExchange(expected: 0, desired: 1, successOrdering: .acquiring, failureOrdering: .relaxed).exchanged
    }

    /// One attempt for a word that only ever holds 0 or 1 (a per-CPU slot in
    /// pcp_lock = trylock mode: its tryLock, lock and unlock store nothing
    /// else): an atomic or of 1, taken when the old value was 0. x86-64
    /// compiles it to one `lock bts` and a branch (cmpxchg needs two more
    /// instructions to set up). Acquiring on success; a failed attempt
    /// changes nothing (the word was already 1).
    @inlinable @inline(__always)
    func tryLockBit() -> Bool {
        word.pointee.bitwiseOr(1, ordering: .acquiring).oldValue & 1 == 0
    }

    /// Spins (TTAS), yielding the CPU every 64 failed looks. Returns whether
    /// the first attempt failed (contention).
    @inlinable @discardableResult
    func lock() -> Bool {
        if tryLock() { return false }
        lockContended()
        return true
    }

    @usableFromInline @inline(never)
    func lockContended() {
        var spins = 0
        while true {
            while word.pointee.load(ordering: .relaxed) != 0 {
                spins &+= 1
                if spins & 63 == 0 { sched_yield() } else { cnuma_cpu_relax() }
            }
            if tryLock() { return }
        }
    }

    /// Releasing: publishes everything written under the lock.
    @inlinable @inline(__always)
    func unlock() { word.pointee.store(0, ordering: .releasing) }

    @inlinable var isLocked: Bool { word.pointee.load(ordering: .relaxed) != 0 }
}

#if canImport(Glibc)
import Glibc
#endif
