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

// MARK: - Reading tables

/// Reads one TOML table for the decoder: typed getters with defaults and
/// ranges, and a check that every key is known. Errors carry the key's line.
struct TableReader {
    let file: String
    let path: String
    let table: TOMLTable

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String?, _ message: String, line: Int? = nil) -> WorkloadError {
        let l = line ?? key.flatMap { table[$0]?.line } ?? table.line
        return WorkloadError(file: file, line: l, field: key.map(field) ?? path, message: message)
    }

    /// Throws on the first key (in written order) that is not in `known`.
    func allowOnly(_ known: [String]) throws(WorkloadError) {
        for k in table.keys where !known.contains(k) {
            let hint = known.first { $0.lowercased() == k.lowercased().replacingOccurrences(of: "-", with: "_") }
            throw fail(k, "unknown key '\(k)'\(hint.map { " (did you mean '\($0)'?)" } ?? ""); known keys here: \(known.joined(separator: ", "))")
        }
    }

    func has(_ key: String) -> Bool { table[key] != nil }

    func int(_ key: String) throws(WorkloadError) -> Int? {
        guard let v = table[key] else { return nil }
        guard let i = v.integer else { throw fail(key, "expected an integer, found a \(v.typeName)") }
        guard let n = Int(exactly: i) else { throw fail(key, "integer out of range") }
        return n
    }

    func int(_ key: String, default d: Int, range: ClosedRange<Int>, what: String? = nil) throws(WorkloadError) -> Int {
        guard let n = try int(key) else { return d }
        try check(key, n, range, what: what)
        return n
    }

    func check(_ key: String, _ n: Int, _ range: ClosedRange<Int>, what: String? = nil) throws(WorkloadError) {
        if n < range.lowerBound {
            throw fail(key, n < 0 && range.lowerBound >= 0
                       ? "must not be negative, got \(n)\(what.map { " (\($0))" } ?? "")"
                       : "must be at least \(range.lowerBound), got \(n)\(what.map { " (\($0))" } ?? "")")
        }
        if n > range.upperBound { throw fail(key, "must be at most \(range.upperBound), got \(n)\(what.map { " (\($0))" } ?? "")") }
    }

    func double(_ key: String) throws(WorkloadError) -> Double? {
        guard let v = table[key] else { return nil }
        guard let d = v.number else { throw fail(key, "expected a number, found a \(v.typeName)") }
        return d
    }

    func string(_ key: String) throws(WorkloadError) -> String? {
        guard let v = table[key] else { return nil }
        guard let s = v.string else { throw fail(key, "expected a string, found a \(v.typeName)") }
        return s
    }

    func string(_ key: String, default d: String, oneOf allowed: [String]? = nil) throws(WorkloadError) -> String {
        guard let s = try string(key) else { return d }
        if let allowed, !allowed.contains(s) {
            throw fail(key, "'\(s)' is not one of: \(allowed.joined(separator: ", "))")
        }
        return s
    }

    func bool(_ key: String, default d: Bool) throws(WorkloadError) -> Bool {
        guard let v = table[key] else { return d }
        guard let b = v.bool else { throw fail(key, "expected true or false, found a \(v.typeName)") }
        return b
    }

    func intArray(_ key: String) throws(WorkloadError) -> [Int]? {
        guard let v = table[key] else { return nil }
        guard let a = v.array else { throw fail(key, "expected an array of integers, found a \(v.typeName)") }
        var out: [Int] = []
        for (i, e) in a.enumerated() {
            guard let n = e.integer.flatMap({ Int(exactly: $0) }) else { throw fail(key, "element \(i) must be an integer, found a \(e.typeName)", line: e.line) }
            out.append(n)
        }
        return out
    }

    func subtable(_ key: String) throws(WorkloadError) -> TableReader? {
        guard let v = table[key] else { return nil }
        guard let t = v.table else { throw fail(key, "expected a table, found a \(v.typeName)") }
        return TableReader(file: file, path: field(key), table: t)
    }

    /// An array of tables (`[[key]]` or an array of inline tables).
    func tables(_ key: String) throws(WorkloadError) -> [TableReader] {
        guard let v = table[key] else { return [] }
        guard let a = v.array else {
            let hint = v.table != nil ? " (a [[\(field(key)).…]] header needs a [[\(field(key))]] header above it)" : ""
            throw fail(key, "expected an array of tables ([[\(field(key))]]), found a \(v.typeName)\(hint)")
        }
        var out: [TableReader] = []
        for (i, e) in a.enumerated() {
            guard let t = e.table else { throw fail(key, "element \(i) must be a table, found a \(e.typeName)", line: e.line) }
            out.append(TableReader(file: file, path: "\(field(key))[\(i)]", table: t))
        }
        return out
    }
}

// MARK: - The decoder

struct WorkloadDecoder {
    let file: String
    let machine: Topology

    static let rootKeys = ["name", "kind", "description", "source", "topology", "memory", "run", "policy", "harness", "reclaim",
                           "fail_page_alloc", "memory_group", "lock", "group"]
    static let topologyKeys = ["kind", "nodes", "cpus_per_node", "distances"]
    static let memoryKeys = ["arena_mib", "zones", "page_size", "min_free_kbytes", "watermark_scale_factor",
                             "lowmem_reserve_ratio", "pcp_max_order", "percpu_pagelist_high_fraction", "bind_memory",
                             "swap_pages", "swap_mib", "warn_ratelimit_ms"]
    static let runKeys = ["duration_ms", "ops", "warmup_ms", "seed", "sample_every", "timeout_ms", "bucket_ms"]
    static let groupKeys = ["name", "workers", "pin", "cpus", "nodes", "loop", "rate", "oom_score_adj", "restart", "restart_delay_ms", "memory_group", "op"]
    static let allocKeys = ["kind", "name", "weight", "order", "orders", "flags", "need", "count", "lock", "free",
                            "batch", "live", "prefill", "free_on", "touch", "node", "reclaimable", "initial", "reserve"]
    static let reclaimKeys = ["writeback_ns_per_page", "swap_ns_per_page", "batch"]
    static let faultKeys = ["probability", "interval", "times", "space", "verbose", "ignore-gfp-wait", "ignore-gfp-highmem", "min-order",
                            "ignore_gfp_wait", "ignore_gfp_highmem", "min_order", "seed"]
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
        let total = groups.reduce(0) { $0 + $1.workers }
        guard total <= 4096 else { throw groupReaders[0].fail("workers", "\(total) workers in all; at most 4096") }
        return Workload(name: name, kind: WorkloadKind(rawValue: kind)!, description: description, source: source,
                        topology: topo.spec, memory: memory, run: run, policy: policy, harness: harness, reclaim: reclaim,
                        failPageAlloc: faults, memoryGroups: memoryGroups, locks: locks, groups: groups)
    }

    // MARK: topology

    func decodeTopology(_ r: TableReader) throws(WorkloadError) -> (spec: TopologySpec, reader: TableReader) {
        try r.allowOnly(WorkloadDecoder.topologyKeys)
        let declaredKeys = ["nodes", "cpus_per_node", "distances"].filter(r.has)
        let kind = try r.string("kind", default: declaredKeys.isEmpty ? "machine" : "declared", oneOf: ["machine", "declared"])
        if kind == "machine" {
            if let k = declaredKeys.first {
                throw r.fail(k, "contradicts kind = \"machine\" (the machine's topology is discovered); use kind = \"declared\" to declare nodes")
            }
            return (TopologySpec(kind: "machine", nodes: machine.nodeCount, cpusPerNode: machine.nodes.map(\.cpus.count),
                                 distances: machine.distance), r)
        }
        let nodes = try r.int("nodes", default: 1, range: 1...64)
        var perNode: [Int]
        if let v = r.table["cpus_per_node"], v.array != nil {
            perNode = try r.intArray("cpus_per_node")!
            guard perNode.count == nodes else {
                throw r.fail("cpus_per_node", "lists \(perNode.count) node(s) but nodes = \(nodes)")
            }
            for c in perNode { try r.check("cpus_per_node", c, 1...1024) }
        } else {
            let c = try r.int("cpus_per_node", default: max(1, machine.cpuCount / nodes), range: 1...1024)
            perNode = Array(repeating: c, count: nodes)
        }
        var distances = (0..<nodes).map { a in (0..<nodes).map { b in a == b ? 10 : 20 } }
        if let v = r.table["distances"] {
            guard let rows = v.array else { throw r.fail("distances", "expected an array of arrays of integers, found a \(v.typeName)") }
            var m: [[Int]] = []
            for row in rows {
                guard let cells = row.array else { throw r.fail("distances", "each row must be an array of integers, found a \(row.typeName)", line: row.line) }
                var out: [Int] = []
                for c in cells {
                    guard let n = c.integer.flatMap({ Int(exactly: $0) }) else { throw r.fail("distances", "distances must be integers, found a \(c.typeName)", line: c.line) }
                    out.append(n)
                }
                m.append(out)
            }
            distances = m
        }
        return (TopologySpec(kind: "declared", nodes: nodes, cpusPerNode: perNode, distances: distances), r)
    }

    func buildTopology(_ spec: TopologySpec, reader r: TableReader) throws(WorkloadError) -> Topology {
        if spec.kind == "machine" { return machine }
        do { return try Topology.declared(cpusPerNode: spec.cpusPerNode, distance: spec.distances) } catch {
            throw r.fail(r.has("distances") ? "distances" : "nodes", "\(error)")
        }
    }

    // MARK: memory

    func decodeMemory(_ r: TableReader, nodes: Int) throws(WorkloadError) -> MemorySpec {
        try r.allowOnly(WorkloadDecoder.memoryKeys)
        let pageSize = try r.int("page_size", default: 4096, range: 4096...65536)
        guard pageSize & (pageSize - 1) == 0 else { throw r.fail("page_size", "must be a power of two, got \(pageSize)") }
        if r.has("arena_mib") && r.has("zones") {
            throw r.fail("zones", "contradicts arena_mib (give one: arena_mib makes one Normal zone per node)")
        }
        var zones: [ZoneRecord] = []
        if r.has("zones") {
            let zs = try r.tables("zones")
            guard !zs.isEmpty else { throw r.fail("zones", "needs at least one zone") }
            var last = -1
            for z in zs {
                try z.allowOnly(["type", "mib", "pages"])
                guard let typeName = try z.string("type") else { throw z.fail(nil, "a zone needs a type (DMA, DMA32, Normal or Movable)") }
                guard let type = ZoneType(name: typeName) else { throw z.fail("type", "'\(typeName)' is not a zone type (DMA, DMA32, Normal, Movable)") }
                guard type.rawValue > last else { throw z.fail("type", "zones must be listed lowest first, each type once (DMA, DMA32, Normal, Movable)") }
                last = type.rawValue
                if z.has("mib") && z.has("pages") { throw z.fail("pages", "contradicts mib (give one)") }
                let pages: Int
                if let mib = try z.int("mib") {
                    try z.check("mib", mib, 1...(1 << 22))
                    pages = mib * (1 << 20) / pageSize
                } else if let p = try z.int("pages") {
                    try z.check("pages", p, 1...AllocatorConfig.maxPagesPerNode)
                    pages = p
                } else {
                    throw z.fail(nil, "a zone needs its size: mib = N or pages = N")
                }
                zones.append(ZoneRecord(type: type.name, pages: pages))
            }
        } else {
            let mib = try r.int("arena_mib", default: 64, range: 1...(1 << 22))
            zones = [ZoneRecord(type: "Normal", pages: mib * (1 << 20) / pageSize)]
        }
        let perNode = zones.reduce(0) { $0 + $1.pages }
        guard perNode <= AllocatorConfig.maxPagesPerNode else {
            throw r.fail(r.has("zones") ? "zones" : "arena_mib", "\(perNode) pages per node; at most \(AllocatorConfig.maxPagesPerNode)")
        }
        let given = try r.int("min_free_kbytes")
        if let g = given { try r.check("min_free_kbytes", g, 0...(1 << 30)) }
        let minFree = given ?? KernelFormulas.minFreeKbytes(lowmemKbytes: perNode * nodes * (pageSize / 1024))
        let wsf = try r.int("watermark_scale_factor", default: 10, range: 1...3000, what: "as vm.watermark_scale_factor")
        let ratios = try r.intArray("lowmem_reserve_ratio") ?? ZoneType.allCases.map(\.defaultLowmemReserveRatio)
        guard (1...4).contains(ratios.count) else { throw r.fail("lowmem_reserve_ratio", "needs 1 to 4 ratios (DMA, DMA32, Normal, Movable), got \(ratios.count)") }
        for x in ratios { try r.check("lowmem_reserve_ratio", x, 0...Int(Int32.max)) }
        let pcpMax = try r.int("pcp_max_order", default: Order.pcpMax, range: -1...Order.pcpMax, what: "-1 turns the per-CPU lists off")
        let fraction = try r.int("percpu_pagelist_high_fraction", default: 0, range: 0...Int(Int32.max))
        if fraction != 0 && fraction < 8 { throw r.fail("percpu_pagelist_high_fraction", "must be 0 (auto) or at least 8, as the sysctl; got \(fraction)") }
        let bind = try r.bool("bind_memory", default: true)
        if r.has("swap_pages") && r.has("swap_mib") { throw r.fail("swap_mib", "contradicts swap_pages (give one)") }
        var swap = try r.int("swap_pages", default: 0, range: 0...(1 << 40), what: "swap slots in pages")
        if let mib = try r.int("swap_mib") {
            try r.check("swap_mib", mib, 0...(1 << 22))
            swap = mib * (1 << 20) / pageSize
        }
        let ratelimit = try r.int("warn_ratelimit_ms", default: 10_000, range: 0...86_400_000, what: "one printed allocation-failure warning per this many ms")
        return MemorySpec(pageSize: pageSize, zones: zones, minFreeKbytes: minFree, minFreeKbytesGiven: given != nil,
                          watermarkScaleFactor: wsf, lowmemReserveRatio: ratios, pcpMaxOrder: pcpMax,
                          percpuPagelistHighFraction: fraction, bindMemory: bind, swapPages: swap, warnRatelimitMs: ratelimit)
    }

    // MARK: run

    func decodeRun(_ r: TableReader) throws(WorkloadError) -> RunSpec {
        try r.allowOnly(WorkloadDecoder.runKeys)
        if r.has("duration_ms") && r.has("ops") {
            throw r.fail("ops", "contradicts duration_ms: a run is either timed (duration_ms) or counted (ops per worker), not both")
        }
        let ops = try r.int("ops")
        if let o = ops { try r.check("ops", o, 1...(1 << 40), what: "operations per worker") }
        let duration = ops == nil ? try r.int("duration_ms", default: 1000, range: 1...86_400_000) : nil
        let warmup = try r.int("warmup_ms", default: 0, range: 0...3_600_000)
        let seed = try r.int("seed", default: 1, range: 0...Int.max)
        let sample = try r.int("sample_every", default: 16, range: 1...(1 << 20), what: "time 1 in N allocator calls")
        guard sample & (sample - 1) == 0 else { throw r.fail("sample_every", "must be a power of two (1, 2, 4, ...), got \(sample)") }
        let timeout = try r.int("timeout_ms", default: 60_000, range: 1...86_400_000)
        let bucket = try r.int("bucket_ms", default: 100, range: 1...60_000)
        return RunSpec(mode: ops == nil ? "duration" : "ops", durationMs: duration, ops: ops, warmupMs: warmup, seed: UInt64(seed),
                       sampleEvery: sample, timeoutMs: timeout, bucketMs: bucket)
    }

    // MARK: policy and locks

    /// A scalar setting as text: strings as written, integers in decimal, booleans as true/false.
    func settingText(_ r: TableReader, _ k: String) throws(WorkloadError) -> String {
        let v = r.table[k]!
        if let s = v.string { return s }
        if let i = v.integer { return String(i) }
        if let b = v.bool { return b ? "true" : "false" }
        if let d = v.number { return String(d) }
        throw r.fail(k, "expected a string, a number or a boolean, found a \(v.typeName)")
    }

    /// `[policy]`: the allocator's SlowPathPolicy knobs, every key resolved to its canonical text.
    func decodePolicy(_ r: TableReader?) throws(WorkloadError) -> [String: String] {
        guard let r else { return Policy.defaults }
        try r.allowOnly(Policy.keys)
        var p = SlowPathPolicy()
        for k in r.table.keys {
            let text = try settingText(r, k)
            do { try p.set(k, text) } catch { throw r.fail(k, "'\(text)' is not accepted: expected \(error.expected)") }
        }
        return Policy.canonical(p)
    }

    /// `[harness]`: the callers' side and the measurement (HarnessSpec.table).
    func decodeHarness(_ r: TableReader?) throws(WorkloadError) -> HarnessSpec {
        var h = HarnessSpec()
        guard let r else { return h }
        try r.allowOnly(HarnessSpec.keys)
        for k in r.table.keys {
            let text = try settingText(r, k)
            do { try h.set(k, text) } catch { throw r.fail(k, "'\(text)' is not accepted: expected \(error.expected)") }
        }
        return h
    }

    func decodeReclaim(_ r: TableReader?) throws(WorkloadError) -> ReclaimSpec {
        var s = ReclaimSpec()
        guard let r else { return s }
        try r.allowOnly(WorkloadDecoder.reclaimKeys)
        s.writebackNsPerPage = try r.int("writeback_ns_per_page", default: s.writebackNsPerPage, range: 0...1_000_000_000, what: "simulated writeback time per dirty page")
        s.swapNsPerPage = try r.int("swap_ns_per_page", default: s.swapNsPerPage, range: 0...1_000_000_000, what: "simulated swap-out time per page")
        s.batch = try r.int("batch", default: s.batch, range: 1...1_000_000, what: "pages one reclaim pass aims for")
        return s
    }

    /// `[fail_page_alloc]`: the debugfs knobs with their kernel names (or with underscores).
    func decodeFailPageAlloc(_ r: TableReader?) throws(WorkloadError) -> FaultInjectionSettings {
        var s = FaultInjectionSettings()
        guard let r else { return s }
        try r.allowOnly(WorkloadDecoder.faultKeys)
        for k in r.table.keys {
            var text = try settingText(r, k)
            if k.contains("ignore") { text = text == "true" ? "Y" : (text == "false" ? "N" : text) }
            do { try s.set(k, text) } catch {
                if case .invalid(_, _, let reason) = error { throw r.fail(k, reason) }
                throw r.fail(k, "\(error)")
            }
        }
        return s
    }

    /// `[[memory_group]]`: a name and a page limit each.
    func decodeMemoryGroups(_ rs: [TableReader], pageSize: Int) throws(WorkloadError) -> [MemoryGroupSpec] {
        var out: [MemoryGroupSpec] = []
        for r in rs {
            try r.allowOnly(["name", "limit_pages", "limit_mib"])
            guard let n = try r.string("name"), !n.isEmpty else { throw r.fail("name", "a memory group needs a name") }
            if out.contains(where: { $0.name == n }) { throw r.fail("name", "memory group '\(n)' is declared twice") }
            if r.has("limit_pages") && r.has("limit_mib") { throw r.fail("limit_mib", "contradicts limit_pages (give one)") }
            let limit: Int
            if let p = try r.int("limit_pages") {
                try r.check("limit_pages", p, 1...(1 << 40))
                limit = p
            } else if let m = try r.int("limit_mib") {
                try r.check("limit_mib", m, 1...(1 << 22))
                limit = m * (1 << 20) / pageSize
            } else {
                throw r.fail(nil, "memory group '\(n)' needs its limit: limit_pages = N or limit_mib = N")
            }
            out.append(MemoryGroupSpec(name: n, limitPages: limit))
        }
        return out
    }

    func decodeLocks(_ rs: [TableReader]) throws(WorkloadError) -> [LockSpec] {
        var out: [LockSpec] = []
        for r in rs {
            try r.allowOnly(["name"])
            guard let n = try r.string("name"), !n.isEmpty else { throw r.fail("name", "a lock needs a name") }
            if out.contains(where: { $0.name == n }) { throw r.fail("name", "lock '\(n)' is declared twice") }
            out.append(LockSpec(name: n))
        }
        return out
    }

    // MARK: groups and operations

    func decodeGroup(_ r: TableReader, index: Int, topology: Topology, memory: MemorySpec,
                     locks: [LockSpec], memoryGroups: [MemoryGroupSpec]) throws(WorkloadError) -> (GroupSpec, [TableReader]) {
        try r.allowOnly(WorkloadDecoder.groupKeys)
        let name = try r.string("name", default: "group\(index)")
        guard !name.isEmpty, name != "self" else { throw r.fail("name", "'\(name)' cannot name a group") }
        let pin = try r.string("pin", default: "cpu", oneOf: ["cpu", "node", "none"])
        let cpuCount = topology.cpuCount
        var cpus = try r.intArray("cpus") ?? Array(0..<cpuCount)
        if r.has("cpus") {
            guard !cpus.isEmpty else { throw r.fail("cpus", "lists no CPU") }
            for c in cpus where c < 0 || c >= cpuCount {
                throw r.fail("cpus", "cpu \(c) does not exist: this topology has \(cpuCount) CPU(s), 0...\(cpuCount - 1)")
            }
            if Set(cpus).count != cpus.count { throw r.fail("cpus", "lists a CPU twice") }
            if pin == "node" { throw r.fail("cpus", "contradicts pin = \"node\" (use nodes = [...])") }
        }
        var nodes = try r.intArray("nodes") ?? Array(0..<topology.nodeCount)
        if r.has("nodes") {
            guard !nodes.isEmpty else { throw r.fail("nodes", "lists no node") }
            for n in nodes where n < 0 || n >= topology.nodeCount {
                throw r.fail("nodes", "node \(n) does not exist: this topology has \(topology.nodeCount) node(s), 0...\(topology.nodeCount - 1)")
            }
            if pin != "node" { throw r.fail("nodes", "only applies with pin = \"node\"") }
        }
        if pin == "none" { cpus = Array(0..<cpuCount) }
        if pin != "node" { nodes = Array(0..<topology.nodeCount) }
        let defaultWorkers = pin == "node" ? nodes.reduce(0) { $0 + topology.nodes[$1].cpus.count } : cpus.count
        let workers = try r.int("workers", default: defaultWorkers, range: 1...4096)
        let loop = try r.string("loop", default: "closed", oneOf: ["closed", "open"])
        var rate: Double? = nil
        if let x = try r.double("rate") {
            guard loop == "open" else { throw r.fail("rate", "contradicts loop = \"closed\" (a closed loop runs as fast as it can; set loop = \"open\")") }
            guard x > 0, x <= 1e9 else { throw r.fail("rate", "must be more than 0 and at most 1e9 operations per second per worker, got \(x)") }
            rate = x
        } else if loop == "open" {
            throw r.fail("loop", "an open loop needs rate = <operations per second per worker>")
        }
        let adj = try r.int("oom_score_adj", default: 0, range: -1000...1000, what: "as /proc/<pid>/oom_score_adj; -1000 is never chosen")
        let restart = try r.bool("restart", default: false)
        let restartDelay = try r.int("restart_delay_ms", default: 0, range: 0...600_000, what: "how long a killed worker waits before it restarts")
        if r.has("restart_delay_ms") && !restart { throw r.fail("restart_delay_ms", "needs restart = true") }
        let memoryGroup = try r.string("memory_group")
        if let m = memoryGroup, !memoryGroups.contains(where: { $0.name == m }) {
            throw r.fail("memory_group", "no memory group is named '\(m)'; declare it with [[memory_group]] name = \"\(m)\" and limit_pages = N\(memoryGroups.isEmpty ? "" : " (declared: \(memoryGroups.map(\.name).joined(separator: ", ")))")")
        }
        let opReaders = try r.tables("op")
        guard !opReaders.isEmpty else { throw r.fail(nil, "group '\(name)' has no operations: add [[group.op]] tables") }
        var ops: [OpSpec] = []
        for (i, o) in opReaders.enumerated() {
            ops.append(try decodeOp(o, index: i, topology: topology, memory: memory, locks: locks))
            if ops[i].nodeOffset != nil && pin == "none" {
                throw o.fail("node", "\"next\" needs a pinned group (pin = \"node\" or \"cpu\"): an unpinned worker has no node of its own")
            }
        }
        let totalWeight = ops.reduce(0) { $0 + $1.weight }
        guard totalWeight > 0 else { throw r.fail("op", "the weights of group '\(name)' sum to 0: no operation could ever run", line: opReaders[0].table.line) }
        return (GroupSpec(name: name, workers: workers, pin: pin, cpus: cpus, nodes: nodes, loop: loop, rate: rate,
                          oomScoreAdj: adj, restart: restart, restartDelayMs: restartDelay, memoryGroup: memoryGroup, ops: ops), opReaders)
    }

    func decodeOp(_ r: TableReader, index: Int, topology: Topology, memory: MemorySpec, locks: [LockSpec]) throws(WorkloadError) -> OpSpec {
        let kindName = try r.string("kind", default: "alloc", oneOf: OpKind.allCases.map(\.rawValue))
        let kind = OpKind(rawValue: kindName)!
        try r.allowOnly(kind == .alloc ? WorkloadDecoder.allocKeys : WorkloadDecoder.consumeKeys)
        let name = try r.string("name", default: "\(kindName)\(index)")
        let weight = try r.int("weight", default: 1, range: 0...1_000_000)
        if kind == .consume {
            let batch = try r.int("batch", default: 16, range: 1...65536)
            return OpSpec(name: name, kind: .consume, weight: weight, orders: [], flags: "", need: 0, count: 0, lock: nil,
                          free: .immediate, batch: batch, live: nil, prefill: false, freeOn: nil, touch: 0, node: nil,
                          reclaimable: nil, initial: 0, reserve: nil)
        }
        // Orders.
        if r.has("order") && r.has("orders") { throw r.fail("orders", "contradicts order (give one: order = N, or orders = { N = weight, ... })") }
        var orders: [OrderWeight] = []
        if let t = try r.subtable("orders") {
            for (k, v) in t.table.entries {
                guard let o = Int(k) else { throw t.fail(k, "'\(k)' is not an order (orders are 0...\(Order.maxOrder))") }
                try t.check(k, o, 0...Order.maxOrder, what: "orders are 0...\(Order.maxOrder)")
                guard let w = v.integer.flatMap({ Int(exactly: $0) }) else { throw t.fail(k, "the weight of order \(o) must be an integer, found a \(v.typeName)") }
                try t.check(k, w, 0...1_000_000, what: "weight of order \(o)")
                orders.append(OrderWeight(order: o, weight: w))
            }
            guard orders.reduce(0, { $0 + $1.weight }) > 0 else { throw r.fail("orders", "the order weights sum to 0") }
        } else {
            let o = try r.int("order", default: 0, range: 0...Order.maxOrder, what: "orders are 0...\(Order.maxOrder)")
            orders = [OrderWeight(order: o, weight: 1)]
        }
        let largestZone = memory.zones.map(\.pages).max() ?? 0
        for ow in orders where ow.weight > 0 && (1 << ow.order) > largestZone {
            throw r.fail(r.has("orders") ? "orders" : "order", "order \(ow.order) needs \(1 << ow.order) pages but the largest zone has \(largestZone)")
        }
        // Flags.
        let flagText = try r.string("flags", default: "GFP_KERNEL")
        let gfp: GFP
        do { gfp = try GFP(parsing: flagText) } catch { throw r.fail("flags", error.description) }
        let need = try r.int("need", default: 1, range: 0...3, what: "Ts'o's levels of need are 0...3")
        let count = try r.int("count", default: 1, range: 1...4096)
        var lock: String? = nil
        if let l = try r.string("lock") {
            guard locks.contains(where: { $0.name == l }) else {
                throw r.fail("lock", "lock '\(l)' is used but never declared; declare it with [[lock]] name = \"\(l)\"\(locks.isEmpty ? "" : " (declared: \(locks.map(\.name).joined(separator: ", ")))")")
            }
            lock = l
        }
        let free = Lifetime(rawValue: try r.string("free", default: "immediate", oneOf: Lifetime.allCases.map(\.rawValue)))!
        let batch = try r.int("batch")
        let live = try r.int("live")
        if let b = batch { try r.check("batch", b, 1...1_000_000) }
        if let l = live { try r.check("live", l, 1...10_000_000) }
        switch free {
        case .immediate:
            if batch != nil { throw r.fail("batch", "contradicts free = \"immediate\" (a batch applies to lifo, fifo and random)") }
            if live != nil { throw r.fail("live", "contradicts free = \"immediate\" (live applies to lifo, fifo, random and keep)") }
        case .lifo, .fifo, .random:
            if batch != nil && live != nil { throw r.fail("live", "contradicts batch: free = \"\(free.rawValue)\" takes batch = N (free all N at once) or live = N (keep N held), not both") }
            if batch == nil && live == nil { throw r.fail("free", "free = \"\(free.rawValue)\" needs batch = N (free all N at once) or live = N (keep N held)") }
        case .keep:
            if batch != nil { throw r.fail("batch", "contradicts free = \"keep\" (keep holds live = N blocks)") }
            if live == nil { throw r.fail("free", "free = \"keep\" needs live = N (the blocks held until the end)") }
        }
        let prefill = try r.bool("prefill", default: false)
        if prefill && live == nil { throw r.fail("prefill", "needs live = N (prefill fills the held pool to N before the start)") }
        var freeOn = try r.string("free_on")
        if freeOn == "self" { freeOn = nil }
        if freeOn != nil && free == .keep { throw r.fail("free_on", "contradicts free = \"keep\" (kept blocks are freed by their owner at the end)") }
        let touch = try r.int("touch", default: 0, range: 0...memory.pageSize, what: "bytes at the start of each page, at most the page size")
        guard touch % 8 == 0 else { throw r.fail("touch", "must be a multiple of 8 bytes, got \(touch)") }
        var node: Int? = nil
        var nodeOffset: Int? = nil
        if r.table["node"]?.string != nil {
            guard try r.string("node") == "next" else {
                throw r.fail("node", "must be a node number or \"next\" (the node after the worker's own), got \"\(try r.string("node") ?? "")\"")
            }
            nodeOffset = 1
        } else if let n = try r.int("node") {
            guard n >= 0 && n < topology.nodeCount else {
                throw r.fail("node", "node \(n) does not exist: this topology has \(topology.nodeCount) node(s), 0...\(topology.nodeCount - 1)")
            }
            node = n
        }
        // Reclaimable memory: the allocator owns the blocks once they are on its LRU.
        let reclaimable = try r.string("reclaimable", default: "", oneOf: ["clean", "dirty", "anon"])
        let initial = try r.int("initial", default: 0, range: 0...10_000_000, what: "blocks created before the start")
        if !reclaimable.isEmpty {
            if r.has("free") && free != .immediate { throw r.fail("free", "contradicts reclaimable = \"\(reclaimable)\" (the allocator frees LRU pages: reclaim, kswapd, the OOM reaper, the task's exit)") }
            for k in ["batch", "live", "prefill", "free_on"] where r.has(k) {
                throw r.fail(k, "contradicts reclaimable = \"\(reclaimable)\" (the blocks go to the allocator's LRU; use initial = N to create some before the start)")
            }
        } else if r.has("initial") {
            throw r.fail("initial", "needs reclaimable = \"clean\", \"dirty\" or \"anon\" (pools of held blocks are filled with live = N and prefill = true)")
        }
        let reserve = try r.int("reserve")
        if let n = reserve {
            try r.check("reserve", n, 1...(1 << 30), what: "pages reserved before the operation")
            if !reclaimable.isEmpty { throw r.fail("reserve", "contradicts reclaimable (a reservation covers a transaction's held allocations)") }
        }
        var spec = OpSpec(name: name, kind: .alloc, weight: weight, orders: orders.sorted { $0.order < $1.order }, flags: gfp.description,
                          need: need, count: count, lock: lock, free: free, batch: batch, live: live, prefill: prefill,
                          freeOn: freeOn, touch: touch, node: node, reclaimable: reclaimable.isEmpty ? nil : reclaimable,
                          initial: initial, reserve: reserve)
        spec.nodeOffset = nodeOffset
        return spec
    }

    /// Every `free_on` names a group, and every group that receives blocks has a consume operation (and vice versa).
    func checkHandoffs(_ groups: [GroupSpec], opReaders: [[TableReader]], groupReaders: [TableReader]) throws(WorkloadError) {
        var receivers = Set<String>()
        for (g, group) in groups.enumerated() {
            for (i, op) in group.ops.enumerated() {
                guard let target = op.freeOn else { continue }
                guard let tg = groups.first(where: { $0.name == target }) else {
                    throw opReaders[g][i].fail("free_on", "no group is named '\(target)' (groups: \(groups.map(\.name).joined(separator: ", ")); or \"self\")")
                }
                guard tg.ops.contains(where: { $0.kind == .consume && $0.weight > 0 }) else {
                    throw opReaders[g][i].fail("free_on", "group '\(target)' receives blocks but has no consume operation with a weight above 0 to free them")
                }
                receivers.insert(target)
            }
        }
        for (g, group) in groups.enumerated() {
            if let i = group.ops.firstIndex(where: { $0.kind == .consume }), !receivers.contains(group.name) {
                throw opReaders[g][i].fail("kind", "group '\(group.name)' consumes, but no operation hands it blocks (free_on = \"\(group.name)\")")
            }
        }
    }
}
