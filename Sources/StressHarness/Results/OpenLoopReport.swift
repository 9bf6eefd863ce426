/// Open loop: the rate each worker was asked for, the rate it kept, and how
/// far behind its schedule it fell (issue 15).
///
/// An open-loop worker starts operation k at its intended time
/// `start + k / rate`, and every latency is measured from that intended
/// time. When the allocator (or the harness around it) cannot keep up, the
/// worker falls behind its schedule and every later operation's latency
/// includes the queueing: past saturation the percentiles measure the
/// schedule lag, not the allocator. This report says when that happened.
public struct OpenLoopReport: Codable, Sendable, Equatable {
    /// A worker did not keep its rate when its schedule lag at the end of
    /// the run is above the larger of these: 10 ms, or 10% of the measured
    /// window. A transient stall (a preemption, a reclaim) is caught up
    /// before the end and does not count; a sustained overload leaves a lag
    /// that grows with the run.
    public static let lagBoundMinNs: Double = 10_000_000
    public static let lagBoundFraction: Double = 0.1

    /// The bound of this run, in ns.
    public var lagBoundNs: Double
    /// Sums over the open-loop workers, in operations per second.
    public var targetOpsPerSecond: Double
    public var achievedOpsPerSecond: Double
    public var workers: [OpenLoopWorkerReport]
    /// Some worker did not keep its rate (the verdict is then `overloaded`
    /// unless a worse verdict applies).
    public var overloaded: Bool
    /// The summary's one line when overloaded.
    public var message: String?

    public static func lagBound(windowNs: Double) -> Double { max(lagBoundMinNs, lagBoundFraction * windowNs) }

    /// The report from each open-loop worker's target, operations, measured
    /// time and lags; nil without open-loop workers.
    public static func build(_ workers: [OpenLoopWorkerReport.Input], windowNs: Double) -> OpenLoopReport? {
        guard !workers.isEmpty else { return nil }
        let bound = lagBound(windowNs: windowNs)
        let rows = workers.map { w in
            let achieved = w.measuredNs > 0 ? Double(w.operations) / (w.measuredNs / 1e9) : 0
            return OpenLoopWorkerReport(index: w.index, group: w.group, targetOpsPerSecond: w.target, achievedOpsPerSecond: achieved,
                                        endLagNs: w.endLagNs, maxLagNs: w.maxLagNs, keptRate: w.endLagNs <= bound)
        }
        let target = rows.reduce(0) { $0 + $1.targetOpsPerSecond }
        let achieved = rows.reduce(0) { $0 + $1.achievedOpsPerSecond }
        let behind = rows.filter { !$0.keptRate }
        var message: String? = nil
        if !behind.isEmpty {
            let lo = human(behind.map(\.achievedOpsPerSecond).min()!), hi = human(behind.map(\.achievedOpsPerSecond).max()!)
            let per = behind.count == rows.count && Set(rows.map(\.targetOpsPerSecond)).count == 1
                ? "\(lo == hi ? lo : lo + "-" + hi) of \(human(rows[0].targetOpsPerSecond)) ops/s per worker"
                : behind.map { "worker \($0.index) \(human($0.achievedOpsPerSecond)) of \(human($0.targetOpsPerSecond))" }.joined(separator: ", ") + " ops/s"
            let lag = behind.map(\.endLagNs).max()!
            message = "target rate not kept: \(per) (\(behind.count) of \(rows.count) worker(s) \(fmtNs(lag)) behind schedule at the end, bound \(fmtNs(bound))); latency is dominated by queueing"
        }
        return OpenLoopReport(lagBoundNs: bound, targetOpsPerSecond: target, achievedOpsPerSecond: achieved, workers: rows,
                              overloaded: !behind.isEmpty, message: message)
    }
}

public struct OpenLoopWorkerReport: Codable, Sendable, Equatable {
    public var index: Int
    public var group: String
    /// The group's `rate`.
    public var targetOpsPerSecond: Double
    /// Operations over the worker's measured time.
    public var achievedOpsPerSecond: Double
    /// How late the worker was at the end of its loop: the time past the
    /// intended start of the operation it would have started next (0 when
    /// on or ahead of schedule).
    public var endLagNs: Double
    /// The latest any measured operation started after its intended time.
    public var maxLagNs: Double
    /// endLagNs within the bound.
    public var keptRate: Bool

    public struct Input: Sendable {
        public var index: Int
        public var group: String
        public var target: Double
        public var operations: Int
        public var measuredNs: Double
        public var endLagNs: Double
        public var maxLagNs: Double

        public init(index: Int, group: String, target: Double, operations: Int, measuredNs: Double, endLagNs: Double, maxLagNs: Double) {
            self.index = index
            self.group = group
            self.target = target
            self.operations = operations
            self.measuredNs = measuredNs
            self.endLagNs = endLagNs
            self.maxLagNs = maxLagNs
        }
    }
}
