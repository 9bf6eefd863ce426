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
    let groupCount: Int
    /// Per worker, one cache line of atomics: progress (allocator calls) at
    /// +0, producing-done at +8, successful allocations at +16 (the
    /// watchdog's progress), the call sequence at +24 (odd while inside an
    /// allocation call: the stall tracker's view), the worker's current task
    /// id at +32, gone (killed for good: hand-offs to it are freed by the
    /// producer) at +40.
    private let slots: UnsafeMutableRawPointer
    /// Per worker group: the monotonic ns at which a level-3 failure stopped it (0: running).
    private let groupStops: UnsafeMutablePointer<Atomic<Int>>
    /// Lines workers print (the caller loop's "possible memory allocation deadlock").
    let sink: (@Sendable (String) -> Void)?
    let messages = Mutex<[String]>([])

    init(workers: Int, groups: Int = 1, sink: (@Sendable (String) -> Void)? = nil) {
        workerCount = workers
        groupCount = max(groups, 1)
        self.sink = sink
        slots = .allocate(byteCount: max(workers, 1) * 64, alignment: 64)
        for w in 0..<max(workers, 1) {
            for f in 0..<8 { (slots + w * 64 + f * 8).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0)) }
        }
        groupStops = .allocate(capacity: groupCount)
        for g in 0..<groupCount { (groupStops + g).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deallocate()
        groupStops.deallocate()
    }

    @inline(__always)
    func field(_ w: Int, _ offset: Int) -> UnsafeMutablePointer<Atomic<Int>> { (slots + (w &* 64 &+ offset)).assumingMemoryBound(to: Atomic<Int>.self) }
    @inline(__always) func successes(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 16) }
    @inline(__always) func callSeq(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 24) }
    @inline(__always) func task(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 32) }
    @inline(__always) func gone(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 40) }
    /// Written by the stall tracker: when it first saw the worker's current call (0: not in one).
    @inline(__always) func callSeenAt(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 48) }

    /// What the worker is doing outside allocation calls (WorkerPhase), for the watchdog's report.
    @inline(__always) func phase(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, 56) }

    /// When the current allocation call of task `id` was first seen, if it is in one.
    func callStart(task id: UInt16) -> UInt64? {
        for w in 0..<workerCount where task(w).pointee.load(ordering: .relaxed) == Int(id) {
            let t = callSeenAt(w).pointee.load(ordering: .relaxed)
            return t > 0 ? UInt64(t) : nil
        }
        return nil
    }

    /// Successful allocations so far, all workers (prefills included): the watchdog's progress.
    func totalSuccesses() -> Int { (0..<workerCount).reduce(0) { $0 + successes($1).pointee.load(ordering: .relaxed) } }

    /// A level-3 failure: the group stops, like a file system going read-only. Returns true for the first.
    @discardableResult
    func stopGroup(_ g: Int, atNs: Int) -> Bool {
        groupStops[g].compareExchange(expected: 0, desired: max(atNs, 1), ordering: .relaxed).exchanged
    }
    @inline(__always) func groupStopped(_ g: Int) -> Bool { groupStops[g].load(ordering: .relaxed) != 0 }
    func groupStopNs(_ g: Int) -> Int { groupStops[g].load(ordering: .relaxed) }

    /// Prints (through the sink) and keeps the first 200 lines.
    func message(_ line: String) {
        messages.withLock { if $0.count < 200 { $0.append(line) } }
        sink?(line)
    }

    @inline(__always)
    func progress(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { (slots + w &* 64).assumingMemoryBound(to: Atomic<Int>.self) }

    @inline(__always)
    func producingDone(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { (slots + (w &* 64 &+ 8)).assumingMemoryBound(to: Atomic<Int>.self) }

    /// Allocator calls so far, all workers (a racy sum, for progress lines).
    func totalProgress() -> Int {
        (0..<workerCount).reduce(0) { $0 + progress($1).pointee.load(ordering: .relaxed) }
    }
}
