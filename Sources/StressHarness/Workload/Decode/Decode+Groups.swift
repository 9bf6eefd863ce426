import Foundation
import PageAllocator
import Topology

// [[group]] and [[group.op]], and the hand-offs between groups
extension WorkloadDecoder {
    func decodeGroup(_ r: TableReader, index: Int, topology: Topology, memory: MemorySpec,
                     locks: [LockSpec], memoryGroups: [MemoryGroupSpec]) throws(WorkloadError) -> (GroupSpec, [TableReader]) {
        try r.allowOnly(WorkloadDecoder.groupKeys)
        let name = try r.string("name", default: "group\(index)")
        guard !name.isEmpty, name != "self" else { throw r.fail("name", "'\(name)' cannot name a group") }
        let numa = try decodeGroupNUMA(r, name: name, topology: topology)
        var pin = "cpu"
        if let p = numa.pin { pin = p } else { pin = try r.string("pin", default: "cpu", oneOf: ["cpu", "node", "none"]) }
        let cpuCount = topology.cpuCount
        var cpus = Array(0..<cpuCount)
        if let c = numa.cpus { cpus = c } else if let c = try r.intArray("cpus") { cpus = c }
        if r.has("cpus") {
            guard !cpus.isEmpty else { throw r.fail("cpus", "lists no CPU") }
            for c in cpus where c < 0 || c >= cpuCount {
                throw r.fail("cpus", "group '\(name)': cpu \(c) does not exist: this topology has \(cpuCount) CPU(s), 0...\(cpuCount - 1)")
            }
            if Set(cpus).count != cpus.count { throw r.fail("cpus", "lists a CPU twice") }
            if pin == "node" { throw r.fail("cpus", "contradicts pin = \"node\" (use nodes = [...])") }
        }
        // Workers run on nodes with CPUs: by default those; a memory-only node named here is an error.
        var nodes = topology.cpuNodes
        if let n = numa.nodes { nodes = n } else if let n = try r.intArray("nodes") {
            guard !n.isEmpty else { throw r.fail("nodes", "lists no node") }
            nodes = []
            for number in n {
                guard let i = topology.index(ofNumber: number) else {
                    throw r.fail("nodes", "group '\(name)': node \(number) does not exist: \(topology.nodeNumbersText)")
                }
                guard topology.hasCPUs(i) else {
                    throw r.fail("nodes", "group '\(name)': node \(number) is memory-only (no CPUs to run workers on); nodes with CPUs: \(NodeList.format(topology.cpuNodes.map(topology.number(of:)))). Put its memory to use with mempolicy = \"bind=\(number)\"")
                }
                nodes.append(i)
            }
        }
        if r.has("nodes") && pin != "node" { throw r.fail("nodes", "only applies with pin = \"node\"") }
        if pin == "none" { cpus = Array(0..<cpuCount) }
        if pin != "node" { nodes = topology.cpuNodes }
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
            ops.append(try decodeOp(o, index: i, group: name, topology: topology, memory: memory, locks: locks))
            if ops[i].nodeOffset != nil && pin == "none" {
                throw o.fail("node", "\"next\" needs a pinned group (pin = \"node\" or \"cpu\"): an unpinned worker has no node of its own")
            }
        }
        let totalWeight = ops.reduce(0) { $0 + $1.weight }
        guard totalWeight > 0 else { throw r.fail("op", "the weights of group '\(name)' sum to 0: no operation could ever run", line: opReaders[0].table.line) }
        var group = GroupSpec(name: name, workers: workers, pin: pin, cpus: cpus, nodes: nodes, loop: loop, rate: rate,
                              oomScoreAdj: adj, restart: restart, restartDelayMs: restartDelay, memoryGroup: memoryGroup, ops: ops)
        group.mempolicy = numa.mempolicy
        return (group, opReaders)
    }

    func decodeOp(_ r: TableReader, index: Int, group: String, topology: Topology, memory: MemorySpec, locks: [LockSpec]) throws(WorkloadError) -> OpSpec {
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
                throw r.fail("node", "group '\(group)': must be a node number or \"next\" (the node after the worker's own), got \"\(try r.string("node") ?? "")\"")
            }
            nodeOffset = 1
        } else if let n = try r.int("node") {
            // A node number (possibly with gaps); kept as the node's index. A memory-only node is a valid preference.
            guard let i = topology.index(ofNumber: n) else {
                throw r.fail("node", "group '\(group)': node = \(n): node \(n) does not exist: \(topology.nodeNumbersText)")
            }
            node = i
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
        if let label = try r.string("label") {
            let ok = !label.isEmpty && label.count <= 64 && label.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-" || c == "."
            }
            guard ok else { throw r.fail("label", "'\(label)' is not a label: 1 to 64 of A-Z a-z 0-9 _ - . (it names a latency row and a compare metric)") }
            spec.label = label
        }
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
