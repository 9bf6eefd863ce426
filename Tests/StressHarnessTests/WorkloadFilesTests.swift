import Foundation
import Testing
import Topology
@testable import StressHarness

/// Every file in Workloads/ parses against this machine, says where its
/// pattern comes from on its first line, and runs to completion at a reduced
/// size, ending with validate() passing and every page back.
@Suite struct WorkloadFilesTests {
    static let files: [String] = {
        let dir = repoRoot.appendingPathComponent("Workloads")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".toml") }.sorted()
    }()

    @Test func theSuitesArePresent() {
        for f in ["default.toml", "nbbs-cached-allocation.toml", "nbbs-linux-scalability.toml", "nbbs-thread-test.toml",
                  "nbbs-constant-occupancy.toml", "mimalloc-xmalloc-test.toml", "mimalloc-larson.toml"] {
            #expect(WorkloadFilesTests.files.contains(f), "Workloads/\(f) is missing")
        }
    }

    @Test(arguments: files)
    func runsToCompletionAtReducedSize(_ name: String) throws {
        let path = repoRoot.appendingPathComponent("Workloads").appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("# Source: "), "\(name) must start with a line saying where its pattern comes from")
        let w = try Workload.load(path: path)
        #expect(w.name + ".toml" == name, "the name matches the file")
        #expect(!w.source.isEmpty && !w.description.isEmpty)
        let small = w.applying(WorkloadOverrides(durationMs: 40, warmupMs: 0, sizeScale: 0.1))
        var o = RunOptions()
        o.measureOverhead = false
        o.workloadFile = path
        let r = try StressRun.run(small, options: o)
        #expect(r.status.verdict != "error", "\(r.status.problems)")
        #expect(!r.status.partial)
        #expect(r.memoryCheck.validate == "ok")
        #expect(r.memoryCheck.accounting?.allocated == 0)
        #expect(r.memoryCheck.corruptions == 0 && r.memoryCheck.freeErrors == 0)
        #expect(r.throughput.calls > 0)
        #expect(r.workloadFile == path)
        #expect(r.memoryCheck.placement?.count == r.workload.topology.nodes)
        #expect(r.counters.numaByNode?.count == r.workload.topology.nodes)
    }
}
