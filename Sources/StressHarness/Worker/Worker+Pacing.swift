import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Open loop: pacing to the intended start times.
extension Worker {
    /// Open loop: waits for the next intended start and returns it. Sleeps
    /// when the start is more than 200 us away, then spins.
    @inline(never)
    mutating func pace() -> UInt64 {
        let intended = runStart &+ UInt64(paceK * timing.intervalTicks)
        paceK += 1
        var t = now()
        if t >= intended {
            let lag = t &- intended
            if record.measuring && lag > c.maxLagTicks { c.maxLagTicks = lag }
            return intended
        }
        while t < intended {
            let leftNs = Double(intended &- t) * timing.nsPerTick
            if leftNs > 200_000 {
                sleepNanoseconds(UInt64(min(leftNs - 100_000, 10_000_000)))
                if control.stop.load(ordering: .relaxed) { return intended }
            } else {
                cnuma_cpu_relax()
            }
            t = now()
        }
        return intended
    }

    /// Harness test hook (`[harness] stall_once_ms`, `stall_once_at_ms`):
    /// worker 0 of an open loop stalls once, between its operation's
    /// intended start and the allocator call, as if the call had blocked.
    /// The operation is timed from its intended start, so the stall counts,
    /// and the operations scheduled during it start late. Bounded: it ends
    /// early when the run is told to stop.
    @inline(never)
    mutating func injectStall(_ intended: UInt64) {
        let at = record.measureStart &+ UInt64(Double(harness.stallOnceAtMs ?? 0) * 1e6 / timing.nsPerTick)
        guard record.measuring, intended >= at else { return }
        stallPending = false
        let end = now() &+ UInt64(Double(harness.stallOnceMs ?? 0) * 1e6 / timing.nsPerTick)
        while true {
            let t = now()
            if t >= end || control.stop.load(ordering: .relaxed) { break }
            sleepNanoseconds(UInt64(min(Double(end &- t) * timing.nsPerTick, 1_000_000)))
        }
    }
}
