import CNUMA
import Synchronization

/// What a task is doing, as the watchdog sees it.
public enum TaskActivity: Int, Sendable, CustomStringConvertible {
    case running = 0
    /// Looping in the allocator's slow path (order, flags in the snapshot).
    case retryingInAllocator
    /// Sleeping on the OOM wait queue for a victim (target = victim task).
    case waitingForOOMVictim
    /// Waiting for a named lock (target = lock id, set by the harness).
    case waitingForLock
    /// Spending simulated I/O time in reclaim.
    case reclaimIO
    case exited
    public var description: String {
        ["running", "retrying in the allocator", "waiting for OOM victim", "waiting for lock", "reclaim I/O", "exited"][rawValue]
    }
}

/// One task as the OOM killer and the watchdog see it.
public struct TaskSnapshot: Sendable, Equatable {
    public var id: UInt16
    public var name: String
    public var alive: Bool
    public var isVictim: Bool
    public var skipped: Bool
    public var rss: Int
    public var anonPages: Int
    public var cachePages: Int
    public var swapEntries: Int
    public var oomScoreAdj: Int
    public var group: Int
    public var activity: TaskActivity
    public var sinceNs: UInt64
    public var order: Int
    public var flags: GFP
    public var target: Int
}

/// The task table: one 256-byte slot of atomics per task (ids
/// 1...65535; 0 means "no task"), in chunks of 4096 slots allocated as
/// tasks register, so an allocator with a few workers costs 1 MiB and a run
/// that kills and restarts tens of thousands of tasks still has ids. Written
/// by the task itself (rss, activity) and by the OOM killer (victim, skip);
/// read by anyone. Relaxed everywhere except the victim flag: `.releasing`
/// store in the killer pairs with the task's `.acquiring` load, so a victim
/// sees the kill before it looks for reserves. Ids are not reused: an id in
/// an OOM event, a wait or a watchdog report names one task for the whole run.
final class TaskTable: @unchecked Sendable {
    static let chunkShift = 12
    static let chunkTasks = 1 << chunkShift
    static let maxChunks = 16
    /// Ids 1...capacity-1 (UInt16).
    static let capacity = chunkTasks * maxChunks
    static let stride = 32 // atomics per slot (256 bytes)
    enum Field: Int {
        case state = 0 // 0 unused, 1 alive, 2 exited
        case victim, skip, rss, anon, cache, swap, adj, group, killedAt, activity, since, order, flags, target
        case resvLeft, resvZone
        /// The node mask (bits) of the task's bind policy, 0 for none (task->mempolicy, MPOL_BIND).
        case bindMask
    }
    /// Chunk pointers; chunk i is written before `limit` covers it.
    let chunks: UnsafeMutablePointer<UnsafeMutablePointer<Atomic<Int>>?>
    /// Ids below this have a slot (a multiple of chunkTasks).
    let limit = Atomic<Int>(0)
    let growLock = Mutex<Void>(())
    let next = Atomic<Int>(1)
    let names = Mutex<[UInt16: String]>([:])

    init() {
        chunks = .allocate(capacity: TaskTable.maxChunks)
        chunks.initialize(repeating: nil, count: TaskTable.maxChunks)
        _ = ensureSlot(for: 1)
    }
    deinit {
        for i in 0..<TaskTable.maxChunks { chunks[i]?.deallocate() }
        chunks.deallocate()
    }

    /// Allocates chunks until `id` has a slot. False beyond the capacity.
    func ensureSlot(for id: Int) -> Bool {
        guard id > 0 && id < TaskTable.capacity else { return false }
        if id < limit.load(ordering: .acquiring) { return true }
        growLock.withLock { _ in
            var have = limit.load(ordering: .relaxed)
            while id >= have {
                let n = TaskTable.chunkTasks * TaskTable.stride
                let c = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: n)
                for i in 0..<n { (c + i).initialize(to: Atomic(0)) }
                chunks[have >> TaskTable.chunkShift] = c
                have += TaskTable.chunkTasks
                limit.store(have, ordering: .releasing)
            }
        }
        return true
    }

    @inline(__always) func field(_ id: UInt16, _ f: Field) -> UnsafeMutablePointer<Atomic<Int>> {
        let i = Int(id)
        return chunks[i &>> TaskTable.chunkShift].unsafelyUnwrapped + (i & (TaskTable.chunkTasks - 1)) * TaskTable.stride + f.rawValue
    }
    /// Whether `id` names a slot of the table (owner tags may be any UInt16;
    /// only registered ids are tasks).
    @inline(__always) func valid(_ id: UInt16) -> Bool { id != 0 && Int(id) < limit.load(ordering: .acquiring) }
    @inline(__always) func get(_ id: UInt16, _ f: Field) -> Int { valid(id) ? field(id, f).pointee.load(ordering: .relaxed) : 0 }
    @inline(__always) func set(_ id: UInt16, _ f: Field, _ v: Int) { if valid(id) { field(id, f).pointee.store(v, ordering: .relaxed) } }
    @inline(__always) func add(_ id: UInt16, _ f: Field, _ v: Int) { if valid(id) { field(id, f).pointee.wrappingAdd(v, ordering: .relaxed) } }
    /// A registered, live task.
    func alive(_ id: UInt16) -> Bool { get(id, .state) == 1 }
    /// One past the highest id handed out (ids 1..<count).
    var count: Int { min(next.load(ordering: .relaxed), TaskTable.capacity) }
}

extension PageAllocator {
    /// Registers a task (a worker) for the OOM killer and the watchdog.
    /// `oomScoreAdj` -1000 makes it exempt; `group` is a memory group id
    /// (1...memoryGroups.count) or 0 for none. Returns its id (the `owner` to
    /// pass to allocate), or nil when the table is full or the group unknown.
    public func registerTask(name: String, oomScoreAdj: Int = 0, group: Int = 0) -> UInt16? {
        guard group >= 0 && group <= slow.groups.specs.count else { return nil }
        let t = slow.tasks
        let id = t.next.wrappingAdd(1, ordering: .relaxed).oldValue
        guard t.ensureSlot(for: id) else { return nil }
        let tid = UInt16(id)
        for f in 0..<TaskTable.stride { (t.field(tid, .state) + f).pointee.store(0, ordering: .relaxed) }
        t.set(tid, .adj, min(max(oomScoreAdj, -1000), 1000))
        t.set(tid, .group, group)
        t.set(tid, .state, 1)
        t.names.withLock { $0[tid] = name }
        return tid
    }

    /// Has the OOM killer chosen this task? Its next safe point should free
    /// everything it holds and call `taskExited`.
    public func taskShouldDie(_ id: UInt16) -> Bool {
        slow.tasks.valid(id) && slow.tasks.field(id, .victim).pointee.load(ordering: .acquiring) != 0
    }

    /// Publishes the pages a task holds outside the allocator's LRUs (its RSS for badness).
    public func setTaskRSS(_ id: UInt16, pages: Int) { if id != 0 { slow.tasks.set(id, .rss, pages) } }

    /// Publishes what a task waits for (the harness reports lock waits here).
    public func setTaskActivity(_ id: UInt16, _ a: TaskActivity, target: Int = 0) {
        guard id != 0 else { return }
        let t = slow.tasks
        t.set(id, .target, target)
        t.set(id, .since, Int(cnuma_monotonic_ns()))
        t.set(id, .activity, a.rawValue)
    }

    /// The task has freed what it holds and exits: its anonymous pages are
    /// freed, its page cache is uncharged (file pages outlive tasks), and
    /// anyone waiting on an OOM victim is woken.
    public func taskExited(_ id: UInt16) {
        guard slow.tasks.alive(id) else { return }
        freeAnonPages(of: id)
        let t = slow.tasks
        t.set(id, .rss, 0)
        t.set(id, .state, 2)
        t.set(id, .activity, TaskActivity.exited.rawValue)
        uncharge(id)
        if t.get(id, .resvLeft) > 0 {
            let z = t.get(id, .resvZone)
            let left = t.field(id, .resvLeft).pointee.exchange(0, ordering: .relaxed)
            zones[z].reserved.pointee.wrappingAdd(-left, ordering: .relaxed)
            slow.counters.bump(.resvReturned, left)
        }
        slow.oomWait.wakeAll()
    }

    /// Every registered task, or only the live ones (what the watchdog
    /// polls: a run may have registered tens of thousands).
    public func taskSnapshots(aliveOnly: Bool = false) -> [TaskSnapshot] {
        let t = slow.tasks
        let names = t.names.withLock { $0 }
        return (1..<t.count).compactMap { i -> TaskSnapshot? in
            let id = UInt16(i)
            if aliveOnly && t.get(id, .state) != 1 { return nil }
            return TaskSnapshot(
                id: id, name: names[id] ?? "task\(i)", alive: t.get(id, .state) == 1, isVictim: t.get(id, .victim) != 0,
                skipped: t.get(id, .skip) != 0, rss: t.get(id, .rss), anonPages: t.get(id, .anon), cachePages: t.get(id, .cache),
                swapEntries: t.get(id, .swap), oomScoreAdj: t.get(id, .adj), group: t.get(id, .group),
                activity: TaskActivity(rawValue: t.get(id, .activity)) ?? .running, sinceNs: UInt64(t.get(id, .since)),
                order: t.get(id, .order), flags: GFP(rawValue: UInt32(truncatingIfNeeded: t.get(id, .flags))), target: t.get(id, .target))
        }
    }

    /// oom_badness(): rss + swap + anon + page cache charged, plus
    /// adj * totalpages / 1000 (`total`: every zone's pages, or those of the
    /// policy's nodes under CONSTRAINT_MEMORY_POLICY); nil for exempt (-1000)
    /// or dead tasks.
    func badness(_ id: UInt16, totalPages total: Int? = nil) -> Int? {
        let t = slow.tasks
        guard t.get(id, .state) == 1 else { return nil }
        let adj = t.get(id, .adj)
        guard adj != -1000 else { return nil }
        let points = t.get(id, .rss) + t.get(id, .swap) + t.get(id, .anon) + t.get(id, .cache)
        return points + adj * ((total ?? totalPages) / 1000)
    }
}
