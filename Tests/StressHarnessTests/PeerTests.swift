import Foundation
import PageAllocator
import Testing
import Topology
@testable import StressHarness

/// Peer allocators as backends: every installed peer runs a workload with
/// orders 0-3, touch-and-verify, hand-off frees, every lifetime, a lock and
/// an open-loop group, and its accounting balances; the bad-input messages;
/// the refusal of pagestorm-only parts; `bench --peers`.
///
/// The peers come from Debian packages that `make deps` (scripts/ensure-deps.sh)
/// installs, so CI runs every one. A peer is skipped only when its library file
/// is absent from the machine, and the test prints why.
@Suite struct PeerTests {
    static let libDirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"]

    /// nil: the peer's library is on this machine (or it needs none).
    static func absentReason(_ n: AllocatorName) -> String? {
        guard let so = n.soname else { return nil }
        if libDirs.contains(where: { FileManager.default.fileExists(atPath: $0 + "/" + so) }) { return nil }
        return "\(n.rawValue): \(so) is not installed on this machine (Debian package \(n.debianPackage!); `make deps` as root installs it); skipped"
    }

    /// Everything a peer must support, on 2 workers pinned to CPUs 0 and 1.
    static let everything = small("""
    [[lock]]
    name = "journal"

    [[group]]
    name = "w"
    workers = 2

    [[group.op]]
    name = "churn"
    weight = 6
    orders = { 0 = 4, 1 = 2, 2 = 1, 3 = 1 }
    free = "random"
    live = 64
    prefill = true
    touch = 64

    [[group.op]]
    name = "pairs"
    weight = 2
    order = 0
    free = "immediate"
    touch = 4096

    [[group.op]]
    name = "batch"
    weight = 2
    orders = { 0 = 1, 2 = 1 }
    free = "lifo"
    batch = 16
    touch = 16

    [[group.op]]
    name = "fifo"
    weight = 2
    order = 1
    free = "fifo"
    live = 32

    [[group.op]]
    name = "keep"
    weight = 1
    order = 3
    free = "keep"
    live = 8
    touch = 8

    [[group.op]]
    name = "locked"
    weight = 1
    count = 3
    lock = "journal"
    free = "fifo"
    batch = 6

    [[group.op]]
    name = "handoff"
    weight = 3
    orders = { 0 = 3, 1 = 1 }
    free_on = "w"
    touch = 128

    [[group.op]]
    name = "consume"
    kind = "consume"
    weight = 2
    batch = 8

    [[group]]
    name = "open"
    workers = 1
    loop = "open"
    rate = 20000
    cpus = [1]

    [[group.op]]
    orders = { 0 = 1, 1 = 1 }
    free = "fifo"
    live = 16
    touch = 8
    """, run: "ops = 4000\nwarmup_ms = 0")

    /// Runs `everything` on a peer and checks the run and the peer's accounting.
    static func checkPeer(_ n: AllocatorName) throws {
        let w = try parse(everything).overriding(WorkloadOverrides(allocator: n.rawValue))
        #expect(w.allocatorName == n)
        var o = RunOptions()
        o.measureOverhead = false
        let r = try StressRun.run(w, options: o)
        #expect(r.allocator == n.resultsName)
        // "overloaded": the open-loop worker fell behind its rate on a loaded machine (a verdict about the machine, not the peer).
        #expect(["ok", "overloaded"].contains(r.status.verdict), "\(n): \(r.status.verdict) \(r.status.problems)")
        #expect(r.memoryCheck.validate == "ok")
        #expect(r.memoryCheck.corruptions == 0)
        #expect(r.memoryCheck.freeErrors == 0)
        let p = try #require(r.peer)
        #expect(p.name == n.rawValue)
        #expect(p.allocatedBlocks > 8000, "\(n): only \(p.allocatedBlocks) blocks")
        #expect(p.allocatedBlocks == p.freedBlocks)
        #expect(p.allocatedPages == p.freedPages)
        #expect(p.allocatedPages > p.allocatedBlocks, "orders above 0 were allocated")
        #expect(p.misaligned == 0)
        #expect(p.refused == 0)
        #expect(!p.off.isEmpty)
        #expect(r.handoff.freedRemotely > 0)
        #expect(r.locks.first?.acquisitions ?? 0 > 0)
        #expect(r.throughput.allocs > 0 && r.throughput.failedAllocs == 0)
        for order in 0...3 { #expect(r.latency.contains { $0.opClass.order == order && $0.calls > 0 }, "\(n): no order-\(order) calls") }
        #expect(r.workers.contains { $0.group == "open" && $0.maxLagNs != nil })
        // Results files name the peer, and read back.
        let data = try JSONEncoder().encode(r)
        let back = try JSONDecoder().decode(RunResult.self, from: data)
        #expect(back.allocator == n.resultsName && back.peer == r.peer && back.workload.run.allocator == n.rawValue)
    }

    @Test(arguments: [AllocatorName.glibc, .mimalloc, .tcmalloc, .kernel])
    func peerRunsEveryFeature(_ n: AllocatorName) throws {
        if let why = PeerTests.absentReason(n) { print(why); return }
        try PeerTests.checkPeer(n)
    }

    /// jemalloc needs more static TLS than glibc keeps spare for dlopen. `make
    /// test` starts the tests with the tunable, and it runs here; without it
    /// the tool (which starts itself again with the tunable) runs it.
    @Test func jemallocRunsEveryFeature() throws {
        if let why = PeerTests.absentReason(.jemalloc) { print(why); return }
        if PeerAllocator.staticTLSTunableSet || (try? PeerAllocator.load(.jemalloc)) != nil {
            try PeerTests.checkPeer(.jemalloc)
            return
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("peer-jemalloc-\(getpid()).toml")
        try PeerTests.everything.write(to: file, atomically: true, encoding: .utf8)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("peer-jemalloc-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: file); try? FileManager.default.removeItem(at: out) }
        let (code, text) = try PeerTests.tool(["run", file.path, "--allocator", "jemalloc", "--no-overhead", "--quiet", "--output", out.path])
        #expect(code == 0 || text.contains("verdict: overloaded"), "\(text)")
        let r = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: out))
        let p = try #require(r.peer)
        #expect(r.allocator == "jemalloc" && ["ok", "overloaded"].contains(r.status.verdict))
        #expect(p.allocatedBlocks > 8000 && p.allocatedBlocks == p.freedBlocks && p.allocatedPages == p.freedPages && p.misaligned == 0)
        #expect(r.memoryCheck.corruptions == 0 && r.handoff.freedRemotely > 0)
    }

    /// Every order 0...10 from every peer: aligned to its size, writable end to end.
    @Test func blocksAreAlignedToTheirSize() throws {
        for n in AllocatorName.peers {
            if PeerTests.absentReason(n) != nil { continue }
            guard let p = try? PeerAllocator.load(n) else { continue } // jemalloc without the tunable: covered above
            for order in 0...10 {
                let b = try #require(p.allocate(order: order), "\(n) order \(order)")
                let size = p.pageSize << order
                #expect(Int(bitPattern: b) % size == 0, "\(n): order \(order) block at \(b) is not aligned to \(size)")
                b.storeBytes(of: 0xA5, toByteOffset: 0, as: UInt8.self)
                b.storeBytes(of: 0x5A, toByteOffset: size - 1, as: UInt8.self)
                #expect(b.load(fromByteOffset: size - 1, as: UInt8.self) == 0x5A)
                p.free(b, order: order)
            }
        }
    }

    /// The accounting counts: a block not freed shows.
    @Test func accountingSeesALeak() throws {
        let p = try PeerAllocator.load(.glibc)
        let slots = PeerCountSlots(count: 2)
        let a = PeerBackend(peer: p, counts: slots.slot(0)), b = PeerBackend(peer: p, counts: slots.slot(1))
        let x = try a.allocate(order: .zero, flags: .kernel, node: nil, cpu: nil, owner: 0)
        let y = try a.allocate(order: Order(unchecked: 2), flags: .kernel, node: nil, cpu: nil, owner: 0)
        try b.free(x, cpu: nil) // freed by another worker's backend
        var t = slots.total
        #expect(t.allocatedBlocks == 2 && t.freedBlocks == 1 && t.allocatedPages == 5 && t.freedPages == 1)
        try a.free(y, cpu: nil)
        t = slots.total
        #expect(t.allocatedBlocks == t.freedBlocks && t.allocatedPages == t.freedPages)
    }

    // MARK: bad input

    @Test func unknownAllocatorListsTheKnownNames() throws {
        do {
            _ = try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0", run: "duration_ms = 10\nallocator = \"nosuch\""), file: "w.toml")
            Issue.record("an unknown allocator was accepted")
        } catch {
            #expect(error.field == "run.allocator")
            #expect(error.description.hasPrefix("w.toml:"))
            #expect(error.message.contains("'nosuch'") && error.message.contains(AllocatorName.known))
        }
        #expect(throws: OverrideError.self) { try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0")).overriding(WorkloadOverrides(allocator: "nosuch")) }
        let plain = try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0"))
        do { _ = try plain.overriding(WorkloadOverrides(allocator: "nosuch")) } catch {
            #expect(error.message == "--allocator: unknown allocator 'nosuch'; known: pagestorm, glibc, jemalloc, mimalloc, tcmalloc, kernel")
        }
        // Every spelling of a known name resolves; pagestorm stays the default.
        #expect(try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0")).allocatorName == .pagestorm)
        #expect(try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0", run: "duration_ms = 10\nallocator = \"tcmalloc_minimal\"")).run.allocator == "tcmalloc")
    }

    @Test(arguments: [AllocatorName.jemalloc, .mimalloc, .tcmalloc])
    func missingLibraryNamesTheDebianPackage(_ n: AllocatorName) {
        do {
            _ = try PeerAllocator.load(n, path: "/nonexistent/\(n.soname!)")
            Issue.record("a missing library loaded")
        } catch {
            #expect(!error.message.contains("\n"))
            #expect(error.message.hasPrefix("\(n.rawValue): cannot load /nonexistent/\(n.soname!)"))
            #expect(error.message.contains("install the Debian package \(n.debianPackage!)"))
        }
    }

    @Test func pagestormOnlyPartsAreRefused() throws {
        let w = try Workload.load(path: repoRoot.appendingPathComponent("Workloads/scenario1-oom-victim-lock.toml").path, machine: testMachine)
            .overriding(WorkloadOverrides(allocator: "glibc"))
        var o = RunOptions()
        o.measureOverhead = false
        do {
            _ = try StressRun.run(w, options: o)
            Issue.record("a workload with a slow-path policy and OOM kills ran on glibc")
        } catch {
            #expect(error.status == .badInput)
            #expect(error.message.contains("asks for allocator glibc"))
            #expect(error.message.contains("[policy] retry = legacy"))
            #expect(error.message.contains("restart = true"))
            #expect(error.message.contains("reclaimable"))
        }
        // Each refused part alone.
        let parts = [
            ("[[group.op]]\norder = 0\nreclaimable = \"clean\"", "reclaim"),
            ("[[group.op]]\norder = 0\nreserve = 4", "reservations"),
            ("[[group.op]]\norder = 0\nnode = 0", "NUMA placement"),
            ("mempolicy = \"bind=0\"\n[[group.op]]\norder = 0", "group g: mempolicy = \"bind=0\" (memory policies"),
        ]
        for (op, what) in parts {
            let s = try parse(small("[[group]]\nname = \"g\"\nworkers = 1\n" + op)).peerSupport()
            #expect(s.refused.count == 1 && s.refused[0].contains(what), "\(s.refused)")
        }
        let plain = try parse(small("[[group]]\nname = \"g\"\n[[group.op]]\norder = 0")).peerSupport()
        #expect(plain.refused.isEmpty && plain.off.contains { $0.contains("watermarks") })
    }

    // MARK: bench --peers

    @Test func shapesAreTheWorkloadFiles() throws {
        for s in PeerShapes.all {
            let file = try String(contentsOf: repoRoot.appendingPathComponent(s.file), encoding: .utf8)
            // Embedded at build time (Plugins/EmbedWorkloads): the same text, byte for byte.
            #expect(file == s.text, "\(s.file) differs from the text embedded in the binary")
        }
    }

    @Test func benchPeersMeasuresSideBySide() throws {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 2), zones: [ZoneSpec(.normal, pages: 8192)])
        cfg.perCPUMaxOrder = 3
        var b = PeerBench(allocators: [.pagestorm, .glibc, .kernel], config: cfg, rounds: 2, iterations: 20_000, pairBudgetMs: 5, threads: 2, shapeMs: 20)
        b.only = ["order0.1t", "order0.Nt", "mimalloc-larson"]
        let r = try b.run()
        #expect(r.rows.count == 9)
        for row in r.rows {
            #expect(row.runs.count == 2 && row.runs.allSatisfy { $0 > 0 && $0.isFinite }, "\(row.key) \(row.allocator): \(row.runs)")
            #expect(row.failures == 0 && row.problems.isEmpty, "\(row.key) \(row.allocator): \(row.problems)")
            #expect(row.ratios.count == 2)
            if row.allocator == "pagestorm-buddy" { #expect(row.ratioToPagestorm == 1) }
            if row.key == "order0.Nt" { #expect(row.scaling != nil) }
        }
        // Each ratio is the round's value over pagestorm's in the same round.
        let k = try #require(r.rows.first { $0.key == "order0.1t" && $0.allocator == "kernel" })
        let ref = try #require(r.rows.first { $0.key == "order0.1t" && $0.allocator == "pagestorm-buddy" })
        for i in 0..<2 { #expect(abs(k.ratios[i] - k.runs[i] / ref.runs[i]) < 1e-9) }
        // Stable JSON keys.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(r)) as! [String: Any]
        #expect(json["schemaVersion"] as? String == "pagestorm.bench-peers/1")
        let row = (json["rows"] as! [[String: Any]])[0]
        for key in ["key", "allocator", "unit", "median", "runs", "ratioToPagestorm", "ratios", "failures", "problems"] { #expect(row[key] != nil, "row key \(key)") }
        #expect(r.table().count == 5)
    }

    // MARK: the tool

    /// Runs the pagestorm tool built beside the tests (bounded: killed after 120 s); returns its exit code and output.
    static func tool(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try UserFacingTests.binary())
        p.arguments = args
        p.currentDirectoryURL = repoRoot
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let tag = UUID().uuidString
        let outURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pagestorm-peer-out-\(tag)")
        let errURL = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pagestorm-peer-err-\(tag)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        let (code, out, err) = try UserFacingTests.finish(UserFacingTests.Running(process: p, out: outURL, err: errURL), timeoutS: 120)
        return (code, out + err)
    }

    @Test func toolBadInput() throws {
        var (code, text) = try PeerTests.tool(["run", "--allocator", "nosuch", "--no-results"])
        #expect(code == 2 && text.contains("unknown allocator 'nosuch'; known: pagestorm, glibc, jemalloc, mimalloc, tcmalloc, kernel"), "\(text)")
        (code, text) = try PeerTests.tool(["bench", "--allocator", "nosuch"])
        #expect(code == 2 && text.contains("known: pagestorm, glibc"), "\(text)")
        (code, text) = try PeerTests.tool(["run", "--allocator", "tcmalloc", "--no-results", "--ops", "10"], env: ["PAGESTORM_TCMALLOC_LIB": "/nonexistent/libtcmalloc_minimal.so.4"])
        #expect(code == 2 && text.contains("install the Debian package libtcmalloc-minimal4"), "\(text)")
        (code, text) = try PeerTests.tool(["run", "Workloads/scenario3-nofail-pressure.toml", "--allocator", "mimalloc", "--no-results"])
        #expect(code == 2 && text.contains("needs parts only pagestorm has"), "\(text)")
        // A group memory policy (from the file, or from --mempolicy) is refused on a peer: it has no nodes.
        (code, text) = try PeerTests.tool(["run", "Workloads/numa-policies.toml", "--allocator", "glibc", "--no-results"])
        #expect(code == 2 && text.contains("needs parts only pagestorm has: group w: mempolicy = \"interleave=0-1\""), "\(text)")
        (code, text) = try PeerTests.tool(["run", "Workloads/numa-policies.toml", "--allocator", "glibc", "--mempolicy", "w=bind=1", "--no-results"])
        #expect(code == 2 && text.contains("group w: mempolicy = \"bind=1\""), "\(text)")
        (code, text) = try PeerTests.tool(["run", "Workloads/numa-policies.toml", "--allocator", "glibc", "--mempolicy", "all=local", "--no-results", "--no-overhead", "--duration-ms", "20"])
        #expect(code == 0, "local is no policy: the peer runs it\n\(text)")
    }
}
