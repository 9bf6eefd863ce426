import CNUMA
import Foundation
import PageAllocator
import Topology

/// Drives the real kernel's page allocator under a memory policy and the
/// model under the same topology and policy, and compares their numastat
/// deltas (`pagestorm fault-pages`).
public enum PolicyFidelity {
    /// The machine's /sys/devices/system/node/node*/numastat, by machine node number.
    public static func readSysNumastat() -> [Int: NodeNumaStat] {
        var out: [Int: NodeNumaStat] = [:]
        let base = "/sys/devices/system/node"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return out }
        for name in names where name.hasPrefix("node") {
            guard let n = Int(name.dropFirst(4)),
                  let text = try? String(contentsOfFile: "\(base)/\(name)/numastat", encoding: .utf8) else { continue }
            var s = NodeNumaStat(node: n)
            for line in text.split(separator: "\n") {
                let f = line.split(separator: " ")
                guard f.count == 2, let v = Int(f[1]) else { continue }
                switch f[0] {
                case "numa_hit": s.numaHit = v
                case "numa_miss": s.numaMiss = v
                case "numa_foreign": s.numaForeign = v
                case "interleave_hit": s.interleaveHit = v
                case "local_node": s.localNode = v
                case "other_node": s.otherNode = v
                default: break
                }
            }
            out[n] = s
        }
        return out
    }

    public struct KernelRun: Sendable {
        /// numastat deltas, in the order of `nodes` (machine node numbers).
        public var nodes: [Int]
        public var delta: [NodeNumaStat]
        /// Where move_pages says the pages are: count per node of `nodes`; nil when it failed.
        public var placed: [Int]?
        public var setError: String?
    }

    static func mode(_ m: MemPolicy.Mode) -> Int32 {
        switch m {
        case .local: return Int32(CNUMA_MPOL_LOCAL)
        case .bind: return Int32(CNUMA_MPOL_BIND)
        case .interleave: return Int32(CNUMA_MPOL_INTERLEAVE)
        case .preferred: return Int32(CNUMA_MPOL_PREFERRED)
        case .preferredMany: return Int32(CNUMA_MPOL_PREFERRED_MANY)
        case .weightedInterleave: return Int32(CNUMA_MPOL_WEIGHTED_INTERLEAVE)
        }
    }

    /// Maps `pages` anonymous pages, sets the policy (set_mempolicy for the
    /// task, or mbind on the range), faults every page in from `realCPU`
    /// (pinned), and returns the numastat deltas of every machine node and
    /// where the pages are. `policy` names machine node numbers.
    public static func runKernel(policy: MemPolicy, pages: Int, realCPU: Int, useMbind: Bool) throws -> KernelRun {
        try Affinity.pinCurrentThread(toRealCPU: realCPU)
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let len = pages * pageSize
        guard let mem = cnuma_map_anon(len) else { throw RunFailure(message: "fault-pages: mmap of \(len) bytes failed", status: .toolFailed) }
        defer { cnuma_unmap(mem, len) }
        let mask = policy.mode == .local ? 0 : NodeMask(policy.nodes).bits
        // Weighted interleave takes its weights from sysfs, not from the call:
        // set them for the run, put the old ones back afterwards.
        let saved = policy.mode == .weightedInterleave ? try setInterleaveWeights(nodes: policy.nodes, weights: policy.weights) : [:]
        defer { restoreInterleaveWeights(saved) }
        let before = readSysNumastat()
        let rc = useMbind ? cnuma_mbind(mem, len, mode(policy.mode), mask) : cnuma_set_mempolicy(mode(policy.mode), mask)
        if rc != 0 {
            let what = useMbind ? "mbind" : "set_mempolicy"
            throw RunFailure(message: "fault-pages: \(what)(\(policy)) failed: \(String(cString: strerror(Int32(-rc)))) (errno \(-rc))\(rc == -Int32(EINVAL) ? "; this kernel may not know the policy" : "")",
                             status: .toolFailed)
        }
        cnuma_touch_pages(mem, len, pageSize)
        if !useMbind { _ = cnuma_set_mempolicy(Int32(CNUMA_MPOL_DEFAULT), 0) }
        let after = readSysNumastat()
        let nodes = after.keys.sorted()
        let delta = nodes.map { n in after[n]!.minus(before[n] ?? NodeNumaStat(node: n)) }
        var placed: [Int]? = nil
        let ptrs = (0..<pages).map { mem + $0 * pageSize }
        if let where_ = NUMAMemory.nodes(ofPages: ptrs) {
            placed = nodes.map { n in where_.filter { $0 == n }.count }
        }
        return KernelRun(nodes: nodes, delta: delta, placed: placed, setError: nil)
    }

    /// Where the kernel keeps the weights of weighted interleave (Linux 6.9+): one file per node.
    public static let weightDirectory = "/sys/kernel/mm/mempolicy/weighted_interleave"

    /// Linux 6.16+ also has an `auto` file (weights from the firmware's
    /// bandwidth data; writing a node's weight turns it off). Key -1 in the
    /// saved values holds it.
    static func autoFile() -> String? {
        for name in ["auto", "__auto_type"] where FileManager.default.fileExists(atPath: "\(weightDirectory)/\(name)") {
            return "\(weightDirectory)/\(name)"
        }
        return nil
    }

    /// Writes each node's weight to `weightDirectory`/nodeN and returns the
    /// values that were there (for `restoreInterleaveWeights`). Fails with a
    /// clear message when the kernel has no such directory (before 6.9) or a
    /// write is refused (not root).
    static func setInterleaveWeights(nodes: [Int], weights: [Int]) throws -> [Int: String] {
        guard FileManager.default.fileExists(atPath: weightDirectory) else {
            throw RunFailure(message: "fault-pages: weighted interleave needs Linux 6.9 or later (this kernel, \(kernelRelease() ?? "unknown"), has no \(weightDirectory)); scripts/numa-lab.sh --kernel backports boots Debian's 6.12", status: .toolFailed)
        }
        var saved: [Int: String] = [:]
        if let a = autoFile(), let v = try? String(contentsOfFile: a, encoding: .utf8) { saved[-1] = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        for (n, w) in zip(nodes, weights) {
            let path = "\(weightDirectory)/node\(n)"
            guard let old = try? String(contentsOfFile: path, encoding: .utf8) else {
                restoreInterleaveWeights(saved)
                throw RunFailure(message: "fault-pages: cannot read \(path) (no node \(n) weight in this kernel)", status: .toolFailed)
            }
            do { try String(w).write(toFile: path, atomically: false, encoding: .utf8) } catch {
                restoreInterleaveWeights(saved)
                throw RunFailure(message: "fault-pages: cannot write weight \(w) to \(path) (root needed): \(error)", status: .toolFailed)
            }
            saved[n] = old.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return saved
    }

    static func restoreInterleaveWeights(_ saved: [Int: String]) {
        for (n, v) in saved where n >= 0 { try? v.write(toFile: "\(weightDirectory)/node\(n)", atomically: false, encoding: .utf8) }
        // auto was on: turn it back on (it recomputes the weights it had). The kernel refuses
        // (ENODEV) when the machine has no bandwidth data: say so, the node weights are back.
        if saved[-1] == "true", let a = autoFile(), (try? String(contentsOfFile: a, encoding: .utf8))?.hasPrefix("true") != true {
            do { try "true".write(toFile: a, atomically: false, encoding: .utf8) } catch {
                FileHandle.standardError.write(Data("pagestorm: warning: could not turn \(a) back to true (\(error)); the node weights are restored, auto stays false\n".utf8))
            }
        }
    }

    /// The running kernel's release (`uname -r`), from /proc/sys/kernel/osrelease.
    public static func kernelRelease() -> String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether a kernel of this release counts weighted-interleave allocations
    /// as interleave_hit: 6.13 and later do (commit 264a88cafdbd, merged for
    /// 6.13-rc7); 6.9-6.12 do not (alloc_pages_mpol() counted MPOL_INTERLEAVE
    /// only; Debian's 6.12.95 still does not: not backported). nil when the
    /// release does not start with MAJOR.MINOR.
    public static func countsWeightedInterleaveHit(release: String) -> Bool? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2, release.first?.isNumber == true else { return nil }
        return (parts[0], parts[1]) >= (6, 13)
    }

    /// The model: `pages` order-0 allocations under `policy` (node indices)
    /// from logical CPU `cpu` of an allocator over `topology`; returns the
    /// numastat deltas per node. `headroom` (by node index): first fill those
    /// nodes until at most that many free pages are above LOW (the kernel's
    /// headroom, `--headroom`); the fill is not in the deltas.
    /// `weightedInterleaveHit`: count weighted-interleave allocations as
    /// interleave_hit (Linux 6.13+) or not (6.9-6.12).
    public static func runModel(topology: Topology, policy: MemPolicy, pages: Int, cpu: Int, headroom: [Int: Int] = [:],
                                weightedInterleaveHit: Bool = true) throws -> [NodeNumaStat] {
        var c = AllocatorConfig(topology: topology, pagesPerNode: max(4096, pages * 2))
        c.bindMemory = false
        c.weightedInterleaveHit = weightedInterleaveHit
        let a = try PageAllocator(c)
        var filler: [PageBlock] = []
        for (n, h) in headroom.sorted(by: { $0.key < $1.key }) where n < a.nodeCount { filler += fill(a, node: n, headroom: h) }
        let before = a.numastat()
        var cursor = InterleaveCursor()
        var held: [PageBlock] = []
        held.reserveCapacity(pages)
        for _ in 0..<pages { held.append(try a.allocate(order: Order(unchecked: 0), policy: policy, cursor: &cursor, cpu: CPUID(cpu))) }
        let after = a.numastat()
        for b in held { try a.free(b, cpu: CPUID(cpu)) }
        for b in filler { try a.free(b, cpu: a.topology.homeCPU(of: b.node.rawValue)) }
        a.drainAllCPUs()
        let left = try a.validate().allocated
        guard left == 0 else { throw RunFailure(message: "fault-pages: the model kept \(left) pages after freeing all", status: .toolFailed) }
        return after.minus(before).nodes
    }

    /// Compares the kernel's and the model's deltas as fractions of `pages`:
    /// every counter of every node within `tolerance`. Returns the disagreements.
    public static func disagreements(kernel: [NodeNumaStat], model: [NodeNumaStat], pages: Int, tolerance: Double) -> [String] {
        var out: [String] = []
        for (k, m) in zip(kernel, model) {
            for (kc, mc) in zip(k.counters, m.counters) {
                let kf = Double(kc.value) / Double(pages), mf = Double(mc.value) / Double(pages)
                if abs(kf - mf) > tolerance {
                    out.append("node\(k.node) \(kc.name): kernel \(kc.value) (\(pct(kf))), model \(mc.value) (\(pct(mf)))")
                }
            }
        }
        return out
    }

    static func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }

    /// The side-by-side table: one row per counter, kernel and model columns per node.
    public static func table(nodes: [Int], kernel: [NodeNumaStat], model: [NodeNumaStat]) -> String {
        func col(_ s: String) -> String { String(repeating: " ", count: max(0, 15 - s.count)) + s }
        var out = "counter         " + (kernel.isEmpty ? [] : nodes).map { col("kernel node\($0)") }.joined() + nodes.map { col("model node\($0)") }.joined() + "\n"
        for i in 0..<6 {
            let name = kernel.first?.counters[i].name ?? model[0].counters[i].name
            out += name.padding(toLength: 16, withPad: " ", startingAt: 0)
            out += kernel.map { col(String($0.counters[i].value)) }.joined() + model.map { col(String($0.counters[i].value)) }.joined() + "\n"
        }
        return out
    }
}
