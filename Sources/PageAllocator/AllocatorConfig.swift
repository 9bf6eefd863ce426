import Topology

/// Zone types, lowest first, as the kernel orders them (enum zone_type).
public enum ZoneType: Int, CaseIterable, Sendable, Comparable, CustomStringConvertible {
    case dma = 0, dma32, normal, movable
    public static let count = 4

    /// The kernel's zone name.
    public var name: String { ["DMA", "DMA32", "Normal", "Movable"][rawValue] }
    public var description: String { name }
    public static func < (a: ZoneType, b: ZoneType) -> Bool { a.rawValue < b.rawValue }

    /// Parses a kernel zone name, case-insensitively.
    public init?(name: String) {
        guard let t = ZoneType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = t
    }

    /// Default sysctl_lowmem_reserve_ratio for this type.
    public var defaultLowmemReserveRatio: Int { [256, 256, 32, 0][rawValue] }

    /// gfp_zone(): the highest zone type a request may use.
    @inlinable public static func highest(for flags: GFP) -> ZoneType {
        if flags.contains(.dma) { return .dma }
        if flags.contains(.dma32) { return .dma32 }
        if flags.contains(.highmem) && flags.contains(.movable) { return .movable }
        return .normal
    }

    /// highest(for:) as a raw value without branches (the kernel's
    /// GFP_ZONE_TABLE): 2 bits per combination of the four zone modifiers
    /// (DMA 0x1, HIGHMEM 0x2, DMA32 0x4, MOVABLE 0x8).
    @inlinable @inline(__always) public static func highestIndex(for flags: GFP) -> Int {
        Int(truncatingIfNeeded: (UInt32(0x1132_1122) &>> ((flags.rawValue & 0xf) &<< 1)) & 3)
    }
}

/// One zone of a node: its type and its size in pages.
public struct ZoneSpec: Sendable, Equatable, CustomStringConvertible {
    public var type: ZoneType
    public var pages: Int
    public init(_ type: ZoneType, pages: Int) { self.type = type; self.pages = pages }
    public var description: String { "\(type.name)=\(pages)" }

    /// Parses `NAME=PAGES,NAME=PAGES,...`, lowest zone first.
    public static func parseList(_ text: String) throws(ConfigError) -> [ZoneSpec] {
        var out: [ZoneSpec] = []
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard kv.count == 2 else { throw .invalid(field: "zones", value: String(part), reason: "expected NAME=PAGES, e.g. DMA=4096,Normal=262144") }
            guard let t = ZoneType(name: kv[0]) else { throw .invalid(field: "zones", value: kv[0], reason: "unknown zone name; known: DMA, DMA32, Normal, Movable") }
            guard let p = Int(kv[1]) else { throw .invalid(field: "zones", value: kv[1], reason: "page count must be an integer") }
            out.append(ZoneSpec(t, pages: p))
        }
        guard !out.isEmpty else { throw .invalid(field: "zones", value: text, reason: "at least one zone is required") }
        return out
    }
}

/// A configuration that cannot be built. Names the field and what is wrong.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case invalid(field: String, value: String, reason: String)
    case mapFailed(node: Int, bytes: Int, errno: Int32)
    public var description: String {
        switch self {
        case .invalid(let f, let v, let r): return "\(f) = \(v): \(r)"
        case .mapFailed(let n, let b, let e): return "mmap of \(b) bytes for node \(n) failed (errno \(e))"
        }
    }
}

/// Everything that shapes an allocator. Validated by `validate()`, which
/// `PageAllocator.init` calls.
public struct AllocatorConfig: Sendable, Equatable {
    public var topology: Topology
    /// Zones of every node, lowest type first.
    public var zones: [ZoneSpec]
    /// Bytes per page: a power of two, 4096...65536.
    public var pageSize: Int = 4096
    /// nil: the kernel formula, int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144].
    public var minFreeKbytes: Int? = nil
    /// vm.watermark_scale_factor, 1...3000.
    public var watermarkScaleFactor: Int = 10
    /// vm.lowmem_reserve_ratio by zone type (DMA, DMA32, Normal, Movable).
    public var lowmemReserveRatio: [Int] = ZoneType.allCases.map(\.defaultLowmemReserveRatio)
    /// vm.percpu_pagelist_high_fraction: 0 = auto-tune high between high_min and high_max.
    public var percpuPagelistHighFraction: Int = 0
    /// Bind each node's arena to its node with libnuma (only where the topology can).
    public var bindMemory: Bool = true
    /// Highest order the per-CPU lists cache: 3 as the kernel (orders 0...3),
    /// -1 sends every request to the buddy under the zone lock.
    public var perCPUMaxOrder: Int = Order.pcpMax
    /// Slow-path policies (retry, OOM mode, reserves, reaper...).
    public var policy = SlowPathPolicy()
    /// Reclaim costs and swap space.
    public var reclaim = ReclaimSettings()
    /// fail_page_alloc's knobs (disabled unless probability > 0).
    public var faultInjection = FaultInjectionSettings()
    /// warn_alloc's rate limit: one warning per this many milliseconds (the kernel: 10 s).
    public var warnRatelimitMs: Int = 10_000
    /// Memory groups (ids 1...n in this order); tasks join one at registration.
    public var memoryGroups: [MemoryGroupSpec] = []
    /// Whether a weighted-interleave allocation that lands on the node the
    /// weights chose counts as numastat's interleave_hit (NUMA_INTERLEAVE_HIT),
    /// as a plain interleave one always does. true: Linux 6.13 and later
    /// (commit 264a88cafdbd, "mm/mempolicy: count MPOL_WEIGHTED_INTERLEAVE to
    /// interleave_hit"); false: Linux 6.9-6.12, whose alloc_pages_mpol() counted
    /// MPOL_INTERLEAVE only (checked against Debian's 6.12.95 in the numa-lab
    /// guest: 0 interleave_hit for 8,192 weighted-interleave pages).
    public var weightedInterleaveHit: Bool = true

    public init(topology: Topology, zones: [ZoneSpec]) {
        self.topology = topology
        self.zones = zones
    }

    /// One Normal zone per node of `pagesPerNode` pages.
    public init(topology: Topology, pagesPerNode: Int) {
        self.init(topology: topology, zones: [ZoneSpec(.normal, pages: pagesPerNode)])
    }

    public static let maxPagesPerNode = 1 << 30

    public func validate() throws(ConfigError) {
        guard pageSize >= 4096, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw .invalid(field: "page_size", value: "\(pageSize)", reason: "must be a power of two from 4096 to 65536")
        }
        guard !zones.isEmpty else { throw .invalid(field: "zones", value: "[]", reason: "a node needs at least one zone") }
        var last = -1
        var total = 0
        for z in zones {
            guard z.type.rawValue > last else {
                throw .invalid(field: "zones", value: z.description, reason: "zones must be listed lowest first, each type once (DMA, DMA32, Normal, Movable)")
            }
            last = z.type.rawValue
            guard z.pages >= 1 else { throw .invalid(field: "zones", value: z.description, reason: "a zone needs at least one page") }
            total += z.pages
        }
        guard total <= AllocatorConfig.maxPagesPerNode else {
            throw .invalid(field: "zones", value: "\(total) pages", reason: "at most \(AllocatorConfig.maxPagesPerNode) pages per node")
        }
        // Nodes start on 1024-page boundaries; a PageBlock keeps its pfn in 32 bits.
        let pfnEnd = (topology.nodeCount - 1) * ((total + 1023) & ~1023) + total
        guard pfnEnd <= 1 << 32 else {
            throw .invalid(field: "zones", value: "\(topology.nodeCount) nodes x \(total) pages",
                           reason: "the pfn space of all nodes must fit in 32 bits (at most 2^32 pages)")
        }
        guard (1...3000).contains(watermarkScaleFactor) else {
            throw .invalid(field: "watermark_scale_factor", value: "\(watermarkScaleFactor)", reason: "must be 1...3000, as vm.watermark_scale_factor")
        }
        if let m = minFreeKbytes, m < 0 || m > 1 << 40 {
            throw .invalid(field: "min_free_kbytes", value: "\(m)", reason: "must be 0 or more")
        }
        guard lowmemReserveRatio.count >= 1, lowmemReserveRatio.count <= ZoneType.count, lowmemReserveRatio.allSatisfy({ $0 >= 0 }) else {
            throw .invalid(field: "lowmem_reserve_ratio", value: "\(lowmemReserveRatio)", reason: "1 to 4 non-negative ratios (DMA, DMA32, Normal, Movable)")
        }
        guard (-1...Order.pcpMax).contains(perCPUMaxOrder) else {
            throw .invalid(field: "pcp_max_order", value: "\(perCPUMaxOrder)", reason: "must be -1 (no per-CPU lists) to \(Order.pcpMax)")
        }
        guard reclaim.swapPages >= 0, reclaim.writebackNsPerPage >= 0, reclaim.swapNsPerPage >= 0, reclaim.batch >= 1 else {
            throw .invalid(field: "reclaim", value: "\(reclaim)", reason: "swap pages and I/O times must be >= 0, batch >= 1")
        }
        if case .retries(let n) = policy.retry, n < 0 {
            throw .invalid(field: "policy.retry", value: "retries=\(n)", reason: "N must be >= 0")
        }
        var seen = Set<String>()
        for g in memoryGroups {
            guard !g.name.isEmpty, seen.insert(g.name).inserted else {
                throw .invalid(field: "memory_groups", value: g.name, reason: "group names must be non-empty and unique")
            }
            guard g.limitPages >= 1 else { throw .invalid(field: "memory_groups.\(g.name).limit_pages", value: "\(g.limitPages)", reason: "must be at least 1") }
        }
        guard warnRatelimitMs >= 0 else { throw .invalid(field: "warn_ratelimit_ms", value: "\(warnRatelimitMs)", reason: "must be >= 0") }
        guard percpuPagelistHighFraction == 0 || percpuPagelistHighFraction >= 8 else {
            throw .invalid(field: "percpu_pagelist_high_fraction", value: "\(percpuPagelistHighFraction)", reason: "0 (auto) or at least 8, as the sysctl")
        }
    }

    /// The ratio for a zone type (missing entries use the kernel default).
    func ratio(_ t: ZoneType) -> Int {
        t.rawValue < lowmemReserveRatio.count ? lowmemReserveRatio[t.rawValue] : t.defaultLowmemReserveRatio
    }
}
