import CNUMA

/// An errno value from a failed system call.
public struct Errno: Error, Equatable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "\(String(cString: strerror(rawValue))) (errno \(rawValue))" }
}

/// Thread placement and the current CPU, through the C shim.
public enum Affinity {
    /// Pins the calling thread to one real CPU.
    public static func pinCurrentThread(toRealCPU cpu: Int) throws(Errno) {
        let rc = cnuma_pin_current_thread(Int32(cpu))
        if rc != 0 { throw Errno(rc) }
    }

    /// Pins the calling thread to the real CPU behind a logical CPU of `topology`.
    public static func pinCurrentThread(to cpu: CPUID, in topology: Topology) throws(Errno) {
        try pinCurrentThread(toRealCPU: topology.realCPU[cpu.rawValue])
    }

    /// Pins the calling thread to the real CPUs of a node of `topology`.
    public static func pinCurrentThread(toNode node: NodeID, in topology: Topology) throws(Errno) {
        let real = topology.nodes[node.rawValue].cpus.map { Int32(topology.realCPU[$0.rawValue]) }
        let rc = real.withUnsafeBufferPointer { cnuma_pin_current_thread_set($0.baseAddress, Int32($0.count)) }
        if rc != 0 { throw Errno(rc) }
    }

    /// The real CPU the calling thread runs on now (sched_getcpu, via rseq).
    @inlinable public static var currentRealCPU: Int { Int(cnuma_current_cpu()) }
}

/// Memory placement through libnuma; a no-op where it is unavailable.
public enum NUMAMemory {
    /// Binds `[address, address+length)` to `node` (numa_tonode_memory).
    /// Returns false when libnuma is unavailable or reported an error.
    @discardableResult
    public static func bind(_ address: UnsafeMutableRawPointer, length: Int, to node: Int) -> Bool {
        cnuma_bind_memory(address, length, Int32(node)) == 0
    }

    /// The memory policy covering an address (get_mempolicy, MPOL_F_ADDR).
    public struct Policy: Sendable, Equatable, CustomStringConvertible {
        /// The kernel's mode: 0 default, 1 preferred, 2 bind, 3 interleave, 4 local, ...
        public let mode: Int
        /// The lowest node of its node mask (nil: empty mask, as for the default policy).
        public let firstNode: Int?
        /// How many nodes the mask holds.
        public let nodeCount: Int
        public static let modeNames = ["default", "preferred", "bind", "interleave", "local", "preferred_many", "weighted_interleave"]
        public static let bind = 2
        /// "bind 1", "default", "interleave 0 (+3 more)".
        public var description: String {
            let name = mode >= 0 && mode < Self.modeNames.count ? Self.modeNames[mode] : "mode \(mode)"
            guard let n = firstNode else { return name }
            return "\(name) \(n)" + (nodeCount > 1 ? " (+\(nodeCount - 1) more)" : "")
        }
        /// A bind to exactly `node`.
        public func binds(to node: Int) -> Bool { mode == Self.bind && firstNode == node && nodeCount == 1 }
    }

    /// The policy at `address`, or nil (no libnuma, or get_mempolicy failed).
    public static func policy(at address: UnsafeMutableRawPointer) -> Policy? {
        var first: Int32 = -1, count: Int32 = 0
        let mode = cnuma_policy_of_address(address, &first, &count)
        guard mode >= 0 else { return nil }
        return Policy(mode: Int(mode), firstNode: first >= 0 ? Int(first) : nil, nodeCount: Int(count))
    }

    /// Faults pages in writable without writing to them
    /// (MADV_POPULATE_WRITE, Linux 5.14+). Returns false where it fails.
    @discardableResult
    public static func populate(_ address: UnsafeMutableRawPointer, length: Int) -> Bool {
        cnuma_populate_write(address, length) == 0
    }

    /// One move_pages query: for each page, the node backing it (>= 0) or
    /// -errno (-ENOENT: not faulted in). Nil when the query itself failed
    /// (no libnuma, or no move_pages in this kernel).
    public static func nodes(ofPages pages: [UnsafeMutableRawPointer]) -> [Int]? {
        guard !pages.isEmpty else { return [] }
        var addresses: [UnsafeMutableRawPointer?] = pages
        var status = [Int32](repeating: 0, count: pages.count)
        let rc = addresses.withUnsafeMutableBufferPointer { a in
            status.withUnsafeMutableBufferPointer { s in
                cnuma_nodes_of_pages(a.baseAddress, Int32(pages.count), s.baseAddress)
            }
        }
        return rc == 0 ? status.map(Int.init) : nil
    }

    /// The node backing `address` now, or nil (not faulted in, or no libnuma).
    public static func node(of address: UnsafeMutableRawPointer) -> Int? {
        let n = cnuma_node_of_address(address)
        return n >= 0 ? Int(n) : nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
