import PageAllocator
import Topology

/// One operation in the form the hot loop reads (trivial, no ARC).
struct HotOp {
    /// Allocate, or consume blocks handed over by other workers.
    var kind: OpKind
    /// When the blocks are freed (immediate, lifo, fifo, random, ...).
    var lifetime: Lifetime
    /// `batch` N (all freed once N are held) rather than `live` N.
    var isBatch: Bool
    /// The op's pool is filled before the measured window starts.
    var prefill: Bool
    /// The level of need (0-3) its failures are charged at.
    var need: Int
    var flags: GFP
    /// Allocations per operation (a transaction when > 1).
    var count: Int
    /// batch or live N (alloc), blocks per consume (consume).
    var limit: Int
    /// The named lock held around the allocations (-1: none).
    var lockIndex: Int
    /// 8-byte words written into each block and verified at its free.
    var touchWords: Int
    /// `OpSpec.touchFraction` in 2^-32 steps (0: off): how often an allocation touches one word more.
    var touchFractionQ32: UInt32
    /// The dither's accumulator: an allocation touches one more word when adding the fraction carries.
    var touchAccumulator: UInt32
    /// The preferred node (nil: the worker's policy or its CPU's node).
    var node: NodeID?
    /// The hand-off ring its blocks go to (-1: freed by this worker).
    var ring: Int
    /// Its pool in `WorkerMemory.pools` (-1: none).
    var pool: Int
    /// Draws the order of each allocation.
    var orders: AliasTable
    /// The latency class of an allocation, by order.
    var allocClass: UnsafeMutablePointer<Int32>
    /// What the allocator's LRU gets the blocks as; nil: the worker holds its blocks.
    var reclaimKind: ReclaimableKind?
    /// Reclaimable ops: blocks created before the start (and after a restart).
    var initial: Int
    /// Pages reserved before the operation (0: no reservation).
    var reserve: Int
    /// The caller-side NOFAIL loop (flags without __GFP_NOFAIL).
    var callerLoop: Bool
}

extension HotOp {
    /// Compiles one planned operation; `pool` is its pool in the worker's memory (-1: none).
    /// Allocates its order table and class map (freed by `destroy()`).
    init(_ p: OpPlan, pool: Int) {
        let s = p.spec
        let cls = UnsafeMutablePointer<Int32>.allocate(capacity: Order.count)
        for o in 0..<Order.count { cls[o] = Int32(p.allocClassByOrder[o]) }
        kind = s.kind
        lifetime = s.free
        isBatch = s.batch != nil && s.kind == .alloc
        prefill = s.prefill
        need = s.need
        flags = p.gfp
        count = s.count
        limit = s.kind == .consume ? (s.batch ?? 16) : (s.batch ?? s.live ?? 1)
        lockIndex = p.lockIndex
        touchWords = s.touch / 8
        touchFractionQ32 = HotOp.q32(s.touchFraction ?? 0)
        touchAccumulator = 0
        node = s.node.map(NodeID.init)
        ring = p.ring
        self.pool = pool
        orders = s.kind == .alloc ? AliasTable(weights: s.orders.map(\.weight), values: s.orders.map(\.order))
                                  : AliasTable(weights: [1], values: [0])
        allocClass = cls
        reclaimKind = s.reclaimable.flatMap { r in ["clean", "dirty", "anon"].firstIndex(of: r) }.flatMap(ReclaimableKind.init(rawValue:))
        initial = s.initial
        reserve = p.reserve
        callerLoop = p.callerLoop
    }

    /// A fraction in [0, 1) in 2^-32 steps, rounded (0 when it rounds to 0 or is not a fraction).
    static func q32(_ f: Double) -> UInt32 {
        guard f.isFinite, f > 0, f < 1 else { return 0 }
        return UInt32(min((f * 4_294_967_296).rounded(), 4_294_967_295))
    }

    /// The words the next allocation touches: `touchWords`, plus one when the
    /// fraction's accumulator carries (a deterministic dither: no random draw,
    /// so the run's random sequence and its exact counters do not change).
    /// Without a fraction it is `touchWords`, one compare more.
    @inline(__always)
    mutating func nextTouchWords() -> Int {
        guard touchFractionQ32 != 0 else { return touchWords }
        let (sum, carry) = touchAccumulator.addingReportingOverflow(touchFractionQ32)
        touchAccumulator = sum
        return carry ? touchWords &+ 1 : touchWords
    }

    /// Frees what `init` allocated.
    func destroy() {
        allocClass.deallocate()
        orders.destroy()
    }
}
