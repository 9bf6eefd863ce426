import CNUMA
import Foundation
import PageAllocator
import Topology

/// One measurement of `bench --peers`: one shape on one allocator, every round.
public struct PeerBenchRow: Codable, Sendable, Equatable {
    /// The shape: "order0.1t", "order0.Nt", "nbbs-cached-allocation", "nbbs-constant-occupancy",
    /// "mimalloc-larson", "mimalloc-xmalloc-test".
    public var key: String
    /// What results files call the allocator ("pagestorm-buddy", "jemalloc", ...).
    public var allocator: String
    /// Always "ns/pair": thread time per alloc+free pair (per thread with several).
    public var unit: String
    public var median: Double
    /// Each round's value, in round order.
    public var runs: [Double]
    /// Median over rounds of (this round's value / pagestorm's value in the same round).
    public var ratioToPagestorm: Double?
    public var ratios: [Double]
    /// order0.Nt: throughput with `threads` threads over one thread's (median over rounds).
    public var scaling: Double?
    /// Allocations that failed (should be 0) and runs whose verdict was not ok.
    public var failures: Int
    public var problems: [String]
}

/// A peer allocator as loaded for the benchmark.
public struct PeerBenchAllocator: Codable, Sendable, Equatable {
    public var name: String
    public var resultsName: String
    public var version: String
    public var library: String
    public var entryPoints: String
}

/// The `pagestorm bench --peers` results file.
public struct PeerBenchReport: Codable, Sendable {
    public static let schema = "pagestorm.bench-peers/1"
    public var schemaVersion = PeerBenchReport.schema
    public var startedAt: String
    public var machine: MachineInfo
    public var rounds: Int
    /// Most pairs per order-0 measurement (fewer for slow allocators: see pairBudgetMs).
    public var iterations: Int
    public var pairBudgetMs: Int
    public var threads: Int
    /// Measured time of each workload-shape run (after its warm-up).
    public var shapeMs: Int
    public var allocators: [PeerBenchAllocator]
    /// Peers that could not be loaded, each with the line saying why.
    public var missing: [String]
    /// What each key measures.
    public var keys: [String: String]
    public var rows: [PeerBenchRow]
}

/// `pagestorm bench --peers`: pagestorm and every installed peer, measured in
/// interleaved rounds in one process (each round measures every shape on
/// every allocator, in an order that rotates each round), so each ratio
/// compares numbers taken moments apart on the same (noisy) machine.
///
/// - order0.1t / order0.Nt: a tight loop of order-0 alloc+free pairs on one
///   pinned thread / on `threads` pinned threads (pagestorm: the same loop
///   as `bench`'s order0.pcp rows; peers: their aligned entry points).
/// - the four workload shapes: the Workloads/ files run through the harness
///   (same workers, mix, hand-offs and touching on every allocator) for
///   `shapeMs`; ns per pair = measured window x workers / allocations.
///   These include the harness's own per-call cost, the same on every allocator.
public struct PeerBench {
    public var allocators: [AllocatorName]
    public var rounds: Int
    public var iterations: Int
    public var pairBudgetMs: Int
    public var threads: Int
    public var shapeMs: Int
    public var only: Set<String>?
    public var pagestormConfig: AllocatorConfig
    public var log: @Sendable (String) -> Void

    public static let keys = ["order0.1t", "order0.Nt"] + PeerShapes.all.map(\.key)

    public init(allocators: [AllocatorName], config: AllocatorConfig, rounds: Int = 5, iterations: Int = 2_000_000, pairBudgetMs: Int = 150,
                threads: Int = 2, shapeMs: Int = 200, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.allocators = allocators
        self.pagestormConfig = config
        self.rounds = rounds
        self.iterations = iterations
        self.pairBudgetMs = pairBudgetMs
        self.threads = threads
        self.shapeMs = shapeMs
        self.log = log
    }

    public func keyDescriptions() -> [String: String] {
        ["order0.1t": "order-0 alloc+free pair, 1 pinned thread (tight loop; the NBBS cached-allocation pattern without the harness)",
         "order0.Nt": "order-0 alloc+free pair, \(threads) pinned threads, ns per pair per thread (tight loop)",
         "nbbs-cached-allocation": "Workloads/nbbs-cached-allocation.toml through the harness: one order-0 block allocated and freed at once per worker",
         "nbbs-constant-occupancy": "Workloads/nbbs-constant-occupancy.toml through the harness: a held ballast of orders 0-4, bursts of 512 allocations of orders 0-2 freed oldest first",
         "mimalloc-larson": "Workloads/mimalloc-larson.toml through the harness: 1000 live blocks of orders 0-3 per worker, random replacement, replaced blocks freed by the next worker",
         "mimalloc-xmalloc-test": "Workloads/mimalloc-xmalloc-test.toml through the harness: a producer allocates and writes 128 bytes, a consumer on another CPU frees"]
    }

    /// What one allocator is during the benchmark.
    enum Target {
        case pagestorm(PageAllocator)
        case peer(PeerAllocator)
    }

    public func run() throws -> PeerBenchReport {
        let startedAt = Date()
        cnuma_init()
        var targets: [(AllocatorName, Target)] = []
        var loaded: [PeerBenchAllocator] = []
        var missing: [String] = []
        for a in allocators {
            if a == .pagestorm {
                targets.append((a, .pagestorm(try PageAllocator(pagestormConfig))))
                loaded.append(PeerBenchAllocator(name: a.rawValue, resultsName: a.resultsName, version: "pagestorm (this build)", library: "-",
                                                 entryPoints: "PageAllocator.allocate / free"))
                continue
            }
            do {
                let p = try PeerAllocator.load(a)
                targets.append((a, .peer(p)))
                loaded.append(PeerBenchAllocator(name: a.rawValue, resultsName: a.resultsName, version: p.version, library: p.library, entryPoints: p.entryPoints))
            } catch {
                missing.append(error.message)
                log("skipped: \(error.message)")
            }
        }
        let wanted = PeerBench.keys.filter { only?.contains($0) ?? true }
        let machine = Topology.discover()
        var shapes: [String: Workload] = [:]
        for k in wanted where !k.hasPrefix("order0") {
            var w = try PeerShapes.workload(k, machine: machine)
            w = w.applying(WorkloadOverrides(durationMs: shapeMs, warmupMs: max(20, shapeMs / 4)))
            shapes[k] = w
        }
        // values[key][allocator] = per-round values; failures and problems per cell.
        var values: [String: [String: [Double]]] = [:]
        var fails: [String: [String: Int]] = [:]
        var probs: [String: [String: [String]]] = [:]
        var scaling: [String: [Double]] = [:]
        try? Affinity.pinCurrentThread(toRealCPU: 0)
        for round in 0..<rounds {
            var line: [String] = []
            for key in wanted {
                // Rotate the order each round so no allocator always goes first.
                let order = (0..<targets.count).map { targets[($0 + round) % targets.count] }
                for (name, target) in order {
                    var v: Double = .nan
                    var f = 0
                    var problem: String? = nil
                    switch key {
                    case "order0.1t":
                        (v, f) = PeerBench.pairs(target, threads: 1, maxIterations: iterations, budgetMs: pairBudgetMs)
                    case "order0.Nt":
                        (v, f) = PeerBench.pairs(target, threads: threads, maxIterations: iterations, budgetMs: pairBudgetMs)
                        if let one = values["order0.1t"]?[name.rawValue]?.last, v > 0 {
                            scaling[name.rawValue, default: []].append(Double(threads) * one / v)
                        }
                    default:
                        var w = shapes[key]!
                        w.run.allocator = name.rawValue
                        (v, f, problem) = PeerBench.shape(w)
                    }
                    values[key, default: [:]][name.rawValue, default: []].append(v)
                    fails[key, default: [:]][name.rawValue, default: 0] += f
                    if let problem { probs[key, default: [:]][name.rawValue, default: []].append(problem) }
                    line.append("\(key)/\(name.rawValue) \(fmt(v, 1))")
                }
            }
            log("round \(round + 1)/\(rounds): " + line.joined(separator: ", "))
        }
        var rows: [PeerBenchRow] = []
        for key in wanted {
            let ref = values[key]?[AllocatorName.pagestorm.rawValue]
            for (name, _) in targets {
                let vals = values[key]?[name.rawValue] ?? []
                var ratios: [Double] = []
                if let ref { for (i, x) in vals.enumerated() where i < ref.count && ref[i] > 0 && x.isFinite { ratios.append(x / ref[i]) } }
                rows.append(PeerBenchRow(key: key, allocator: name.resultsName, unit: "ns/pair", median: Bench.median(vals.filter(\.isFinite)), runs: vals,
                                         ratioToPagestorm: ratios.isEmpty ? nil : Bench.median(ratios), ratios: ratios,
                                         scaling: key == "order0.Nt" ? scaling[name.rawValue].map { Bench.median($0) } : nil,
                                         failures: fails[key]?[name.rawValue] ?? 0, problems: Array((probs[key]?[name.rawValue] ?? []).prefix(3))))
            }
        }
        for (_, t) in targets { if case .pagestorm(let a) = t { try a.validate() } }
        return PeerBenchReport(startedAt: ISO8601DateFormatter().string(from: startedAt), machine: .current(topology: machine), rounds: rounds,
                               iterations: iterations, pairBudgetMs: pairBudgetMs, threads: threads, shapeMs: shapeMs, allocators: loaded,
                               missing: missing, keys: keyDescriptions().filter { wanted.contains($0.key) }, rows: rows)
    }

    /// Order-0 alloc+free pairs on `threads` pinned threads; ns per pair per thread.
    /// A short probe sizes the run to about `budgetMs` (at most `maxIterations` pairs).
    static func pairs(_ t: Target, threads: Int, maxIterations: Int, budgetMs: Int) -> (Double, Int) {
        let probe = 2000
        let p0 = cnuma_monotonic_ns()
        var failures = pairLoop(t, probe)
        let perPair = Double(cnuma_monotonic_ns() - p0) / Double(probe)
        let n = max(probe, min(maxIterations, Int(Double(budgetMs) * 1e6 / max(perPair, 0.1))))
        if threads == 1 {
            let t0 = cnuma_monotonic_ns()
            failures += pairLoop(t, n)
            return (Double(cnuma_monotonic_ns() - t0) / Double(n), failures)
        }
        let machine = Topology.discover().machineCPUs
        let barrier = StartBarrier(parties: threads)
        let cells = UnsafeMutablePointer<UInt64>.allocate(capacity: threads * 3)
        cells.initialize(repeating: 0, count: threads * 3)
        defer { cells.deallocate() }
        let fp = UnsafeSendable(cells), target = UnsafeSendable(t)
        Threads.run(count: threads) { i in
            try? Affinity.pinCurrentThread(toRealCPU: i % max(machine, 1))
            barrier.arriveAndWait()
            fp.value[i * 3 + 1] = cnuma_monotonic_ns()
            fp.value[i * 3] = UInt64(pairLoop(target.value, n))
            fp.value[i * 3 + 2] = cnuma_monotonic_ns()
        }
        let start = (0..<threads).map { cells[$0 * 3 + 1] }.min() ?? 0
        let end = (0..<threads).map { cells[$0 * 3 + 2] }.max() ?? 0
        failures += (0..<threads).reduce(0) { $0 + Int(cells[$1 * 3]) }
        return (Double(end - start) / Double(n), failures)
    }

    static func pairLoop(_ t: Target, _ n: Int) -> Int {
        switch t {
        case .pagestorm(let a):
            let zero = [Order.zero]
            return zero.withUnsafeBufferPointer { Bench.pairLoop(a, iterations: n, orders: $0.baseAddress!, mask: 0, flags: .kernel) }
        case .peer(let p):
            return peerPairLoop(p, iterations: n)
        }
    }

    /// The peer's order-0 pair, as Bench.pairLoop is pagestorm's.
    @inline(never)
    static func peerPairLoop(_ p: PeerAllocator, iterations: Int) -> Int {
        var failures = 0
        for _ in 0..<iterations {
            if let b = p.allocate(order: 0) { p.free(b, order: 0) } else { failures += 1 }
        }
        return failures
    }

    /// One workload-shape run: ns per alloc+free pair of thread time, failures, a problem if any.
    static func shape(_ w: Workload) -> (Double, Int, String?) {
        var o = RunOptions()
        o.measureOverhead = false
        do {
            let r = try StressRun.run(w, options: o)
            let allocs = max(r.throughput.allocs, 1)
            let ns = Double(r.timing.measuredNs) * Double(w.workerCount) / Double(allocs)
            let problem = r.status.verdict == "ok" ? nil : "verdict \(r.status.verdict): \(r.status.problems.first ?? "")"
            return (ns, r.throughput.failedAllocs, problem)
        } catch {
            return (.nan, 0, error.message)
        }
    }
}

extension PeerBenchReport {
    /// The side-by-side table: one line per key, one column per allocator
    /// ("ns (ratio to pagestorm)").
    public func table() -> [String] {
        let names = allocators.map(\.resultsName)
        let keyW = 26, colW = 20
        func padL(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
        func padR(_ s: String, _ w: Int) -> String { s.count >= w ? " " + s : String(repeating: " ", count: w - s.count) + s }
        var out = [padL("ns per pair", keyW) + names.map { padR($0, colW) }.joined()]
        for key in PeerBench.keys {
            let rs = rows.filter { $0.key == key }
            guard !rs.isEmpty else { continue }
            var line = padL(key, keyW)
            for n in names {
                guard let r = rs.first(where: { $0.allocator == n }) else { line += padR("-", colW); continue }
                var cell = r.median.isFinite && r.median > 0 ? fmt(r.median, 1) : "failed"
                if let q = r.ratioToPagestorm, n != AllocatorName.pagestorm.resultsName { cell += " (\(fmt(q, 2))x)" }
                if r.failures > 0 || !r.problems.isEmpty { cell += "!" }
                line += padR(cell, colW)
            }
            out.append(line)
            let sc = rs.compactMap { r in r.scaling.map { (r.allocator, $0) } }
            if !sc.isEmpty {
                var s = padL("  \(threads)-thread scaling", keyW)
                for n in names { s += padR(sc.first { $0.0 == n }.map { fmt($0.1, 2) + "x" } ?? "-", colW) }
                out.append(s)
            }
        }
        return out
    }
}
