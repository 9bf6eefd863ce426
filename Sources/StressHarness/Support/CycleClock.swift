import CNUMA

/// The cycle counter (rdtsc), calibrated against the monotonic clock.
public struct CycleClock: Sendable {
    /// Nanoseconds per tick.
    public let nsPerTick: Double
    /// The counter's resolution as read: the smallest step between two
    /// different values it returns, in ticks (1 when every tick shows).
    /// AMD Zen's TSC, for one, counts at the nominal frequency but moves in
    /// steps of about 25 ticks (10 ns, a 100 MHz update), so no latency
    /// measured with it is finer than 10 ns, whatever the histogram keeps.
    public let stepTicks: Double

    public init(nsPerTick: Double, stepTicks: Double = 1) {
        self.nsPerTick = nsPerTick
        self.stepTicks = stepTicks
    }

    /// The resolution in nanoseconds.
    public var stepNs: Double { stepTicks * nsPerTick }

    /// Measures ticks against CLOCK_MONOTONIC over `milliseconds`, and the counter's step.
    public static func calibrate(milliseconds: Int = 20) -> CycleClock {
        let t0 = cnuma_monotonic_ns(), c0 = cnuma_cycles()
        while cnuma_monotonic_ns() - t0 < UInt64(milliseconds) * 1_000_000 {}
        let t1 = cnuma_monotonic_ns(), c1 = cnuma_cycles()
        return CycleClock(nsPerTick: c1 > c0 ? Double(t1 - t0) / Double(c1 - c0) : 1, stepTicks: measureStep())
    }

    /// The counter's step: reads two values a varying short time apart
    /// (0 to 63 pause instructions), many times, and looks at which
    /// differences occur. A counter that shows every tick gives differences
    /// at (nearly) every integer; one that moves in steps of s ticks gives
    /// clusters s apart (24 and 25, 49, 73 and 74, ... for s = 24.5).
    /// Returns the distance between neighbouring clusters, or 1.
    static func measureStep(samples: Int = 8192) -> Double {
        var deltas: [UInt64] = []
        deltas.reserveCapacity(samples)
        for i in 0..<samples {
            let a = cnuma_cycles()
            for _ in 0..<(i & 63) { cnuma_cpu_relax() }
            let b = cnuma_cycles()
            if b > a { deltas.append(b - a) }
        }
        return step(ofDifferences: deltas)
    }

    /// The step of a counter, from differences between its readings (see measureStep).
    static func step(ofDifferences deltas: [UInt64]) -> Double {
        var seen: [UInt64: Int] = [:]
        for d in deltas { seen[d, default: 0] += 1 }
        let values = seen.keys.sorted()
        guard values.count >= 2 else { return 1 }
        // Clusters: runs of values at most 2 ticks apart.
        var clusters: [(lo: UInt64, hi: UInt64, weight: Int, sum: Double)] = []
        for v in values {
            let n = seen[v]!
            if let last = clusters.last, v - last.hi <= 2 {
                clusters[clusters.count - 1].hi = v
                clusters[clusters.count - 1].weight += n
                clusters[clusters.count - 1].sum += Double(v) * Double(n)
            } else {
                clusters.append((v, v, n, Double(v) * Double(n)))
            }
        }
        // Fine-grained: a few wide runs of values, not many narrow clusters.
        let narrow = clusters.filter { $0.hi - $0.lo <= 2 }
        guard clusters.count >= 3, narrow.count * 10 >= clusters.count * 9 else { return 1 }
        // Neighbouring clusters seen often enough to be steps, not noise.
        let solid = clusters.filter { $0.weight >= 3 }.map { $0.sum / Double($0.weight) }
        guard solid.count >= 3 else { return 1 }
        let gaps = zip(solid.dropFirst(), solid).map { $0 - $1 }.sorted()
        // The lower quartile: a missed cluster doubles a gap, never halves it.
        return Swift.max(1, gaps[gaps.count / 4])
    }

    @inlinable public static func now() -> UInt64 { cnuma_cycles() }
    @inlinable public static func monotonicNanoseconds() -> UInt64 { cnuma_monotonic_ns() }
    @inlinable public func nanoseconds(_ ticks: UInt64) -> Double { Double(ticks) * nsPerTick }
}
