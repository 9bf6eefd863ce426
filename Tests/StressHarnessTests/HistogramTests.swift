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
