/// A NUMA node number. Wraps one integer; nodes are numbered from 0.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    @inlinable public init(_ rawValue: Int) { self.rawValue = rawValue }
    @inlinable public static func < (a: NodeID, b: NodeID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "node\(rawValue)" }
}

/// A CPU number in a topology (a *logical* CPU of a declared topology, or the
/// kernel's CPU number of a discovered one). Wraps one integer.
public struct CPUID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    @inlinable public init(_ rawValue: Int) { self.rawValue = rawValue }
    @inlinable public static func < (a: CPUID, b: CPUID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "cpu\(rawValue)" }
}
