// bench --instructions: reading callgrind's totals and callgrind_annotate's inclusive cost lines.
import Testing
@testable import StressHarness

@Suite struct InstructionsParseTests {
    @Test func totalsLine() {
        #expect(Instructions.parseCallgrindTotal("events: Ir\nsummary: 123456\n") == 123456)
        #expect(Instructions.parseCallgrindTotal("events: Ir\ntotals: 77\n") == 77)
        #expect(Instructions.parseCallgrindTotal("events: Ir\n") == nil)
    }

    @Test func annotateInclusiveLine() {
        let text = """
        --------------------------------------------------------------------------------
        Ir
        --------------------------------------------------------------------------------
        61,234,567 (100.0%)  PROGRAM TOTALS

        --------------------------------------------------------------------------------
        Ir                   file:function
        --------------------------------------------------------------------------------
        40,100,200 (65.49%)  ???:$s13StressHarness5BenchV8pairLoop [/tmp/pagestorm]
         9,000,018 (14.70%)  ???:cnuma_sched_getcpu [/tmp/pagestorm]
         8,000,016 (13.06%)  ???:sched_getcpu [/usr/lib/x86_64-linux-gnu/libc.so.6]
        """
        #expect(Instructions.parseAnnotateCost(text, function: "cnuma_sched_getcpu") == 9_000_018)
        #expect(Instructions.parseAnnotateCost(text, function: "sched_getcpu") == 8_000_016)
        #expect(Instructions.parseAnnotateCost(text, function: "nosuch") == nil)
    }
}
