import ArgumentParser
import Foundation
import PageAllocator
import StressHarness
import Topology

func failBadInput(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("pagestorm: \(message)\n".utf8))
    return ExitCode(ExitStatus.badInput.rawValue)
}

/// Which of numastat's layouts to print.
struct NumastatLayout: ParsableArguments {
    @Option(help: "Print node N's /sys/devices/system/node/nodeN/numastat file instead of the table.")
    var sysfs: Int?
    @Flag(name: .customShort("m"), help: "Also print numastat -m's per-node memory table (MB).")
    var memory = false

    func print(_ s: NumaStat) throws {
        if let n = sysfs {
            // N is the node's number (numastat's column name), which may skip numbers.
            let names = s.nodes.indices.map { s.name($0) }
            guard let i = names.firstIndex(of: n) else { throw failBadInput("--sysfs \(n): no such node (nodes \(NodeList.format(names)))") }
            Swift.print(s.sysfs(node: i), terminator: "")
            return
        }
        Swift.print(s.table(), terminator: "")
        if memory { Swift.print(s.memoryTable(), terminator: "") }
    }
}

struct NumastatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "numastat",
        abstract: "Per-node numa_hit/miss/foreign, interleave_hit, local_node/other_node (and -m memory) in numastat's layouts: from a results file, or after running a workload.",
        discussion: """
        pagestorm numastat RESULTS.json prints the counters the run recorded when its workers stopped (since the \
        allocator was made; --window: over the measured window only). pagestorm numastat --run WORKLOAD.toml runs the \
        workload (no results file) and prints the arena's numastat afterwards. Layouts: the numastat tool's default \
        table (pages), --sysfs N (one node's sysfs file), -m (per-node memory in MB).
        """)
    @Argument(help: "A results file (pagestorm.run/1).")
    var results: String?
    @Option(name: .customLong("run"), help: "Run this workload file and print the arena's numastat after it.")
    var runWorkload: String?
    @Option(name: .customLong("mempolicy"), help: "With --run: GROUP=POLICY (numactl's spelling), e.g. workers=interleave=0,1. Repeatable.")
    var mempolicy: [String] = []
    @Option(name: .customLong("duration-ms"), help: "With --run: run this long.")
    var durationMs: Int?
    @Flag(help: "From a results file: the counters over the measured window (counters.numaByNode) instead of at the end.")
    var window = false
    @OptionGroup var layout: NumastatLayout

    func run() throws {
        if (results == nil) == (runWorkload == nil) { throw failBadInput("numastat: give a results file or --run WORKLOAD.toml (one of them)") }
        if let path = results {
            let r: RunResult
            do { r = try ResultsFile.read(RunResult.self, from: path) } catch {
                throw failBadInput("numastat: cannot read results file \(path): \(error)")
            }
            var s: NumaStat
            if window || r.numastat == nil {
                guard let byNode = r.counters.numaByNode else { throw failBadInput("numastat: \(path) has no per-node NUMA counters") }
                let names = r.numastat?.nodeNames ?? r.workload.topology.numbers
                s = NumaStat(pageSize: r.workload.memory.pageSize, nodes: byNode.enumerated().map { n, d in
                    NodeNumaStat(node: n < names.count ? names[n] : n, numaHit: d["numa_hit"] ?? 0, numaMiss: d["numa_miss"] ?? 0, numaForeign: d["numa_foreign"] ?? 0,
                                 interleaveHit: d["numa_interleave"] ?? 0, localNode: d["numa_local"] ?? 0, otherNode: d["numa_other"] ?? 0)
                })
                if let end = r.numastat { for i in s.nodes.indices where i < end.nodes.count {
                    let e = end.nodes[i]
                    s.nodes[i].totalPages = e.totalPages; s.nodes[i].freePages = e.freePages; s.nodes[i].perCPUPages = e.perCPUPages
                    s.nodes[i].fileCleanPages = e.fileCleanPages; s.nodes[i].fileDirtyPages = e.fileDirtyPages; s.nodes[i].anonPages = e.anonPages
                } }
            } else {
                s = r.numastat!
            }
            try layout.print(s)
            return
        }
        var w: Workload
        do {
            w = try Workload.load(path: runWorkload!).overriding(WorkloadOverrides(durationMs: durationMs)).settingMemPolicies(mempolicy)
        } catch { throw failBadInput("\(error)") }
        let result: RunResult
        do { result = try StressRun.run(w, options: RunOptions()) } catch {
            FileHandle.standardError.write(Data("pagestorm: \(error)\n".utf8))
            throw ExitCode(error.status.rawValue)
        }
        guard let s = result.numastat else { throw ExitCode(ExitStatus.toolFailed.rawValue) }
        try layout.print(s)
        if result.exitStatus != .ok { throw ExitCode(result.exitStatus.rawValue) }
    }
}

struct FaultPagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault-pages",
        abstract: "Fault N pages in under a memory policy with the real kernel (set_mempolicy or mbind) and the model with the same topology and policy; print both numastat deltas side by side.",
        discussion: """
        The kernel side pins itself to --cpu, maps --pages anonymous pages (transparent huge pages off), sets the \
        policy, writes one byte per page, and reads /sys/devices/system/node/node*/numastat before and after. The model \
        side allocates as many order-0 pages under the same policy from a CPU of the same node, on a declared topology \
        with the machine's nodes, CPUs and distances. --check exits 1 when any counter of any node differs by more \
        than --tolerance of the pages. Node numbers are the machine's. weighted-interleave=N:W,... writes the weights \
        to /sys/kernel/mm/mempolicy/weighted_interleave/nodeN for the run (Linux 6.9+, root) and puts the old ones back; \
        Linux 6.13+ counts those allocations as interleave_hit, 6.9-6.12 do not, and the model follows the running \
        kernel's rule (--weighted-interleave-hit).
        """)
    @Option(help: "The policy, numactl's spelling: local, bind=NODES, interleave=NODES, preferred=NODE, preferred-many=NODES, weighted-interleave=N:W,...")
    var policy: String
    @Option(help: "Pages to fault in.")
    var pages: Int = 4096
    @Option(help: "The CPU to run on (the machine's number).")
    var cpu: Int = 0
    @Flag(help: "Use mbind on the mapping instead of set_mempolicy.")
    var mbind = false
    @Flag(help: "Exit 1 when kernel and model disagree.")
    var check = false
    @Option(help: "Largest allowed difference of a counter, as a fraction of --pages.")
    var tolerance: Double = 0.05
    @Flag(help: "Only the model (no kernel calls): for machines without NUMA, with --nodes.")
    var modelOnly = false
    @Flag(help: "Start the model with the kernel's headroom: each model node is first filled until it has no more free pages above LOW than the machine's node has now (/proc/zoneinfo), so a node that runs short in the kernel runs short in the model too (numa_miss, numa_foreign).")
    var headroom = false
    @Option(name: .customLong("weighted-interleave-hit"), help: "Whether the model counts weighted-interleave allocations as interleave_hit: yes (Linux 6.13+), no (6.9-6.12), or auto: the running kernel's rule when the kernel side runs, yes otherwise.")
    var weightedInterleaveHit: String = "auto"
    @OptionGroup var topology: TopologyOptions

    func run() throws {
        guard pages >= 1, pages <= 1 << 20 else { throw failBadInput("--pages must be 1...1048576, got \(pages)") }
        guard tolerance >= 0, tolerance < 1 else { throw failBadInput("--tolerance must be 0...1, got \(tolerance)") }
        let machine = Topology.discover()
        let topo: Topology
        if topology.nodes != nil || topology.cpusPerNode != nil || topology.nodeIDs != nil { topo = try topology.topology() } else { topo = machine }
        let names = topo.machineNode
        let p: MemPolicy
        do { p = try MemPolicy.parse(policy, nodes: names) } catch { throw failBadInput("--policy: \(error)") }
        // The model's nodes are indices: map the numbers (the machine's, or the declared node ids).
        let modelPolicy = p.indexed(in: topo)
        let logical: Int
        if topo.isDeclared {
            guard cpu >= 0, cpu < topo.cpuCount else { throw failBadInput("--cpu \(cpu): the declared topology has CPUs 0...\(topo.cpuCount - 1)") }
            logical = cpu
        } else {
            guard let l = topo.realCPU.firstIndex(of: cpu) else { throw failBadInput("--cpu \(cpu) does not exist (CPUs: \(NodeList.format(topo.realCPU)))") }
            logical = l
        }
        let declared = try Topology.declared(cpusPerNode: topo.nodes.map(\.cpus.count), distance: topo.distance, nodeIDs: topo.machineNode)
        var start: [Int: Int] = [:]
        if headroom {
            if modelOnly || topo.isDeclared { throw failBadInput("--headroom reads the real kernel's /proc/zoneinfo: not with --model-only or a declared topology") }
            let k = PolicyFidelity.kernelHeadroom()
            guard !k.isEmpty else { throw failBadInput("--headroom: cannot read the pages free and low watermarks of /proc/zoneinfo") }
            for (n, h) in k { if let i = topo.index(ofNumber: n) { start[i] = h } }
        }
        let kernelSide = !(modelOnly || topo.isDeclared)
        let wiHit: Bool
        var wiWhy = ""
        if weightedInterleaveHit == "auto" {
            let release = kernelSide ? PolicyFidelity.kernelRelease() : nil
            if let r = release, let rule = PolicyFidelity.countsWeightedInterleaveHit(release: r) {
                wiHit = rule
                wiWhy = "Linux \(r): " + (rule ? "6.13+ counts it" : "before 6.13 only plain interleave is counted")
            } else {
                wiHit = true
                wiWhy = kernelSide ? "kernel release unknown: counted as Linux 6.13+ does" : "as Linux 6.13+ does"
            }
        } else if let b = parseBool(weightedInterleaveHit) {
            wiHit = b
            wiWhy = "--weighted-interleave-hit \(weightedInterleaveHit)"
        } else {
            throw failBadInput("--weighted-interleave-hit must be auto, yes or no, got '\(weightedInterleaveHit)'")
        }
        let model = try PolicyFidelity.runModel(topology: declared, policy: modelPolicy, pages: pages, cpu: logical, headroom: start,
                                                weightedInterleaveHit: wiHit)
        let cpuNode = topo.node(of: CPUID(logical)).rawValue
        print("policy \(p), \(pages) pages faulted from cpu\(cpu) (node\(names[cpuNode]))\(mbind ? " with mbind" : " with set_mempolicy")")
        if p.mode == .weightedInterleave {
            print("model: weighted-interleave allocations \(wiHit ? "counted" : "not counted") as interleave_hit (\(wiWhy))")
        }
        if headroom {
            print("headroom at the start (free pages above LOW, the kernel's; the model filled down to it): " +
                  start.sorted { $0.key < $1.key }.map { "node\(names[$0.key]) \($0.value)" }.joined(separator: ", "))
        }
        if !kernelSide {
            print(PolicyFidelity.table(nodes: names, kernel: [], model: model), terminator: "")
            return
        }
        let k: PolicyFidelity.KernelRun
        do { k = try PolicyFidelity.runKernel(policy: p, pages: pages, realCPU: cpu, useMbind: mbind) } catch let e as RunFailure {
            FileHandle.standardError.write(Data("pagestorm: \(e)\n".utf8))
            throw ExitCode(e.status.rawValue)
        }
        // Kernel nodes may include memory-only nodes the model leaves out: compare the model's.
        let kernel = names.map { n in k.nodes.firstIndex(of: n).map { k.delta[$0] } ?? NodeNumaStat(node: n) }
        var m = model
        for i in m.indices { m[i].node = names[i] }
        print(PolicyFidelity.table(nodes: names, kernel: kernel, model: m), terminator: "")
        if let placed = k.placed { print("kernel placement (move_pages): " + zip(k.nodes, placed).map { "node\($0): \($1)" }.joined(separator: ", ")) }
        let bad = PolicyFidelity.disagreements(kernel: kernel, model: m, pages: pages, tolerance: tolerance)
        if bad.isEmpty {
            print("fidelity: kernel and model agree within \(Int(tolerance * 100))% of \(pages) pages on every counter of every node")
        } else {
            for b in bad { print("fidelity: DISAGREE \(b)") }
            if check { throw ExitCode(ExitStatus.failures.rawValue) }
        }
    }
}

struct NumaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "numa",
        abstract: "The CPU-node x memory-node matrix (allocations/s, alloc p50/p99, touch GB/s, remote/local), the fallback order under pressure, and a policy comparison.",
        discussion: """
        Every group of the workload (default: one worker per CPU of the node allocating order 0, writing the page and \
        freeing it) runs with its workers on each CPU node in turn and its memory bound (bind=M) to each memory node. \
        Touch GB/s: --touch-pages pages bound to the memory node, written whole from a thread on the CPU node. On a \
        declared topology every node's memory is the same real memory: the differences are the model's, not the hardware's.
        """)
    @Argument(help: "A workload file (default: the built-in alloc/touch/free mix).")
    var workload: String?
    @Option(name: .customLong("duration-ms"), help: "Measured time per cell.")
    var durationMs: Int = 200
    @Option(name: .customLong("touch-pages"), help: "Pages written for the touch bandwidth.")
    var touchPages: Int = 2048
    @Option(help: "Policies compared side by side (workers on node 0), comma-separated groups of numactl spellings separated by ';'. Default: local;bind=LAST;interleave=all;preferred=LAST.")
    var policies: String?
    @Flag(name: .customLong("no-fallback"), help: "Skip the fallback-order experiment.")
    var noFallback = false
    @Option(help: "Also write the matrix as JSON (schema pagestorm.numa/1) to this file; `pagestorm report` draws it as heat maps.")
    var output: String?
    @OptionGroup var topology: TopologyOptions

    func run() throws {
        guard (1...600_000).contains(durationMs) else { throw failBadInput("--duration-ms must be 1...600000, got \(durationMs)") }
        guard (1...262_144).contains(touchPages) else { throw failBadInput("--touch-pages must be 1...262144, got \(touchPages)") }
        if let o = output, FileManager.default.fileExists(atPath: o) { throw failBadInput("--output \(o): the file exists (never replaced)") }
        let declared = topology.nodes != nil || topology.cpusPerNode != nil || topology.nodeIDs != nil
        var w: Workload
        do {
            if let f = workload {
                if declared { throw failBadInput("numa: the workload file's [topology] decides the nodes; drop --nodes/--cpus-per-node") }
                w = try Workload.load(path: f).overriding(WorkloadOverrides(durationMs: durationMs))
            } else {
                let t = try topology.topology()
                let spec = TopologySpec.describing(t)
                w = try NodeMatrix.builtinWorkload(topology: spec, durationMs: durationMs, arenaMiB: topology.arenaMiB ?? 16)
            }
        } catch let e as ExitCode { throw e } catch { throw failBadInput("\(error)") }
        let topo: Topology
        do { topo = try w.topology.build() } catch { throw failBadInput("topology: \(error)") }
        let onOneNode = topo.isDeclared || !topo.canBindMemory
        let startedAt = ResultsFile.timestamp(Date())
        print("pagestorm numa: \(w.name); \(topo)")
        if onOneNode {
            print("note: \(topo.isDeclared ? "a declared topology" : "memory cannot be bound to nodes here"): every node's memory is the same real memory, so latency and bandwidth differences are the model's (its code paths), not the hardware's")
        }
        print("")
        let cells: [NodeMatrix.Cell]
        do { cells = try NodeMatrix.matrix(w, topology: topo, touchPages: touchPages) } catch {
            FileHandle.standardError.write(Data("pagestorm: \(error)\n".utf8))
            throw ExitCode((error as? RunFailure)?.status.rawValue ?? ExitStatus.toolFailed.rawValue)
        }
        print(NodeMatrix.format(cells))
        if let path = output {
            let doc = NumaMatrixResult(workload: w.name, startedAt: startedAt, machine: MachineInfo.current(topology: topo), topology: "\(topo)",
                                       nodes: topo.nodeCount, modelOnly: onOneNode, durationMs: durationMs, touchPages: touchPages, cells: cells)
            do {
                let written = try ResultsFile.write(doc, to: path, uniquify: false)
                print("matrix: \(written)")
            } catch {
                FileHandle.standardError.write(Data("pagestorm: cannot write \(path): \(error.localizedDescription)\n".utf8))
                throw ExitCode(ExitStatus.toolFailed.rawValue)
            }
        }

        // The experiments below run from the first node with CPUs (node numbers as printed may skip).
        let home = topo.cpuNodes[0]
        let homeName = "node\(topo.number(of: home))"
        if !noFallback && topo.nodeCount > 1 {
            var cfg = AllocatorConfig(topology: topo, pagesPerNode: max(1024, w.memory.pagesPerNode))
            cfg.bindMemory = false
            let f = try NodeMatrix.fallback(config: cfg, node: home, pages: cfg.zones.reduce(0) { $0 + $1.pages } * topo.nodeCount / 2)
            print("fallback order under pressure: \(homeName) filled below LOW, then order-0 allocations from cpu of \(homeName) (local policy)")
            print("  zonelist of \(homeName) (distance order): " + f.zonelist.map { "node\(topo.number(of: $0)) (\(topo.distance[home][$0]))" }.joined(separator: ", "))
            print("  where the allocations went, in order: " + f.used.map { "node\(topo.number(of: $0.node)) x\($0.pages)" }.joined(separator: ", "))
            print("")
        }

        let last = topo.number(of: topo.nodeCount - 1)
        let list = (policies ?? "local;bind=\(last);interleave=all;preferred=\(last)").split(separator: ";").map(String.init)
        for p in list {
            do { _ = try MemPolicy.parse(p, nodes: topo.machineNode) } catch { throw failBadInput("--policies '\(p)': \(error)") }
        }
        let rows = try NodeMatrix.comparePolicies(w, topology: topo, cpuNode: home, policies: list)
        print("policy comparison (workers on \(homeName))")
        print("policy                   allocs/s   p50 ns   p99 ns  " + topo.machineNode.map { "on node\($0)".padding(toLength: 11, withPad: " ", startingAt: 0) }.joined() + "interleave_hit  other_node  placement")
        for r in rows {
            var line = r.policy.padding(toLength: 22, withPad: " ", startingAt: 0)
            line += String(repeating: " ", count: max(0, 11 - NodeMatrix.rate(r.allocsPerSecond).count)) + NodeMatrix.rate(r.allocsPerSecond)
            line += String(repeating: " ", count: max(0, 9 - String(r.p50).count)) + String(r.p50)
            line += String(repeating: " ", count: max(0, 9 - String(r.p99).count)) + String(r.p99) + "  "
            line += r.placedByNode.map { String($0).padding(toLength: 11, withPad: " ", startingAt: 0) }.joined()
            line += String(r.interleaveHit).padding(toLength: 16, withPad: " ", startingAt: 0) + String(r.otherNode).padding(toLength: 12, withPad: " ", startingAt: 0)
            line += r.placement + (r.verdict == "ok" ? "" : " (verdict \(r.verdict))")
            print(line)
        }
    }
}
