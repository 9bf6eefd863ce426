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
    // Protection: every field below is an atomic or written once in init.
    let stop = Atomic<Bool>(false)
    let ready = Atomic<Int>(0)
    let goTicks = Atomic<UInt64>(0)
    let stopped = Atomic<Int>(0)
    let cleanupGo = Atomic<Bool>(false)
    let exited = Atomic<Int>(0)
    let workerCount: Int
    let groupCount: Int
    /// Per worker, one slot of atomics (`Slot`): 128 bytes apart, so that
    /// a worker's stores (three per allocator call) never share a line, or
    /// an adjacent-line prefetch pair, with another worker's slot.
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
        slots = .allocate(byteCount: max(workers, 1) * Slot.stride, alignment: Slot.stride)
        for w in 0..<max(workers, 1) {
            for f in Slot.allCases { (slots + w * Slot.stride + f.offset).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0)) }
        }
        groupStops = .allocate(capacity: groupCount)
        for g in 0..<groupCount { (groupStops + g).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deallocate()
        groupStops.deallocate()
    }

    /// The fields of a worker's slot, one `Atomic<Int>` each; the offset of
    /// each is its index times 8. The slot is padded to `stride` bytes.
    enum Slot: Int, CaseIterable {
        /// Allocator calls so far (progress lines, the watchdog's report).
        case progress
        /// Stored `.releasing` after the worker's last push into a hand-off ring.
        case producingDone
        /// Successful allocations (the watchdog's progress).
        case successes
        /// The call sequence: odd while inside an allocation call (the stall tracker's view).
        case callSeq
        /// The worker's current task id (0: none).
        case task
        /// Killed for good: hand-offs to it are freed by the producer.
        case gone
        /// Written by the stall tracker: when it first saw the worker's current call (0: not in one).
        case callSeenAt
        /// What the worker is doing outside allocation calls (WorkerPhase), for the watchdog's report.
        case phase

        static let stride = 128
        @inline(__always) var offset: Int { rawValue &* 8 }
    }

    /// One field of worker `w`'s slot. Debug builds check the index.
    @inline(__always)
    func field(_ w: Int, _ f: Slot) -> UnsafeMutablePointer<Atomic<Int>> {
        assert(w >= 0 && w < max(workerCount, 1), "RunControl: worker \(w) of \(workerCount)")
        return (slots + (w &* Slot.stride &+ f.offset)).assumingMemoryBound(to: Atomic<Int>.self)
    }
    /// Worker `w`'s whole slot, which the worker keeps: its hot stores (three per
    /// allocator call) then go through one base pointer, with no reload of
    /// the slot array and no index arithmetic per store.
    func slot(_ w: Int) -> WorkerSlot {
        assert(w >= 0 && w < max(workerCount, 1), "RunControl: worker \(w) of \(workerCount)")
        return WorkerSlot(base: slots + w &* Slot.stride)
    }

    /// One worker's slot of `Slot` fields. Valid while the RunControl lives.
    struct WorkerSlot {
        let base: UnsafeMutableRawPointer
        @inline(__always) func field(_ f: Slot) -> UnsafeMutablePointer<Atomic<Int>> {
            (base + f.offset).assumingMemoryBound(to: Atomic<Int>.self)
        }
        @inline(__always) var progress: UnsafeMutablePointer<Atomic<Int>> { field(.progress) }
        @inline(__always) var producingDone: UnsafeMutablePointer<Atomic<Int>> { field(.producingDone) }
        @inline(__always) var successes: UnsafeMutablePointer<Atomic<Int>> { field(.successes) }
        @inline(__always) var callSeq: UnsafeMutablePointer<Atomic<Int>> { field(.callSeq) }
        @inline(__always) var task: UnsafeMutablePointer<Atomic<Int>> { field(.task) }
        @inline(__always) var gone: UnsafeMutablePointer<Atomic<Int>> { field(.gone) }
        @inline(__always) var phase: UnsafeMutablePointer<Atomic<Int>> { field(.phase) }
    }

    @inline(__always) func progress(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .progress) }
    @inline(__always) func producingDone(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .producingDone) }
    @inline(__always) func successes(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .successes) }
    @inline(__always) func callSeq(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .callSeq) }
    @inline(__always) func task(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .task) }
    @inline(__always) func gone(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .gone) }
    @inline(__always) func callSeenAt(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .callSeenAt) }
    @inline(__always) func phase(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> { field(w, .phase) }

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

    /// Allocator calls so far, all workers (a racy sum, for progress lines).
    func totalProgress() -> Int {
        (0..<workerCount).reduce(0) { $0 + progress($1).pointee.load(ordering: .relaxed) }
    }
}
