import ArgumentParser
import Foundation
import PageAllocator
import StressHarness

struct Smoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoke",
        abstract: "The default job: a short built-in smoke workload on every CPU, validate(), then zoneinfo.")
    @OptionGroup var topology: TopologyOptions

    @Option(help: "How long the workload runs, in milliseconds.")
    var milliseconds: Int = 1000
    @Option(help: "Seed of the workers' generators.")
    var seed: UInt64 = 1

    func validate() throws {
        guard (1...3_600_000).contains(milliseconds) else { throw ValidationError("--milliseconds must be 1...3600000, got \(milliseconds)") }
    }

    func run() throws {
        // 256 MiB per node unless told otherwise.
        let a = try topology.allocator(defaultPagesPerNode: (256 << 20) / topology.pageSize)
        print("pagestorm smoke: \(a.topology); \(a.totalPages) pages of \(a.pageSize) bytes; min_free_kbytes \(a.minFreeKbytes); page metadata \(a.metadataBytesPerPage) bytes/page")
        let r: SmokeRun.Result
        do { r = try SmokeRun(allocator: a, milliseconds: milliseconds, seed: seed).run() } catch {
            FileHandle.standardError.write(Data("pagestorm smoke: \(error)\n".utf8))
            throw ExitCode(ExitStatus.toolFailed.rawValue)
        }
        print("workers \(a.cpuCount), \(r.operations) operations in \(fmt(r.seconds, 3)) s = \(fmt(r.opsPerSecond / 1e6, 2)) M ops/s; allocation failures \(r.failures); pattern corruptions \(r.corruptions)")
        print("validate(): ok; \(r.accounting)")
        let c = a.totalCounters()
        let hit = Double(c[.pcpAllocHit]) / Double(max(1, c[.pcpAllocHit] + c[.pcpRefill]))
        print("pcp hit rate \(fmt(hit * 100, 1))%; zone lock acquisitions \(c[.zoneLockAcquire]) (contended \(c[.zoneLockContended])); pcp trylock fallbacks \(c[.pcpLockContended])")
        print("")
        print(a.zoneinfo(), terminator: "")
        if r.corruptions > 0 { throw ExitCode(ExitStatus.toolFailed.rawValue) }
    }
}
