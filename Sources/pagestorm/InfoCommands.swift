import ArgumentParser
import PageAllocator
import StressHarness

struct BuddyInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buddyinfo",
        abstract: "Print /proc/buddyinfo for a configured topology (free blocks per order, per zone).")
    @OptionGroup var topology: TopologyOptions

    func run() throws {
        let a = try topology.allocator(defaultPagesPerNode: nil)
        print(a.buddyinfo(), terminator: "")
    }
}

struct ZoneInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoneinfo",
        abstract: "Print /proc/zoneinfo for a configured topology (free pages, min/low/high, spanned/present/managed, protection, per-CPU high/batch/high_min/high_max).")
    @OptionGroup var topology: TopologyOptions
    @Flag(help: "Also print this project's counters (nr_free_pcp as a zone field, pgalloc, pgfree, zone_lock_acquire) and `#` lines on the topology, zonelists and placement. Without it: the kernel's fields only, in its layout.")
    var extras = false

    func run() throws {
        let a = try topology.allocator(defaultPagesPerNode: nil)
        print(a.zoneinfo(extras: extras), terminator: "")
        guard extras else { return }
        print("# \(a.topology); min_free_kbytes \(a.minFreeKbytes); page metadata \(a.metadataBytesPerPage) bytes/page")
        print("# distances: \(a.topology.distance.map { $0.map(String.init).joined(separator: ",") }.joined(separator: ";"))\(a.topology.isDeclared ? "" : "; machine nodes " + a.topology.machineNode.map(String.init).joined(separator: ","))")
        for n in 0..<a.nodeCount { print("# zonelist of node\(a.topology.number(of: n)): \(a.zonelistDescription(node: n))") }
        for p in a.checkPlacement() { print("# placement: \(p.line)") }
    }
}

struct KnobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knobs",
        abstract: "Print the knob tables ([policy], [harness], [fail_page_alloc]) from their rows: key, default, accepted values, meaning (Markdown, as in Workloads/README.md).")

    func run() throws {
        print("### [policy]\n\n\(SlowPathPolicy.markdown)\n")
        print("### [harness]\n\n\(HarnessSpec.markdown)\n")
        print("### [fail_page_alloc]\n\n\(FaultInjectionSettings.markdown)")
    }
}
