import CNUMA
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Everything the slow path shares: policy, tasks, LRUs, oom_lock and its
/// wait queue, kswapd and reaper threads, counters. A class held by `let`
/// in the allocator; never touched by the fast path.
///
/// Lock contract: every stored property is a `let` set in `init`. What they
/// point at protects itself: `policy`, `reclaim` are immutable values;
/// `tasks` (TaskTable), `groups` (GroupTable), `counters`, `zoneFile`,
/// `zoneAnon`, `swapUsed`, `kswapdPending`, `abort`, `stop` are atomics;
/// `lrus` each behind their node's LRU mutex (never held while taking a zone
/// lock or a per-CPU slot); `oomEvents`, `reapQueue`, `threads` behind their
/// `Mutex`; `oomLock` is the oom_lock itself; `oomWait`, `kswapdWake`,
/// `reapWake` are WaitQueues (their own mutex); `warnings` is a WarningLog
/// (its mutex); `injector` (FaultInjector) keeps its state in atomics.
final class SlowPathState: @unchecked Sendable {
    let policy: SlowPathPolicy
    let reclaim: ReclaimSettings
    let tasks = TaskTable()
    let counters = SlowPathCounters()
    let lrus: [NodeLRU]
    let zoneFile: UnsafeMutablePointer<Atomic<Int>>
    let zoneAnon: UnsafeMutablePointer<Atomic<Int>>
    let zoneCount: Int
    let swapUsed = Atomic<Int>(0)
    let oomLock = OOMLock()
    /// Woken when a victim exits or is reaped/skipped, and on every kill.
    let oomWait = WaitQueue()
    let oomEvents = Mutex<[OOMEvent]>([])
    /// Set by `shutdown()`: every slow-path loop throws `.aborted`.
    let abort = Atomic<Bool>(false)
    // Background threads.
    let stop = Atomic<Bool>(false)
    let kswapdWake: [WaitQueue]
    let kswapdPending: UnsafeMutablePointer<Atomic<Int>>
    let reapQueue = Mutex<[(UInt16, UInt64)]>([])
    let reapWake = WaitQueue()
    let threads = Mutex<[pthread_t]>([])
    let warnings: WarningLog
    let injector: FaultInjector?
    let groups: GroupTable

    init(policy: SlowPathPolicy, reclaim: ReclaimSettings, nodes: Int, zones: Int,
         faultInjection: FaultInjectionSettings, warnRatelimitMs: Int, warningSink: (@Sendable (String) -> Void)?,
         groups: [MemoryGroupSpec]) {
        self.groups = GroupTable(groups)
        self.policy = policy
        self.reclaim = reclaim
        warnings = WarningLog(ratelimitMs: warnRatelimitMs, sink: warningSink)
        injector = faultInjection.enabled ? FaultInjector(faultInjection) : nil
        lrus = (0..<nodes).map { _ in NodeLRU() }
        zoneCount = zones
        zoneFile = .allocate(capacity: zones)
        zoneAnon = .allocate(capacity: zones)
        for i in 0..<zones { (zoneFile + i).initialize(to: Atomic(0)); (zoneAnon + i).initialize(to: Atomic(0)) }
        kswapdWake = (0..<nodes).map { _ in WaitQueue() }
        kswapdPending = .allocate(capacity: nodes)
        for i in 0..<nodes { (kswapdPending + i).initialize(to: Atomic(0)) }
    }

    deinit {
        zoneFile.deallocate()
        zoneAnon.deallocate()
        kswapdPending.deallocate()
    }

    func queueReap(_ id: UInt16, atNs: UInt64) {
        reapQueue.withLock { $0.append((id, atNs)) }
        reapWake.wakeAll()
    }
}

private final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

extension PageAllocator {
    /// Starts one kswapd thread per node and the oom_reaper thread (when the
    /// policy enables it). Idempotent. `stopBackgroundThreads()` (or deinit
    /// of the harness) stops and joins them within about 100 ms.
    public func startBackgroundThreads() {
        let s = slow
        guard s.threads.withLock({ $0.isEmpty }) else { return }
        s.stop.store(false, ordering: .relaxed)
        var ts: [pthread_t] = []
        for n in 0..<nodeCount { ts.append(spawn { [unowned self] in self.kswapdMain(node: n) }) }
        if s.policy.reaper { ts.append(spawn { [unowned self] in self.reaperMain() }) }
        s.threads.withLock { $0 = ts }
    }

    /// Stops and joins kswapd and the reaper.
    public func stopBackgroundThreads() {
        let s = slow
        s.stop.store(true, ordering: .relaxed)
        for w in s.kswapdWake { w.wakeAll() }
        s.reapWake.wakeAll()
        let ts = s.threads.withLock { t in defer { t = [] }; return t }
        for t in ts { pthread_join(t, nil) }
    }

    /// Makes every allocation looping in the slow path give up with
    /// `.aborted` (the harness's watchdog ends a livelocked run this way),
    /// and wakes every sleeper. Not reversible.
    public func shutdown() {
        slow.abort.store(true, ordering: .relaxed)
        slow.oomWait.wakeAll()
        stopBackgroundThreads()
    }

    public var isShutDown: Bool { slow.abort.load(ordering: .relaxed) }

    private func spawn(_ body: @escaping () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return tid
    }

    /// wakeup_kswapd(): what the slow path calls for every node of its
    /// zonelist. Public for tests and tools; a no-op until
    /// `startBackgroundThreads()`.
    public func wakeKswapd(node: Int) {
        guard node >= 0 && node < nodeCount else { return }
        let s = slow
        guard s.threads.withLock({ !$0.isEmpty }) else { return }
        if s.kswapdPending[node].exchange(1, ordering: .relaxed) == 0 {
            s.counters.bump(.kswapdWakeups)
            s.kswapdWake[node].wakeAll()
        }
    }

    func nodeBelow(_ node: Int, _ level: WatermarkLevel) -> Bool {
        for i in 0..<zonesPerNode {
            let z = zones[node * zonesPerNode + i]
            if freePagesSnapshot(z) < mark(z, level) { return true }
        }
        return false
    }

    /// kswapd: sleeps until woken (or 100 ms), then reclaims with GFP_KERNEL
    /// until every zone of its node is above HIGH, giving up after 16 passes
    /// without progress (kswapd_failures).
    func kswapdMain(node: Int) {
        let s = slow
        let cpu = topology.homeCPU(of: node).rawValue
        while !s.stop.load(ordering: .relaxed) {
            let ticket = s.kswapdWake[node].ticket
            if s.kswapdPending[node].load(ordering: .relaxed) == 0 {
                s.kswapdWake[node].wait(after: ticket, timeoutNs: 100_000_000)
            }
            guard s.kswapdPending[node].exchange(0, ordering: .relaxed) != 0 || nodeBelow(node, .low) else { continue }
            var failures = 0
            while !s.stop.load(ordering: .relaxed) && nodeBelow(node, .high) && failures < 16 {
                let r = shrinkNode(node, target: s.reclaim.batch, gfp: .kernel, kswapd: true, cpu: cpu, task: 0)
                failures = r.reclaimed > 0 ? 0 : failures + 1
                if r.reclaimed == 0 { sched_yield() }
            }
        }
    }

    /// oom_reaper: reaps each queued victim once its delay has passed.
    func reaperMain() {
        let s = slow
        while !s.stop.load(ordering: .relaxed) {
            let ticket = s.reapWake.ticket
            let now = cnuma_monotonic_ns()
            let due = s.reapQueue.withLock { q -> [UInt16] in
                let d = q.filter { $0.1 <= now }.map(\.0)
                q.removeAll { $0.1 <= now }
                return d
            }
            for id in due { reap(id) }
            let next = s.reapQueue.withLock { $0.map(\.1).min() }
            let wait = next.map { $0 > now ? min($0 - now, 100_000_000) : 0 } ?? 100_000_000
            if wait > 0 { s.reapWake.wait(after: ticket, timeoutNs: wait) }
        }
    }
}
