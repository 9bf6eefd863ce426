import Foundation
import Testing
@testable import StressHarness

@Suite struct ResultsFileTests {
    @Test func resultsRoundTripThroughTheFile() throws {
        let r = try run(small("""
        [[lock]]
        name = "l"
        [[group]]
        [[group.op]]
        orders = { 0 = 3, 2 = 1 }
        free = "random"
        live = 16
        lock = "l"
        touch = 8
        """, run: "duration_ms = 40"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pagestorm-tests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("nested/run.json").path
        try ResultsFile.write(r, to: path)
        let back = try ResultsFile.read(RunResult.self, from: path)
        #expect(back == r)
        #expect(back.schema == "pagestorm.run/1")
        #expect(back.allocator == "pagestorm-buddy")
        #expect(back.runID.hasPrefix("test-") && back.defaultPath == "results/\(back.runID).json")
        // Histograms rebuild to the same percentiles.
        for l in back.latency where l.histogram.totalCount > 0 {
            let h = try l.histogram.histogram()
            #expect(h.valueAtPercentile(99) == l.summary.p99)
            #expect(h.totalCount == l.histogram.totalCount)
        }
        // The JSON names the fields the docs describe.
        let json = try String(contentsOfFile: path, encoding: .utf8)
        for key in ["\"schema\"", "\"allocator\"", "\"workload\"", "\"machine\"", "\"status\"", "\"verdict\"", "\"throughput\"",
                    "\"series\"", "\"latency\"", "\"histogram\"", "\"failures\"", "\"counters\"", "\"pcpHitRate\"", "\"shard\"", "\"memoryCheck\""] {
            #expect(json.contains(key), "missing \(key)")
        }
    }

    @Test func runsMergeByClass() throws {
        let text = small("[[group]]\n[[group.op]]\n", run: "duration_ms = 20")
        let a = try run(text), b = try run(text)
        let merged = try RunResult.mergedLatency([a, b])
        let name = "alloc o0 GFP_KERNEL"
        let ha = try #require(a.latency(name)).histogram, hb = try #require(b.latency(name)).histogram
        #expect(merged[name]?.totalCount == ha.totalCount + hb.totalCount)
    }
}
