/// The kernel's sizing formulas, exactly as mm/page_alloc.c and mm/vmstat.c
/// compute them, in integer arithmetic. Pure functions; tests check them
/// against known answers.
public enum KernelFormulas {
    /// int_sqrt(): floor of the square root.
    public static func intSqrt(_ x: Int) -> Int {
        guard x > 1 else { return max(x, 0) }
        var r = Int(Double(x).squareRoot())
        // Compared by division: (r + 1) * (r + 1) overflows near Int.max.
        while r > x / r { r -= 1 }
        while r + 1 <= x / (r + 1) { r += 1 }
        return r
    }

    /// calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144].
    public static func minFreeKbytes(lowmemKbytes: Int) -> Int {
        min(max(intSqrt(lowmemKbytes * 16), 128), 262144)
    }

    /// mult_frac(x, n, d) without overflow, as include/linux/math.h.
    public static func multFrac(_ x: Int, _ n: Int, _ d: Int) -> Int {
        (x / d) * n + ((x % d) * n) / d
    }

    public struct Watermarks: Equatable, Sendable {
        public var min: Int, low: Int, high: Int, promo: Int
        public init(min: Int, low: Int, high: Int, promo: Int) { self.min = min; self.low = low; self.high = high; self.promo = promo }
    }

    /// __setup_per_zone_wmarks() for one zone.
    /// - Parameters: `pagesMin` = min_free_kbytes in pages; `lowmemPages` = managed pages of all
    ///   non-highmem zones of all nodes.
    public static func watermarks(managed: Int, pagesMin: Int, lowmemPages: Int, scaleFactor: Int) -> Watermarks {
        let tmp = lowmemPages > 0 ? pagesMin * managed / lowmemPages : 0
        let delta = max(tmp >> 2, multFrac(managed, scaleFactor, 10000))
        return Watermarks(min: tmp, low: tmp + delta, high: tmp + 2 * delta, promo: tmp + 3 * delta)
    }

    /// setup_per_zone_lowmem_reserve() for one node: `managed[t]` by zone type
    /// (0 for types the node lacks). Returns reserve[i][j] for zone i against
    /// a request whose highest zone is j.
    public static func lowmemReserve(managedByType managed: [Int], ratios: [Int]) -> [[Int]] {
        let n = managed.count
        var out = [[Int]](repeating: [Int](repeating: 0, count: n), count: n)
        for i in 0..<n {
            let ratio = i < ratios.count ? ratios[i] : 0
            let clear = ratio == 0 || managed[i] == 0
            var upper = 0
            for j in (i + 1)..<max(n, i + 1) {
                upper += managed[j]
                out[i][j] = clear ? 0 : upper / ratio
            }
        }
        return out
    }

    static func roundDownPowerOfTwo(_ x: Int) -> Int {
        x <= 0 ? 0 : 1 << (Int.bitWidth - 1 - x.leadingZeroBitCount)
    }

    /// zone_batchsize() then max(1, ...), as zone_set_pageset_high_and_batch.
    public static func pcpBatch(managed: Int, pageSize: Int = 4096) -> Int {
        var batch = min(managed >> 10, (1 << 20) / pageSize)
        batch /= 4
        if batch < 1 { batch = 1 }
        batch = roundDownPowerOfTwo(batch + batch / 2) - 1
        return max(1, batch)
    }

    /// zone_highsize(): `fraction` 0 bases high on the LOW watermark.
    public static func pcpHighSize(managed: Int, low: Int, batch: Int, cpusOfNode: Int, fraction: Int) -> Int {
        let total = fraction == 0 ? low : managed / fraction
        let split = max(cpusOfNode, 1)
        return max(total / split, batch << 2)
    }

    /// (high_min, high_max) as zone_set_pageset_high_and_batch (6.7+).
    public static func pcpHighBounds(managed: Int, low: Int, batch: Int, cpusOfNode: Int, highFraction: Int) -> (min: Int, max: Int) {
        if highFraction != 0 {
            let h = pcpHighSize(managed: managed, low: low, batch: batch, cpusOfNode: cpusOfNode, fraction: highFraction)
            return (h, h)
        }
        return (pcpHighSize(managed: managed, low: low, batch: batch, cpusOfNode: cpusOfNode, fraction: 0),
                pcpHighSize(managed: managed, low: low, batch: batch, cpusOfNode: cpusOfNode, fraction: 8))
    }

    /// fls(): the 1-based index of the highest set bit, 0 for 0.
    static func fls(_ x: Int) -> Int { x == 0 ? 0 : Int.bitWidth - x.leadingZeroBitCount }

    /// calculate_normal_threshold(): the per-CPU vmstat fold threshold.
    public static func vmstatThreshold(managed: Int, onlineCPUs: Int, pageSize: Int = 4096) -> Int {
        let pageShift = pageSize.trailingZeroBitCount
        let mem = managed >> (27 - pageShift)
        return min(125, 2 * fls(onlineCPUs) * (1 + fls(mem)))
    }
}
