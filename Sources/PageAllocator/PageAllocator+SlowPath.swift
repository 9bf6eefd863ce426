import CNUMA
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// One scheduler tick at HZ=250 (Debian's default): what a task sleeps when
/// oom_lock is held by someone else.
let tickNs: UInt64 = 4_000_000
/// MAX_RECLAIM_RETRIES.
let maxReclaimRetries = 16

extension PageAllocator {
    /// __alloc_pages_slowpath(), in the kernel's order:
    /// 0 fault injection (should_fail_alloc_page, done before the first pass
    /// in allocateGeneral); 1 wake kswapd, retry with MIN and the
    /// flags' reserve shares; 2 (costly orders: compaction, not modelled);
    /// then loop: task reserves (ALLOC_OOM / NO_WATERMARKS), give up if the
    /// caller cannot reclaim, direct reclaim (then drain the per-CPU lists),
    /// NORETRY / costly checks, the retry policy (should_reclaim_retry,
    /// legacy, retries=N), the OOM killer, and the NOFAIL loop.
    /// Every loop iteration is a safe point: a victim leaves with `.killed`,
    /// a shut-down allocator with `.aborted`, and max_stall_ms with `.timedOut`.
    @usableFromInline @inline(never)
    func allocSlowPath(order: Order, flags: GFP, preferredNode: Int, cpu: Int, owner: UInt16,
                       reserve: ReserveAccess, nodemask: NodeMask = .all) throws(AllocError) -> PageBlock {
        let type = ZoneType.highest(for: flags)
        let (list, count) = zonelist(node: preferredNode, type: type, thisNode: flags.contains(.thisNode))
        let allowed = { (i: Int) -> Bool in nodemask.contains(self.zones[Int(list[i])].info.pointee.node) }
        guard count > 0, (0..<count).contains(where: allowed) else { throw .noEligibleZone(flags: flags) }
        var largest = 0
        for i in 0..<count where allowed(i) { largest = max(largest, zones[Int(list[i])].info.pointee.managed) }
        guard order.pages <= largest else { throw .requestLargerThanArena(order: order.rawValue, largestZonePages: largest) }
        let first = zones[firstAllowedZone(list, count, nodemask)]
        first.bumpRare(.allocSlowpath)
        let o = order.rawValue
        let policy = slow.policy
        let costly = o > Order.costly
        let canReclaim = flags.allowsBlocking
        let nofail = flags.contains(.noFail)
        func get(_ level: WatermarkLevel, _ f: AllocFlags) -> PageBlock? {
            getPageFromFreelist(order: o, level: level, flags: f, list: list, count: count, classzone: type.rawValue,
                                cpu: cpu, owner: owner, reserve: reserve, nodemask: nodemask)
        }
        var nodes: [Int] = []
        for i in 0..<count where allowed(i) { let n = zones[Int(list[i])].info.pointee.node; if !nodes.contains(n) { nodes.append(n) } }
        func wakeAllKswapds() { if flags.contains(.kswapdReclaim) { for n in nodes { wakeKswapd(node: n) } } }

        // Step 0, fault injection, already ran in allocateGeneral (prepare_alloc_pages).

        // Step 1: gfp_to_alloc_flags(); wake kswapd; retry with MIN.
        var allocFlags = AllocFlags.from(gfp: flags, order: o)
        wakeAllKswapds()
        if let b = get(.min, allocFlags) { return b }

        // Step 2: costly orders would try direct compaction first (not modelled).

        let start = cnuma_monotonic_ns()
        var noProgressLoops = 0
        var oomRetries = 0
        var drained = false
        var loops = 0
        setTaskActivity(owner, .retryingInAllocator)
        if owner != 0 { slow.tasks.set(owner, .order, o); slow.tasks.set(owner, .flags, Int(flags.rawValue)) }
        defer { setTaskActivity(owner, .running) }

        while true {
            // Safe point.
            if slow.abort.load(ordering: .relaxed) { slow.counters.bump(.slowpathAborts); throw .aborted(order: o, flags: flags) }
            if policy.maxStallMs > 0 && cnuma_monotonic_ns() - start > UInt64(policy.maxStallMs) * 1_000_000 {
                slow.counters.bump(.slowpathTimeouts)
                throw .timedOut(order: o, flags: flags, milliseconds: policy.maxStallMs)
            }
            loops += 1
            if loops > 1 { sched_yield() } // cond_resched()
            wakeAllKswapds()

            // Reserves of the task: PF_MEMALLOC, an OOM victim (ALLOC_OOM).
            let victim = taskShouldDie(owner)
            var access = reserve
            if victim && access == .none && policy.oomVictimReserve { access = .oomVictim }
            let reserveFlags = access.reserveFlags(for: flags)
            if !reserveFlags.isEmpty { allocFlags = reserveFlags.union(allocFlags.intersection(.kswapd)) }
            if let b = get(.min, allocFlags) {
                if reserveFlags.contains(.oom) { slow.counters.bump(.oomReserveDips) }
                return b
            }
            if victim && !nofail {
                // The victim tried its reserves; it leaves here to die
                // (the kernel's `tsk_is_oom_victim() -> nopage`).
                slow.counters.bump(.oomVictimAborts)
                throw .killed(task: Int(owner))
            }
            // A victim's __GFP_NOFAIL allocation never fails: nopage sends it
            // round again (ALLOC_MIN_RESERVE, then retry) with its ALLOC_OOM
            // share, and it dies at its next safe point once it has the page.
            if victim && nofail && loops > 1, let b = get(.min, allocFlags.union(.minReserve)) { return b }

            // Step 3: no direct reclaim (GFP_ATOMIC, GFP_NOWAIT): fail now.
            guard canReclaim else { break }
            if reserve == .memalloc { break } // no recursion into reclaim

            // Step 4: direct reclaim, then drain the per-CPU lists once.
            let progress = directReclaim(nodes: nodes, gfp: flags, cpu: cpu, task: owner)
            setTaskActivity(owner, .retryingInAllocator)
            if let b = get(.min, allocFlags) { return b }
            if !drained {
                drained = true
                slow.counters.bump(.drainAll)
                if drainAllCPUs() > 0, let b = get(.min, allocFlags) { return b }
            }

            // Step 5: callers that asked not to try hard.
            if flags.contains(.noRetry) { break }
            if costly && !flags.contains(.retryMayFail) && !nofail { break }

            // Step 6: the retry policy.
            var retryReclaim: Bool
            switch policy.retry {
            case .legacy:
                // Pre-2015: reclaim progress means retry; small orders retry forever.
                retryReclaim = progress > 0
            case .kernel, .retries:
                retryReclaim = shouldReclaimRetry(order: o, allocFlags: allocFlags, progress: progress > 0,
                                                  noProgressLoops: &noProgressLoops, list: list, count: count, classzone: type.rawValue)
            }
            if retryReclaim { slow.counters.bump(.reclaimRetries); continue }

            // Step 7: the OOM killer.
            let oom = mayOOM(order: o, flags: flags, type: type, get: get, owner: owner, nodemask: nodemask)
            if let b = oom.block { return b }
            if oom.progress {
                oomRetries += 1
                slow.counters.bump(.oomRetries)
                if case .retries(let n) = policy.retry, o <= Order.costly, !nofail, oomRetries > n { break }
                noProgressLoops = 0
                continue
            }
            if case .legacy = policy.retry, o <= Order.costly, !flags.contains(.noRetry) { continue }

            // Step 8: NOFAIL never gives up: ALLOC_MIN_RESERVE, then loop.
            if nofail {
                if let b = get(.min, AllocFlags.minReserve) { return b }
                continue
            }
            break
        }
        // nopage: warn_alloc (rate limited, NOWARN respected, always counted).
        first.bumpRare(.allocFail)
        warnAlloc(owner: owner, cpu: cpu, order: o, gfp: flags, thisNode: flags.contains(.thisNode) ? preferredNode : nil)
        throw .outOfMemory(order: o, flags: flags)
    }

    /// should_reclaim_retry(): reset on progress (order <= 3), else count;
    /// after MAX_RECLAIM_RETRIES stop; otherwise retry while free + reclaimable,
    /// discounted by the loops so far, would pass MIN in some zone.
    func shouldReclaimRetry(order: Int, allocFlags: AllocFlags, progress: Bool, noProgressLoops: inout Int,
                            list: UnsafeMutablePointer<Int32>, count: Int, classzone: Int) -> Bool {
        if progress && order <= Order.costly { noProgressLoops = 0 } else { noProgressLoops += 1 }
        if noProgressLoops > maxReclaimRetries { return false }
        for i in 0..<count {
            let zone = zones[Int(list[i])]
            var available = reclaimable(zone: zone.info.pointee.index) + freePagesSnapshot(zone)
            available -= (noProgressLoops * available + maxReclaimRetries - 1) / maxReclaimRetries
            if PageAllocator.zoneWatermarkOK(free: available, order: order, mark: zone.info.pointee.wmarkMin,
                                             lowmemReserve: zone.lowmemReserve[classzone], flags: allocFlags, hasBlock: { zone.freeBlocks($0) > 0 }) {
                return true
            }
        }
        return false
    }

    /// __alloc_pages_may_oom() and out_of_memory(), with the policy's
    /// oom_lock, sync waiting, Weiner's killer reserve and NOFAIL's emergency
    /// reserve. Returns a block or whether to count it as progress.
    func mayOOM(order: Int, flags: GFP, type: ZoneType, get: (WatermarkLevel, AllocFlags) -> PageBlock?, owner: UInt16,
                nodemask: NodeMask = .all) -> (block: PageBlock?, progress: Bool) {
        let policy = slow.policy
        let locked = policy.oomLockTrylock ? slow.oomLock.tryLock() : slow.oomLock.lock(timeoutNs: 1_000_000_000)
        guard locked else {
            slow.counters.bump(.oomLockContended)
            sleepNanoseconds(tickNs)
            return (nil, true)
        }
        var waitFor: UInt16 = 0
        var killed = false
        var result: (PageBlock?, Bool) = (nil, false)
        oom: do {
            // One more pass at HIGH, to catch a parallel OOM kill.
            if let b = get(.high, []) { result = (b, true); break oom }
            if order > Order.costly { break oom }
            if flags.contains(.retryMayFail) || flags.contains(.thisNode) { break oom }
            if type < .normal { break oom } // lowmem OOM kills nobody
            var progress: Bool
            if taskShouldDie(owner) {
                progress = true // task_will_free_mem(current)
            } else if !flags.contains(.fs) {
                // The OOM killer does not compensate for IO-less reclaim.
                slow.counters.bump(.nofsNoKill)
                progress = true
            } else {
                switch selectAndKill(triggeredBy: owner, order: order, gfp: flags, nodemask: nodemask) {
                case .killed(let v): progress = true; killed = true; waitFor = v
                case .victimPending(let v): progress = true; waitFor = v
                case .noVictim: progress = false
                }
            }
            if flags.contains(.noFail) {
                progress = true
                if policy.nofailEmergencyReserve, let b = get(.min, .noWatermarks) {
                    slow.counters.bump(.nofailReserveDips)
                    result = (b, true)
                    break oom
                }
            }
            result = (nil, progress)
        }
        slow.oomLock.unlock()
        if result.0 != nil { return result }
        // Weiner: sleep on the victim's exit instead of polling.
        if waitFor != 0 && policy.oom == .sync { waitForVictim(waitFor, owner: owner) }
        // Weiner: the allocation that issued the kill may dip below MIN.
        if killed && policy.oomKillerReserve, let b = get(.min, .oom) {
            slow.counters.bump(.oomReserveDips)
            return (b, true)
        }
        return result
    }

    /// Sleeps on the OOM wait queue until `victim` exits or is skipped, the
    /// caller itself is chosen, the allocator shuts down, or the timeout.
    func waitForVictim(_ victim: UInt16, owner: UInt16) {
        let t = slow.tasks
        let deadline = cnuma_monotonic_ns() + UInt64(slow.policy.oomWaitTimeoutMs) * 1_000_000
        slow.counters.bump(.oomWaits)
        setTaskActivity(owner, .waitingForOOMVictim, target: Int(victim))
        defer { setTaskActivity(owner, .retryingInAllocator) }
        while true {
            let ticket = slow.oomWait.ticket
            if t.get(victim, .state) != 1 || t.get(victim, .skip) != 0 { return }
            if taskShouldDie(owner) || slow.abort.load(ordering: .relaxed) { return }
            let now = cnuma_monotonic_ns()
            if now >= deadline { slow.counters.bump(.oomWaitTimeouts); return }
            slow.oomWait.wait(after: ticket, timeoutNs: min(deadline - now, 50_000_000))
        }
    }

    /// get_page_from_freelist(): the one zonelist walk. The first pass of
    /// every allocation (LOW, no flags) and each retry of the slow path (MIN
    /// or HIGH, with the reserve shares of `flags`) come here. A zone is
    /// skipped when a policy's nodemask leaves out its node (the preferred
    /// zone is then the first allowed one, as first_zones_zonelist) or when
    /// its watermark at `level` does not pass (unless ALLOC_NO_WATERMARKS).
    ///
    /// Reservation credit, in this one place: only a transaction's
    /// allocation (`reserve == .transaction`) may count its task's
    /// reservation in the zone as free; any other allocation of the same
    /// task sees the raised watermark like everyone else.
    @usableFromInline
    func getPageFromFreelist(order: Int, level: WatermarkLevel, flags: AllocFlags, list: UnsafeMutablePointer<Int32>, count: Int,
                             classzone: Int, cpu: Int, owner: UInt16, reserve: ReserveAccess, nodemask: NodeMask = .all) -> PageBlock? {
        let masked = !nodemask.isAll
        let preferred = masked ? firstAllowedZone(list, count, nodemask) : Int(list[0])
        let transaction = reserve == .transaction
        for i in 0..<count {
            let zone = zones[Int(list[i])]
            if masked && !nodemask.contains(zone.info.pointee.node) { continue }
            if !flags.contains(.noWatermarks) {
                let credit = transaction ? reservationCredit(zone: Int(list[i]), owner: owner) : 0
                if !watermarkOK(zone, order: order, mark: mark(zone, level), classzone: classzone, flags: flags, credit: credit) { continue }
            }
            if let b = rmqueue(zone, order: order, cpu: cpu, preferredZone: preferred, owner: owner) { return b }
        }
        return nil
    }
}
