import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Operations: allocations, transactions (lock, reservation), the caller loop, failures charged as damage.
extension Worker {

    /// `count` allocations under the op's lock, inside its reservation if it
    /// has one (reserved before the lock is taken, committed after it is released).
    @inline(never)
    mutating func transaction(_ op: UnsafeMutablePointer<HotOp>, timed: Bool, intended: UInt64) {
        var reservation: Reservation? = nil
        if op.pointee.reserve > 0 {
            do {
                reservation = try backend.reserve(pages: op.pointee.reserve, owner: owner, cpu: cpu)
                c.reservedTransactions &+= 1
            } catch {
                // A reservation refused before the transaction starts is an
                // error returned safely (nothing is half done): level 1.
                switch error {
                case .aborted: aborted = true
                case .killed: pendingDeath = true
                default:
                    c.failures &+= 1
                    c.failReservation &+= 1
                    c.safeErrors &+= 1
                    let cls = Int(op.pointee.allocClass[op.pointee.orders.draw(rng.next())])
                    mem.classFailures[ClassFailureIndex.of(cls, need: 1)] &+= 1
                }
                return
            }
        }
        let li = op.pointee.lockIndex
        if li >= 0 && !acquire(li) {
            if let r = reservation { backend.commit(r) }
            return
        }
        var got = 0
        for j in 0..<op.pointee.count {
            if let h = allocOne(op, timed: timed, start: j == 0 ? intended : 0) {
                mem.scratch[got] = h
                got &+= 1
            }
            if pendingDeath || aborted || groupStopped || loopAbandoned { break } // the transaction is abandoned
        }
        if li >= 0 { locks.release(li) }
        if let r = reservation { backend.commit(r) }
        for j in 0..<got { dispose(op, mem.scratch[j], timed: timed) }
    }

    /// One allocation of the operation's flags at a drawn order. `start`
    /// (open loop: the intended start) replaces the call's own start time.
    /// Returns the block to hold, or nil (failed, or handed to the LRU).
    /// Transparent, not just `@inline(__always)`: the optimizer's inliner
    /// declined to inline its specialization into `run(go:)` (cost 433-800
    /// against a benefit of 52-76, `-Rpass-missed=sil-inliner`), and the call
    /// cost the default mix ~15 instructions per operation.
    @_transparent
    mutating func allocOne(_ op: UnsafeMutablePointer<HotOp>, timed: Bool, start: UInt64) -> H? {
        let order = op.pointee.orders.n == 1 ? op.pointee.orders.single : op.pointee.orders.draw(rng.next())
        let cls = Int(op.pointee.allocClass[order])
        if op.pointee.callerLoop { return allocLooping(op, order: order, cls: cls, timed: timed, start: start) }
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        mem.classCalls[cls] &+= 1
        beginCall()
        do {
            let b = op.pointee.reserve > 0
                ? try backend.allocateReserved(order: Order(unchecked: order), flags: op.pointee.flags, node: op.pointee.node, cpu: cpu, owner: owner)
                : try allocate(Order(unchecked: order), op.pointee.flags, op.pointee.node)
            endCall(succeeded: true)
            if timed { record(cls, from: t0) }
            c.allocs &+= 1
            return got(op, b)
        } catch {
            endCall(succeeded: false)
            if timed { record(cls, from: t0) }
            allocError(error, cls: cls, need: op.pointee.need, order: order)
            return nil
        }
    }

    /// A block just allocated: written (touch), then held, or handed to the LRU.
    @inline(__always)
    mutating func got(_ op: UnsafeMutablePointer<HotOp>, _ b: B.Block) -> H? {
        let words = op.pointee.nextTouchWords()
        if let kind = op.pointee.reclaimKind {
            if words > 0 { _ = touch(b, words: words) }
            lru(b, kind: kind)
            return nil
        }
        heldPages &+= 1 &<< backend.order(of: b)
        return H(block: b, tag: words > 0 ? touch(b, words: words) : 0, words: words)
    }

    @inline(__always)
    mutating func beginCall() {
        callSeq &+= 1
        slot.callSeq.pointee.store(callSeq, ordering: .relaxed)
    }

    @inline(__always)
    mutating func endCall(succeeded: Bool) {
        callSeq &+= 1
        slot.callSeq.pointee.store(callSeq, ordering: .relaxed)
        if succeeded {
            successes &+= 1
            slot.successes.pointee.store(successes, ordering: .relaxed)
        }
    }

    /// The caller-side NOFAIL loop (XFS's kmem_alloc): retry until the
    /// allocation succeeds, sleeping `caller_loop_backoff_ms` between tries
    /// and printing "possible memory allocation deadlock" every
    /// `caller_loop_warn_every` tries. Like XFS, it does not stop for the OOM
    /// killer (an OOM victim retries with the victim's reserves and dies at
    /// its next safe point); it stops only when the run ends or the allocator
    /// shuts down. Timed as one call: the latency its caller sees.
    @inline(never)
    mutating func allocLooping(_ op: UnsafeMutablePointer<HotOp>, order: Int, cls: Int, timed: Bool, start: UInt64) -> H? {
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        mem.classCalls[cls] &+= 1
        var tries = 0
        while true {
            beginCall()
            do {
                let b = try allocate(Order(unchecked: order), op.pointee.flags, op.pointee.node)
                endCall(succeeded: true)
                if timed { record(cls, from: t0) }
                c.allocs &+= 1
                if tries > c.callerMaxTries { c.callerMaxTries = tries }
                if tries > 0 { backend.setTaskActivity(owner, .running, target: 0) }
                return got(op, b)
            } catch {
                endCall(succeeded: false)
                switch error {
                case .aborted:
                    c.abortedCalls &+= 1
                    aborted = true
                case .killed:
                    c.killedCalls &+= 1
                    pendingDeath = true
                default: break
                }
                if aborted {
                    if timed { record(cls, from: t0) }
                    return nil
                }
                tries &+= 1
                c.callerRetries &+= 1
                if tries % harness.callerLoopWarnEvery == 0 {
                    c.callerWarnings &+= 1
                    control.message("\(task.name)(\(owner)): possible memory allocation deadlock size \(timing.pageSize << order) in \(opName(op)) (mode:\(op.pointee.flags.hex)) after \(tries) tries")
                }
                if waitMustEnd() {
                    loopAbandoned = true
                    c.callerAbandoned &+= 1
                    if tries > c.callerMaxTries { c.callerMaxTries = tries }
                    backend.setTaskActivity(owner, .running, target: 0)
                    if timed { record(cls, from: t0) }
                    return nil
                }
                // Seen by the watchdog as a retry in the allocator.
                backend.setTaskActivity(owner, .retryingInAllocator, target: 0)
                setPhase(.callerBackoff)
                defer { setPhase(.running) }
                if harness.callerLoopBackoffMs > 0 { usleep(UInt32(harness.callerLoopBackoffMs) * 1000) } else { sched_yield() }
            }
        }
    }

    func opName(_ op: UnsafeMutablePointer<HotOp>) -> String { opNames.count > op - mem.ops ? opNames[op - mem.ops] : "op" }

    /// A failed allocation call: a kill, the allocator's shutdown, or a
    /// failure charged as damage at the operation's level of need.
    @inline(never)
    mutating func allocError(_ e: AllocError, cls: Int, need: Int, order: Int) {
        switch e {
        case .killed:
            c.killedCalls &+= 1
            pendingDeath = true
            return
        case .aborted:
            c.abortedCalls &+= 1
            aborted = true
            return
        case .injectedFailure: c.failInjected &+= 1
        case .groupLimit: c.failGroupLimit &+= 1
        case .timedOut: c.failTimedOut &+= 1
        case .reservationTimeout, .reservationTooLarge, .reservationActive, .reservationNeedsTask: c.failReservation &+= 1
        default: c.failOOM &+= 1
        }
        c.failures &+= 1
        mem.classFailures[ClassFailureIndex.of(cls, need: need)] &+= 1
        switch need {
        case 0: c.skipped &+= 1
        case 1: c.safeErrors &+= 1
        case 2: c.lostPages &+= 1 &<< order
        default:
            // Level 3: the subsystem fails; the whole group stops (read-only).
            c.subsystemFailures &+= 1
            groupStopped = true
            control.stopGroup(group, atNs: Int(cnuma_monotonic_ns()))
        }
    }
}
