import Foundation
import Topology
@testable import StressHarness

/// A fixed machine for decoding: 1 node, 2 CPUs (declared, so tests do not
/// depend on the machine they run on).
let testMachine = try! Topology.declared(nodes: 1, cpusPerNode: 2)

/// The repository root (tests never read outside it).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func parse(_ text: String, file: String = "test.toml") throws(WorkloadError) -> Workload {
    try Workload.parse(text, file: file, defaultName: "test", machine: testMachine)
}

/// Parses and runs a small workload (no overhead measurement unless asked).
/// Workers get 60 s, not the tool's 10 s, to stop and to clean up: a test
/// process at nice 19 among builds on a 2-core machine once had a worker not
/// reach its next stop check within 10 s, and the run was abandoned as stuck.
/// Still bounded: a real hang fails the test after 60 s. Likewise a worker
/// still inside an allocation call at the end is given 10 s, not 1 s
/// (`end_abort_ms`), before the allocator is shut down under it: a worker
/// preempted inside the allocator by a busy machine is not a stuck one (a
/// test with no memory pressure at all failed that way, at load 6-11).
let testStopGraceMs = 60_000
let testEndAbortMs = 10_000
func run(_ text: String, overrides: WorkloadOverrides = WorkloadOverrides(), configure: (inout RunOptions) -> Void = { _ in }) throws -> RunResult {
    var w = try parse(text).applying(overrides)
    w.harness.endAbortMs = max(w.harness.endAbortMs, testEndAbortMs)
    var o = RunOptions()
    o.measureOverhead = false
    o.stopGraceMs = testStopGraceMs
    configure(&o)
    return try StressRun.run(w, options: o)
}

/// A declared 1-node, 2-CPU topology with a 16 MiB arena, then `body`.
func small(_ body: String, run: String = "duration_ms = 60", memory: String = "arena_mib = 16") -> String {
    """
    [topology]
    nodes = 1
    cpus_per_node = 2

    [memory]
    \(memory)

    [run]
    \(run)

    \(body)
    """
}

extension RunResult {
    func latency(_ name: String) -> ClassLatency? { latency.first { $0.name == name } }
    func draws(_ op: String) -> Int { operations.first { $0.op == op }?.draws ?? -1 }
}
