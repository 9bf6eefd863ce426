import Foundation

/// gate-eval's runs: one run measured (`measure`), and a pair of them (`measurePair`), back to back
/// or co-run (both at once on the workload's CPUs, docs/gate.md "Co-run pairs").
extension GateEval {
    /// One run: operations/s, operations per CPU-second of the workers, and whether it flagged itself untrustworthy.
    public struct Sample: Sendable {
        public var opsPerSecond: Double
        public var opsPerCPUSecond: Double
        /// Per metric ([0] ops/s, [1] ops per CPU-second): flagged?
        public var flagged: [Bool]
        /// Why it is flagged (the noise report's reason, or "partial run"), when it is.
        public var reason: String?
        /// The measured window, approximately: [end - measured, end], seconds on CLOCK_MONOTONIC, where end is
        /// when the run returned (its teardown, a few ms, is inside). Nil for a model's sample.
        public var window: ClosedRange<Double>?
        public init(opsPerSecond: Double, opsPerCPUSecond: Double, flagged: [Bool] = [false, false], reason: String? = nil,
                    window: ClosedRange<Double>? = nil) {
            self.opsPerSecond = opsPerSecond
            self.opsPerCPUSecond = opsPerCPUSecond
            self.flagged = flagged
            self.reason = reason
            self.window = window
        }
    }

    /// How much of the shorter of two windows the other one overlaps (0...1); nil when either is unknown.
    public static func overlap(_ a: ClosedRange<Double>?, _ b: ClosedRange<Double>?) -> Double? {
        guard let a, let b else { return nil }
        let shorter = min(a.upperBound - a.lowerBound, b.upperBound - b.lowerBound)
        guard shorter > 0 else { return 0 }
        return max(0, min(a.upperBound, b.upperBound) - max(a.lowerBound, b.lowerBound)) / shorter
    }

    static func monotonicSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// One pair: `pair[0]` the original, `pair[1]` the variant, started in `order`. Back to back, or
    /// co-run: both at once on two threads, waited for at most `coRunTimeoutS` (a run that does not
    /// return by then fails gate-eval). A model (`measureRun`) is asked for the two in order.
    func measurePair(_ pair: [Workload], order: [Int]) throws -> [Sample] {
        var m = [Sample](repeating: Sample(opsPerSecond: 0, opsPerCPUSecond: 0), count: 2)
        guard coRun, measureRun == nil else {
            for side in order { m[side] = try measure(pair[side]) }
            return m
        }
        let box = CoRunBox()
        let group = DispatchGroup()
        nonisolated(unsafe) let me = self
        for side in order {
            let w = pair[side]
            group.enter()
            Thread.detachNewThread {
                let r = Result { try me.measure(w) }
                box.put(side, r)
                group.leave()
            }
        }
        guard group.wait(timeout: .now() + coRunTimeoutS) == .success else {
            throw InstructionsError(message: "gate-eval: a co-run pair of \(workload.name) did not finish within \(Int(coRunTimeoutS)) s")
        }
        for side in 0..<2 { m[side] = try box.get(side) }
        return m
    }

    func measure(_ w: Workload) throws -> Sample {
        if let measureRun { return try measureRun(w) }
        var o = RunOptions()
        o.measureOverhead = false
        let r = try StressRun.run(w, options: o)
        guard r.status.verdict == "ok" || r.status.verdict == "failures" else {
            throw InstructionsError(message: "gate-eval: a run of \(w.name) ended \(r.status.verdict): \(r.status.problems.first ?? "")")
        }
        let flagged = Self.isFlagged(r)
        let cpuNs = r.noise?.workers.reduce(0) { $0 + $1.cpuNs } ?? 0
        // As compare does: operations per CPU-second are flagged only by a partial run or steal time.
        let steal = r.noise?.stealPercent ?? 0
        let cpuFlagged = r.status.partial || steal > NoiseReport.maxStealPercent
        var reasons: [String] = []
        if r.status.partial { reasons.append("partial run") }
        if steal > NoiseReport.maxStealPercent { reasons.append(String(format: "steal %.1f%%", steal)) }
        if let why = r.noise?.reason, r.noise?.untrustworthy == true, !(steal > NoiseReport.maxStealPercent) { reasons.append(why) }
        let end = Self.monotonicSeconds()
        return Sample(opsPerSecond: r.throughput.operationsPerSecond,
                      opsPerCPUSecond: cpuNs > 0 ? Double(r.throughput.operations) / (Double(cpuNs) / 1e9) : r.throughput.operationsPerSecond,
                      flagged: [flagged, cpuFlagged], reason: reasons.isEmpty ? nil : reasons.joined(separator: "; "),
                      window: (end - Double(r.timing.measuredNs) / 1e9)...end)
    }

    /// Hook for noise flags (set when results carry them).
    static func isFlagged(_ r: RunResult) -> Bool { r.status.partial || (r.noise?.untrustworthy ?? false) }
}

/// The two results of a co-run pair, handed from the runs' threads to the waiting one.
final class CoRunBox: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: Result<GateEval.Sample, any Error>] = [:]
    func put(_ side: Int, _ r: Result<GateEval.Sample, any Error>) { lock.lock(); results[side] = r; lock.unlock() }
    func get(_ side: Int) throws -> GateEval.Sample {
        lock.lock(); let r = results[side]; lock.unlock()
        guard let r else { throw InstructionsError(message: "gate-eval: a co-run side returned no result") }
        return try r.get()
    }
}
