import Foundation

/// The statistics `pagestorm compare` and `check` use, over the repetitions
/// of one metric. Pure functions, no randomness except the seeded bootstrap.
public enum Stats {
    public static func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

    /// Harmonic mean: the right mean for rates (calls/s) over equal amounts of
    /// work. nan when a value is <= 0 (then the arithmetic mean is used).
    public static func harmonicMean(_ xs: [Double]) -> Double {
        guard !xs.isEmpty, xs.allSatisfy({ $0 > 0 }) else { return .nan }
        return Double(xs.count) / xs.reduce(0) { $0 + 1 / $1 }
    }

    public static func geometricMean(_ xs: [Double]) -> Double {
        guard !xs.isEmpty, xs.allSatisfy({ $0 > 0 }) else { return .nan }
        return exp(xs.reduce(0) { $0 + log($1) } / Double(xs.count))
    }

    /// Sample standard deviation (n - 1); 0 for one value.
    public static func stddev(_ xs: [Double]) -> Double {
        guard xs.count > 1 else { return 0 }
        let m = mean(xs)
        return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
    }

    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    // MARK: Mann-Whitney U

    public struct UTest: Codable, Sendable, Equatable {
        /// U of the first sample: pairs (a, b) with a > b, ties counted 1/2.
        public var u: Double
        /// Two-sided p-value.
        public var p: Double
        /// "exact" (the permutation distribution, no ties) or "normal" (tie-corrected approximation).
        public var method: String
        /// The smallest two-sided p-value these sample sizes can give (exact test).
        public var minimumP: Double
    }

    /// Number of ways to choose `n1` of `n1+n2` ranks with a given rank-sum
    /// offset: the exact null distribution of U (counts indexed by U).
    static func uDistribution(_ n1: Int, _ n2: Int) -> [Double] {
        // f[i][j][u]: arrangements of i first-sample and j second-sample items with statistic u.
        // Recurrence: f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u).
        let maxU = n1 * n2
        var prev = [[Double]](repeating: [], count: n2 + 1)
        for j in 0...n2 { prev[j] = [1] + [Double](repeating: 0, count: maxU) } // i = 0: only u = 0
        if n1 == 0 { return prev[n2] }
        for i in 1...n1 {
            var cur = [[Double]](repeating: [Double](repeating: 0, count: maxU + 1), count: n2 + 1)
            cur[0][0] = 1
            if n2 >= 1 {
                for j in 1...n2 {
                    for u in 0...min(maxU, i * j) {
                        var v = cur[j - 1][u]
                        if u >= j { v += prev[j][u - j] }
                        cur[j][u] = v
                    }
                }
            }
            prev = cur
        }
        return prev[n2]
    }

    /// Two-sided Mann-Whitney U test of `a` against `b`. Exact (the full
    /// permutation distribution) when there are no ties and n1*n2 <= 10,000;
    /// otherwise the normal approximation with tie correction and continuity.
    public static func mannWhitney(_ a: [Double], _ b: [Double]) -> UTest? {
        let n1 = a.count, n2 = b.count
        guard n1 >= 1, n2 >= 1 else { return nil }
        var u = 0.0
        for x in a { for y in b { u += x > y ? 1 : (x == y ? 0.5 : 0) } }
        let all = (a + b).sorted()
        var hasTies = false
        var tieTerm = 0.0
        var i = 0
        while i < all.count {
            var j = i
            while j + 1 < all.count && all[j + 1] == all[i] { j += 1 }
            let t = Double(j - i + 1)
            if t > 1 { hasTies = true; tieTerm += t * t * t - t }
            i = j + 1
        }
        let total = Double(n1 * n2)
        if n1 * n2 <= 10_000 {
            let dist = uDistribution(n1, n2)
            let all = dist.reduce(0, +)
            // min achievable two-sided p: both extremes.
            let minP = min(1, 2 * dist[0] / all)
            if !hasTies {
                let uLow = min(u, total - u)
                let tail = dist[0...Int(uLow)].reduce(0, +) / all
                return UTest(u: u, p: min(1, 2 * tail), method: "exact", minimumP: minP)
            }
            return normalU(u, n1, n2, tieTerm, minP: minP)
        }
        return normalU(u, n1, n2, tieTerm, minP: 0)
    }

    static func normalU(_ u: Double, _ n1: Int, _ n2: Int, _ tieTerm: Double, minP: Double) -> UTest {
        let n = Double(n1 + n2), m = Double(n1 * n2) / 2
        let variance = Double(n1 * n2) / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
        guard variance > 0 else { return UTest(u: u, p: 1, method: "normal", minimumP: minP) }
        let z = max(0, abs(u - m) - 0.5) / variance.squareRoot()
        let p = min(1, erfc(z / 2.0.squareRoot()))
        return UTest(u: u, p: p, method: "normal", minimumP: minP)
    }

    // MARK: bootstrap

    /// A percentile bootstrap confidence interval of median(new) / median(base),
    /// resampling each side with replacement `rounds` times from a fixed seed
    /// (so the same data always give the same interval). nil when a median is 0.
    public static func bootstrapRatioOfMedians(base: [Double], new: [Double], level: Double = 0.95, rounds: Int = 2000, seed: UInt64 = 0x5EED) -> (low: Double, high: Double)? {
        guard !base.isEmpty, !new.isEmpty else { return nil }
        var rng = SplitMix64(seed: seed)
        var ratios: [Double] = []
        ratios.reserveCapacity(rounds)
        var sb = [Double](repeating: 0, count: base.count), sn = [Double](repeating: 0, count: new.count)
        for _ in 0..<rounds {
            for k in 0..<base.count { sb[k] = base[Int(rng.next() % UInt64(base.count))] }
            for k in 0..<new.count { sn[k] = new[Int(rng.next() % UInt64(new.count))] }
            let mb = median(sb), mn = median(sn)
            if mb == 0 { if mn == 0 { ratios.append(1) } else { return nil } } else { ratios.append(mn / mb) }
        }
        ratios.sort()
        let lo = Int((Double(rounds) * (1 - level) / 2).rounded(.down))
        let hi = min(rounds - 1, Int((Double(rounds) * (1 - (1 - level) / 2)).rounded(.down)))
        return (ratios[lo], ratios[hi])
    }
}
