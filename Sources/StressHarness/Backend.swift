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
}

/// The allocator under test.
public struct BuddyBackend: AllocatorBackend, Sendable {
    public let allocator: PageAllocator
    public init(_ allocator: PageAllocator) { self.allocator = allocator }
    public var name: String { "pagestorm-buddy" }

    @inline(__always)
    public func allocate(order: Order, flags: GFP, node: NodeID?, cpu: CPUID?, owner: UInt16) throws(AllocError) -> PageBlock {
        try allocator.allocate(order: order, flags: flags, node: node, cpu: cpu, owner: owner)
    }
    @inline(__always)
    public func free(_ block: PageBlock, cpu: CPUID?) throws(AllocError) { try allocator.free(block, cpu: cpu) }
    @inline(__always) public func address(of b: PageBlock) -> UnsafeMutableRawPointer { b.address }
    @inline(__always) public func byteCount(of b: PageBlock) -> Int { b.byteCount }
    @inline(__always) public func order(of b: PageBlock) -> Int { b.order.rawValue }
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
}
