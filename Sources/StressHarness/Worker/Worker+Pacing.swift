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
            if measuring && lag > c.maxLagTicks { c.maxLagTicks = lag }
            return intended
        }
        while t < intended {
            let leftNs = Double(intended &- t) * timing.nsPerTick
            if leftNs > 200_000 {
                var ts = timespec(tv_sec: 0, tv_nsec: Int(min(leftNs - 100_000, 10_000_000)))
                nanosleep(&ts, nil)
                if control.stop.load(ordering: .relaxed) { return intended }
            } else {
                cnuma_cpu_relax()
            }
            t = now()
        }
        return intended
    }
}
