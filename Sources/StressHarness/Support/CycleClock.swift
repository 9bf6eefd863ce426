import CNUMA

/// The cycle counter (rdtsc), calibrated against the monotonic clock.
public struct CycleClock: Sendable {
    /// Nanoseconds per tick.
    public let nsPerTick: Double

    /// Measures ticks against CLOCK_MONOTONIC over `milliseconds`.
    public static func calibrate(milliseconds: Int = 20) -> CycleClock {
        let t0 = cnuma_monotonic_ns(), c0 = cnuma_cycles()
        while cnuma_monotonic_ns() - t0 < UInt64(milliseconds) * 1_000_000 {}
        let t1 = cnuma_monotonic_ns(), c1 = cnuma_cycles()
        return CycleClock(nsPerTick: c1 > c0 ? Double(t1 - t0) / Double(c1 - c0) : 1)
    }

    @inlinable public static func now() -> UInt64 { cnuma_cycles() }
    @inlinable public static func monotonicNanoseconds() -> UInt64 { cnuma_monotonic_ns() }
    @inlinable public func nanoseconds(_ ticks: UInt64) -> Double { Double(ticks) * nsPerTick }
}
