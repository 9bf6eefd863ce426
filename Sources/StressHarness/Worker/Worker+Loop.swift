import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// The loop: draws operations until the deadline, the op count or a stop request; housekeeping; the time series.
extension Worker {

    /// Runs until the deadline, the op count, or a stop request.
    @inline(never)
    mutating func run(go: UInt64) {
        setPhase(.running)
        defer { setPhase(record.dead ? .gone : .finished) }
        runStart = go
        warmupEnd = go &+ timing.warmupTicks
        if timing.warmupTicks == 0 { startMeasuring(go) }
        let open = timing.intervalTicks > 0
        let hkMask = open ? 0 : 63
        var n = 0
        while true {
            if (n & hkMask == 0 || c.draws >= opsLimit) && housekeeping() { break }
            // Safe point: between operations.
            if pendingDeath || backend.taskShouldDie(owner) {
                die()
                if record.dead { record.stopReason = .killed; break }
            }
            if aborted { record.stopReason = .aborted; break }
            if groupStopped { stopGroupWorker(); break }
            if loopAbandoned { record.stopReason = control.stop.load(ordering: .relaxed) ? .stopped : .duration; break }
            n &+= 1
            var intended: UInt64 = 0
            if open {
                intended = pace()
                if stallPending { injectStall(intended) }
            }
            let opi = mem.opTable.n == 1 ? mem.opTable.single : mem.opTable.draw(rng.next())
            let op = mem.ops + opi
            var timed = open || timing.sampleMask == 0
            if !timed {
                if sampleCountdown == 0 {
                    timed = true
                    sampleCountdown = Int(truncatingIfNeeded: rng.next().multipliedFullWidth(by: timing.sampleMask &<< 1 | 1).high)
                } else {
                    sampleCountdown &-= 1
                }
            }
            if op.pointee.kind == .alloc {
                // The common case, written out here so that it is compiled into
                // the loop (a call costs ~15 instructions per op of spills and
                // register saves): one allocation, no lock, no reservation.
                if op.pointee.count == 1 && op.pointee.lockIndex < 0 && op.pointee.reserve == 0 {
                    if let h = allocOne(op, timed: timed, start: intended) {
                        // Alloc+free at once, freed here: no call into the lifetime machinery.
                        if op.pointee.lifetime == .immediate && op.pointee.ring < 0 { freeLocal(h, timed: timed) } else { dispose(op, h, timed: timed) }
                    }
                } else {
                    transaction(op, timed: timed, intended: intended)
                }
                c.draws &+= 1
                mem.opDraws[opi] &+= 1
            } else {
                let freed = consume(max: op.pointee.limit, timed: timed, intended: intended)
                if freed > 0 {
                    c.draws &+= 1
                    mem.opDraws[opi] &+= 1
                    emptyStreak = 0
                } else {
                    c.consumeEmpty &+= 1
                    emptyStreak &+= 1
                    if emptyStreak & 15 == 0 { sched_yield() }
                }
            }
        }
        if record.stopReason == .ops { drainUntilProducersDone() }
        publishRSS()
        record.loopEnd = now()
        record.usageEnd = ThreadUsage.now()
        creditBuckets(record.loopEnd)
        slot.progress.pointee.store(c.calls, ordering: .relaxed)
    }

    mutating func startMeasuring(_ t: UInt64) {
        record.measuring = true
        record.measureStart = t
        record.usageStart = ThreadUsage.now()
        // Forget the warm-up, except what went wrong in it.
        let corruptions = c.corruptions, freeErrors = c.freeErrors
        c = WorkerCounters()
        c.corruptions = corruptions
        c.freeErrors = freeErrors
        for i in 0..<mem.classCount { mem.hist[i].reset(); mem.classCalls[i] = 0 }
        mem.classFailures.update(repeating: 0, count: max(mem.classCount, 1) * ClassFailureIndex.levels)
        mem.opDraws.update(repeating: 0, count: mem.opCount)
        for l in 0..<max(locksCount, 1) { mem.lockStats[l] = LockCounters() }
        creditedCalls = 0
        creditedFailures = 0
        creditedAllocs = 0
        if timing.opsMode == false { deadline = t &+ timing.durationTicks } else { opsLimit = timing.opsTarget }
    }

    var locksCount: Int { locks.count }

    /// Every 64 operations (every one in open loop): the clock, the stop
    /// flag, warm-up, the time series, progress and the op count. Returns
    /// true when the loop must end.
    @inline(never)
    mutating func housekeeping() -> Bool {
        let t = now()
        if control.stop.load(ordering: .relaxed) { record.stopReason = .stopped; return true }
        // A timed run measures every worker over the same window, from the
        // end of the warm-up, even one that was off the CPU when it ended (a
        // few calls of its own after warmupEnd count as warm-up). An op-count
        // run measures each worker's own operations from when it starts them.
        if !record.measuring && t >= warmupEnd { startMeasuring(timing.opsMode ? t : warmupEnd) }
        slot.progress.pointee.store(c.calls, ordering: .relaxed)
        publishRSS()
        if control.groupStopped(group) { groupStopped = true }
        guard record.measuring else { return false }
        creditBuckets(t)
        if !timing.opsMode {
            if t >= deadline { record.stopReason = .duration; return true }
            return false
        }
        if !producingDone && c.draws >= timing.opsTarget {
            producingDone = true
            slot.producingDone.pointee.store(1, ordering: .releasing)
            record.stopReason = .ops
            return true
        }
        if consumeOnly && allProducersDone() && inboxEmpty() {
            producingDone = true
            slot.producingDone.pointee.store(1, ordering: .releasing)
            record.stopReason = .ops
            return true
        }
        return false
    }

    mutating func creditBuckets(_ t: UInt64) {
        guard record.measuring, t >= record.measureStart else { return }
        var i = Int((t &- record.measureStart) / max(timing.bucketTicks, 1))
        if i >= timing.maxBuckets { i = timing.maxBuckets - 1 }
        if i >= record.buckets.count {
            record.buckets.append(contentsOf: repeatElement(0, count: i + 1 - record.buckets.count))
            record.failureBuckets.append(contentsOf: repeatElement(0, count: i + 1 - record.failureBuckets.count))
            record.allocBuckets.append(contentsOf: repeatElement(0, count: i + 1 - record.allocBuckets.count))
        }
        record.buckets[i] &+= UInt64(c.calls &- creditedCalls)
        record.failureBuckets[i] &+= UInt64(c.failures &- creditedFailures)
        record.allocBuckets[i] &+= UInt64(c.allocs &- creditedAllocs)
        creditedCalls = c.calls
        creditedFailures = c.failures
        creditedAllocs = c.allocs
    }

    func allProducersDone() -> Bool {
        for i in 0..<mem.producerCount where control.producingDone(mem.producers[i]).pointee.load(ordering: .acquiring) == 0 { return false }
        return true
    }

    func inboxEmpty() -> Bool {
        for i in 0..<mem.inboundCount where rings[mem.inbound[i]].count > 0 { return false }
        return true
    }

    /// Op-count runs: after its own operations, a worker that receives blocks
    /// keeps freeing them until every producer is done and its rings are empty.
    mutating func drainUntilProducersDone() {
        guard mem.inboundCount > 0 else { return }
        var idle = 0
        while true {
            if allProducersDone() && inboxEmpty() { return }
            if control.stop.load(ordering: .relaxed) { record.stopReason = .stopped; return }
            let timed = timing.sampleMask == 0 || rng.next() & timing.sampleMask == 0
            if consume(max: 64, timed: timed, intended: 0) == 0 {
                idle &+= 1
                if idle & 7 == 0 { sched_yield() } else { cnuma_cpu_relax() }
            }
            if idle & 255 == 0 { creditBuckets(now()); slot.progress.pointee.store(c.calls, ordering: .relaxed) }
        }
    }

    /// Should a wait (full ring, busy lock) give up? When the run is over.
    func waitMustEnd() -> Bool {
        control.stop.load(ordering: .relaxed) || (record.measuring && !timing.opsMode && now() >= deadline)
    }
}
