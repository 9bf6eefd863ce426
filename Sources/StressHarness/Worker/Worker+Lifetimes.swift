import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Lifetimes: what happens to a block after its allocation (immediate, keep, lifo, fifo, random, batches); frees.
extension Worker {

    /// Applies the operation's lifetime to a block just allocated.
    @inline(__always)
    mutating func dispose(_ op: UnsafeMutablePointer<HotOp>, _ h: H, timed: Bool) {
        let pool = mem.pools + op.pointee.pool
        switch op.pointee.lifetime {
        case .immediate:
            release(op, h, timed: timed)
        case .keep:
            if pool.pointee.count < op.pointee.limit { pool.pointee.pushBack(h) } else { release(op, h, timed: timed) }
        case .lifo, .fifo, .random:
            if op.pointee.isBatch {
                pool.pointee.pushBack(h)
                if pool.pointee.count >= op.pointee.limit { flush(op, pool, timed: timed) }
            } else {
                if pool.pointee.count >= op.pointee.limit {
                    let victim = take(op, pool)
                    if op.pointee.ring < 0 { freeLocal(victim, timed: timed) } else { handoff(op.pointee.ring, victim) }
                }
                pool.pointee.pushBack(h)
            }
        }
    }

    /// Frees a whole batch in the operation's order.
    @inline(never)
    mutating func flush(_ op: UnsafeMutablePointer<HotOp>, _ pool: UnsafeMutablePointer<Pool<H>>, timed: Bool) {
        let local = op.pointee.ring < 0
        switch op.pointee.lifetime {
        case .fifo:
            if local { while pool.pointee.count > 0 { freeLocal(pool.pointee.popFront(), timed: timed) } }
            else { while pool.pointee.count > 0 { release(op, pool.pointee.popFront(), timed: timed) } }
        case .lifo:
            if local { while pool.pointee.count > 0 { freeLocal(pool.pointee.popBack(), timed: timed) } }
            else { while pool.pointee.count > 0 { release(op, pool.pointee.popBack(), timed: timed) } }
        default:
            while pool.pointee.count > 0 { release(op, take(op, pool), timed: timed) }
        }
    }

    /// The next block to free from an operation's pool, by its lifetime.
    @inline(__always)
    mutating func take(_ op: UnsafeMutablePointer<HotOp>, _ pool: UnsafeMutablePointer<Pool<H>>) -> H {
        switch op.pointee.lifetime {
        case .fifo: return pool.pointee.popFront()
        case .random:
            let j = Int(rng.next().multipliedFullWidth(by: UInt64(pool.pointee.count)).high)
            return pool.pointee.remove(at: j)
        default: return pool.pointee.popBack()
        }
    }

    @inline(__always)
    mutating func release(_ op: UnsafeMutablePointer<HotOp>, _ h: H, timed: Bool) {
        let ring = op.pointee.ring
        if ring >= 0 { handoff(ring, h) } else { freeLocal(h, timed: timed) }
    }

    // freeLocal and freeRemote are written out twice on purpose: one shared
    // body (tried in session 4) cost 6-8 instructions per free in dispose
    // under callgrind (the block kept live across the free call).
    @inline(__always)
    mutating func freeLocal(_ h: H, timed: Bool) {
        if h.words > 0 { verify(h) }
        heldPages &-= 1 &<< backend.order(of: h.block)
        let cls = Int(mem.freeClass[backend.order(of: h.block)])
        let t0: UInt64 = timed ? now() : 0
        do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
        if cls >= 0 {
            if timed { record(cls, from: t0) }
            mem.classCalls[cls] &+= 1
        }
        c.frees &+= 1
    }

    @inline(__always)
    mutating func freeRemote(_ h: H, timed: Bool, from start: UInt64) {
        if h.words > 0 { verify(h) }
        let cls = Int(mem.remoteFreeClass[backend.order(of: h.block)])
        let t0: UInt64 = timed ? (start != 0 ? start : now()) : 0
        do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
        if cls >= 0 {
            if timed { record(cls, from: t0) }
            mem.classCalls[cls] &+= 1
        }
        c.remoteFrees &+= 1
    }

    @inline(never)
    mutating func freeFailed(_ e: AllocError) {
        c.freeErrors += 1
        if record.firstProblem == nil { record.firstProblem = "worker \(index): free failed: \(e)" }
    }


    // MARK: clean-up

    /// Frees every block still held (pools and inbound rings), checking
    /// patterns. Not measured. Returns the blocks freed from the pools and
    /// from the inbound rings. A ring is drained of what it held when the
    /// drain began: at an exit in the middle of the run (an OOM kill) its
    /// producer may still be pushing, and a drain that chased it would last
    /// as long as the producer keeps pace (the dying worker freeing the
    /// producer's blocks for the rest of the run, uncounted, never restarting).
    mutating func freeEverything() -> (pools: Int, inbound: Int) {
        var pools = 0, inbound = 0
        for i in 0..<mem.poolCount {
            while mem.pools[i].count > 0 {
                let h = mem.pools[i].popBack()
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                pools += 1
            }
        }
        for i in 0..<mem.inboundCount {
            let ring = rings[mem.inbound[i]]
            var left = ring.count
            while left > 0, let h = ring.tryPop() {
                if h.words > 0 { verify(h) }
                do { try backend.free(h.block, cpu: cpu) } catch { freeFailed(error) }
                inbound += 1
                left -= 1
            }
        }
        return (pools, inbound)
    }
}
