import CNUMA
import Topology

extension PageAllocator {
    /// Cycle counts of the per-CPU refill (rmqueue_bulk) and drain
    /// (free_pcppages_bulk) paths themselves, for `pagestorm bench`: `rounds`
    /// times, refill `cpu`'s order-0 list of its node's highest zone from the
    /// buddy, then drain it back, timing each with the cycle counter.
    /// Holds that CPU's per-CPU lock throughout; leaves the list empty.
    public func measureRefillDrain(cpu: CPUID, rounds: Int) -> (refillTicks: UInt64, refillPages: Int, drainTicks: UInt64, drainPages: Int) {
        let zone = zones[cpuNode[cpu.rawValue] * zonesPerNode + zonesPerNode - 1]
        let slot = zone.pcp(cpu.rawValue)
        lockCPUSlots(cpu.rawValue)
        defer { unlockCPUSlots(cpu.rawValue) }
        if slot.count > 0 { freePCPBulkLocked(zone, slot: slot, pages: slot.count, cpu: cpu.rawValue) }
        var rt: UInt64 = 0, dt: UInt64 = 0, rp = 0, dp = 0
        for _ in 0..<rounds {
            let t0 = cnuma_cycles()
            _ = refillPCPLocked(zone, slot: slot, order: 0, cpu: cpu.rawValue)
            let t1 = cnuma_cycles()
            let n = slot.count
            freePCPBulkLocked(zone, slot: slot, pages: n, cpu: cpu.rawValue)
            let t2 = cnuma_cycles()
            rt &+= t1 &- t0; dt &+= t2 &- t1
            rp += n; dp += n - slot.count
            slot.high = slot.highMin.pointee
        }
        return (rt, rp, dt, dp)
    }
}
