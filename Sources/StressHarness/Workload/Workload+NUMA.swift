import PageAllocator
import Topology

/// What a group's numactl-style keys decide: CPU placement
/// (`cpunodebind`, `physcpubind`) and the memory policy (`mempolicy`).
struct GroupNUMAKeys {
    /// Replaces `pin`, `cpus`, `nodes` when cpunodebind or physcpubind is given.
    var pin: String?
    var cpus: [Int]?
    var nodes: [Int]?
    /// The policy's canonical spelling (nil: local, the default).
    var mempolicy: String?
}

extension WorkloadDecoder {
    /// `cpunodebind = "NODES"` (numactl -N: each worker on all CPUs of one of
    /// those nodes, round-robin; pin = "node"), `physcpubind = "CPUS"`
    /// (numactl -C: pin = "cpu" over those CPUs) and `mempolicy = "POLICY"`
    /// (numactl's spellings, see MemPolicy). Lists take numactl's forms.
    func decodeGroupNUMA(_ r: TableReader, name: String, topology: Topology) throws(WorkloadError) -> GroupNUMAKeys {
        var out = GroupNUMAKeys()
        let nodeIDs = topology.machineNode, cpuIDs = Array(0..<topology.cpuCount)
        if r.has("cpunodebind") && r.has("physcpubind") {
            throw r.fail("physcpubind", "group '\(name)': give cpunodebind or physcpubind, not both")
        }
        for (key, clash) in [("cpunodebind", ["pin", "cpus", "nodes"]), ("physcpubind", ["pin", "cpus", "nodes"])] where r.has(key) {
            if let c = clash.first(where: { r.has($0) }) {
                throw r.fail(key, "group '\(name)': \(key) replaces pin/cpus/nodes; remove '\(c)'")
            }
        }
        if let text = try r.string("cpunodebind") {
            let numbers: [Int]
            do { numbers = try NodeList.parse(text, valid: nodeIDs) } catch {
                throw r.fail("cpunodebind", "group '\(name)': cpunodebind \"\(text)\": \(error)")
            }
            let indices = numbers.map { topology.index(ofNumber: $0)! }
            if let m = indices.first(where: { !topology.hasCPUs($0) }) {
                // numactl refuses the same (--cpunodebind to a CPU-less node: "no CPUs").
                throw r.fail("cpunodebind", "group '\(name)': cpunodebind \"\(text)\": node \(topology.number(of: m)) is memory-only (no CPUs to run workers on); nodes with CPUs: \(NodeList.format(topology.cpuNodes.map(topology.number(of:)))). Put its memory to use with mempolicy = \"bind=\(topology.number(of: m))\"")
            }
            out.nodes = indices
            out.pin = "node"
        }
        if let text = try r.string("physcpubind") {
            do { out.cpus = try NodeList.parse(text, valid: cpuIDs, what: "cpu") } catch {
                throw r.fail("physcpubind", "group '\(name)': physcpubind \"\(text)\": \(error)")
            }
            out.pin = "cpu"
        }
        if let text = try r.string("mempolicy") {
            do { out.mempolicy = try MemPolicy.parse(text, nodes: nodeIDs).description } catch {
                throw r.fail("mempolicy", "group '\(name)': mempolicy \"\(text)\": \(error)")
            }
        }
        return out
    }
}

extension GroupSpec {
    /// The group's memory policy for the allocator (nil when local/default):
    /// parsed with the topology's node numbers, its nodes turned into indices.
    func memPolicy(topology: Topology) -> MemPolicy? {
        guard let m = mempolicy, let p = try? MemPolicy.parse(m, nodes: topology.machineNode), p.mode != .local else { return nil }
        return p.indexed(in: topology)
    }
}

extension Topology {
    /// "nodes 0,2 (node 2 memory-only)": the node numbers, for errors.
    var nodeNumbersText: String {
        let mo = memoryOnlyNodes.map { number(of: $0) }
        return "nodes \(NodeList.format(machineNode))" + (mo.isEmpty ? "" : " (memory-only: \(NodeList.format(mo)))")
    }
}

extension Workload {
    /// `--mempolicy GROUP=POLICY` (or `all=POLICY`): replaces groups' memory policies.
    public func settingMemPolicies(_ settings: [String]) throws(OverrideError) -> Workload {
        var w = self
        for s in settings {
            guard let eq = s.firstIndex(of: "=") else {
                throw OverrideError(message: "--mempolicy '\(s)': expected GROUP=POLICY, e.g. workers=interleave=0,1 (groups: \(groups.map(\.name).joined(separator: ", ")))")
            }
            let name = String(s[..<eq]), text = String(s[s.index(after: eq)...])
            let targets = name == "all" ? Array(w.groups.indices) : w.groups.indices.filter { w.groups[$0].name == name }
            guard !targets.isEmpty else {
                throw OverrideError(message: "--mempolicy '\(s)': no group is named '\(name)' (groups: \(groups.map(\.name).joined(separator: ", ")); or all)")
            }
            let p: MemPolicy
            do { p = try MemPolicy.parse(text, nodes: w.topology.numbers) } catch {
                throw OverrideError(message: "--mempolicy '\(s)': group '\(name)': \(error)")
            }
            for g in targets { w.groups[g].mempolicy = p.mode == .local ? nil : p.description }
        }
        return w
    }

    /// The groups with a memory policy, for allocators without nodes (peer
    /// allocators): each such group is refused with its name and policy.
    public func checkMemPoliciesSupported(by allocator: String, supported: Bool) throws(OverrideError) {
        guard !supported, let g = groups.first(where: { $0.mempolicy != nil }) else { return }
        throw OverrideError(message: "group '\(g.name)': mempolicy '\(g.mempolicy!)' needs NUMA nodes, and allocator '\(allocator)' has none (memory policies apply to pagestorm-buddy only)")
    }
}

extension TopologySpec {
    /// A topology description (for workloads built in code, e.g. `pagestorm numa`).
    public static func describing(_ t: Topology) -> TopologySpec {
        TopologySpec(kind: t.isDeclared ? "declared" : "machine", nodes: t.nodeCount, cpusPerNode: t.nodes.map(\.cpus.count), distances: t.distance,
                     nodeIDs: t.machineNode == Array(0..<t.nodeCount) ? nil : t.machineNode)
    }
}
