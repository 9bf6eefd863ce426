/// The allocator's internal ALLOC_* flags (mm/internal.h), derived from GFP
/// flags and the task's state by `gfp_to_alloc_flags()`.
public struct AllocFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// ALLOC_NO_WATERMARKS: skip the check entirely.
    public static let noWatermarks = AllocFlags(rawValue: 0x04)
    /// ALLOC_OOM: an OOM victim; min -= min/2.
    public static let oom = AllocFlags(rawValue: 0x08)
    /// ALLOC_NON_BLOCK: cannot sleep; with MIN_RESERVE, min -= min/4 more.
    public static let nonBlock = AllocFlags(rawValue: 0x10)
    /// ALLOC_MIN_RESERVE (__GFP_HIGH): min -= min/2.
    public static let minReserve = AllocFlags(rawValue: 0x20)
    /// ALLOC_HIGHATOMIC.
    public static let highAtomic = AllocFlags(rawValue: 0x200)
    /// ALLOC_KSWAPD (__GFP_KSWAPD_RECLAIM).
    public static let kswapd = AllocFlags(rawValue: 0x800)

    /// gfp_to_alloc_flags() without cpusets/CMA/RT tasks.
    public static func from(gfp: GFP, order: Int) -> AllocFlags {
        var f: AllocFlags = []
        if gfp.contains(.high) { f.insert(.minReserve) }
        if gfp.contains(.kswapdReclaim) { f.insert(.kswapd) }
        if !gfp.contains(.directReclaim) && !gfp.contains(.noMemalloc) {
            f.insert(.nonBlock)
            if order > 0 { f.insert(.highAtomic) }
        }
        return f
    }
}

/// What reserves the calling task may use beyond its GFP flags
/// (__gfp_pfmemalloc_flags): PF_MEMALLOC tasks, and OOM victims.
public enum ReserveAccess: UInt8, Sendable {
    case none = 0
    /// An OOM victim (tsk_is_oom_victim): ALLOC_OOM.
    case oomVictim
    /// PF_MEMALLOC (reclaim itself): ALLOC_NO_WATERMARKS.
    case memalloc
    /// Inside a transaction: may use the task's reservation (see `reserve`).
    case transaction

    /// __gfp_pfmemalloc_flags(): the flags that replace the slow path's, or [].
    public func reserveFlags(for gfp: GFP) -> AllocFlags {
        if gfp.contains(.noMemalloc) { return [] }
        if gfp.contains(.memalloc) { return .noWatermarks }
        switch self {
        case .memalloc: return .noWatermarks
        case .oomVictim: return .oom
        case .none, .transaction: return []
        }
    }
}

/// Which watermark a check uses.
public enum WatermarkLevel: Int, Sendable { case min = 0, low, high }

extension PageAllocator {
    /// The free-page level at or below which `__zone_watermark_ok()` fails,
    /// before lowmem_reserve and the order adjustment: `mark` reduced by the
    /// reserve shares (HIGH 1/2, then ATOMIC a further 1/4, OOM a further 1/2).
    @inlinable
    public static func reserveThreshold(mark: Int, flags: AllocFlags) -> Int {
        var min = mark
        if flags.contains(.minReserve) {
            min -= min / 2
            if flags.contains(.nonBlock) { min -= min / 4 }
        }
        if flags.contains(.oom) { min -= min / 2 }
        return min
    }

    /// `__zone_watermark_ok()` on given numbers. `hasBlock(o)` says whether the
    /// free list of order `o` is non-empty (only asked for order > 0).
    public static func zoneWatermarkOK(free: Int, order: Int, mark: Int, lowmemReserve: Int,
                                       flags: AllocFlags, hasBlock: (Int) -> Bool) -> Bool {
        if flags.contains(.noWatermarks) { return true }
        let usable = free - ((1 << order) - 1)
        if usable <= reserveThreshold(mark: mark, flags: flags) + lowmemReserve { return false }
        if order == 0 { return true }
        for o in order..<Order.count where hasBlock(o) { return true }
        return false
    }
}
