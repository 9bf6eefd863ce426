import Foundation

/// The paired rule, for runs made in ABBA pairs (run i of each side adjacent
/// in time: `pagestorm ab`'s rounds, gate-eval's repetitions).
///
/// Per pair the change c_i = new_i / base_i - 1 (for a rate negative is
/// slower; for a time positive is slower). An alarm when the median of the
/// c_i is beyond `limitPercent` (5%) and either at least n - 1 of the n pairs
/// changed in the median's direction, or the median is beyond
/// `strongPercent` (8%) whatever the other pairs did.
///
/// It is a threshold rule, not a significance test: with 5 pairs no paired
/// test can reach p < 0.05 two-sided (the sign-flip test's smallest p is
/// 2/32), so its false-alarm rate is what `pagestorm gate-eval` measures.
/// Why these limits (chosen before the evaluation that measures them, on the
/// pair changes of session 4's runs; docs/gate.md): a 10% slowdown is a rate
/// change of -9.1%, and the limit of 5% lies about half way. The median
/// ignores up to 2 pairs that a machine-wide speed phase split (one run fast,
/// the other slow: +-30..60%); the agreement condition keeps 3 noisy pairs
/// beyond 5% from raising an alarm on their own when the other two disagree,
/// and costs detections when two split pairs land on the wrong side of a
/// real change, so beyond 8% (about the change it must catch) the median of
/// 5 pairs decides alone. Session 4's rule had no strong limit
/// (`strongPercent` = infinity).
public struct PairedRule: Sendable, Equatable, Codable {
    public var limitPercent: Double = 5
    public var strongPercent: Double = 8

    public init(limitPercent: Double = 5, strongPercent: Double = 8) {
        self.limitPercent = limitPercent
        self.strongPercent = strongPercent
    }

    public struct Decision: Sendable, Equatable, Codable {
        /// Number of pairs.
        public var pairs: Int
        /// Per pair, new / base - 1, in percent, in pair order.
        public var changesPercent: [Double]
        /// The median of the pair changes, in percent (new against base: + higher, - lower).
        public var median: Double
        /// Pairs that changed in the median's direction.
        public var agreeing: Int
        public var alarm: Bool
    }

    /// nil: fewer than 3 pairs, or a base value that is not positive.
    public func decide(base: [Double], new: [Double]) -> Decision? {
        let n = min(base.count, new.count)
        guard n >= 3 else { return nil }
        let c = (0..<n).compactMap { i in base[i] > 0 && new[i].isFinite ? new[i] / base[i] - 1 : nil }
        guard c.count == n else { return nil }
        let m = Stats.median(c)
        let agreeing = c.filter { m < 0 ? $0 < 0 : $0 > 0 }.count
        let beyond = abs(m) * 100 > limitPercent
        let alarm = beyond && (agreeing >= n - 1 || abs(m) * 100 > strongPercent)
        return Decision(pairs: n, changesPercent: c.map { $0 * 100 }, median: m * 100, agreeing: agreeing, alarm: alarm)
    }

    /// One line: "median change -9.1%, 5 of 5 pairs that way".
    public func describe(_ d: Decision) -> String {
        String(format: "median pair change %+.1f%%, %d of %d pairs that way", d.median, d.agreeing, d.pairs)
    }
}
