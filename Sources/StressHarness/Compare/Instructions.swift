import CNUMA
import Foundation
import PageAllocator
import Topology

/// One row of `pagestorm bench --instructions`.
public struct InstructionsRow: Codable, Sendable {
    public var key: String
    public var name: String
    /// "pair" (one alloc+free).
    public var unit: String
    /// (instructions at iterationsHigh - instructions at iterationsLow) / (iterationsHigh - iterationsLow).
    public var instructionsPerOp: Double
    public var iterationsLow: Int
    public var iterationsHigh: Int
    public var instructionsLow: Int
    public var instructionsHigh: Int
    /// Of instructionsPerOp, those inside `cnuma_sched_getcpu` (inclusive, callgrind_annotate):
    /// the CPU lookup that valgrind's missing rseq area sends to sched_getcpu(); with glibc's
    /// rseq registration it is one load. Nil when callgrind_annotate could not say.
    public var cpuLookupPerOp: Double?
    /// instructionsPerOp - cpuLookupPerOp.
    public var withoutCPULookupPerOp: Double?
}

/// The `pagestorm bench --instructions` results file (schema pagestorm.instructions/1).
public struct InstructionsReport: Codable, Sendable {
    public var schema = ResultSet.instructionsSchema
    public var startedAt: String
    public var machine: MachineInfo
    /// "valgrind-3.x callgrind".
    public var tool: String
    public var rows: [InstructionsRow]
}

public struct InstructionsError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Instructions per operation of the single-threaded fast-path benchmarks,
/// counted by valgrind's callgrind: the same binary gives the same count on
/// any load. Each key runs twice (a low and a high iteration count) in a
/// separate process (`pagestorm bench --probe KEY --iterations N`); the
/// difference divided by the difference of iterations cancels start-up,
/// allocator construction and warm-up.
public enum Instructions {
    /// The single-threaded benchmarks (multi-threaded ones are not repeatable under valgrind's serialisation).
    public static let keys = ["order0.pcp.1t", "order3.pcp.1t", "order3.buddy.1t", "mixed.1t"]
    public static let names = [
        "order0.pcp.1t": "order-0 alloc+free, per-CPU list, 1 thread",
        "order3.pcp.1t": "order-3 alloc+free, per-CPU list, 1 thread",
        "order3.buddy.1t": "order-3 alloc+free, buddy under zone lock, 1 thread",
        "mixed.1t": "mixed orders 0-10 alloc+free, 1 thread",
    ]

    /// The probe run under callgrind: a fresh allocator, 10,000 warm-up pairs, then `iterations` pairs of `key`.
    public static func probe(config: AllocatorConfig, key: String, iterations: Int) throws -> Int {
        var cfg = config
        if key == "order3.buddy.1t" { cfg.perCPUMaxOrder = -1 }
        // Pinned: a thread that moves finds another CPU's list cold, and the count would depend on the scheduler.
        try? Affinity.pinCurrentThread(toRealCPU: 0)
        let a = try PageAllocator(cfg)
        var orders: [Order]
        switch key {
        case "order0.pcp.1t": orders = [.zero]
        case "order3.pcp.1t", "order3.buddy.1t": orders = [Order(unchecked: 3)]
        case "mixed.1t":
            var rng = SplitMix64(seed: 42)
            let weights = [50, 16, 10, 8, 5, 4, 3, 2, 1, 1, 0]
            orders = (0..<1024).map { _ in
                var r = Int(rng.next() % 100)
                for (o, w) in weights.enumerated() { if r < w { return Order(unchecked: o) }; r -= w }
                return .zero
            }
        default: throw InstructionsError(message: "--probe: unknown key \(key); known: \(keys.joined(separator: ", "))")
        }
        let failures = orders.withUnsafeBufferPointer { o in
            _ = Bench.pairLoop(a, iterations: 10_000, orders: o.baseAddress!, mask: o.count - 1, flags: .kernel)
            return Bench.pairLoop(a, iterations: iterations, orders: o.baseAddress!, mask: o.count - 1, flags: .kernel)
        }
        try a.validate()
        return failures
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func runTool(_ path: String, _ args: [String], stdoutToo: Bool = false) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = stdoutToo ? err : FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The "summary:" (or "totals:") line of a callgrind output file: instructions executed.
    public static func parseCallgrindTotal(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("summary:") || line.hasPrefix("totals:") {
            if let v = line.split(separator: " ").dropFirst().first, let n = Int(v) { return n }
        }
        return nil
    }

    /// Inclusive instructions of `cnuma_sched_getcpu` in a callgrind output file, read from
    /// `callgrind_annotate --inclusive=yes` (nil if it is not listed: then no call happened or no symbols).
    static func cpuLookupCost(annotate: String, file: String) -> Int? {
        guard let r = try? runTool(annotate, ["--inclusive=yes", "--threshold=100", file], stdoutToo: true) else { return nil }
        return parseAnnotateCost(r.stderr, function: "cnuma_sched_getcpu")
    }

    /// The cost column of `function`'s line in callgrind_annotate output ("1,234 (5.0%)  file:function [obj]").
    public static func parseAnnotateCost(_ text: String, function: String) -> Int? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields.contains(where: { $0.hasSuffix(":" + function) || $0 == Substring(function) }) else { continue }
            if let n = Int(fields[0].replacingOccurrences(of: ",", with: "")) { return n }
        }
        return nil
    }

    /// Runs every key under callgrind. `executable` is this pagestorm binary;
    /// `probeArgs` the topology flags to pass on. valgrind cannot read Swift's
    /// DWARF 5, so a stripped copy of the binary runs (same code, same count).
    public static func measure(executable: String, probeArgs: [String], keys: [String], low: Int, high: Int,
                               log: (String) -> Void) throws -> InstructionsReport {
        guard let valgrind = which("valgrind") else {
            throw InstructionsError(message: "valgrind is not installed; `scripts/ensure-deps.sh --valgrind` (as root) installs it, or `apt-get install valgrind`")
        }
        let tmp = NSTemporaryDirectory() + "pagestorm-cg-\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var binary = executable
        if let strip = which("strip") {
            let copy = tmp + "/pagestorm"
            // Debug info only: function symbols stay, so callgrind_annotate can name sched_getcpu's share.
            let r = try runTool(strip, ["--strip-debug", "-o", copy, executable])
            if r.status == 0 { binary = copy } else { log("strip failed (\(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); running the binary as it is") }
        }
        let version = (try? runTool(valgrind, ["--version"], stdoutToo: true))?.stderr ?? ""
        var rows: [InstructionsRow] = []
        for key in keys {
            // The low and high counts run at once (two processes; valgrind runs each on one CPU).
            var procs: [(Process, Pipe, String, Int)] = []
            for n in [low, high] {
                let out = tmp + "/cg.\(key).\(n)"
                let p = Process()
                p.executableURL = URL(fileURLWithPath: valgrind)
                p.arguments = ["--tool=callgrind", "--callgrind-out-file=\(out)", binary, "bench", "--probe", key, "--iterations", String(n)] + probeArgs
                let err = Pipe()
                p.standardError = err
                p.standardOutput = FileHandle.nullDevice
                try p.run()
                procs.append((p, err, out, n))
            }
            var totals: [Int] = []
            for (p, err, out, n) in procs {
                let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                guard p.terminationStatus == 0, let text = try? String(contentsOfFile: out, encoding: .utf8), let total = parseCallgrindTotal(text) else {
                    throw InstructionsError(message: "valgrind --tool=callgrind failed for \(key) at \(n) iterations (exit \(p.terminationStatus)): \(errText.split(separator: "\n").suffix(5).joined(separator: " | "))")
                }
                totals.append(total)
            }
            let per = Double(totals[1] - totals[0]) / Double(high - low)
            var lookup: Double? = nil
            if let annotate = which("callgrind_annotate") {
                let costs = procs.map { cpuLookupCost(annotate: annotate, file: $0.2) }
                if let a = costs[0], let b = costs[1] { lookup = Double(b - a) / Double(high - low) }
            }
            log("\(key): \(totals[0]) instructions at \(low) pairs, \(totals[1]) at \(high): \(String(format: "%.2f", per)) per pair"
                + (lookup.map { String(format: ", of which %.2f in cnuma_sched_getcpu", $0) } ?? ""))
            rows.append(InstructionsRow(key: key, name: names[key] ?? key, unit: "pair", instructionsPerOp: per, iterationsLow: low, iterationsHigh: high,
                                        instructionsLow: totals[0], instructionsHigh: totals[1],
                                        cpuLookupPerOp: lookup, withoutCPULookupPerOp: lookup.map { per - $0 }))
        }
        _ = version
        return InstructionsReport(startedAt: ISO8601DateFormatter().string(from: Date()), machine: .current(),
                                  tool: "callgrind (\(version.isEmpty ? "valgrind" : version.trimmingCharacters(in: .whitespacesAndNewlines)))", rows: rows)
    }
}
