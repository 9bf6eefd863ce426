import CNUMA
import PageAllocator
import Topology

/// A block of a peer allocator: its address and order.
public struct PeerBlock {
    public let address: UnsafeMutableRawPointer
    public let order: Int
}

/// What one worker (or the clean-up) allocated and freed through a peer: the
/// peer's side of validate(). Plain counters in a slot of its own (one per
/// worker, 128-byte aligned), summed after the run: every block allocated
/// must have been freed, page for page.
public struct PeerCounts: Equatable, Sendable {
    public var allocatedBlocks = 0
    public var allocatedPages = 0
    public var freedBlocks = 0
    public var freedPages = 0
    /// Blocks whose address was not a multiple of their size.
    public var misaligned = 0
    /// Allocations the peer refused (NULL).
    public var refused = 0

    public static func + (a: PeerCounts, b: PeerCounts) -> PeerCounts {
        PeerCounts(allocatedBlocks: a.allocatedBlocks + b.allocatedBlocks, allocatedPages: a.allocatedPages + b.allocatedPages,
                   freedBlocks: a.freedBlocks + b.freedBlocks, freedPages: a.freedPages + b.freedPages,
                   misaligned: a.misaligned + b.misaligned, refused: a.refused + b.refused)
    }
}

/// Per-worker count slots, 128 bytes apart (no false sharing).
final class PeerCountSlots: @unchecked Sendable {
    static let stride = 128
    let base: UnsafeMutableRawPointer
    let count: Int
    init(count: Int) {
        self.count = max(count, 1)
        base = .allocate(byteCount: self.count * PeerCountSlots.stride, alignment: 128)
        for i in 0..<self.count { (base + i * PeerCountSlots.stride).bindMemory(to: PeerCounts.self, capacity: 1).initialize(to: PeerCounts()) }
    }
    deinit { base.deallocate() }
    func slot(_ i: Int) -> UnsafeMutablePointer<PeerCounts> { (base + i * PeerCountSlots.stride).assumingMemoryBound(to: PeerCounts.self) }
    var total: PeerCounts { (0..<count).reduce(PeerCounts()) { $0 + slot($1).pointee } }
}

/// A peer allocator as a harness backend. Orders, touch and verify, hand-off
/// frees, lifetimes and open loop work as on pagestorm; tasks, the OOM
/// killer, the LRU and reservations are pagestorm's alone: they are empty
/// here (PeerRun refuses workloads that need them). GFP flags, the node and
/// the CPU of a call are ignored: a malloc has no such arguments.
public struct PeerBackend: AllocatorBackend {
    public let peer: PeerAllocator
    /// This copy's count slot (each worker gets its own copy and slot).
    let counts: UnsafeMutablePointer<PeerCounts>

    init(peer: PeerAllocator, counts: UnsafeMutablePointer<PeerCounts>) {
        self.peer = peer
        self.counts = counts
    }

    public var name: String { peer.name.resultsName }

    @inline(__always)
    public func allocate(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PeerBlock {
        let o = order.rawValue
        guard let p = peer.allocate(order: o) else {
            counts.pointee.refused &+= 1
            throw .outOfMemory(order: o, flags: flags)
        }
        counts.pointee.allocatedBlocks &+= 1
        counts.pointee.allocatedPages &+= 1 &<< o
        if Int(bitPattern: p) & ((peer.pageSize &<< o) &- 1) != 0 { counts.pointee.misaligned &+= 1 }
        return PeerBlock(address: p, order: o)
    }

    @inline(__always)
    public func free(_ block: PeerBlock, cpu: CPUID?) throws(AllocError) {
        counts.pointee.freedBlocks &+= 1
        counts.pointee.freedPages &+= 1 &<< block.order
        peer.free(block.address, order: block.order)
    }

    @inline(__always) public func address(of b: PeerBlock) -> UnsafeMutableRawPointer { b.address }
    @inline(__always) public func byteCount(of b: PeerBlock) -> Int { peer.pageSize &<< b.order }
    @inline(__always) public func order(of b: PeerBlock) -> Int { b.order }

    // Pagestorm-only parts: a peer has no tasks, LRU or reservations.
    public func registerTask(name: String, oomScoreAdj: Int, memoryGroup: Int) -> UInt16? { 1 }
    @inline(__always) public func taskShouldDie(_ id: UInt16) -> Bool { false }
    public func setTaskRSS(_ id: UInt16, pages: Int) {}
    public func setTaskActivity(_ id: UInt16, _ a: TaskActivity, target: Int) {}
    public func taskExited(_ id: UInt16) {}
    public func addReclaimable(_ block: PeerBlock, kind: ReclaimableKind, owner: UInt16) {
        // Never reached: PeerRun refuses workloads with reclaimable ops. Freed, so nothing leaks if it were.
        try? free(block, cpu: nil)
    }
    public func reserve(pages: Int, owner: UInt16, cpu: CPUID?) throws(AllocError) -> Reservation? { nil }
    public func commit(_ r: Reservation) {}
    @inline(__always)
    public func allocateReserved(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PeerBlock {
        try allocate(order: order, flags: flags, node: node, cpu: cpu, owner: owner)
    }
}
