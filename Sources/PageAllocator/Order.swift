/// A buddy order: a block of `1 << order` pages. Checked to be 0...10 when made.
@frozen public struct Order: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// NR_PAGE_ORDERS - 1: the largest block is 1024 pages.
    public static let maxOrder = 10
    /// NR_PAGE_ORDERS.
    public static let count = 11
    /// PAGE_ALLOC_COSTLY_ORDER.
    public static let costly = 3
    /// Highest order cached in the per-CPU lists.
    public static let pcpMax = 3

    public let rawValue: Int

    /// Makes an order, checking its range.
    @inlinable public init(_ value: Int) throws(AllocError) {
        guard value >= 0 && value <= Order.maxOrder else { throw .invalidOrder(value) }
        rawValue = value
    }

    /// Makes an order without checking. The caller guarantees `0...10`.
    @inlinable public init(unchecked value: Int) { rawValue = value }

    @inlinable public static var zero: Order { Order(unchecked: 0) }

    /// Pages in a block of this order.
    @inlinable public var pages: Int { 1 << rawValue }
    @inlinable public static func < (a: Order, b: Order) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "order-\(rawValue)" }
}

/// A page frame number: the index of a page in the allocator's pfn space.
@frozen public struct PFN: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    @inlinable public init(_ rawValue: Int) { self.rawValue = rawValue }
    @inlinable public static func < (a: PFN, b: PFN) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "pfn 0x" + String(rawValue, radix: 16) }
}
