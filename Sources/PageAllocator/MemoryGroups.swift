import CNUMA
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A memory group (a memory cgroup): tasks in it are charged for every page
/// they allocate, up to `limitPages`.
public struct MemoryGroupSpec: Sendable, Equatable, Codable {
    public var name: String
    public var limitPages: Int
    public init(name: String, limitPages: Int) { self.name = name; self.limitPages = limitPages }
}

/// Per-group counters, as memory.stat/memory.events name them where they can.
public struct MemoryGroupStats: Sendable, Equatable, Codable {
    public var id: Int
    public var name: String
    public var limitPages: Int
    public var usagePages: Int
    public var maxUsagePages: Int
    /// Charges that failed (memory.failcnt).
    public var failcnt: Int
    /// Times a charge hit the limit (memory.events max).
    public var maxEvents: Int
    /// Pages reclaimed from inside the group to make room.
    public var reclaimedPages: Int
    /// OOM kills inside the group (memory.events oom_kill).
    public var oomKills: Int
}

/// Group state: atomics in a flat array, 8 per group.
final class GroupTable: @unchecked Sendable {
    enum F: Int { case usage = 0, limit, maxUsage, failcnt, maxEvents, reclaimed, oomKills }
    let specs: [MemoryGroupSpec]
    let cells: UnsafeMutablePointer<Atomic<Int>>
    init(_ specs: [MemoryGroupSpec]) {
        self.specs = specs
        let n = (specs.count + 1) * 8
        cells = .allocate(capacity: n)
        for i in 0..<n { (cells + i).initialize(to: Atomic(0)) }
        for (i, s) in specs.enumerated() { cells[(i + 1) * 8 + F.limit.rawValue].store(s.limitPages, ordering: .relaxed) }
    }
    deinit { cells.deallocate() }
    @inline(__always) func cell(_ g: Int, _ f: F) -> UnsafeMutablePointer<Atomic<Int>> { cells + g * 8 + f.rawValue }
    func get(_ g: Int, _ f: F) -> Int { cell(g, f).pointee.load(ordering: .relaxed) }
    func add(_ g: Int, _ f: F, _ v: Int) { cell(g, f).pointee.wrappingAdd(v, ordering: .relaxed) }
}

extension PageAllocator {
    /// Counters of every memory group (ids 1...n).
    public func memoryGroupStats() -> [MemoryGroupStats] {
        let g = slow.groups
        return g.specs.enumerated().map { i, s in
            let id = i + 1
            return MemoryGroupStats(id: id, name: s.name, limitPages: s.limitPages, usagePages: g.get(id, .usage),
                                    maxUsagePages: g.get(id, .maxUsage), failcnt: g.get(id, .failcnt), maxEvents: g.get(id, .maxEvents),
                                    reclaimedPages: g.get(id, .reclaimed), oomKills: g.get(id, .oomKills))
        }
    }

    @inline(__always) func group(of task: UInt16) -> Int {
        task == 0 || task == PageMeta.freedMark ? 0 : slow.tasks.get(task, .group)
    }

    func unchargeGroup(task: UInt16, pages: Int) {
        let g = group(of: task)
        if g != 0 { slow.groups.add(g, .usage, -pages) }
    }

    /// try_charge(): charges `pages` to the task's group. Over the limit it
    /// reclaims inside the group (what the flags allow), then OOM-kills inside
    /// the group only (a group OOM kills even for GFP_NOFS), bounded like the
    /// slow path. NOFAIL charges are forced over the limit as a last resort.
    func chargeGroup(task: UInt16, pages: Int, order: Int, flags: GFP, cpu: Int) throws(AllocError) -> Int {
        let g = group(of: task)
        guard g != 0 else { return 0 }
        let gt = slow.groups
        let limit = gt.get(g, .limit)
        let start = cnuma_monotonic_ns()
        var noProgress = 0
        var oomRetries = 0
        var hitLimit = false
        while true {
            let u = gt.get(g, .usage)
            if u + pages <= limit {
                if gt.cell(g, .usage).pointee.compareExchange(expected: u, desired: u + pages, ordering: .relaxed).exchanged {
                    var m = gt.get(g, .maxUsage)
                    while u + pages > m, !gt.cell(g, .maxUsage).pointee.compareExchange(expected: m, desired: u + pages, ordering: .relaxed).exchanged {
                        m = gt.get(g, .maxUsage)
                    }
                    return g
                }
                continue
            }
            if !hitLimit { hitLimit = true; gt.add(g, .maxEvents, 1) }
            func force() -> Int { gt.add(g, .usage, pages); return g }
            if slow.abort.load(ordering: .relaxed) { throw .aborted(order: order, flags: flags) }
            if slow.policy.maxStallMs > 0 && cnuma_monotonic_ns() - start > UInt64(slow.policy.maxStallMs) * 1_000_000 {
                gt.add(g, .failcnt, 1)
                throw .timedOut(order: order, flags: flags, milliseconds: slow.policy.maxStallMs)
            }
            if taskShouldDie(task) { if flags.contains(.noFail) { return force() }; throw .killed(task: Int(task)) }
            guard flags.allowsBlocking else {
                gt.add(g, .failcnt, 1)
                throw .groupLimit(group: g, order: order, flags: flags)
            }
            // Reclaim inside the group.
            var reclaimed = 0
            for n in 0..<nodeCount {
                reclaimed += shrinkNode(n, target: max(pages, slow.reclaim.batch), gfp: flags, kswapd: false, cpu: cpu, task: task, group: g).reclaimed
            }
            if reclaimed > 0 {
                gt.add(g, .reclaimed, reclaimed)
                noProgress = 0
                continue
            }
            noProgress += 1
            if noProgress <= maxReclaimRetries { sched_yield(); continue }
            if flags.contains(.noRetry) || flags.contains(.retryMayFail) || order > Order.costly {
                if flags.contains(.noFail) { return force() }
                gt.add(g, .failcnt, 1)
                throw .groupLimit(group: g, order: order, flags: flags)
            }
            // Group OOM.
            var waitFor: UInt16 = 0
            var progress = false
            if slow.oomLock.tryLock() {
                switch selectAndKill(triggeredBy: task, order: order, gfp: flags, group: g) {
                case .killed(let v): progress = true; waitFor = v; gt.add(g, .oomKills, 1)
                case .victimPending(let v): progress = true; waitFor = v
                case .noVictim: progress = false
                }
                slow.oomLock.unlock()
            } else {
                slow.counters.bump(.oomLockContended)
                sleepNanoseconds(tickNs)
                progress = true
            }
            if !progress {
                if flags.contains(.noFail) { return force() }
                gt.add(g, .failcnt, 1)
                throw .groupLimit(group: g, order: order, flags: flags)
            }
            oomRetries += 1
            if case .retries(let n) = slow.policy.retry, oomRetries > n, !flags.contains(.noFail) {
                gt.add(g, .failcnt, 1)
                throw .groupLimit(group: g, order: order, flags: flags)
            }
            if waitFor != 0 && slow.policy.oom == .sync { waitForVictim(waitFor, owner: task) } else { sched_yield() }
            noProgress = 0
        }
    }
}
