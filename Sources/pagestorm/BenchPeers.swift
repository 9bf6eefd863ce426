import ArgumentParser
import Foundation
import PageAllocator
import StressHarness

/// `pagestorm bench --peers` (and `--allocator`): pagestorm beside the peer allocators.
extension BenchCommand {
    /// --peers, or --allocator naming anything but pagestorm alone.
    var peerMode: Bool {
        if peers { return true }
        guard let allocator else { return false }
        return allocator.split(separator: ",").contains { AllocatorName(parsing: String($0)) != .pagestorm }
    }

    func runPeers(config: AllocatorConfig) throws {
        // Which peers: those named, or every one (the missing ones are listed and skipped).
        let named = allocator.map { $0.split(separator: ",").compactMap { AllocatorName(parsing: String($0)) } }
        let chosen = named.map { n in AllocatorName.peers.filter { n.contains($0) } } ?? AllocatorName.peers
        if let named {
            // A peer asked for by name must load: say why not, exit 2.
            for n in named where n != .pagestorm {
                do { _ = try PeerAllocator.load(n) } catch {
                    FileHandle.standardError.write(Data("pagestorm: \(error.message)\n".utf8))
                    throw ExitCode(ExitStatus.badInput.rawValue)
                }
            }
        }
        var bench = PeerBench(allocators: [.pagestorm] + chosen, config: config, rounds: runs, iterations: iterations,
                              threads: threads, shapeMs: shapeMs) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        bench.only = only.map { Set($0.split(separator: ",").map(String.init)) }
        let report = try bench.run()
        print("pagestorm bench --peers: \(report.machine.cpuModel), \(report.machine.cores) cores, \(report.machine.kernel), swift \(report.machine.swiftVersion), rev \(report.machine.gitRevision)")
        print("\(report.rounds) interleaved rounds; ns per alloc+free pair per thread, median over rounds; (x) = median of the ratio to pagestorm in the same round")
        for a in report.allocators { print("  \(pad(a.resultsName, 16)) \(a.version) (\(a.entryPoints))") }
        for m in report.missing { print("  not installed: \(m)") }
        print("")
        for l in report.table() { print(l) }
        print("")
        for k in PeerBench.keys { if let d = report.keys[k] { print("\(k): \(d)") } }
        let bad = report.rows.filter { $0.failures > 0 || !$0.problems.isEmpty }
        for r in bad { print("! \(r.key) on \(r.allocator): \(r.failures) failed allocations; \(r.problems.joined(separator: "; "))") }
        if let output {
            try ResultsFile.write(report, to: output)
            print("\nwrote \(output)")
        }
        if !bad.isEmpty { throw ExitCode(ExitStatus.toolFailed.rawValue) }
    }
}
