import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// The worker's clock: cycle-counter ticks, their conversion to ns, and latency records.
extension Worker {
    @inline(__always) func now() -> UInt64 { cnuma_cycles() }

    @inline(__always)
    func nanoseconds(_ ticks: UInt64) -> UInt64 {
        let m = ticks.multipliedFullWidth(by: timing.mulQ32)
        return (m.high << 32) | (m.low >> 32)
    }

    @inline(__always)
    mutating func record(_ cls: Int, from t0: UInt64) {
        let t1 = now()
        let ns = t1 > t0 ? nanoseconds(t1 &- t0) : 0
        c.timedCalls &+= 1
        if !mem.hist[cls].record(ns) { c.latencyOverflows &+= 1 }
    }
}
