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
    /// Returns false when libnuma is unavailable.
    @discardableResult
    public static func bind(_ address: UnsafeMutableRawPointer, length: Int, to node: Int) -> Bool {
        cnuma_bind_memory(address, length, Int32(node)) == 0
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
