import TOMLReader
import Foundation
import PageAllocator
import Topology

/// A workload file that cannot be used: names the file, the line and the
/// field, and says what is wrong. One error per load (the first found).
public struct WorkloadError: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    /// Dotted path of the field, e.g. `group[0].op[1].order` (empty for syntax errors).
    public let field: String
    public let message: String

    public init(file: String, line: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? "\(file):\(line): \(message)" : "\(file):\(line): \(field): \(message)"
    }
}

extension Workload {
    /// Reads and resolves a workload file.
    public static func load(path: String, machine: Topology = Topology.discover()) throws(WorkloadError) -> Workload {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw WorkloadError(file: path, line: 0, field: "", message: "cannot read the workload file: \(error.localizedDescription)")
        }
        let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try parse(text, file: path, defaultName: base, machine: machine)
    }

    /// Parses and resolves workload text. `file` names it in errors.
    public static func parse(_ text: String, file: String, defaultName: String = "workload",
                             machine: Topology = Topology.discover()) throws(WorkloadError) -> Workload {
        let root: TOMLTable
        do { root = try TOML.parse(text, file: file) } catch {
            throw WorkloadError(file: file, line: error.line, field: "", message: "malformed TOML: \(error.message) (column \(error.column))")
        }
        return try WorkloadDecoder(file: file, machine: machine).decode(root, defaultName: defaultName)
    }
}

// MARK: - The decoder

struct WorkloadDecoder {
    let file: String
    let machine: Topology

    static let rootKeys = ["name", "kind", "description", "source", "topology", "memory", "run", "policy", "harness", "reclaim",
                           "fail_page_alloc", "memory_group", "lock", "group"]
    static let topologyKeys = ["kind", "nodes", "cpus_per_node", "distances", "node_ids"]
    static let memoryKeys = ["arena_mib", "zones", "page_size", "min_free_kbytes", "watermark_scale_factor",
                             "lowmem_reserve_ratio", "pcp_max_order", "percpu_pagelist_high_fraction", "bind_memory",
                             "swap_pages", "swap_mib", "warn_ratelimit_ms", "pressure", "weighted_interleave_hit"]
    static let runKeys = ["duration_ms", "ops", "warmup_ms", "seed", "sample_every", "timeout_ms", "bucket_ms", "allocator"]
    static let groupKeys = ["name", "workers", "pin", "cpus", "nodes", "loop", "rate", "oom_score_adj", "restart", "restart_delay_ms", "memory_group", "op", "cpunodebind", "physcpubind", "mempolicy"]
    static let allocKeys = ["kind", "name", "weight", "order", "orders", "flags", "need", "count", "lock", "free",
                            "batch", "live", "prefill", "free_on", "touch", "node", "reclaimable", "initial", "reserve", "label"]
    static let reclaimKeys = ["writeback_ns_per_page", "swap_ns_per_page", "batch"]
    static var faultKeys: [String] { FaultInjectionSettings.acceptedKeys }
    static let consumeKeys = ["kind", "name", "weight", "batch"]

    func decode(_ table: TOMLTable, defaultName: String) throws(WorkloadError) -> Workload {
        let r = TableReader(file: file, path: "", table: table)
        try r.allowOnly(WorkloadDecoder.rootKeys)
        let name = try r.string("name", default: defaultName)
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw r.fail("name", "'\(name)' must be non-empty letters, digits, '-', '_' or '.' (it names the results file)")
        }
        let kind = try r.string("kind", default: WorkloadKind.ops.rawValue, oneOf: WorkloadKind.allCases.map(\.rawValue))
        let description = try r.string("description", default: "")
        let source = try r.string("source", default: "")

        let topo = try decodeTopology(r.subtable("topology") ?? TableReader(file: file, path: "topology", table: TOMLTable(line: 1)))
        let topology = try buildTopology(topo.spec, reader: topo.reader)
        let memory = try decodeMemory(r.subtable("memory") ?? TableReader(file: file, path: "memory", table: TOMLTable(line: 1)), nodes: topo.spec.nodes)
        let run = try decodeRun(r.subtable("run") ?? TableReader(file: file, path: "run", table: TOMLTable(line: 1)))
        let policy = try decodePolicy(r.subtable("policy"))
        // rseq owns a per-CPU list by the real CPU a thread runs on; a declared
        // CPU is not one real CPU, so the allocator would refuse it. Say so here,
        // at the key, rather than when the allocator is built.
        if topo.spec.kind == "declared", policy["pcp_lock"] == "rseq", let pr = try r.subtable("policy") {
            throw pr.fail("pcp_lock", "\"rseq\" needs the machine's own CPUs, but this workload declares its topology ([topology] at line \(topo.reader.table.line)): a declared CPU is not one real CPU, so a restartable sequence cannot own its per-CPU list; use pcp_lock = \"auto\" (falls back to trylock) or \"trylock\"")
        }
        let harness = try decodeHarness(r.subtable("harness"))
        let reclaim = try decodeReclaim(r.subtable("reclaim"))
        let faults = try decodeFailPageAlloc(r.subtable("fail_page_alloc"))
        let memoryGroups = try decodeMemoryGroups(r.tables("memory_group"), pageSize: memory.pageSize)
        let locks = try decodeLocks(r.tables("lock"))

        let groupReaders = try r.tables("group")
        guard !groupReaders.isEmpty else {
            throw r.fail(nil, "a workload needs at least one worker group ([[group]] with at least one [[group.op]])")
        }
        var groups: [GroupSpec] = []
        var opReaders: [[TableReader]] = []
        for (i, g) in groupReaders.enumerated() {
            let (spec, readers) = try decodeGroup(g, index: i, topology: topology, memory: memory, locks: locks, memoryGroups: memoryGroups)
            if groups.contains(where: { $0.name == spec.name }) {
                throw g.fail("name", "group name '\(spec.name)' is used twice")
            }
            groups.append(spec)
            opReaders.append(readers)
        }
        try checkHandoffs(groups, opReaders: opReaders, groupReaders: groupReaders)
        for (i, g) in groups.enumerated() {
            if let rate = g.rate, let problem = Workload.rateProblem(rate, run: run) { throw groupReaders[i].fail("rate", problem) }
        }
        if (harness.stallOnceMs ?? 0) > 0, groups[0].loop != "open", let h = try r.subtable("harness") {
            throw h.fail("stall_once_ms", "stalls worker 0, which must run an open loop: set loop = \"open\" in the first [[group]]")
        }
        let total = groups.reduce(0) { $0 + $1.workers }
        guard total <= 4096 else { throw groupReaders[0].fail("workers", "\(total) workers in all; at most 4096") }
        return Workload(name: name, kind: WorkloadKind(rawValue: kind)!, description: description, source: source,
                        topology: topo.spec, memory: memory, run: run, policy: policy, harness: harness, reclaim: reclaim,
                        failPageAlloc: faults, memoryGroups: memoryGroups, locks: locks, groups: groups)
    }
}
