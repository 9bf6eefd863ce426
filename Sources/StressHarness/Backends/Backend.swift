import CNUMA
import PageAllocator
import Topology

/// What the harness drives: an allocator of page blocks. The worker loop is
/// generic over it and specialized for each conformer, so the hot path makes
/// direct calls (no existentials, no boxing of the typed error).
///
/// Conformers: `BuddyBackend` (the allocator under test, "pagestorm-buddy")
/// and `NullBackend` (empty calls; it measures the harness's own cost).
/// A peer allocator measured side by side would be one more conformer.
public protocol AllocatorBackend {
    associatedtype Block
    /// What results files name as "allocator".
    var name: String { get }
    func allocate(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> Block
    func free(_ block: Block, cpu: CPUID?) throws(AllocError)
    /// First byte of the block; `byteCount` bytes may be written until it is freed.
    func address(of block: Block) -> UnsafeMutableRawPointer
    func byteCount(of block: Block) -> Int
    func order(of block: Block) -> Int

    // Tasks: each worker is one, for the OOM killer and the watchdog.
    /// A new task (nil when the allocator's task table is full). `memoryGroup` is 0 or a memory group id.
    func registerTask(name: String, oomScoreAdj: Int, memoryGroup: Int) -> UInt16?
    /// Has the OOM killer chosen this task?
    func taskShouldDie(_ id: UInt16) -> Bool
    func setTaskRSS(_ id: UInt16, pages: Int)
    func setTaskActivity(_ id: UInt16, _ a: TaskActivity, target: Int)
    /// The task has freed everything it holds and exits.
    func taskExited(_ id: UInt16)
    /// Hands an allocated block to the allocator's LRU, charged to `owner`; the allocator owns it from now on.
    func addReclaimable(_ block: Block, kind: ReclaimableKind, owner: UInt16)
    /// Chinner's reservation before a transaction.
    func reserve(pages: Int, owner: UInt16, cpu: CPUID?) throws(AllocError) -> Reservation?
    /// Ends the transaction; unused reserved pages go back.
    func commit(_ r: Reservation)
    /// An allocation inside the owner's transaction (may use its reservation).
    func allocateReserved(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> Block
    /// An allocation under a memory policy (alloc_pages_mpol); `cursor` is the worker's interleave position.
    func allocate(order: Order, flags: GFP, policy: MemPolicy, cursor: inout InterleaveCursor, cpu: CPUID?, owner: UInt16) throws(AllocError) -> Block
    /// Whether memory policies apply (an allocator with NUMA nodes).
    var supportsMemPolicy: Bool { get }
}

extension AllocatorBackend {
    /// Allocators without nodes ignore policies (runs with a policy are refused before they start).
    public func allocate(order: Order, flags: GFP, policy: MemPolicy, cursor: inout InterleaveCursor, cpu: CPUID?, owner: UInt16) throws(AllocError) -> Block {
        try allocate(order: order, flags: flags, node: nil, cpu: cpu, owner: owner)
    }
    public var supportsMemPolicy: Bool { false }
}

/// The allocator under test.
public struct BuddyBackend: AllocatorBackend, Sendable {
    public let allocator: PageAllocator
    public init(_ allocator: PageAllocator) { self.allocator = allocator }
    public var name: String { "pagestorm-buddy" }
    public var supportsMemPolicy: Bool { true }
    @inline(__always)
    public func allocate(order: Order, flags: GFP, policy: MemPolicy, cursor: inout InterleaveCursor, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PageBlock {
        try allocator.allocate(order: order, flags: flags, policy: policy, cursor: &cursor, cpu: cpu, owner: owner)
    }

    @inline(__always)
    public func allocate(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PageBlock {
        try allocator.allocate(order: order, flags: flags, node: node, cpu: cpu, owner: owner)
    }
    @inline(__always)
    public func free(_ block: PageBlock, cpu: CPUID?) throws(AllocError) { try allocator.free(block, cpu: cpu) }
    @inline(__always) public func address(of b: PageBlock) -> UnsafeMutableRawPointer { b.address }
    @inline(__always) public func byteCount(of b: PageBlock) -> Int { b.byteCount }
    @inline(__always) public func order(of b: PageBlock) -> Int { b.order.rawValue }

    public func registerTask(name: String, oomScoreAdj: Int, memoryGroup: Int) -> UInt16? {
        allocator.registerTask(name: name, oomScoreAdj: oomScoreAdj, group: memoryGroup)
    }
    @inline(__always) public func taskShouldDie(_ id: UInt16) -> Bool { allocator.taskShouldDie(id) }
    public func setTaskRSS(_ id: UInt16, pages: Int) { allocator.setTaskRSS(id, pages: pages) }
    public func setTaskActivity(_ id: UInt16, _ a: TaskActivity, target: Int) { allocator.setTaskActivity(id, a, target: target) }
    public func taskExited(_ id: UInt16) { allocator.taskExited(id) }
    public func addReclaimable(_ block: PageBlock, kind: ReclaimableKind, owner: UInt16) {
        allocator.addReclaimable(block, kind: kind, owner: owner)
    }
    public func reserve(pages: Int, owner: UInt16, cpu: CPUID?) throws(AllocError) -> Reservation? {
        try allocator.reserve(pages: pages, owner: owner, cpu: cpu)
    }
    public func commit(_ r: Reservation) { allocator.commit(r) }
    public func allocateReserved(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PageBlock {
        try allocator.allocate(order: order, flags: flags, node: node, cpu: cpu, owner: owner, reserve: .transaction)
    }
}

/// A block of the null backend: no memory behind it.
public struct NullBlock {
    public let address: UnsafeMutableRawPointer
    public let order: Int
}

/// Allocator calls that do nothing (outlined, so a call is still made): the
/// harness loop run against it costs what the harness itself costs.
public struct NullBackend: AllocatorBackend {
    let scratch: UnsafeMutableRawPointer
    public init(scratch: UnsafeMutableRawPointer) { self.scratch = scratch }
    public var name: String { "null" }

    @inline(never)
    public func allocate(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> NullBlock {
        NullBlock(address: scratch, order: order.rawValue)
    }
    @inline(never)
    public func free(_ block: NullBlock, cpu: CPUID?) throws(AllocError) {}
    @inline(__always) public func address(of b: NullBlock) -> UnsafeMutableRawPointer { b.address }
    @inline(__always) public func byteCount(of b: NullBlock) -> Int { 4096 << b.order }
    @inline(__always) public func order(of b: NullBlock) -> Int { b.order }

    // No tasks, no LRU, no reservations: the harness's bookkeeping only.
    public func registerTask(name: String, oomScoreAdj: Int, memoryGroup: Int) -> UInt16? { 1 }
    @inline(__always) public func taskShouldDie(_ id: UInt16) -> Bool { false }
    public func setTaskRSS(_ id: UInt16, pages: Int) {}
    public func setTaskActivity(_ id: UInt16, _ a: TaskActivity, target: Int) {}
    public func taskExited(_ id: UInt16) {}
    public func addReclaimable(_ block: NullBlock, kind: ReclaimableKind, owner: UInt16) {}
    public func reserve(pages: Int, owner: UInt16, cpu: CPUID?) throws(AllocError) -> Reservation? { nil }
    public func commit(_ r: Reservation) {}
    @inline(never)
    public func allocateReserved(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> NullBlock {
        NullBlock(address: scratch, order: order.rawValue)
    }
}
