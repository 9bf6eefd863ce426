/// Event counters, named as /proc/vmstat names them where Linux has the
/// counter, and in the same style where it does not. Plain per-CPU and
/// per-zone counters are merged on read (mimalloc's stats.c habit).
public enum VMEvent: Int, CaseIterable, Sendable {
    /// Pages allocated (printed per zone: pgalloc_normal, pgalloc_dma32, ...).
    case pgalloc = 0
    /// Pages freed.
    case pgfree
    case numaHit, numaMiss, numaForeign, numaLocal, numaOther
    /// Allocations served from a per-CPU list without a refill.
    case pcpAllocHit
    /// Per-CPU refills (rmqueue_bulk calls) and the pages they moved.
    case pcpRefill, pcpRefillPages
    /// Per-CPU drains to the buddy (free_pcppages_bulk calls) and their pages.
    case pcpDrain, pcpDrainPages
    /// Per-CPU trylock failures that fell back to the buddy.
    case pcpLockContended
    /// Zone-lock acquisitions, and those that had to wait.
    case zoneLockAcquire, zoneLockContended
    /// Allocations that entered the slow path, and those that failed.
    case allocSlowpath, allocFail
    /// Interleave-policy allocations that got the node the policy chose
    /// (numastat's interleave_hit; /proc/vmstat's numa_interleave).
    case numaInterleave
    /// Internal: allocations of order 0, 1, 2, 3 served by the fast path.
    /// Each counts as pcp_alloc_hit, numa_hit, numa_local and 2^order pages
    /// of pgalloc on read: one increment on the hot path instead of four.
    /// Not printed.
    case fastAlloc, fastAlloc1, fastAlloc2, fastAlloc3

    public static let count = 22

    /// The /proc/vmstat-style name.
    public var name: String {
        switch self {
        case .pgalloc: return "pgalloc"
        case .pgfree: return "pgfree"
        case .numaHit: return "numa_hit"
        case .numaMiss: return "numa_miss"
        case .numaForeign: return "numa_foreign"
        case .numaLocal: return "numa_local"
        case .numaOther: return "numa_other"
        case .pcpAllocHit: return "pcp_alloc_hit"
        case .pcpRefill: return "pcp_refill"
        case .pcpRefillPages: return "pcp_refill_pages"
        case .pcpDrain: return "pcp_drain"
        case .pcpDrainPages: return "pcp_drain_pages"
        case .pcpLockContended: return "pcp_lock_contended"
        case .zoneLockAcquire: return "zone_lock_acquire"
        case .zoneLockContended: return "zone_lock_contended"
        case .allocSlowpath: return "alloc_slowpath"
        case .allocFail: return "pgalloc_fail"
        case .numaInterleave: return "numa_interleave"
        case .fastAlloc: return "fast_alloc"
        case .fastAlloc1: return "fast_alloc_order1"
        case .fastAlloc2: return "fast_alloc_order2"
        case .fastAlloc3: return "fast_alloc_order3"
        }
    }
}

/// A merged snapshot of the counters of one zone.
public struct ZoneCounters: Sendable, Equatable {
    public var values: [Int] = [Int](repeating: 0, count: VMEvent.count)
    public subscript(_ e: VMEvent) -> Int {
        get { values[e.rawValue] }
        set { values[e.rawValue] = newValue }
    }
    public static func + (a: ZoneCounters, b: ZoneCounters) -> ZoneCounters {
        var r = a
        for i in 0..<VMEvent.count { r.values[i] += b.values[i] }
        return r
    }
}
