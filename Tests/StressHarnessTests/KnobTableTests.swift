import Foundation
import Testing
import PageAllocator
@testable import StressHarness

@Suite struct KnobTableTests {
    @Test func harnessTableDefaultsAreTheTypesDefaults() {
        #expect(HarnessSpec.rowsDisagreeingWithDefaults() == [])
        var h = HarnessSpec()
        #expect(throws: Never.self) { try h.set("stall_warnings", "yes"); try h.set("nofail", "caller-loop") }
        #expect(h.stallWarnings && h.nofail == .callerLoop && h.callerLoop)
        #expect(h.settings.first { $0.0 == "nofail" }?.1 == "caller-loop", "results keep today's spelling")
    }

    /// The workload docs carry each table as its rows print it.
    @Test func theWorkloadDocsCarryEachTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("Workloads/README.md"), encoding: .utf8)
        #expect(doc.contains(SlowPathPolicy.markdown), "[policy]: paste SlowPathPolicy.markdown (pagestorm knobs) into Workloads/README.md")
        #expect(doc.contains(HarnessSpec.markdown), "[harness]: paste HarnessSpec.markdown (pagestorm knobs) into Workloads/README.md")
        #expect(doc.contains(FaultInjectionSettings.markdown), "[fail_page_alloc]: paste FaultInjectionSettings.markdown (pagestorm knobs) into Workloads/README.md")
    }
}
