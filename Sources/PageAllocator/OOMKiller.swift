import CNUMA
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One OOM-killer decision, kept for the run's report.
public struct OOMEvent: Sendable, Equatable, Codable {
    public var atNs: UInt64
    public var victim: Int
    public var victimName: String
    public var badness: Int
    public var triggeredBy: Int
    public var order: Int
    public var flags: String
    public var kind: String // "kill", "reap", "victim-timeout"
    /// oom_kill.c's constraint when not CONSTRAINT_NONE: "CONSTRAINT_MEMORY_POLICY nodemask=1"
    /// (a bind policy's OOM; only tasks that may free memory on those nodes are eligible).
    public var constraint: String? = nil
}

/// oom_lock: a pthread mutex the allocator trylocks (or waits for, bounded).
final class OOMLock: @unchecked Sendable {
    let m: UnsafeMutablePointer<pthread_mutex_t>
    init() { m = .allocate(capacity: 1); pthread_mutex_init(m, nil) }
    deinit { pthread_mutex_destroy(m); m.deallocate() }
    func tryLock() -> Bool { pthread_mutex_trylock(m) == 0 }
    /// Waits at most `timeoutNs` for the lock.
    func lock(timeoutNs: UInt64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let d = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + timeoutNs
        var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
        return pthread_mutex_timedlock(m, &ts) == 0
    }
    func unlock() { pthread_mutex_unlock(m) }
}

enum OOMSelection { case killed(UInt16), victimPending(UInt16), noVictim }

extension PageAllocator {
    /// select_bad_process() + oom_kill_process(), oom_lock held. A live
    /// victim not yet skipped blocks new selections (the killer waits for it)
    /// unless victim_timeout_ms has passed, which skips it.
    ///
    /// constrained_alloc(): an allocation whose `nodemask` leaves out a node
    /// (a bind policy) is CONSTRAINT_MEMORY_POLICY: totalpages (for
    /// oom_score_adj) is the pages of the mask's nodes, and a task is eligible
    /// only when killing it can free memory there (oom_cpuset_eligible ->
    /// mempolicy_in_oom_domain): a task without a bind policy is, a task bound
    /// to nodes that do not intersect the mask is not.
    func selectAndKill(triggeredBy task: UInt16, order: Int, gfp: GFP, group: Int = 0, nodemask: NodeMask = .all) -> OOMSelection {
        let t = slow.tasks
        let now = Int(cnuma_monotonic_ns())
        var chosen: UInt16 = 0
        var best = Int.min
        let constrained = group == 0 && (0..<nodeCount).contains { !nodemask.contains($0) }
        let total = constrained ? (0..<zoneCount).filter { nodemask.contains(zones[$0].info.pointee.node) }
            .reduce(0) { $0 + zones[$1].info.pointee.managed } : totalPages
        for i in 1..<t.count {
            let id = UInt16(i)
            guard t.get(id, .state) == 1 else { continue }
            if group != 0 && t.get(id, .group) != group { continue } // a group OOM stays inside the group
            if constrained {
                let bound = UInt64(bitPattern: Int64(t.get(id, .bindMask)))
                if bound != 0 && bound & nodemask.bits == 0 { continue } // cannot free memory on the policy's nodes
            }
            if t.get(id, .victim) != 0 {
                if t.get(id, .skip) != 0 { continue }
                let timeout = slow.policy.victimTimeoutMs
                if timeout > 0 && now - t.get(id, .killedAt) > timeout * 1_000_000 {
                    t.set(id, .skip, 1)
                    slow.counters.bump(.oomVictimTimeout)
                    logOOM(kind: "victim-timeout", victim: id, badness: 0, by: task, order: order, gfp: gfp)
                    continue
                }
                return .victimPending(id)
            }
            guard let b = badness(id, totalPages: total) else { continue }
            if b > best { best = b; chosen = id }
        }
        guard chosen != 0 else {
            slow.counters.bump(.oomNoVictim)
            return .noVictim
        }
        t.set(chosen, .killedAt, now)
        t.field(chosen, .victim).pointee.store(1, ordering: .releasing) // pairs with taskShouldDie's acquire
        slow.counters.bump(.oomKill)
        // Formatted only for a kill (selections that wait on a victim or find none log no constraint).
        let constraint = constrained ? "CONSTRAINT_MEMORY_POLICY nodemask=\(NodeList.format((0..<nodeCount).filter { nodemask.contains($0) }.map { topology.number(of: $0) }))" : nil
        logOOM(kind: "kill", victim: chosen, badness: best, by: task, order: order, gfp: gfp, constraint: constraint)
        if slow.policy.reaper { slow.queueReap(chosen, atNs: UInt64(now) + UInt64(slow.policy.reaperDelayMs) * 1_000_000) }
        slow.oomWait.wakeAll() // a victim asleep on the queue must notice
        return .killed(chosen)
    }

    func logOOM(kind: String, victim: UInt16, badness: Int, by: UInt16, order: Int, gfp: GFP, constraint: String? = nil) {
        let name = slow.tasks.names.withLock { $0[victim] } ?? "task\(victim)"
        let e = OOMEvent(atNs: cnuma_monotonic_ns(), victim: Int(victim), victimName: name, badness: badness,
                         triggeredBy: Int(by), order: order, flags: gfp.description, kind: kind, constraint: constraint)
        slow.oomEvents.withLock { if $0.count < 1000 { $0.append(e) } }
    }

    /// The OOM killer's decisions so far (at most 1000).
    public func oomEvents() -> [OOMEvent] { slow.oomEvents.withLock { $0 } }

    /// oom_reap_task_mm(): frees the victim's anonymous memory and marks it
    /// skipped, so the next OOM can choose another victim.
    ///
    /// It holds oom_lock while it reaps, as kernels 4.8-4.18 did
    /// (`__oom_reap_task_mm`): otherwise an OOM killer whose last-second
    /// allocation attempt ran while the pages were still being freed could
    /// see the victim already skipped and kill a second task for nothing.
    /// It waits for the lock at most 1 s (the kernel: 10 tries, HZ/10 apart),
    /// then reaps anyway.
    func reap(_ id: UInt16) {
        let locked = slow.oomLock.lock(timeoutNs: 1_000_000_000)
        defer { if locked { slow.oomLock.unlock() } }
        let t = slow.tasks
        guard t.get(id, .state) == 1, t.get(id, .victim) != 0, t.get(id, .skip) == 0 else { return }
        let before = t.get(id, .anon)
        freeAnonPages(of: id)
        t.set(id, .skip, 1)
        slow.counters.bump(.oomReaped)
        slow.counters.bump(.oomReapedPages, before)
        logOOM(kind: "reap", victim: id, badness: before, by: 0, order: 0, gfp: [])
        slow.oomWait.wakeAll()
    }
}
