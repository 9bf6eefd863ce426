import Foundation
import PageAllocator
import Topology

// [run]
extension WorkloadDecoder {
    func decodeRun(_ r: TableReader) throws(WorkloadError) -> RunSpec {
        try r.allowOnly(WorkloadDecoder.runKeys)
        if r.has("duration_ms") && r.has("ops") {
            throw r.fail("ops", "contradicts duration_ms: a run is either timed (duration_ms) or counted (ops per worker), not both")
        }
        let ops = try r.int("ops")
        if let o = ops { try r.check("ops", o, 1...(1 << 40), what: "operations per worker") }
        let duration = ops == nil ? try r.int("duration_ms", default: 1000, range: 1...86_400_000) : nil
        let warmup = try r.int("warmup_ms", default: 0, range: 0...3_600_000)
        let seed = try r.int("seed", default: 1, range: 0...Int.max)
        let sample = try r.int("sample_every", default: 16, range: 1...(1 << 20), what: "time 1 in N allocator calls")
        guard sample & (sample - 1) == 0 else { throw r.fail("sample_every", "must be a power of two (1, 2, 4, ...), got \(sample)") }
        let timeout = try r.int("timeout_ms", default: 60_000, range: 1...86_400_000)
        let bucket = try r.int("bucket_ms", default: 100, range: 1...60_000)
        let allocator = try r.string("allocator", default: "pagestorm")
        guard let name = AllocatorName(parsing: allocator) else { throw r.fail("allocator", "unknown allocator '\(allocator)'; known: \(AllocatorName.known)") }
        return RunSpec(mode: ops == nil ? "duration" : "ops", durationMs: duration, ops: ops, warmupMs: warmup, seed: UInt64(seed),
                       sampleEvery: sample, timeoutMs: timeout, bucketMs: bucket, allocator: name.rawValue)
    }
}
