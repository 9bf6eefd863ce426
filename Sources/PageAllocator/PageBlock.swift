import Topology

/// An allocated block: 16 bytes, passed in registers. It names its pfn,
/// order, node and zone, and the address of its first byte; the caller may
/// write `byteCount` bytes there until it frees the block.
@frozen public struct PageBlock: Hashable, @unchecked Sendable, CustomStringConvertible {
    public let address: UnsafeMutableRawPointer
    @usableFromInline let pfn32: UInt32
    @usableFromInline let order8: UInt8
    @usableFromInline let node8: UInt8
    @usableFromInline let zone8: UInt8
    @usableFromInline let pageShift8: UInt8

    @inlinable init(address: UnsafeMutableRawPointer, pfn: Int, order: Int, node: Int, zone: Int, pageShift: Int) {
        self.address = address
        pfn32 = UInt32(truncatingIfNeeded: pfn)
        order8 = UInt8(truncatingIfNeeded: order)
        node8 = UInt8(truncatingIfNeeded: node)
        zone8 = UInt8(truncatingIfNeeded: zone)
        pageShift8 = UInt8(truncatingIfNeeded: pageShift)
    }

    @inlinable public var pfn: PFN { PFN(Int(pfn32)) }
    @inlinable public var order: Order { Order(unchecked: Int(order8)) }
    @inlinable public var node: NodeID { NodeID(Int(node8)) }
    /// Index of the block's zone in the allocator's zone table.
    @inlinable public var zoneIndex: Int { Int(zone8) }
    @inlinable public var pages: Int { 1 << Int(order8) }
    @inlinable public var byteCount: Int { pages << Int(pageShift8) }
    @inlinable public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: address, count: byteCount) }

    public var description: String { "\(pfn) order \(order8) node \(node8) zone \(zone8)" }
}
