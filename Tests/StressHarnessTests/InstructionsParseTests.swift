// bench --instructions: reading callgrind's totals and callgrind_annotate's inclusive cost lines.
import Foundation
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

    /// `perf stat -x,` lines: a machine with a counter prints the count first; this VM prints `<not supported>`.
    @Test func perfStatCSV() {
        let counted = "# started on Mon Nov 30 15:40:00 2026\n\n1234567,,instructions:u,2003456,100.00,,\n"
        #expect(PerfStat.parseCount(counted) == 1_234_567)
        #expect(PerfStat.parseCount("<not supported>,,instructions:u,0,100.00,,\n") == nil)
        #expect(PerfStat.parseCount("<not counted>,,instructions:u,0,0.00,,\n") == nil)
        // Another event's line is not taken for it.
        #expect(PerfStat.parseCount("0.78,msec,task-clock,778520,100.00,3.019,CPUs utilized\n") == nil)
    }

    /// Where perf cannot count instructions, `--counter perf` is refused with the reason (exit 2),
    /// and `--counter auto` falls back to callgrind, saying so. Where it can, a count comes back.
    @Test func perfCounterIsUsedOnlyWhereItCounts() throws {
        let (ok, why) = PerfStat.available()
        if ok {
            let (code, out, err) = try UserFacingTests.pagestorm(["bench", "--instructions", "--counter", "perf", "--only", "order0.pcp.1t", "--iterations", "40000"], cwd: repoRoot.path, timeoutS: 300)
            #expect(code == 0 && out.contains("perf stat -e instructions:u"), "\(out)\n\(err)")
        } else {
            #expect(!why.isEmpty)
            let (code, _, err) = try UserFacingTests.pagestorm(["bench", "--instructions", "--counter", "perf", "--only", "order0.pcp.1t"], cwd: repoRoot.path)
            #expect(code == 2 && err.contains("--counter perf: ") && err.contains(why), "\(err)")
        }
        let (code, _, err) = try UserFacingTests.pagestorm(["bench", "--counter", "perf"], cwd: repoRoot.path)
        #expect(code == 2 && err.contains("only applies with --instructions"), "\(err)")
    }
}
