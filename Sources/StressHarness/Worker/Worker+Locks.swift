import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Named locks: taking one, and waiting for one as an uninterruptible mutex_lock().
extension Worker {

    /// Takes a named lock; false when the run ended while waiting.
    @inline(__always)
    mutating func acquire(_ li: Int) -> Bool {
        if locks.tryAcquire(li, worker: Int(owner)) {
            mem.lockStats[li].acquisitions &+= 1
            return true
        }
        return acquireSlow(li)
    }

    /// Waits for a named lock, as an uninterruptible mutex_lock(): not a
    /// safe point (an OOM victim waiting here cannot die). The wait is
    /// published to the watchdog and ends with the run.
    @inline(never)
    mutating func acquireSlow(_ li: Int) -> Bool {
        let t0 = now()
        var spins = 0
        backend.setTaskActivity(owner, .waitingForLock, target: li)
        setPhase(.lockWait)
        defer { backend.setTaskActivity(owner, .running, target: 0); setPhase(.running) }
        while true {
            while locks.holder(li) != nil {
                spins &+= 1
                if spins & 63 == 0 {
                    sched_yield()
                    if spins & 1023 == 0 && waitMustEnd() {
                        mem.lockStats[li].abandoned &+= 1
                        c.lockAbandoned &+= 1
                        return false
                    }
                } else {
                    cnuma_cpu_relax()
                }
            }
            if locks.tryAcquire(li, worker: Int(owner)) { break }
        }
        let w = now() &- t0
        mem.lockStats[li].acquisitions &+= 1
        mem.lockStats[li].contended &+= 1
        mem.lockStats[li].waitTicks &+= w
        if w > mem.lockStats[li].maxWaitTicks { mem.lockStats[li].maxWaitTicks = w }
        return true
    }
}
