/// Change points of a series by the E-divisive means method (Matteson & James,
/// "A Nonparametric Approach for Multiple Change Point Analysis of Multivariate
/// Data", JASA 2014), as MongoDB's CI (Daly et al., ICPE 2020) and Hunter use it:
///
/// - For a segment Z[a..<b] and a split τ, with X = Z[a..<τ] (m values) and
///   Y = Z[τ..<b] (n values), the divergence is
///   Q(τ) = m·n/(m+n) · ( 2/(m·n)·Σ|x−y| − Σ_{i<k}|x_i−x_k| / C(m,2) − Σ_{j<k}|y_j−y_k| / C(n,2) ),
///   i.e. alpha = 1 (absolute distances), a scaled energy distance.
/// - The best split of each segment maximises Q (O(n²) per segment with running sums).
/// - Hierarchical: the segment whose best Q is largest gives the candidate. A permutation
///   test decides whether it is significant: the values of every segment are shuffled
///   within that segment (seeded), the largest best-Q is found again, `permutations`
///   times; p = (1 + #{shuffled ≥ observed}) / (1 + permutations). If p ≤ `pValue`
///   the split is kept and the search goes on in the two halves; otherwise it stops.
public struct EDivisive: Sendable {
    /// Significance level of the permutation test.
    public var pValue = 0.05
    /// Bounded number of permutations per candidate (199 gives p down to 0.005).
    public var permutations = 199
    /// Seed of the permutations: the same series and seed give the same change points.
    public var seed: UInt64 = 0x5EED
    /// The fewest points on each side of a split.
    public var minSize = 3
    /// At most this many change points.
    public var maxChangePoints = 20

    public init() {}

    public struct ChangePoint: Codable, Sendable, Equatable {
        /// The index of the first value after the change.
        public var index: Int
        /// The divergence Q at the split.
        public var q: Double
        /// The permutation test's p-value.
        public var p: Double
    }

    /// The change points, sorted by index.
    public func changePoints(_ series: [Double]) -> [ChangePoint] {
        var rng = SplitMix64(seed: seed)
        var cuts: [Int] = [0, series.count]  // segment boundaries, sorted
        var found: [ChangePoint] = []
        while found.count < maxChangePoints {
            guard let best = Self.bestOverSegments(series, cuts: cuts, minSize: minSize) else { break }
            var exceed = 0
            var shuffled = series
            for _ in 0..<permutations {
                for s in 0..<(cuts.count - 1) {
                    let a = cuts[s], b = cuts[s + 1]
                    if b - a > 1 {
                        // Fisher-Yates within the segment.
                        var i = b - 1
                        while i > a {
                            let j = a + Int(rng.next() % UInt64(i - a + 1))
                            shuffled.swapAt(i, j)
                            i -= 1
                        }
                    }
                }
                if let r = Self.bestOverSegments(shuffled, cuts: cuts, minSize: minSize), r.q >= best.q { exceed += 1 }
            }
            let p = Double(exceed + 1) / Double(permutations + 1)
            guard p <= pValue else { break }
            found.append(ChangePoint(index: best.index, q: best.q, p: p))
            cuts.append(best.index)
            cuts.sort()
        }
        return found.sorted { $0.index < $1.index }
    }

    /// The best split over every segment between consecutive `cuts`.
    static func bestOverSegments(_ z: [Double], cuts: [Int], minSize: Int) -> (index: Int, q: Double)? {
        var best: (index: Int, q: Double)?
        for s in 0..<(cuts.count - 1) {
            if let r = bestSplit(z, cuts[s], cuts[s + 1], minSize: minSize), best == nil || r.q > best!.q { best = r }
        }
        return best
    }

    /// The split τ of z[a..<b] with the largest Q, with at least `minSize` (≥ 2) values on each side.
    static func bestSplit(_ z: [Double], _ a: Int, _ b: Int, minSize: Int) -> (index: Int, q: Double)? {
        let k = max(2, minSize)
        let len = b - a
        guard len >= 2 * k else { return nil }
        // Running sums over τ: within the left (wl), within the right (wr), between (bt).
        var wl = 0.0, wr = 0.0, bt = 0.0
        for i in a..<b { for j in (i + 1)..<b { wr += abs(z[i] - z[j]) } }
        var best: (index: Int, q: Double)?
        // Move z[t] from the right part to the left part, for t = a ..< b-k.
        for t in a..<(b - k) {
            var toLeft = 0.0, toRight = 0.0
            for i in a..<t { toLeft += abs(z[i] - z[t]) }
            for j in (t + 1)..<b { toRight += abs(z[t] - z[j]) }
            wl += toLeft
            wr -= toRight
            bt += toRight - toLeft
            let tau = t + 1
            let m = Double(tau - a), n = Double(b - tau)
            guard tau - a >= k else { continue }
            let e = 2 * bt / (m * n) - wl / (m * (m - 1) / 2) - wr / (n * (n - 1) / 2)
            let q = m * n / (m + n) * e
            if best == nil || q > best!.q { best = (tau, q) }
        }
        return best
    }
}
