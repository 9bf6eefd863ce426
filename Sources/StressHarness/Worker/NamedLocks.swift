import CNUMA
import Synchronization

/// The workload's named locks (a "journal lock"), one word each on its own
/// cache line: 0 when free, else the holding worker's index + 1, so a later
/// watchdog can tell who holds what.
///
/// `acquire` spins (test-and-test-and-set), yields the CPU every 64 failed
/// looks (workers can outnumber cores), and gives up when `shouldStop()`
/// says the run is over, so a wait is always bounded by the run's end.
/// Acquiring pairs with the `.releasing` store in `release`.
struct NamedLocks {
    let words: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        words = .allocate(byteCount: max(count, 1) * 64, alignment: 64)
        for i in 0..<max(count, 1) { (words + i * 64).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0)) }
    }

    @inline(__always)
    func word(_ i: Int) -> UnsafeMutablePointer<Atomic<Int>> { (words + i &* 64).assumingMemoryBound(to: Atomic<Int>.self) }

    @inline(__always)
    func tryAcquire(_ i: Int, worker: Int) -> Bool {
        word(i).pointee.compareExchange(expected: 0, desired: worker &+ 1, successOrdering: .acquiring, failureOrdering: .relaxed).exchanged
    }

    @inline(__always)
    func release(_ i: Int) { word(i).pointee.store(0, ordering: .releasing) }

    /// The holder's worker index, or nil.
    func holder(_ i: Int) -> Int? {
        let v = word(i).pointee.load(ordering: .relaxed)
        return v == 0 ? nil : v - 1
    }

    func destroy() { words.deallocate() }
}
