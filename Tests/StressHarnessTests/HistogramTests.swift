import Foundation
import Histogram
import Testing
@testable import StressHarness

@Suite struct HistogramTests {
    func values(seed: UInt64, count: Int) -> [UInt64] {
        var g = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let r = g.next()
            // Spread over 0 ns ... ~1 h, denser at the short end, plus edge values.
            switch i % 5 {
            case 0: return r % 100
            case 1: return r % 10_000
            case 2: return r % 5_000_000
            case 3: return r >> UInt64(24 + Int(r % 40))
            default: return [0, 1, 2047, 2048, 4095, 4096, LatencyRecorder.highestTrackableNs][Int(r % 7)]
            }
        }
    }

    @Test func rawCountsBucketExactlyAsHdrHistogram() {
        var reference = LatencyRecorder.make()
        var counts = LatencyCounts()
        defer { counts.destroy() }
        for v in values(seed: 3, count: 20_000) {
            let a = reference.record(v), b = counts.record(v)
            #expect(a && b)
        }
        let rebuilt = counts.histogram()
        #expect(rebuilt == reference)
        #expect(rebuilt.totalCount == 20_000)
        #expect(rebuilt.valueAtPercentile(99.9) == reference.valueAtPercentile(99.9))
    }

    @Test func rawCountsClampValuesAboveTheRange() {
        var counts = LatencyCounts()
        defer { counts.destroy() }
        let kept = counts.record(LatencyRecorder.highestTrackableNs + 1)
        #expect(!kept)
        #expect(counts.histogram().totalCount == 1)
    }

    /// Keyed rows of three runs pooled per (key, class): calls summed and the
    /// histograms merged once; a histogram of another layout (here another
    /// unit) is left out of its row's pool and named, the rest still pool.
    @Test func poolKeyedMergesRowsAndNamesAnotherLayout() throws {
        var a = LatencyRecorder.make(), b = LatencyRecorder.make()
        for v in values(seed: 3, count: 4_000) { a.record(v) }
        for v in values(seed: 4, count: 6_000) { b.record(v) }
        let cls = OpClass(call: .alloc, order: 0, flags: "GFP_KERNEL")
        func row(_ key: String, _ calls: Int, _ h: EncodedHistogram) -> KeyedLatency {
            KeyedLatency(key: key, name: cls.name, opClass: cls, calls: calls, failures: 1, summary: LatencySummary(), histogram: h)
        }
        let odd = EncodedHistogram(b, unit: "us")
        let (rows, problems) = SweepMerge.poolKeyed([
            [row("local", 10, EncodedHistogram(a))],
            [row("local", 20, odd), row("remote", 7, EncodedHistogram(b))],
            [row("local", 30, EncodedHistogram(b))],
        ])
        #expect(rows.map(\.row.key) == ["local", "remote"])
        let local = rows[0]
        #expect(local.row.runs == 2 && local.row.calls == 40 && local.row.failures == 2)
        #expect(local.row.timed == 10_000 && local.histogram.totalCount == 10_000)
        var sum = a
        sum.add(b)
        #expect(try local.histogram.histogram() == sum)
        #expect(local.row.summary.max == sum.maxRecorded)
        #expect(rows[1].row.runs == 1 && rows[1].row.calls == 7 && rows[1].row.timed == 6_000)
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("local alloc o0 GFP_KERNEL: cannot merge histograms of different configurations") == true)
    }

    @Test func encodingIsLosslessAndMergingAddsCounts() throws {
        var a = LatencyRecorder.make(), b = LatencyRecorder.make()
        for v in values(seed: 1, count: 5_000) { a.record(v) }
        for v in values(seed: 2, count: 7_000) { b.record(v) }
        let ea = EncodedHistogram(a), eb = EncodedHistogram(b)
        #expect(try ea.histogram() == a)
        let data = try ResultsFile.encoder().encode(ea)
        #expect(try JSONDecoder().decode(EncodedHistogram.self, from: data) == ea)

        var sum = a
        sum.add(b)
        let merged = try ea.merged(with: eb)
        #expect(try merged.histogram() == sum)
        #expect(merged.totalCount == 12_000)
        #expect(try EncodedHistogram.merge([ea, eb, .empty]) == merged)
        #expect(merged.counts.map { $0[0] } == merged.counts.map { $0[0] }.sorted())
        #expect(merged.counts.allSatisfy { $0.count == 2 && $0[1] > 0 })
    }

    @Test func mergingDifferentConfigurationsIsRefused() {
        var other = EncodedHistogram.empty
        other.significantDigits = 2
        #expect(throws: EncodedHistogram.MergeError.self) { try EncodedHistogram.merge([.empty, other]) }
    }

    @Test func percentilesSummarizeTheHistogram() {
        var h = LatencyRecorder.make()
        for v in 1...1000 { h.record(UInt64(v)) }
        let s = h.summary()
        #expect(s.p50 == 500 && s.p90 == 900 && s.p99 == 990 && s.max == 1000 && s.min == 1)
    }
}

/// Issue 15: a saturated open loop's latencies (seconds of queueing) next to
/// small ones. Every percentile is checked against the sorted values, and the
/// summary table must print every column separately.
@Suite struct SaturatedPercentileTests {
    /// 2.4 million values over 4 "workers": 70% spread between 1e8 and
    /// 1.05e9 ns (queueing behind a schedule the allocator cannot keep),
    /// 30% between 20 and 2,000 ns (frees, or the run before saturation).
    static func workerValues(_ w: Int) -> [UInt64] {
        var g = SplitMix64(seed: 1500 + UInt64(w))
        return (0..<600_000).map { _ in
            let r = g.next()
            return r % 10 < 7 ? 100_000_000 + (r >> 8) % 950_000_001 : 20 + (r >> 8) % 1_981
        }
    }

    /// The p-th percentile as HdrHistogram defines it, from sorted values:
    /// the ceil(p/100 x n)-th smallest (at least the first).
    static func exact(_ sorted: [UInt64], numerator: Int, denominator: Int) -> UInt64 {
        let n = sorted.count
        let k = max(1, (numerator * n + denominator - 1) / denominator)
        return sorted[k - 1]
    }

    /// The width of the 3-significant-digit bucket holding v: 1 below 2048,
    /// then 2^(bit length - 11), computed here without the library.
    static func bucketWidth(_ v: UInt64) -> UInt64 {
        v < 2048 ? 1 : UInt64(1) << UInt64(64 - v.leadingZeroBitCount - 11)
    }

    @Test func everyPercentileMatchesTheSortedValuesAndNoneExceedsMax() throws {
        // Recorded the way workers record (raw counts), merged the way ResultBuilder merges.
        var merged = LatencyRecorder.make()
        var all: [UInt64] = []
        all.reserveCapacity(2_400_000)
        for w in 0..<4 {
            var counts = LatencyCounts()
            defer { counts.destroy() }
            for v in Self.workerValues(w) { _ = counts.record(v); all.append(v) }
            merged.add(counts.histogram())
        }
        all.sort()
        let s = merged.summary()
        let stored = try EncodedHistogram(merged).histogram().summary()
        #expect(stored == s, "the results file's histogram gives the same percentiles")
        #expect(merged.totalCount == UInt64(all.count))
        #expect(s.max == all.last!, "max is exact")
        #expect(s.min == all.first!, "min is exact")
        let cases: [(String, UInt64, Int, Int)] = [
            ("p50", s.p50, 50, 100), ("p90", s.p90, 90, 100), ("p99", s.p99, 99, 100),
            ("p99.9", s.p999, 999, 1000), ("p99.99", s.p9999, 9999, 10000),
        ]
        #expect(cases.map(\.0) == LatencyRecorder.percentiles.map(\.label))
        for (label, got, num, den) in cases {
            let want = Self.exact(all, numerator: num, denominator: den)
            // HdrHistogram reports the highest value of want's bucket, clamped to max.
            let high = min(want - want % Self.bucketWidth(want) + Self.bucketWidth(want) - 1, all.last!)
            #expect(got >= want && got <= high, "\(label): histogram \(got), sorted values \(want) (bucket up to \(high))")
            #expect(got <= s.max, "\(label) \(got) above max \(s.max)")
        }
    }

    @Test func summaryTablePrintsEveryColumnSeparately() {
        var h = LatencyRecorder.make()
        for w in 0..<2 { for v in Self.workerValues(w) { h.record(v) } }
        // Values of 9 and 10 digits next to each other: the case that ran together.
        h.record(948_436_991)
        h.record(1_032_847_359)
        let s = h.summary()
        let row = ClassLatency(name: "alloc o0 GFP_KERNEL", opClass: OpClass(call: .alloc, order: 0, flags: "GFP_KERNEL"),
                               calls: Int(h.totalCount), failures: 0, summary: s, histogram: EncodedHistogram(h))
        let lines = RunResult.latencyTable([row])
        #expect(lines.count == 2)
        let header = lines[0].split(separator: " ").map(String.init)
        #expect(Array(header.suffix(RunResult.latencyColumns.count)) == RunResult.latencyColumns)
        let cells = lines[1].split(separator: " ").map(String.init).suffix(RunResult.latencyColumns.count)
        let name = lines[1].split(separator: " ").dropLast(RunResult.latencyColumns.count).joined(separator: " ")
        #expect(name == "alloc o0 GFP_KERNEL", "the row has exactly one cell per column: \(lines[1])")
        let values = cells.map { Double($0) }
        #expect(values.allSatisfy { $0 != nil }, "\(lines[1])")
        let numbers = values.compactMap { $0 }
        guard numbers.count == 9 else { return }
        #expect(numbers[0] == Double(h.totalCount))
        #expect(Array(numbers[3...]) == [s.p50, s.p90, s.p99, s.p999, s.p9999, s.max].map { Double($0) })
        for p in numbers[3...8] { #expect(p <= numbers[8], "a printed percentile above max: \(lines[1])") }
        // Column alignment: each value ends where its header ends.
        func ends(_ line: String) -> [Int] {
            let chars = Array(line)
            return chars.indices.filter { chars[$0] != " " && ($0 + 1 == chars.count || chars[$0 + 1] == " ") }.suffix(9).map { $0 }
        }
        #expect(ends(lines[0]) == ends(lines[1]), "misaligned:\n\(lines[0])\n\(lines[1])")
    }
}

/// Issue 10's "10 ns steps": the clock's resolution, measured from the
/// differences between readings.
@Suite struct ClockResolutionTests {
    @Test func aCounterThatMovesInStepsOf24Point5TicksIsSeenAsSuch() {
        // AMD Zen: the TSC advances 24 or 25 ticks at a time (100 MHz at 2.45 GHz).
        var deltas: [UInt64] = []
        var g = SplitMix64(seed: 7)
        for _ in 0..<8192 {
            let steps = 1 + g.next() % 20
            let base = Double(steps) * 24.5
            deltas.append(UInt64(g.next() % 2 == 0 ? base.rounded(.down) : base.rounded(.up)))
        }
        let s = CycleClock.step(ofDifferences: deltas)
        #expect(abs(s - 24.5) < 0.3, "\(s)")
    }

    @Test func aCounterThatShowsEveryTickHasAStepOfOne() {
        var g = SplitMix64(seed: 8)
        let deltas = (0..<8192).map { _ in 20 + g.next() % 600 }
        #expect(CycleClock.step(ofDifferences: deltas) == 1)
    }

    @Test func thisMachinesCounterHasAStepAndItIsReported() {
        let c = CycleClock.calibrate(milliseconds: 5)
        #expect(c.stepTicks >= 1 && c.stepNs > 0 && c.stepNs < 1_000, "\(c.stepTicks) ticks, \(c.stepNs) ns")
    }
}
