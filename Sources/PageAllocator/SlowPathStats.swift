import Synchronization

/// Slow-path events, named as /proc/vmstat names them where Linux has the
/// counter. Global atomics: the slow path can afford them.
public enum SlowEvent: Int, CaseIterable, Sendable {
    case allocstall          // direct reclaim entries
    case pgscanDirect, pgstealDirect, pgscanKswapd, pgstealKswapd
    case kswapdWakeups
    case pswpout             // anon pages written to swap
    case pgwriteback         // dirty pages written back by reclaim
    case oomKill
    case oomReaped           // victims reaped by the oom_reaper
    case oomReapedPages
    case oomVictimTimeout    // victims skipped after victim_timeout_ms
    case oomNoVictim         // OOM found nothing killable
    case oomLockContended    // oom_lock trylock failures (slept a tick)
    case oomWaits            // sleeps on the OOM wait queue
    case oomWaitTimeouts
    case oomVictimAborts     // victims that left the allocator at a safe point
    case nofailReserveDips   // NOFAIL allocations served with NO_WATERMARKS
    case oomReserveDips      // allocations served with ALLOC_OOM
    case reclaimRetries      // should_reclaim_retry said "again"
    case oomRetries          // loops back after an OOM attempt
    case nofsNoKill          // OOM without __GFP_FS: progress claimed, nobody killed
    case drainAll            // drain_all_pages from direct reclaim
    case slowpathTimeouts    // max_stall_ms reached
    case slowpathAborts      // allocator shut down while looping
    case resvReserved        // pages reserved
    case resvUsed            // reserved pages used by transaction allocations
    case resvReturned        // unused reserved pages returned at commit/abort
    case resvOverrun         // transaction pages beyond the reservation
    case resvWaits           // reservations that had to wait for room
    case resvWaitNs          // total wait
    case resvWaitMaxNs       // longest wait
    case resvTimeouts        // reservations that gave up
    // allocstall by the request's highest zone (the kernel's allocstall_<zone>,
    // counted at ac->highest_zoneidx); `allocstall` above is their sum.
    case allocstallDMA, allocstallDMA32, allocstallNormal, allocstallMovable

    public static let count = allCases.count

    /// allocstall_<zone> of a request whose highest zone is `type`.
    static func allocstall(_ type: ZoneType) -> SlowEvent {
        [.allocstallDMA, .allocstallDMA32, .allocstallNormal, .allocstallMovable][type.rawValue]
    }

    public var name: String {
        switch self {
        case .allocstall: return "allocstall"
        case .pgscanDirect: return "pgscan_direct"
        case .pgstealDirect: return "pgsteal_direct"
        case .pgscanKswapd: return "pgscan_kswapd"
        case .pgstealKswapd: return "pgsteal_kswapd"
        case .kswapdWakeups: return "kswapd_wakeups"
        case .pswpout: return "pswpout"
        case .pgwriteback: return "pgwriteback"
        case .oomKill: return "oom_kill"
        case .oomReaped: return "oom_reaped"
        case .oomReapedPages: return "oom_reaped_pages"
        case .oomVictimTimeout: return "oom_victim_timeout"
        case .oomNoVictim: return "oom_no_victim"
        case .oomLockContended: return "oom_lock_contended"
        case .oomWaits: return "oom_waits"
        case .oomWaitTimeouts: return "oom_wait_timeouts"
        case .oomVictimAborts: return "oom_victim_aborts"
        case .nofailReserveDips: return "nofail_reserve_dips"
        case .oomReserveDips: return "oom_reserve_dips"
        case .reclaimRetries: return "reclaim_retries"
        case .oomRetries: return "oom_retries"
        case .nofsNoKill: return "oom_nofs_no_kill"
        case .drainAll: return "drain_all_pages"
        case .slowpathTimeouts: return "slowpath_timeouts"
        case .slowpathAborts: return "slowpath_aborts"
        case .resvReserved: return "resv_pages_reserved"
        case .resvUsed: return "resv_pages_used"
        case .resvReturned: return "resv_pages_returned"
        case .resvOverrun: return "resv_pages_overrun"
        case .resvWaits: return "resv_waits"
        case .resvWaitNs: return "resv_wait_ns_total"
        case .resvWaitMaxNs: return "resv_wait_ns_max"
        case .resvTimeouts: return "resv_timeouts"
        case .allocstallDMA: return "allocstall_dma"
        case .allocstallDMA32: return "allocstall_dma32"
        case .allocstallNormal: return "allocstall_normal"
        case .allocstallMovable: return "allocstall_movable"
        }
    }
}

final class SlowPathCounters: @unchecked Sendable {
    let values: UnsafeMutablePointer<Atomic<Int>>
    init() {
        values = .allocate(capacity: SlowEvent.count)
        for i in 0..<SlowEvent.count { (values + i).initialize(to: Atomic(0)) }
    }
    deinit { values.deallocate() }
    @inline(__always) func bump(_ e: SlowEvent, _ by: Int = 1) { values[e.rawValue].wrappingAdd(by, ordering: .relaxed) }
    func get(_ e: SlowEvent) -> Int { values[e.rawValue].load(ordering: .relaxed) }
    func max(_ e: SlowEvent, _ v: Int) {
        var cur = get(e)
        while v > cur {
            let (ok, now) = values[e.rawValue].compareExchange(expected: cur, desired: v, ordering: .relaxed)
            if ok { return }
            cur = now
        }
    }
}

extension PageAllocator {
    /// Slow-path counters (allocstall, pgscan/pgsteal, oom_kill, ...).
    public func slowPathCounters() -> [(name: String, value: Int)] {
        SlowEvent.allCases.map { ($0.name, slow.counters.get($0)) }
    }
    public func slowPathCounter(_ e: SlowEvent) -> Int { slow.counters.get(e) }
}
