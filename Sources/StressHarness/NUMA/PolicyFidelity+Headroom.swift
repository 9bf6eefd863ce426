import Foundation
import PageAllocator
import Topology

/// `fault-pages --headroom`: the model starts with the kernel's headroom, so
/// that a node that runs short in the kernel runs short at the same page in
/// the model (numa_miss / numa_foreign under fallback).
extension PolicyFidelity {
    /// Free pages above the LOW watermark per machine node, summed over the
    /// node's zones, from /proc/zoneinfo ("Node N, zone X" blocks, their
    /// `pages free` and `low`). Empty when the file cannot be read.
    public static func kernelHeadroom(zoneinfo text: String? = readProcFile("/proc/zoneinfo")) -> [Int: Int] {
        guard let text else { return [:] }
        var out: [Int: Int] = [:]
        var node: Int? = nil
        var free: Int? = nil
        func field(_ line: Substring, _ name: String) -> Int? {
            let f = line.split(separator: " ")
            if f.count == 3 && f[0] == "pages" && f[1] == "free" && name == "free" { return Int(f[2]) }
            return f.count == 2 && f[0] == name ? Int(f[1]) : nil
        }
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Node ") {
                node = Int(line.dropFirst(5).prefix { $0 != "," })
                free = nil
            } else if let n = node {
                if let v = field(line, "free") { free = v }
                if let low = field(line, "low"), let f = free {
                    out[n, default: 0] += max(0, f - low)
                    free = nil
                }
            }
        }
        return out
    }

    /// The whole of a /proc file, read() until end of file: procfs files say
    /// they are 0 bytes long, and String(contentsOfFile:) returned only the
    /// first part of /proc/zoneinfo (node 0's zones) in the guest.
    public static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            data.append(contentsOf: buf[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Fills node index `node` of `a` with order-0 __GFP_THISNODE allocations
    /// from its home CPU until its free pages above LOW (summed over its zones)
    /// are at most `headroom`. Returns the blocks, for the caller to free.
    static func fill(_ a: PageAllocator, node: Int, headroom: Int) -> [PageBlock] {
        let zones = (0..<a.zonesPerNode).map { node * a.zonesPerNode + $0 }
        func above() -> Int { zones.reduce(0) { $0 + max(0, a.freePages(zone: $1) - a.zoneDescription($1).low) } }
        let cpu = a.topology.homeCPU(of: node)
        var held: [PageBlock] = []
        while above() > headroom,
              let b = try? a.allocate(order: Order(unchecked: 0), flags: [.kernel, .thisNode, .noWarn], node: NodeID(node), cpu: cpu) {
            held.append(b)
        }
        return held
    }
}
