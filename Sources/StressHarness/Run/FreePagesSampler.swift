import PageAllocator

/// Free pages of every zone against its min/low/high watermarks over time
/// (`freePages` in the results), sampled by the run's main thread once per
/// `run.bucket_ms` (the throughput series' bucket) from the release of the
/// workers to their stop: one racy read of each zone's counter and per-CPU
/// drifts, as /proc/zoneinfo's `pages free` (no lock, nothing on the workers'
/// path). At most `maxSamples` samples; later ones are dropped (`truncated`).
struct FreePagesSampler {
    static let maxSamples = 6000
    let intervalNs: UInt64
    var nextNs: UInt64 = 0
    var atMs: [Double] = []
    var zones: [ZoneFreeSeries] = []
    var truncated = false

    init(intervalMs: Int, allocator: PageAllocator) {
        intervalNs = UInt64(max(1, intervalMs)) * 1_000_000
        zones = (0..<allocator.zoneCount).map { z in
            let d = allocator.zoneDescription(z)
            return ZoneFreeSeries(zone: z, node: d.node.rawValue, type: d.type.name, free: [], min: [], low: [], high: [])
        }
    }

    /// Samples when `elapsedNs` (since the release) has reached the next sample time.
    mutating func maybeSample(elapsedNs: UInt64, allocator: PageAllocator) {
        guard elapsedNs >= nextNs else { return }
        sample(elapsedNs: elapsedNs, allocator: allocator)
        nextNs = (elapsedNs / intervalNs + 1) * intervalNs
    }

    mutating func sample(elapsedNs: UInt64, allocator: PageAllocator) {
        guard atMs.count < FreePagesSampler.maxSamples else { truncated = true; return }
        atMs.append(Double(elapsedNs) / 1e6)
        for z in zones.indices {
            let w = allocator.watermarks(zone: z)
            zones[z].free.append(allocator.freePages(zone: z))
            zones[z].min.append(w.min)
            zones[z].low.append(w.low)
            zones[z].high.append(w.high)
        }
    }

    func report() -> FreePagesSeries {
        FreePagesSeries(intervalMs: Int(intervalNs / 1_000_000), atMs: atMs, zones: zones, truncated: truncated)
    }
}

/// `freePages` in the results: when each sample was taken (ms after the
/// workers were released) and, per zone, free pages and the watermarks then.
public struct FreePagesSeries: Codable, Sendable, Equatable {
    public var intervalMs: Int
    public var atMs: [Double]
    public var zones: [ZoneFreeSeries]
    /// More than 6000 samples: the later ones were not kept.
    public var truncated: Bool
}

public struct ZoneFreeSeries: Codable, Sendable, Equatable {
    public var zone: Int
    public var node: Int
    public var type: String
    public var free: [Int]
    public var min: [Int]
    public var low: [Int]
    public var high: [Int]
}
