import PageAllocator

/// The `[reclaim]` table: the costs reclaim pays (the allocator's
/// ReclaimSettings; swap space is `[memory] swap_pages`).
public struct ReclaimSpec: Codable, Sendable, Equatable {
    /// Simulated writeback time per dirty page.
    public var writebackNsPerPage: Int = ReclaimSettings().writebackNsPerPage
    /// Simulated swap-out time per anonymous page.
    public var swapNsPerPage: Int = ReclaimSettings().swapNsPerPage
    /// Pages one reclaim pass aims for (SWAP_CLUSTER_MAX).
    public var batch: Int = ReclaimSettings().batch
    public init() {}
}
