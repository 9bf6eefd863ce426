import CNUMA
import Foundation
import PageAllocator
import Topology

/// One benchmark line: the median of several runs and its ratio to the
/// calibration loop measured in the same runs.
public struct BenchRow: Codable, Sendable {
    /// The stable key (`order0.pcp.1t`, ... as `--only` takes them; "calibration" for the calibration row).
    public var key: String? = nil
    public var name: String
    /// "ns/pair", "ns/page", "ns/op".
    public var unit: String
    public var median: Double
    public var runs: [Double]
    /// median over runs of (this run's value / this run's calibration value).
    public var ratioToCalibration: Double
    /// Extra figures (e.g. scaling against one thread).
    public var notes: [String: Double] = [:]
}

/// The `pagestorm bench` results file.
public struct BenchReport: Codable, Sendable {
    public static let schema = "pagestorm.bench/1"
    public var schemaVersion = BenchReport.schema
    public var startedAt: String
    public var machine: MachineInfo
    public var iterations: Int
    public var runs: Int
    public var threads: Int
    public var arenaPagesPerNode: Int
    public var calibration: String
    public var rows: [BenchRow]
    /// pcp_lock as built ("rseq" or "trylock") and why auto fell back, if it did.
    public var pcpLock: String? = nil
    public var pcpLockNote: String? = nil
}

/// `pagestorm bench`: ns per operation of the allocator's paths, each as the
/// median of `runs` runs, with a ratio to a calibration loop timed in the
/// same run (the machine is shared and noisy; ratios travel better).
public struct Bench {
    public var config: AllocatorConfig
    public var iterations: Int
    public var runs: Int
    /// Threads for the multi-threaded rows (default: the machine's CPUs, at most 2... any).
    public var threads: Int
    public var log: @Sendable (String) -> Void
    /// Measurement keys to run (nil: all). Keys: order0.pcp.1t, order0.pcp.Nt,
    /// order3.pcp.1t, order3.buddy.1t, order3.buddy.Nt, mixed.1t, refill-drain.
    public var only: Set<String>? = nil

    public static let keys = ["order0.pcp.1t", "order0.pcp.Nt", "order3.pcp.1t", "order3.buddy.1t", "order3.buddy.Nt", "mixed.1t", "refill-drain"]
    func wants(_ k: String) -> Bool { only?.contains(k) ?? true }

    public init(config: AllocatorConfig, iterations: Int = 2_000_000, runs: Int = 5, threads: Int = 2, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.config = config
        self.iterations = iterations
        self.runs = runs
        self.threads = threads
        self.log = log
    }

    /// The calibration: a dependent 64-bit LCG step (multiply-add chain),
    /// pure ALU latency, so its ns/op tracks the core's speed.
    @inline(never)
    static func calibrationLoop(_ n: Int) -> UInt64 {
        let n = Int(cnuma_blackhole(UInt64(n)))
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        var acc: UInt64 = 0
        for _ in 0..<n {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            acc ^= x >> 33
        }
        return cnuma_blackhole(acc)
    }

    static func timeNs(_ body: () -> Void) -> Double {
        let t0 = cnuma_monotonic_ns()
        body()
        return Double(cnuma_monotonic_ns() - t0)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    /// Pairs of allocate+free of `orders[i & mask]` on the current thread.
    /// Each block's address is used (stored to a slot on this thread's stack
    /// that escapes before the loop, so the optimiser cannot drop the store,
    /// as a caller that writes to the block uses it): the fast path's
    /// building of it stays in what is measured. (Not a global: two threads
    /// storing to one line would bounce it between their cores.)
    @inline(never)
    static func pairLoop(_ a: PageAllocator, iterations: Int, orders: UnsafePointer<Order>, mask: Int, flags: GFP) -> Int {
        var failures = 0
        var sink: UnsafeMutableRawPointer? = nil
        withUnsafeMutablePointer(to: &sink) { s in
            _ = cnuma_blackhole(UInt64(UInt(bitPattern: s)))
            for i in 0..<iterations {
                do {
                    let b = try a.allocate(order: orders[i & mask], flags: flags)
                    s.pointee = b.address
                    try a.free(b)
                } catch {
                    failures += 1
                }
            }
        }
        return failures
    }

    /// Runs `iterations` pairs on each of `threads` pinned threads; returns wall ns.
    static func threadedPairs(_ a: PageAllocator, threads: Int, iterations: Int, orders: [Order], flags: GFP) -> (ns: Double, failures: Int) {
        let machine = a.topology.machineCPUs
        let barrier = StartBarrier(parties: threads)
        // Per thread: failures, start ns, end ns. The main thread blocks in
        // pthread_join and never competes with the workers for a CPU.
        let cells = UnsafeMutablePointer<UInt64>.allocate(capacity: threads * 3)
        cells.initialize(repeating: 0, count: threads * 3)
        let fp = UnsafeSendable(cells)
        let ordersCopy = orders
        Threads.run(count: threads) { i in
            try? Affinity.pinCurrentThread(toRealCPU: i % machine)
            ordersCopy.withUnsafeBufferPointer { o in
                barrier.arriveAndWait()
                fp.value[i * 3 + 1] = cnuma_monotonic_ns()
                fp.value[i * 3] = UInt64(pairLoop(a, iterations: iterations, orders: o.baseAddress!, mask: o.count - 1, flags: flags))
                fp.value[i * 3 + 2] = cnuma_monotonic_ns()
            }
        }
        let start = (0..<threads).map { cells[$0 * 3 + 1] }.min() ?? 0
        let end = (0..<threads).map { cells[$0 * 3 + 2] }.max() ?? 0
        let f = (0..<threads).reduce(0) { $0 + Int(cells[$1 * 3]) }
        cells.deallocate()
        return (Double(end - start), f)
    }

    public func run() throws -> BenchReport {
        let clock = CycleClock.calibrate()
        var pcpOff = config
        pcpOff.perCPUMaxOrder = -1
        let pcp = try PageAllocator(config)
        let buddy = try PageAllocator(pcpOff)
        let n = iterations
        let zero = [Order](repeating: .zero, count: 1)
        let three = [Try.order(3)]
        // Mixed: 1024 orders drawn once from a fixed seed, weighted to small orders.
        var rng = SplitMix64(seed: 42)
        let weights = [50, 16, 10, 8, 5, 4, 3, 2, 1, 1, 0] // orders 0..10, percent
        let mixed: [Order] = (0..<1024).map { _ in
            var r = Int(rng.next() % 100)
            for (o, w) in weights.enumerated() { if r < w { return Try.order(o) }; r -= w }
            return .zero
        }
        struct Sample { var calib: Double; var values: [String: Double] }
        var samples: [Sample] = []
        var scaling: [Double] = []
        var buddyScaling: [Double] = []
        try? Affinity.pinCurrentThread(toRealCPU: 0)
        _ = scaling.isEmpty
        // Warm-up: fault in the arena's first pages and fill the per-CPU lists.
        _ = zero.withUnsafeBufferPointer { Bench.pairLoop(pcp, iterations: 100_000, orders: $0.baseAddress!, mask: 0, flags: .kernel) }
        for r in 0..<runs {
            var v: [String: Double] = [:]
            let calib = Bench.timeNs { _ = Bench.calibrationLoop(n) } / Double(n)
            func pairs(_ key: String, _ a: PageAllocator, _ orders: [Order]) {
                guard wants(key) else { return }
                orders.withUnsafeBufferPointer { o in
                    v[key] = Bench.timeNs { _ = Bench.pairLoop(a, iterations: n, orders: o.baseAddress!, mask: o.count - 1, flags: .kernel) } / Double(n)
                }
            }
            pairs("order0.pcp.1t", pcp, zero)
            pairs("order3.pcp.1t", pcp, three)
            pairs("order3.buddy.1t", buddy, three)
            pairs("mixed.1t", pcp, mixed)
            if threads > 1 && wants("order0.pcp.Nt") {
                let t = Bench.threadedPairs(pcp, threads: threads, iterations: n, orders: zero, flags: .kernel)
                v["order0.pcp.Nt"] = t.ns / Double(n)
                if let one = v["order0.pcp.1t"] { scaling.append(Double(threads) * one / (t.ns / Double(n))) }
            }
            if threads > 1 && wants("order3.buddy.Nt") {
                let b = Bench.threadedPairs(buddy, threads: threads, iterations: n / 4, orders: three, flags: .kernel)
                v["order3.buddy.Nt"] = b.ns / Double(n / 4)
                if let one = v["order3.buddy.1t"] { buddyScaling.append(Double(threads) * one / (b.ns / Double(n / 4))) }
            }
            if wants("refill-drain") {
                let rd = pcp.measureRefillDrain(cpu: CPUID(pcp.currentCPUIndex()), rounds: max(1, n / 2000))
                v["refill.page"] = clock.nanoseconds(rd.refillTicks) / Double(max(rd.refillPages, 1))
                v["drain.page"] = clock.nanoseconds(rd.drainTicks) / Double(max(rd.drainPages, 1))
            }
            samples.append(Sample(calib: calib, values: v))
            log("run \(r + 1)/\(runs): calibration \(fmt(calib, 3)) ns; " + v.sorted { $0.key < $1.key }.map { "\($0.key) \(fmt($0.value))" }.joined(separator: ", "))
        }
        let rows: [(String, String, String)] = [
            ("order0.pcp.1t", "order-0 alloc+free, per-CPU list, 1 thread", "ns/pair"),
            ("order0.pcp.Nt", "order-0 alloc+free, per-CPU list, \(threads) threads (per thread)", "ns/pair"),
            ("order3.pcp.1t", "order-3 alloc+free, per-CPU list, 1 thread", "ns/pair"),
            ("order3.buddy.1t", "order-3 alloc+free, buddy under zone lock, 1 thread", "ns/pair"),
            ("order3.buddy.Nt", "order-3 alloc+free, buddy under zone lock, \(threads) threads (per thread)", "ns/pair"),
            ("mixed.1t", "mixed orders 0-10 alloc+free, 1 thread", "ns/pair"),
            ("refill.page", "per-CPU refill (rmqueue_bulk), per page", "ns/page"),
            ("drain.page", "per-CPU drain (free_pcppages_bulk), per page", "ns/page"),
        ]
        var out: [BenchRow] = [BenchRow(name: "calibration (dependent 64-bit LCG step)", unit: "ns/op",
                                        median: Bench.median(samples.map(\.calib)), runs: samples.map(\.calib), ratioToCalibration: 1)]
        out[0].key = "calibration"
        for (key, name, unit) in rows {
            let vals = samples.compactMap { $0.values[key] }
            guard !vals.isEmpty else { continue }
            let ratios = samples.compactMap { s in s.values[key].map { $0 / s.calib } }
            var row = BenchRow(name: name, unit: unit, median: Bench.median(vals), runs: vals, ratioToCalibration: Bench.median(ratios))
            row.key = key
            if key == "order0.pcp.Nt" { row.notes["throughput_vs_1_thread"] = Bench.median(scaling) }
            if key == "order3.buddy.Nt" { row.notes["throughput_vs_1_thread"] = Bench.median(buddyScaling) }
            out.append(row)
        }
        try pcp.validate()
        try buddy.validate()
        return BenchReport(startedAt: ISO8601DateFormatter().string(from: Date()), machine: .current(topology: config.topology),
                           iterations: n, runs: runs, threads: threads,
                           arenaPagesPerNode: config.zones.reduce(0) { $0 + $1.pages },
                           calibration: "dependent 64-bit LCG multiply-add step", rows: out,
                           pcpLock: pcp.pcpLock.rawValue, pcpLockNote: pcp.pcpLockNote)
    }
}

/// Formats a number with 2 decimals.
public func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
