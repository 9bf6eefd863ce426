import Synchronization

/// State shared by the workers of one run and the main thread. Every wait on
/// it is bounded: workers check `stop` while they wait, and the main thread
/// gives up on workers after a deadline.
///
/// Orderings: `goTicks` is stored `.releasing` by the main thread after it
/// set everything up and loaded `.acquiring` by workers; `stopped`/`exited`
/// are incremented `.releasing` after a worker's last write of its output and
/// loaded `.acquiring` by the main thread before it reads the outputs; a
/// worker's producing-done flag is stored `.releasing` after its last push
/// into a hand-off ring and loaded `.acquiring` by its consumers, who then
/// see every pushed block. `stop` and progress are relaxed (hints).
final class RunControl: @unchecked Sendable {
    let stop = Atomic<Bool>(false)
    let ready = Atomic<Int>(0)
    let goTicks = Atomic<UInt64>(0)
    let stopped = Atomic<Int>(0)
    let cleanupGo = Atomic<Bool>(false)
    let exited = Atomic<Int>(0)
    let workerCount: Int
    /// Per worker, one cache line: progress (allocator calls) at +0, producing-done at +8.
    private let slots: UnsafeMutableRawPointer

    init(workers: Int) {
        workerCount = workers
        slots = .allocate(byteCount: max(workers, 1) * 64, alignment: 64)
        for w in 0..<max(workers, 1) {
            (slots + w * 64).bindMemory(to: Atomic<Int>.self, capacity: 2).initialize(to: Atomic(0))
            (slots + w * 64 + 8).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        }
    }

    deinit { slots.deallocate() }

    @inline(__always)
    func progress(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { (slots + w &* 64).assumingMemoryBound(to: Atomic<Int>.self) }

    @inline(__always)
    func producingDone(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { (slots + (w &* 64 &+ 8)).assumingMemoryBound(to: Atomic<Int>.self) }

    /// Allocator calls so far, all workers (a racy sum, for progress lines).
    func totalProgress() -> Int {
        (0..<workerCount).reduce(0) { $0 + progress($1).pointee.load(ordering: .relaxed) }
    }
}
