import CNUMA
import Foundation
import PageAllocator
import Synchronization

/// The run's verdict, worst first in severity order for exit codes.
public enum Verdict: String, Codable, Sendable, CaseIterable {
    /// `overloaded`: an open-loop worker fell behind its schedule by more
    /// than OpenLoopReport's bound, so its latencies measure queueing.
    case ok, failures, livelock, deadlock, overloaded

    public var exitStatus: ExitStatus {
        switch self {
        case .ok: return .ok
        case .failures: return .failures
        case .overloaded: return .overloaded
        case .livelock: return .livelock
        case .deadlock: return .deadlock
        }
    }
}

/// What the watchdog saw when it ended a run.
public struct WatchdogReport: Codable, Sendable, Equatable {
    public var verdict: Verdict
    /// Milliseconds without a completed allocation when it fired.
    public var stalledMs: Int
    /// The cycle of waits, as task ids, for a deadlock.
    public var cycle: [Int]
    /// One line per task: what it was doing.
    public var tasks: [String]
    /// One line per worker, as the harness saw it when the watchdog fired:
    /// its task, and whether it was inside an allocation call (and since when).
    public var workers: [String] = []
}

/// Notices livelock and deadlock without ever hanging the harness.
///
/// - Livelock: no allocation completed for `livelockAfterMs` while at least one
///   task waits in the allocator or on a lock.
/// - Deadlock: a cycle in the wait-for graph. Edges: a task waiting for lock L
///   points at L's holder; a task waiting for an OOM victim points at it; a
///   task looping in the allocator points at every pending victim (it cannot
///   progress until one exits) — so "allocator -> OOM victim -> lock held by
///   the allocator" is a cycle.
///
/// It polls every `pollMs` on its own pthread; `stop()` joins it.
public final class Watchdog: @unchecked Sendable {
    public struct Settings: Sendable, Equatable, Codable {
        public var livelockAfterMs: Int = 2000
        /// A cycle must persist this long before it is called a deadlock.
        public var deadlockAfterMs: Int = 500
        public var pollMs: Int = 20
        public init() {}
    }

    let allocator: PageAllocator
    let settings: Settings
    /// Completed allocations so far (the harness's counter).
    let progress: @Sendable () -> Int
    /// The holder (task id) of a named lock, if held.
    let lockHolder: @Sendable (Int) -> UInt16?
    /// Lock names for the report.
    let lockName: @Sendable (Int) -> String
    /// Called once when the watchdog fires (before it returns from its loop).
    let onFire: @Sendable (WatchdogReport) -> Void
    /// When the task's current allocation call started, as the harness saw it
    /// (the allocator restarts its own clock at every step of the slow path).
    let callStartNs: @Sendable (UInt16) -> UInt64?

    private let stopFlag = Atomic<Bool>(false)
    private let fired = Mutex<WatchdogReport?>(nil)
    private var thread: pthread_t? = nil

    public init(allocator: PageAllocator, settings: Settings = .init(),
                progress: @escaping @Sendable () -> Int,
                lockHolder: @escaping @Sendable (Int) -> UInt16? = { _ in nil },
                lockName: @escaping @Sendable (Int) -> String = { "lock\($0)" },
                onFire: @escaping @Sendable (WatchdogReport) -> Void = { _ in },
                callStartNs: @escaping @Sendable (UInt16) -> UInt64? = { _ in nil }) {
        self.callStartNs = callStartNs
        self.allocator = allocator
        self.settings = settings
        self.progress = progress
        self.lockHolder = lockHolder
        self.lockName = lockName
        self.onFire = onFire
    }

    /// The report, once the watchdog has fired.
    public var report: WatchdogReport? { fired.withLock { $0 } }

    public func start() {
        let ts = Threads.start(count: 1) { [self] _ in self.loop() }
        thread = ts.first
    }

    public func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if let t = thread { Threads.join([t]); thread = nil }
    }

    private func loop() {
        var lastProgress = progress()
        var lastChange = cnuma_monotonic_ns()
        var cycleSince: UInt64? = nil
        while !stopFlag.load(ordering: .relaxed) {
            sleepNanoseconds(UInt64(settings.pollMs) * 1_000_000)
            let now = cnuma_monotonic_ns()
            let p = progress()
            if p != lastProgress { lastProgress = p; lastChange = now }
            let tasks = allocator.taskSnapshots(aliveOnly: true)
            if let cycle = Watchdog.findCycle(tasks: tasks, lockHolder: lockHolder) {
                if cycleSince == nil { cycleSince = now }
                if now - cycleSince! >= UInt64(settings.deadlockAfterMs) * 1_000_000 {
                    fire(.deadlock, stalledNs: now - lastChange, cycle: cycle, tasks: tasks, now: now)
                    return
                }
            } else {
                cycleSince = nil
            }
            let waiting = tasks.contains { $0.activity != .running && $0.activity != .exited }
            if waiting && now - lastChange >= UInt64(settings.livelockAfterMs) * 1_000_000 {
                fire(.livelock, stalledNs: now - lastChange, cycle: [], tasks: tasks, now: now)
                return
            }
        }
    }

    private func fire(_ v: Verdict, stalledNs: UInt64, cycle: [UInt16], tasks: [TaskSnapshot], now: UInt64) {
        let lines = tasks.map { describe($0, now: now) }
        let r = WatchdogReport(verdict: v, stalledMs: Int(stalledNs / 1_000_000), cycle: cycle.map(Int.init), tasks: lines)
        fired.withLock { $0 = r }
        onFire(r)
    }

    /// One line per task, in the words of the issue: running; retrying in the
    /// allocator at order N with flags F for T ms; waiting for OOM victim V;
    /// waiting for lock L held by W.
    public func describe(_ t: TaskSnapshot, now: UInt64) -> String {
        var since = t.sinceNs
        if t.activity == .retryingInAllocator || t.activity == .waitingForOOMVictim || t.activity == .reclaimIO,
           let c = callStartNs(t.id), c > 0, c < since || since == 0 { since = c }
        let ms = since > 0 && now > since ? (now - since) / 1_000_000 : 0
        let who = "\(t.name) (task \(t.id)\(t.isVictim ? ", OOM victim" : ""))"
        switch t.activity {
        case .running: return "\(who): running"
        case .retryingInAllocator: return "\(who): retrying in the allocator at order \(t.order) with flags \(t.flags) for \(ms) ms"
        case .waitingForOOMVictim: return "\(who): waiting for OOM victim \(t.target) for \(ms) ms"
        case .waitingForLock:
            let holder = lockHolder(t.target).map { "task \($0)" } ?? "nobody"
            return "\(who): waiting for lock \(lockName(t.target)) held by \(holder) for \(ms) ms"
        case .reclaimIO: return "\(who): in reclaim I/O for \(ms) ms"
        case .exited: return "\(who): exited"
        }
    }

    /// A cycle in the wait-for graph of `tasks`, or nil.
    public static func findCycle(tasks: [TaskSnapshot], lockHolder: (Int) -> UInt16?) -> [UInt16]? {
        let alive = Dictionary(uniqueKeysWithValues: tasks.map { ($0.id, $0) })
        let pendingVictims = tasks.filter { $0.isVictim && !$0.skipped }.map(\.id)
        func edges(_ t: TaskSnapshot) -> [UInt16] {
            switch t.activity {
            case .waitingForLock: return lockHolder(t.target).map { [$0] } ?? []
            case .waitingForOOMVictim: return [UInt16(t.target)]
            case .retryingInAllocator: return pendingVictims.filter { $0 != t.id }
            default: return []
            }
        }
        var state: [UInt16: Int] = [:] // 1 on stack, 2 done
        var stack: [UInt16] = []
        func dfs(_ v: UInt16) -> [UInt16]? {
            state[v] = 1
            stack.append(v)
            if let t = alive[v] {
                for w in edges(t) where alive[w] != nil {
                    if state[w] == 1, let i = stack.firstIndex(of: w) { return Array(stack[i...]) }
                    if state[w] == nil, let c = dfs(w) { return c }
                }
            }
            stack.removeLast()
            state[v] = 2
            return nil
        }
        for t in tasks where state[t.id] == nil {
            if let c = dfs(t.id) { return c }
        }
        return nil
    }
}
