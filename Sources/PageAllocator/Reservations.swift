import CNUMA
import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// A reservation (Chinner's proposal, never built in Linux): pages set
/// aside before a transaction by raising the zone's watermark for everyone
/// else. Allocations the owner makes with `reserve: .transaction` may use
/// them; `commit` (or `abort`) returns whatever is unused.
///
/// Lock contract (no lock is taken): the zone's reserved count
/// (`Zone.reserved`) is an atomic changed only by compare-and-swap, so two
/// reservations never take the same room; the watermark checks read it
/// relaxed (a check may see it a moment late, as it sees NR_FREE_PAGES). What
/// a task has left (`resvLeft`) and in which zone (`resvZone`) are TaskTable
/// atomics written by the task's own calls (reserve, the credited
/// allocations, commit, its exit) and read by anyone. The rule for who may use reserved pages lives
/// in one place: `getPageFromFreelist` (only `reserve: .transaction` calls).
/// A `Reservation` value is immutable.
public struct Reservation: Sendable, Hashable {
    public let owner: UInt16
    public let zone: Int
    public let pages: Int
    /// How long the reservation waited for room, in nanoseconds.
    public let waitedNs: UInt64
}

extension PageAllocator {
    /// Reserves `pages` in the highest zone of `node` (default: the CPU's
    /// node) for `owner`'s next transaction. If they do not fit above MIN,
    /// it wakes kswapd, reclaims directly and waits, for at most the policy's
    /// reservation_wait_ms, then fails with `.reservationTimeout`.
    /// One reservation per task at a time: reserving again adds to it.
    public func reserve(pages: Int, node: NodeID? = nil, owner: UInt16, cpu: CPUID? = nil) throws(AllocError) -> Reservation {
        guard slow.tasks.alive(owner) else { throw .reservationNeedsTask }
        let c = cpu?.rawValue ?? currentCPUIndex()
        guard c >= 0 && c < cpuCount else { throw .noSuchCPU(c, cpuCount: cpuCount) }
        let n = node?.rawValue ?? cpuNode[c]
        guard n >= 0 && n < nodeCount else { throw .noSuchNode(n, nodeCount: nodeCount) }
        let zi = n * zonesPerNode + zonesPerNode - 1
        let zone = zones[zi]
        let info = zone.info.pointee
        guard pages >= 1, pages <= info.managed - info.wmarkMin else {
            throw .reservationTooLarge(pages: pages, available: max(0, info.managed - info.wmarkMin))
        }
        let t = slow.tasks
        if t.get(owner, .resvLeft) > 0 && t.get(owner, .resvZone) != zi {
            throw .reservationActive(task: Int(owner))
        }
        let start = cnuma_monotonic_ns()
        let waitNs = UInt64(slow.policy.reservationWaitMs) * 1_000_000
        var waited = false
        while true {
            let held = zone.reserved.pointee.load(ordering: .relaxed)
            let room = freePagesSnapshot(zone) - held - info.wmarkMin
            if room >= pages {
                if zone.reserved.pointee.compareExchange(expected: held, desired: held + pages, ordering: .sequentiallyConsistent).exchanged {
                    // Less free memory for everyone else: the above-LOW flags go if the zone is now at its fast mark.
                    if zone.freePages.pointee.load(ordering: .sequentiallyConsistent) &- zone.reserved.pointee.load(ordering: .sequentiallyConsistent)
                        <= info.fastMark {
                        clearAboveLow(zone)
                    }
                    t.add(owner, .resvLeft, pages)
                    t.set(owner, .resvZone, zi)
                    let w = cnuma_monotonic_ns() - start
                    slow.counters.bump(.resvReserved, pages)
                    if waited {
                        slow.counters.bump(.resvWaits)
                        slow.counters.bump(.resvWaitNs, Int(w))
                        slow.counters.max(.resvWaitMaxNs, Int(w))
                    }
                    return Reservation(owner: owner, zone: zi, pages: pages, waitedNs: waited ? w : 0)
                }
                continue
            }
            if slow.abort.load(ordering: .relaxed) { throw .aborted(order: 0, flags: .kernel) }
            let elapsed = cnuma_monotonic_ns() - start
            if elapsed >= waitNs {
                slow.counters.bump(.resvTimeouts)
                throw .reservationTimeout(pages: pages, waitedMs: Int(elapsed / 1_000_000))
            }
            waited = true
            setTaskActivity(owner, .retryingInAllocator)
            wakeKswapd(node: n)
            if directReclaim(nodes: [n], gfp: .kernel, cpu: c, task: owner) == 0 {
                drainAllCPUs()
                sleepNanoseconds(min(tickNs, waitNs - elapsed))
            }
            setTaskActivity(owner, .running)
        }
    }

    /// Ends the owner's transaction: unused reserved pages go back.
    /// Returns the pages returned.
    @discardableResult
    public func commit(_ r: Reservation) -> Int {
        let t = slow.tasks
        guard t.valid(r.owner) else { return 0 }
        let left = t.field(r.owner, .resvLeft).pointee.exchange(0, ordering: .relaxed)
        if left > 0 {
            zones[r.zone].reserved.pointee.wrappingAdd(-left, ordering: .relaxed)
            slow.counters.bump(.resvReturned, left)
        }
        return left
    }

    /// Aborts the transaction: the same as `commit` for the reservation.
    @discardableResult
    public func abort(_ r: Reservation) -> Int { commit(r) }

    /// Pages the task may still take from its reservation in `zone`.
    @usableFromInline
    func reservationCredit(zone: Int, owner: UInt16) -> Int {
        let t = slow.tasks
        return t.get(owner, .resvZone) == zone ? t.get(owner, .resvLeft) : 0
    }

    /// After a transaction allocation in `zone`: the pages come out of the reservation.
    @usableFromInline
    func consumeReservation(zone: Int, owner: UInt16, pages: Int) {
        let t = slow.tasks
        guard t.valid(owner), t.get(owner, .resvZone) == zone else { return }
        let f = t.field(owner, .resvLeft)
        var left = f.pointee.load(ordering: .relaxed)
        while left > 0 {
            let take = min(left, pages)
            let (ok, cur) = f.pointee.compareExchange(expected: left, desired: left - take, ordering: .relaxed)
            if ok {
                zones[zone].reserved.pointee.wrappingAdd(-take, ordering: .relaxed)
                slow.counters.bump(.resvUsed, take)
                return
            }
            left = cur
        }
        slow.counters.bump(.resvOverrun, pages)
    }

    /// Pages held back by reservations in a zone.
    public func reservedPages(zone: Int) -> Int { zones[zone].reserved.pointee.load(ordering: .relaxed) }
}
