import Histogram

/// The HDR histogram every latency is recorded in: nanoseconds, 1 ns to one
/// hour, 3 significant digits (values within 0.1% share a bucket).
public enum LatencyRecorder {
    public static let highestTrackableNs: UInt64 = 3_600_000_000_000
    public static let significantDigits: SignificantDigits = .three

    public static func make() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestTrackableNs, numberOfSignificantValueDigits: significantDigits)
    }

    /// The percentiles every report shows.
    public static let percentiles: [(label: String, value: Double)] = [
        ("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("p99.99", 99.99),
    ]
}

/// A histogram as results files store it, losslessly: its configuration and
/// the count of every non-empty bucket, keyed by the bucket's highest
/// equivalent value (any value of a bucket lands in the same bucket again).
/// Two encoded histograms of one configuration merge exactly.
public struct EncodedHistogram: Codable, Sendable, Equatable {
    public var unit: String
    public var lowestDiscernibleValue: UInt64
    public var highestTrackableValue: UInt64
    public var significantDigits: Int
    public var totalCount: UInt64
    /// The lowest value recorded (0 when a 0 was recorded or when empty) and
    /// the highest, exactly (percentiles are clamped to them).
    public var min: UInt64
    public var max: UInt64
    /// [value, count] pairs, ascending by value, counts > 0.
    public var counts: [[UInt64]]

    public init(_ h: Histogram<UInt64>, unit: String = "ns") {
        self.unit = unit
        lowestDiscernibleValue = h.lowestDiscernibleValue
        highestTrackableValue = h.highestTrackableValue
        significantDigits = Int(h.numberOfSignificantValueDigits.rawValue)
        totalCount = h.totalCount
        min = h.totalCount == 0 ? 0 : h.min
        max = h.totalCount == 0 ? 0 : h.maxRecorded
        counts = h.recordedValues().map { [$0.value, $0.count] }
    }

    /// An empty histogram of the standard configuration.
    public static var empty: EncodedHistogram { EncodedHistogram(LatencyRecorder.make()) }

    public struct MergeError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Rebuilds the histogram (equal, by Histogram's ==, to the one encoded).
    public func histogram() throws(MergeError) -> Histogram<UInt64> {
        guard let digits = SignificantDigits(rawValue: Int8(clamping: significantDigits)), lowestDiscernibleValue >= 1,
              highestTrackableValue >= 2 * lowestDiscernibleValue else {
            throw MergeError(message: "histogram configuration is invalid (lowest \(lowestDiscernibleValue), highest \(highestTrackableValue), digits \(significantDigits))")
        }
        var h = Histogram<UInt64>(lowestDiscernibleValue: lowestDiscernibleValue, highestTrackableValue: highestTrackableValue,
                                  numberOfSignificantValueDigits: digits)
        var pairs: [(UInt64, UInt64)] = []
        for pair in counts {
            guard pair.count == 2 else { throw MergeError(message: "histogram counts must be [value, count] pairs") }
            pairs.append((pair[0], pair[1]))
        }
        EncodedHistogram.fill(&h, pairs, min: min, max: max)
        guard h.totalCount == pairs.reduce(0, { $0 &+ $1.1 }), h.totalCount == totalCount else {
            throw MergeError(message: "histogram counts do not add up to totalCount \(totalCount), or a value is above the highest trackable value")
        }
        return h
    }

    /// Records bucket counts so that the histogram also gets the exact
    /// recorded minimum and maximum back: the bucket holding `max` is
    /// recorded at `max`, the one holding `min` (when > 0) at `min`, every
    /// other bucket at the value given (any value of a bucket lands in it).
    static func fill(_ h: inout Histogram<UInt64>, _ pairs: [(value: UInt64, count: UInt64)], min: UInt64, max: UInt64) {
        for (v, c) in pairs where c > 0 {
            let hasMax = h.valuesAreEquivalent(v, max)
            let hasMin = min > 0 && h.valuesAreEquivalent(v, min)
            switch (hasMin, hasMax) {
            case (true, true):
                if c > 1 && min != max {
                    h.record(min, count: c - 1)
                    h.record(max)
                } else {
                    h.record(min, count: c)
                }
            case (false, true): h.record(max, count: c)
            case (true, false): h.record(min, count: c)
            case (false, false): h.record(v, count: c)
            }
        }
    }

    /// Whether two histograms have one configuration (unit, range, digits), so that they can be merged.
    public func sameLayout(as o: EncodedHistogram) -> Bool {
        unit == o.unit && lowestDiscernibleValue == o.lowestDiscernibleValue
            && highestTrackableValue == o.highestTrackableValue && significantDigits == o.significantDigits
    }

    /// The error of merging two histograms of different configurations, both named.
    static func layoutMismatch(_ a: EncodedHistogram, _ b: EncodedHistogram) -> MergeError {
        MergeError(message: "cannot merge histograms of different configurations (\(a.unit) \(a.lowestDiscernibleValue)...\(a.highestTrackableValue) \(a.significantDigits) digits vs \(b.unit) \(b.lowestDiscernibleValue)...\(b.highestTrackableValue) \(b.significantDigits) digits)")
    }

    /// The sum of two histograms of the same configuration.
    public func merged(with other: EncodedHistogram) throws(MergeError) -> EncodedHistogram {
        try EncodedHistogram.merge([self, other])
    }

    /// The sum of several histograms of one configuration (runs, shards, workers).
    public static func merge(_ list: [EncodedHistogram]) throws(MergeError) -> EncodedHistogram {
        guard let first = list.first else { return .empty }
        var h = try first.histogram()
        for e in list.dropFirst() {
            guard e.sameLayout(as: first) else { throw layoutMismatch(first, e) }
            h.add(try e.histogram())
        }
        return EncodedHistogram(h, unit: first.unit)
    }
}

extension Histogram where Count == UInt64 {
    /// Percentile summary in the histogram's unit. Each percentile is the
    /// highest value of the bucket holding the ceil(p% x count)-th smallest
    /// value, never above the exact maximum (HdrHistogram's own clamp,
    /// repeated here so that no stored or printed percentile can exceed max
    /// whatever the library version does).
    func summary() -> LatencySummary {
        guard totalCount > 0 else { return LatencySummary() }
        var s = LatencySummary()
        let top = maxRecorded
        func at(_ p: Double) -> UInt64 { Swift.min(valueAtPercentile(p), top) }
        s.p50 = at(50)
        s.p90 = at(90)
        s.p99 = at(99)
        s.p999 = at(99.9)
        s.p9999 = at(99.99)
        s.max = top
        s.min = min
        s.mean = mean
        return s
    }
}

/// Percentiles of one histogram, in ns. Values are bucket-equivalent (within 0.1%).
public struct LatencySummary: Codable, Sendable, Equatable {
    public var min: UInt64 = 0
    public var mean: Double = 0
    public var p50: UInt64 = 0
    public var p90: UInt64 = 0
    public var p99: UInt64 = 0
    public var p999: UInt64 = 0
    public var p9999: UInt64 = 0
    public var max: UInt64 = 0
}

extension RunResult {
    /// Latency histograms of several runs (shards, repeats) merged class by
    /// class, losslessly. Classes are matched by name.
    public static func mergedLatency(_ runs: [RunResult]) throws(EncodedHistogram.MergeError) -> [String: EncodedHistogram] {
        var byName: [String: [EncodedHistogram]] = [:]
        for r in runs { for l in r.latency { byName[l.name, default: []].append(l.histogram) } }
        var out: [String: EncodedHistogram] = [:]
        for (k, v) in byName { out[k] = try EncodedHistogram.merge(v) }
        return out
    }
}
