import Foundation
import PageAllocator
import Testing
import Topology
@testable import StressHarness

/// Issue 10: an arena too small for the workload's held sets is refused
/// before the run (exit 2) with how much it needs, unless the workload asks
/// for pressure on purpose (`[memory] pressure = true`).
@Suite struct ArenaFitTests {
    /// The built-in default with its arena replaced.
    func defaultWorkload(arena: String, extra: String = "") -> String {
        Workload.builtinDefaultText
            .replacingOccurrences(of: "arena_mib = 256", with: arena + extra)
            .replacingOccurrences(of: "duration_ms = 1000", with: "duration_ms = 100")
    }

    func zones(of w: Workload) throws -> [ZoneSummary] {
        let a = try PageAllocator(try w.allocatorConfig(topology: try w.topology.build()))
        return (0..<a.zoneCount).map { a.zoneDescription($0) }
    }

    @Test func defaultWorkloadInOneMiBIsRefusedBeforeTheRun() throws {
        // Before: ran about 3 s and ended as a "livelock" verdict.
        let text = defaultWorkload(arena: "arena_mib = 1")
        #expect(text.contains("arena_mib = 1\n"))
        var refusal: RunFailure?
        do { _ = try run(text) } catch let e as RunFailure { refusal = e }
        let e = try #require(refusal, "a 1 MiB arena for the default workload was not refused")
        #expect(e.status == .badInput)
        #expect(e.message.contains("arena_mib = ") && e.message.contains("pressure = true"), "\(e.message)")
        #expect(e.message.contains("op churn"), "the message names the held set: \(e.message)")
    }

    @Test func pressureOnPurposeIsNotRefused() throws {
        let text = defaultWorkload(arena: "arena_mib = 1", extra: "\npressure = true")
            + "\n[harness]\nlivelock_ms = 200\ndeadlock_ms = 100\n"
        do {
            let r = try run(text)
            #expect(r.workload.memory.pressure == true)
        } catch let e as RunFailure {
            #expect(e.status != .badInput, "pressure = true was refused: \(e.message)")
        }
    }

    /// The suggested arena is the smallest that fits: one MiB less does not.
    @Test func theSuggestedArenaIsTheSmallestThatFits() throws {
        let w1 = try parse(defaultWorkload(arena: "arena_mib = 1"))
        let need = w1.heldPages().pages
        #expect(need > 256, "default: 2 workers x 256 live blocks of 1.55 pages on average")
        let mib = Workload.arenaMiBNeeded(pages: need, nodes: 1, pageSize: 4096, minFreeKbytes: nil)
        let fits = try parse(defaultWorkload(arena: "arena_mib = \(mib)"))
        #expect(fits.arenaFit(zones: try zones(of: fits)).fits)
        let short = try parse(defaultWorkload(arena: "arena_mib = \(mib - 1)"))
        #expect(!short.arenaFit(zones: try zones(of: short)).fits)
    }

    /// Every workload file either fits its arena or says it runs out of memory on purpose.
    @Test func everyWorkloadFileFitsOrAsksForPressure() throws {
        let dir = repoRoot.appendingPathComponent("Workloads")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".toml") }.sorted()
        #expect(files.count > 10)
        for f in files {
            let w = try Workload.load(path: dir.appendingPathComponent(f).path, machine: testMachine)
            let fit = w.arenaFit(zones: try zones(of: w))
            #expect(fit.fits || w.memory.pressure == true,
                    "\(f): holds \(fit.neededPages) pages, \(fit.availablePages) available, and no [memory] pressure = true")
        }
    }
}
