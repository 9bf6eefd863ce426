import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Hand-off: blocks passed to another worker through a ring, and the consumer's side.
extension Worker {
    /// Frees up to `max` blocks from the inbound rings, round-robin. The first
    /// is timed from `intended` in open loop.
    @inline(__always)
    mutating func consume(max: Int, timed: Bool, intended: UInt64) -> Int {
        guard mem.inboundCount > 0 else { return 0 }
        var freed = 0
        var misses = 0
        while freed < max && misses < mem.inboundCount {
            if let h = rings[mem.inbound[nextInbound]].tryPop() {
                freeRemote(h, timed: timed, from: freed == 0 ? intended : 0)
                freed &+= 1
            } else {
                misses &+= 1
                nextInbound &+= 1
                if nextInbound == mem.inboundCount { nextInbound = 0 }
            }
        }
        return freed
    }

    /// Hands a block to its consumer. A full ring is waited on (backpressure),
    /// freeing this worker's own inbound blocks meanwhile so that workers
    /// handing to each other cannot wait on each other forever; the wait ends
    /// with the run (the block is then freed here and counted as abandoned).
    @inline(__always)
    mutating func handoff(_ ring: Int, _ h: H) {
        if rings[ring].tryPush(h) {
            heldPages &-= 1 &<< backend.order(of: h.block)
            c.handoffSent &+= 1
            return
        }
        handoffSlow(ring, h)
    }

    @inline(never)
    mutating func handoffSlow(_ ring: Int, _ h: H) {
        setPhase(.handoffWait)
        defer { setPhase(.running) }
        c.handoffWaits &+= 1
        var spins = 0
        heldPages &-= 1 &<< backend.order(of: h.block)
        let consumer = ring < mem.ringCount ? mem.ringConsumer[ring] : -1
        while true {
            if consumer >= 0 && control.gone(consumer).pointee.load(ordering: .relaxed) != 0 {
                // The consumer was killed for good: nobody will free this block but us.
                c.handoffToGone &+= 1
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                return
            }
            if mem.inboundCount > 0 { _ = consume(max: 16, timed: false, intended: 0) }
            spins &+= 1
            if spins & 7 == 0 { sched_yield() } else { cnuma_cpu_relax() }
            if rings[ring].tryPush(h) {
                c.handoffSent &+= 1
                return
            }
            if spins & 63 == 0 && waitMustEnd() {
                c.handoffAbandoned &+= 1
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                return
            }
        }
    }
}
