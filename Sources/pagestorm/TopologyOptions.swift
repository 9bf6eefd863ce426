import ArgumentParser
import PageAllocator
import Topology

/// Flags that describe the allocator's topology, shared by every subcommand.
struct TopologyOptions: ParsableArguments {
    @Option(help: "Declare this many NUMA nodes (default: the machine's).")
    var nodes: Int?

    @Option(name: .customLong("cpus-per-node"), help: "Declare this many CPUs per node, or one count per node ('1,0': node 1 memory-only; default: the machine's CPUs spread over the nodes).")
    var cpusPerNode: String?

    @Option(name: .customLong("node-ids"), help: "Number the declared nodes, ascending, e.g. '0,2' (no node 1). Default 0,1,...")
    var nodeIDs: String?

    @Option(help: "Node distance matrix for a declared topology: rows separated by ';', e.g. '10,21;21,10'.")
    var distances: String?

    @Option(help: "Zones of each node, lowest first: NAME=PAGES,... (names: DMA, DMA32, Normal, Movable). Default: one Normal zone.")
    var zones: String?

    @Option(name: .customLong("arena-mib"), help: "Size of each node's single Normal zone in MiB when --zones is not given.")
    var arenaMiB: Int?

    @Option(name: .customLong("page-size"), help: "Bytes per page (power of two, 4096...65536).")
    var pageSize: Int = 4096

    @Option(name: .customLong("min-free-kbytes"), help: "vm.min_free_kbytes (default: the kernel formula over the arena).")
    var minFreeKbytes: Int?

    @Option(name: .customLong("watermark-scale-factor"), help: "vm.watermark_scale_factor, 1...3000.")
    var watermarkScaleFactor: Int = 10

    @Option(name: .customLong("lowmem-reserve-ratio"), help: "vm.lowmem_reserve_ratio for DMA,DMA32,Normal[,Movable].")
    var lowmemReserveRatio: String?

    func validate() throws {
        if let n = nodes, n < 1 || n > 64 { throw ValidationError("--nodes must be 1...64, got \(n)") }
        _ = try cpuCounts()
        _ = try declaredIDs()
        if (nodeIDs != nil || cpusPerNode?.contains(",") == true) && nodes == nil {
            throw ValidationError("--node-ids and a --cpus-per-node list need --nodes (they describe a declared topology)")
        }
        if let a = arenaMiB, a < 1 || a > 1 << 22 { throw ValidationError("--arena-mib must be 1...4194304, got \(a)") }
        if zones != nil && arenaMiB != nil { throw ValidationError("--zones and --arena-mib contradict each other: give one") }
        if distances != nil && nodes == nil { throw ValidationError("--distances needs --nodes (it describes a declared topology)") }
    }

    /// --cpus-per-node as one count per node (nil: not given). A single number
    /// is every node's (1...1024); a list gives each node's (0...1024; 0: memory-only).
    func cpuCounts() throws -> [Int]? {
        guard let text = cpusPerNode else { return nil }
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let counts = try items.map { item -> Int in
            guard let v = Int(item) else { throw ValidationError("--cpus-per-node '\(text)': '\(item)' is not a CPU count") }
            return v
        }
        if counts.count == 1 {
            guard (1...1024).contains(counts[0]) else { throw ValidationError("--cpus-per-node must be 1...1024, got \(counts[0])") }
            return Array(repeating: counts[0], count: nodes ?? 1)
        }
        if let bad = counts.first(where: { !(0...1024).contains($0) }) {
            throw ValidationError("--cpus-per-node '\(text)': \(bad) is outside 0...1024 (0: a memory-only node)")
        }
        if let n = nodes, n != counts.count { throw ValidationError("--cpus-per-node '\(text)' lists \(counts.count) node(s) but --nodes is \(n)") }
        return counts
    }

    /// --node-ids as integers (nil: not given).
    func declaredIDs() throws -> [Int]? {
        guard let text = nodeIDs else { return nil }
        let ids = try text.split(separator: ",", omittingEmptySubsequences: false).map { item -> Int in
            guard let v = Int(item.trimmingCharacters(in: .whitespaces)), (0...63).contains(v) else {
                throw ValidationError("--node-ids '\(text)': '\(item)' is not a node number 0...63")
            }
            return v
        }
        if let n = nodes, n != ids.count { throw ValidationError("--node-ids '\(text)' lists \(ids.count) node(s) but --nodes is \(n)") }
        return ids
    }

    /// The topology: declared when --nodes or --cpus-per-node is given, else discovered.
    func topology() throws -> Topology {
        guard nodes != nil || cpusPerNode != nil else { return Topology.discover() }
        let real = Topology.discover()
        let n = nodes ?? 1
        let counts = try cpuCounts() ?? Array(repeating: max(1, real.machineCPUs / n), count: n)
        var matrix: [[Int]]? = nil
        if let d = distances {
            matrix = try d.split(separator: ";").map { row in
                try row.split(separator: ",").map { cell -> Int in
                    guard let v = Int(cell.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("--distances: '\(cell)' is not an integer")
                    }
                    return v
                }
            }
        }
        let ids = try declaredIDs()
        do { return try Topology.declared(cpusPerNode: counts, distance: matrix, nodeIDs: ids) } catch { throw ValidationError("\(error)") }
    }

    /// The allocator configuration. `defaultPagesPerNode` sizes the arena when
    /// neither --zones nor --arena-mib is given (nil: the node's real memory).
    func config(defaultPagesPerNode: Int?) throws -> AllocatorConfig {
        let topo = try topology()
        let zoneList: [ZoneSpec]
        if let z = zones {
            do { zoneList = try ZoneSpec.parseList(z) } catch { throw ValidationError("--zones: \(error)") }
        } else {
            let pages: Int
            if let a = arenaMiB {
                pages = a * (1 << 20) / pageSize
            } else if let d = defaultPagesPerNode {
                pages = d
            } else {
                // Sized from the real machine: each node's memory (or an equal share).
                let real = Topology.discover()
                let bytes = real.nodes.first?.memoryBytes ?? (1 << 30)
                pages = max(1024, bytes / pageSize / max(1, topo.nodeCount / real.nodeCount))
            }
            zoneList = [ZoneSpec(.normal, pages: min(pages, AllocatorConfig.maxPagesPerNode))]
        }
        var cfg = AllocatorConfig(topology: topo, zones: zoneList)
        cfg.pageSize = pageSize
        cfg.minFreeKbytes = minFreeKbytes
        cfg.watermarkScaleFactor = watermarkScaleFactor
        if let r = lowmemReserveRatio {
            cfg.lowmemReserveRatio = try r.split(separator: ",").map {
                guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--lowmem-reserve-ratio: '\($0)' is not an integer") }
                return v
            }
        }
        do { try cfg.validate() } catch { throw ValidationError("\(error)") }
        return cfg
    }

    func allocator(defaultPagesPerNode: Int?) throws -> PageAllocator {
        let cfg = try config(defaultPagesPerNode: defaultPagesPerNode)
        do { return try PageAllocator(cfg) } catch { throw ValidationError("\(error)") }
    }
}
