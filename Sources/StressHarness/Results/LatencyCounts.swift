import Histogram

/// A latency histogram's counts in raw memory, recorded without the
/// generic Histogram type on the hot path (whose cross-module generic code
/// is not specialized here and costs tens of ns per record).
///
/// The bucketing is exactly HdrHistogram's for a lowest discernible value of
/// 1 and 3 significant digits (2048 sub-buckets, the upper 1024 used in each
/// bucket after the first), so `histogram()` rebuilds a `Histogram<UInt64>`
/// with identical counts. Values above `LatencyRecorder.highestTrackableNs`
/// are clamped to it (and counted by the caller).
struct LatencyCounts {
    static let subBucketHalfCountMagnitude = 10
    static let subBucketMask: UInt64 = 2047
    /// Counts slots: enough buckets for values below 2^42 ns (about 73 minutes).
    static let length = (LatencyCounts.bucketIndex(of: LatencyRecorder.highestTrackableNs) + 2) << subBucketHalfCountMagnitude

    let counts: UnsafeMutablePointer<UInt64>
    var total: UInt64 = 0
    var maxValue: UInt64 = 0
    var minValue: UInt64 = .max
    var zeros = false

    init() {
        counts = .allocate(capacity: LatencyCounts.length)
        counts.initialize(repeating: 0, count: LatencyCounts.length)
    }

    func destroy() { counts.deallocate() }

    @inline(__always)
    static func bucketIndex(of v: UInt64) -> Int {
        53 &- (v | subBucketMask).leadingZeroBitCount
    }

    @inline(__always)
    static func index(of v: UInt64) -> Int {
        let b = bucketIndex(of: v)
        let sub = Int(truncatingIfNeeded: v >> UInt64(b))
        return ((b &+ 1) << subBucketHalfCountMagnitude) &+ sub &- (1 << subBucketHalfCountMagnitude)
    }

    /// The lowest value of the bucket at `i`.
    static func value(at i: Int) -> UInt64 {
        var b = (i >> subBucketHalfCountMagnitude) - 1
        var sub = (i & ((1 << subBucketHalfCountMagnitude) - 1)) + (1 << subBucketHalfCountMagnitude)
        if b < 0 {
            sub -= 1 << subBucketHalfCountMagnitude
            b = 0
        }
        return UInt64(sub) << UInt64(b)
    }

    /// Records `v` (clamped to the highest trackable value). Returns false when clamped.
    @inline(__always)
    mutating func record(_ v: UInt64) -> Bool {
        let clamped = v > LatencyRecorder.highestTrackableNs
        let x = clamped ? LatencyRecorder.highestTrackableNs : v
        counts[LatencyCounts.index(of: x)] &+= 1
        total &+= 1
        if x > maxValue { maxValue = x }
        if x < minValue { if x == 0 { zeros = true } else { minValue = x } }
        return !clamped
    }

    mutating func reset() {
        guard total > 0 else { return }
        counts.update(repeating: 0, count: LatencyCounts.length)
        total = 0
        maxValue = 0
        minValue = .max
        zeros = false
    }

    /// The same counts as an HdrHistogram.
    func histogram() -> Histogram<UInt64> {
        var h = LatencyRecorder.make()
        guard total > 0 else { return h }
        var pairs: [(value: UInt64, count: UInt64)] = []
        for i in 0..<LatencyCounts.length where counts[i] != 0 { pairs.append((LatencyCounts.value(at: i), counts[i])) }
        EncodedHistogram.fill(&h, pairs, min: zeros || minValue == .max ? 0 : minValue, max: maxValue)
        return h
    }
}
