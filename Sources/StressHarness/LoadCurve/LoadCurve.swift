import Foundation

/// Latency against offered load (issue 15): one open-loop workload run at a
/// series of rates, from below the allocator's capacity to past it. Each
/// point says what was offered, what was achieved, and the percentiles of
/// the allocation calls (every allocation class merged, each call timed
/// from its operation's intended start); the knee is the highest rate whose
/// p99 stays under the user's bound (and under it at every lower rate).
public enum LoadCurve {
    public struct Options: Sendable {
        /// Operations per second per open-loop worker, one run each (sorted ascending).
        public var rates: [Double]
        /// The knee's bound on p99, in ns.
        public var p99BoundNs: Double
        /// Replacements for the workload's run length, warm-up and seed.
        public var overrides = WorkloadOverrides()
        public var run = RunOptions()
        /// Progress, one line per rate.
        public var log: (@Sendable (String) -> Void)?

        public init(rates: [Double], p99BoundNs: Double) {
            self.rates = rates
            self.p99BoundNs = p99BoundNs
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public let status: ExitStatus
        public var description: String { message }
    }

    /// Checks that the workload has an open loop and that every rate can be
    /// scheduled in its run; returns the workload for each rate.
    public static func workloads(_ w: Workload, options o: Options) throws(Failure) -> [Workload] {
        guard w.groups.contains(where: { $0.loop == "open" }) else {
            throw Failure(message: "\(w.name) has no open-loop group: a load curve needs loop = \"open\" (see Workloads/open-loop-latency.toml)", status: .badInput)
        }
        guard !o.rates.isEmpty else { throw Failure(message: "--rates: give at least one rate", status: .badInput) }
        var out: [Workload] = []
        for r in o.rates.sorted() {
            var ov = o.overrides
            ov.rate = r
            do { out.append(try w.overriding(ov)) } catch { throw Failure(message: "--rates: \(error)", status: .badInput) }
        }
        return out
    }

    /// Runs every rate and returns the curve. A run that ends in `error`
    /// stops the sweep (the curve is then partial), as does Ctrl-C.
    public static func run(_ w: Workload, workloadFile: String?, options o: Options) throws(Failure) -> LoadCurveResult {
        let runs = try workloads(w, options: o)
        let started = Date()
        var points: [LoadCurvePoint] = []
        var partial = false
        var stoppedBy: ExitStatus? = nil
        var machine: MachineInfo? = nil
        var timing: TimingReport? = nil
        for wr in runs {
            let r: RunResult
            do { r = try StressRun.run(wr, options: o.run) } catch { throw Failure(message: error.message, status: error.status) }
            machine = machine ?? r.machine
            timing = timing ?? r.timing
            let p = LoadCurvePoint(r, boundNs: o.p99BoundNs)
            points.append(p)
            o.log?(p.progressLine)
            if r.exitStatus == .interrupted || r.exitStatus == .terminated { partial = true; stoppedBy = r.exitStatus; break }
            if r.status.verdict == "error" { partial = true; break }
        }
        let first = runs[0]
        return LoadCurveResult(
            workload: first.name, workloadFile: workloadFile, startedAt: ISO8601DateFormatter().string(from: started),
            machine: machine ?? .current(), clock: timing?.clock ?? CycleClock.source, resolutionNs: timing?.resolutionNs,
            openLoopWorkers: first.groups.filter { $0.loop == "open" }.reduce(0) { $0 + $1.workers },
            durationMs: first.run.durationMs, ops: first.run.ops, warmupMs: first.run.warmupMs,
            p99BoundNs: o.p99BoundNs, points: points, partial: partial, stoppedBy: stoppedBy)
    }
}

/// One rate of a load curve.
public struct LoadCurvePoint: Codable, Sendable, Equatable {
    /// The rate of every open-loop worker, and the sum over them.
    public var offeredPerWorker: Double
    public var offeredTotal: Double
    /// Operations per second the open-loop workers achieved, summed.
    public var achievedTotal: Double
    /// The allocation calls of the run (every `alloc` class merged), ns.
    public var calls: UInt64
    public var p50Ns: UInt64
    public var p99Ns: UInt64
    public var p999Ns: UInt64
    public var maxNs: UInt64
    /// The largest schedule lag at the end of the run over the workers, and the bound.
    public var endLagNs: Double
    public var lagBoundNs: Double
    /// Some worker did not keep its rate (OpenLoopReport).
    public var overloaded: Bool
    public var verdict: String
    /// p99 <= the curve's bound.
    public var underBound: Bool

    public init(_ r: RunResult, boundNs: Double) {
        let ol = r.openLoop
        let open = ol?.workers ?? []
        offeredPerWorker = open.first?.targetOpsPerSecond ?? 0
        offeredTotal = ol?.targetOpsPerSecond ?? 0
        achievedTotal = ol?.achievedOpsPerSecond ?? 0
        let allocs = r.latency.filter { $0.opClass.call == .alloc }.map(\.histogram)
        let s = ((try? EncodedHistogram.merge(allocs).histogram()) ?? LatencyRecorder.make()).summary()
        calls = allocs.reduce(0) { $0 + $1.totalCount }
        p50Ns = s.p50
        p99Ns = s.p99
        p999Ns = s.p999
        maxNs = s.max
        endLagNs = open.map(\.endLagNs).max() ?? 0
        lagBoundNs = ol?.lagBoundNs ?? 0
        overloaded = ol?.overloaded ?? false
        verdict = r.status.verdict
        underBound = calls > 0 && Double(p99Ns) <= boundNs
    }

    var progressLine: String {
        "rate \(human(offeredPerWorker)) ops/s per worker: achieved \(human(achievedTotal)) of \(human(offeredTotal)) ops/s, p99 \(fmtNs(Double(p99Ns))), verdict \(verdict)"
    }
}

/// The `pagestorm loadcurve` results file, schema "pagestorm.loadcurve/1".
public struct LoadCurveResult: Codable, Sendable, Equatable {
    public static let schemaName = "pagestorm.loadcurve/1"
    public var schema: String = LoadCurveResult.schemaName
    public var workload: String
    public var workloadFile: String?
    public var startedAt: String
    public var machine: MachineInfo
    public var clock: String
    public var resolutionNs: Double?
    public var openLoopWorkers: Int
    public var durationMs: Int?
    public var ops: Int?
    public var warmupMs: Int
    public var p99BoundNs: Double
    /// Ascending by offered rate.
    public var points: [LoadCurvePoint]
    /// A run ended in `error` or was interrupted: the later rates did not run.
    public var partial: Bool
    /// Ctrl-C or SIGTERM stopped the sweep (not stored).
    public var stoppedBy: ExitStatus? = nil

    /// The index of the knee: the highest rate whose p99 is under the bound
    /// with every lower rate under it too (nil when the first is not).
    public var kneeIndex: Int? {
        var k: Int? = nil
        for (i, p) in points.enumerated() { if p.underBound { k = i } else { break } }
        return k
    }

    /// The knee's offered rate per worker (in the file as `knee`).
    public var knee: Double? { kneeIndex.map { points[$0].offeredPerWorker } }

    enum CodingKeys: String, CodingKey {
        case schema, workload, workloadFile, startedAt, machine, clock, resolutionNs, openLoopWorkers, durationMs, ops, warmupMs,
             p99BoundNs, points, partial, knee, kneeIndex
    }

    public init(workload: String, workloadFile: String?, startedAt: String, machine: MachineInfo, clock: String, resolutionNs: Double?,
                openLoopWorkers: Int, durationMs: Int?, ops: Int?, warmupMs: Int, p99BoundNs: Double, points: [LoadCurvePoint], partial: Bool,
                stoppedBy: ExitStatus? = nil) {
        self.stoppedBy = stoppedBy
        self.workload = workload
        self.workloadFile = workloadFile
        self.startedAt = startedAt
        self.machine = machine
        self.clock = clock
        self.resolutionNs = resolutionNs
        self.openLoopWorkers = openLoopWorkers
        self.durationMs = durationMs
        self.ops = ops
        self.warmupMs = warmupMs
        self.p99BoundNs = p99BoundNs
        self.points = points
        self.partial = partial
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.decode(String.self, forKey: .schema)
        workload = try c.decode(String.self, forKey: .workload)
        workloadFile = try c.decodeIfPresent(String.self, forKey: .workloadFile)
        startedAt = try c.decode(String.self, forKey: .startedAt)
        machine = try c.decode(MachineInfo.self, forKey: .machine)
        clock = try c.decode(String.self, forKey: .clock)
        resolutionNs = try c.decodeIfPresent(Double.self, forKey: .resolutionNs)
        openLoopWorkers = try c.decode(Int.self, forKey: .openLoopWorkers)
        durationMs = try c.decodeIfPresent(Int.self, forKey: .durationMs)
        ops = try c.decodeIfPresent(Int.self, forKey: .ops)
        warmupMs = try c.decode(Int.self, forKey: .warmupMs)
        p99BoundNs = try c.decode(Double.self, forKey: .p99BoundNs)
        points = try c.decode([LoadCurvePoint].self, forKey: .points)
        partial = try c.decode(Bool.self, forKey: .partial)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schema, forKey: .schema)
        try c.encode(workload, forKey: .workload)
        try c.encodeIfPresent(workloadFile, forKey: .workloadFile)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(machine, forKey: .machine)
        try c.encode(clock, forKey: .clock)
        try c.encodeIfPresent(resolutionNs, forKey: .resolutionNs)
        try c.encode(openLoopWorkers, forKey: .openLoopWorkers)
        try c.encodeIfPresent(durationMs, forKey: .durationMs)
        try c.encodeIfPresent(ops, forKey: .ops)
        try c.encode(warmupMs, forKey: .warmupMs)
        try c.encode(p99BoundNs, forKey: .p99BoundNs)
        try c.encode(points, forKey: .points)
        try c.encode(partial, forKey: .partial)
        try c.encodeIfPresent(knee, forKey: .knee)
        try c.encodeIfPresent(kneeIndex, forKey: .kneeIndex)
    }

    /// The printed table and the knee.
    public func table() -> [String] {
        let header = ["offered/worker", "offered total", "achieved total", "kept", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "end lag", "verdict"]
        let rows: [[String]] = points.map { p in
            [human(p.offeredPerWorker), human(p.offeredTotal), human(p.achievedTotal), p.overloaded ? "no" : "yes",
             String(p.p50Ns), String(p.p99Ns), String(p.p999Ns), String(p.maxNs), fmtNs(p.endLagNs), p.verdict]
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        var out = [render(header)] + rows.map(render)
        if let k = kneeIndex {
            let p = points[k]
            let next = k + 1 < points.count ? "; at \(human(points[k + 1].offeredPerWorker)) p99 is \(fmtNs(Double(points[k + 1].p99Ns)))" : "; no higher rate was run"
            out.append("knee: \(human(p.offeredPerWorker)) ops/s per worker (\(human(p.offeredTotal)) total, \(human(p.achievedTotal)) achieved): the highest rate whose p99 (\(fmtNs(Double(p.p99Ns)))) stays under \(fmtNs(p99BoundNs))\(next)")
        } else if let p = points.first {
            out.append("knee: none: at the lowest rate, \(human(p.offeredPerWorker)) ops/s per worker, p99 is already \(fmtNs(Double(p.p99Ns))), above \(fmtNs(p99BoundNs))")
        }
        if partial { out.append("partial: the sweep stopped after \(points.count) of the rates (interrupted, or a run ended in error)") }
        return out
    }
}
