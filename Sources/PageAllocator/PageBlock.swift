import Topology

/// An allocated block: 16 bytes, passed in registers. It names its pfn,
/// order, node and zone, and the address of its first byte; the caller may
/// write `byteCount` bytes there until it frees the block.
@frozen public struct PageBlock: Hashable, @unchecked Sendable, CustomStringConvertible {
    public let address: UnsafeMutableRawPointer
    /// pfn (bits 0-31), order (32-39), node (40-47), page shift (48-55),
    /// zone index (56-63): the same bytes as five separate fields, built by
    /// the fast path with one add and one or from the zone's `blockBits`.
    /// The zone index is the top byte, so free() gets it with one shift.
    @usableFromInline let packed: UInt64

    @inlinable @inline(__always) init(address: UnsafeMutableRawPointer, packed: UInt64) {
        self.address = address
        self.packed = packed
    }

    @inlinable init(address: UnsafeMutableRawPointer, pfn: Int, order: Int, node: Int, zone: Int, pageShift: Int) {
        self.init(address: address, packed: PageBlock.bits(pfn: pfn, order: order, node: node, zone: zone, pageShift: pageShift))
    }

    @inlinable static func bits(pfn: Int, order: Int, node: Int, zone: Int, pageShift: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: pfn)) | UInt64(UInt8(truncatingIfNeeded: order)) << 32
            | UInt64(UInt8(truncatingIfNeeded: node)) << 40 | UInt64(UInt8(truncatingIfNeeded: pageShift)) << 48
            | UInt64(UInt8(truncatingIfNeeded: zone)) << 56
    }

    @inlinable var pfn32: UInt32 { UInt32(truncatingIfNeeded: packed) }
    @inlinable var order8: UInt8 { UInt8(truncatingIfNeeded: packed >> 32) }
    @inlinable var node8: UInt8 { UInt8(truncatingIfNeeded: packed >> 40) }
    @inlinable var pageShift8: UInt8 { UInt8(truncatingIfNeeded: packed >> 48) }
    @inlinable var zone8: UInt8 { UInt8(truncatingIfNeeded: packed >> 56) }

    @inlinable public var pfn: PFN { PFN(Int(pfn32)) }
    @inlinable public var order: Order { Order(unchecked: Int(order8)) }
    @inlinable public var node: NodeID { NodeID(Int(node8)) }
    /// Index of the block's zone in the allocator's zone table.
    @inlinable public var zoneIndex: Int { Int(packed >> 56) }
    @inlinable public var pages: Int { 1 << Int(order8) }
    @inlinable public var byteCount: Int { pages << Int(pageShift8) }
    @inlinable public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: address, count: byteCount) }

    public var description: String { "\(pfn) order \(order8) node \(node8) zone \(zone8)" }
}
