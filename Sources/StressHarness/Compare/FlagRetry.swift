import Foundation

/// Bounded retries of flagged pairs (`pagestorm ab --retry-flagged N`,
/// `pagestorm gate-eval --retry-flagged N`).
///
/// A pair of runs (A and B, adjacent in time) where a run is flagged for the
/// metric that decides cannot decide it: by design a flagged run never decides
/// a timing. Instead of losing the pair, it is run again, at most `limit`
/// more times; every discarded attempt is kept and listed (never silently),
/// and a pair still flagged after its retries stays flagged and does not
/// decide, as without retries.
public enum FlagRetry {
    /// The default bound on extra attempts per pair.
    public static let defaultRetries = 2

    public struct Outcome<T> {
        /// The attempt that counts: the first one not flagged, or the last one.
        public var kept: T
        /// The attempts run before it and discarded, in order, each with why it was flagged.
        public var discarded: [(attempt: T, reason: String)]
        /// Why the kept attempt is still flagged (nil: it is not).
        public var stillFlagged: String?
        /// Attempts made in all (1 + discarded).
        public var attempts: Int { discarded.count + 1 }
    }

    /// Runs `run` once, and again while `flagged` says why the result is flagged, at most `limit` more times.
    /// `discard` is told of each discarded attempt (its number from 1, and why) before the next one runs.
    public static func attempts<T>(limit: Int, _ run: () throws -> T, flagged: (T) throws -> String?,
                                   discard: (T, Int, String) throws -> Void = { _, _, _ in }) rethrows -> Outcome<T> {
        var discarded: [(attempt: T, reason: String)] = []
        while true {
            let x = try run()
            guard let why = try flagged(x) else { return Outcome(kept: x, discarded: discarded, stillFlagged: nil) }
            if discarded.count >= max(0, limit) { return Outcome(kept: x, discarded: discarded, stillFlagged: why) }
            discarded.append((x, why))
            try discard(x, discarded.count, why)
        }
    }

    /// Which flag of a run blocks a timing metric that decides the verdict under `thresholds`.
    public enum Blocking: String, Sendable, Codable {
        /// No timing metric gates (or flagged runs are trusted): a flag decides nothing, nothing is retried.
        case none
        /// Only `throughput/ops_per_cpu_s` gates: a partial run or steal time above the limit flags it.
        case cpuTime = "cpu-time"
        /// A wall-time timing metric gates: any noise flag (a worker short of CPU, steal) or a partial run.
        case any
    }

    /// From the metrics of a results file (a repetition) and the thresholds. Co-run (`ab --co-run`): every
    /// run shares its CPUs with the other side's, so its wall-time timings are always flagged; retrying on
    /// that flag would re-run every round for nothing, so the CPU-time flags (partial, steal) decide.
    public static func blocking(_ rep: Rep, thresholds: Thresholds, coRun: Bool = false) -> Blocking {
        if thresholds.trustFlagged { return .none }
        let gating = rep.info.values.filter { $0.timing && thresholds.limit(for: $0).gate }
        if gating.isEmpty { return .none }
        return coRun || gating.allSatisfy { $0.id == Comparer.perCPUMetric } ? .cpuTime : .any
    }

    /// Why `rep` is flagged for `blocking` (nil: not flagged for it).
    public static func reason(_ rep: Rep, blocking: Blocking) -> String? {
        switch blocking {
        case .none: return nil
        case .cpuTime: return rep.cpuTimeUntrustworthy ? (rep.noiseReason ?? "flagged") : nil
        case .any: return rep.untrustworthy || rep.cpuTimeUntrustworthy ? (rep.noiseReason ?? "flagged") : nil
        }
    }

    /// Reads one results file as a repetition (`pagestorm ab` after each run).
    public static func load(_ path: String) throws(CompareInputError) -> Rep {
        try ResultSet.loadFile(path, explicit: true)
    }

    /// The name a discarded attempt's file gets: `rep-3.json` -> `rep-3.flagged-1.json` (attempt 1), which
    /// compare, check and record skip (`ResultSet.isRepFile`).
    public static func discardedName(_ path: String, attempt: Int) -> String {
        let ext = (path as NSString).pathExtension
        let stem = (path as NSString).deletingPathExtension
        return stem + ".flagged-\(attempt)" + (ext.isEmpty ? "" : "." + ext)
    }
}

/// One attempt of an `ab` round that was discarded because a run of it was flagged (in ab.json).
public struct ABDiscardedAttempt: Codable, Sendable, Equatable {
    /// The round (from 1) and the attempt (1: the round's first pair).
    public var round: Int
    public var attempt: Int
    /// Where its two results files were moved (relative to the output directory).
    public var a: String
    public var b: String
    /// Which side(s) were flagged, and why.
    public var reason: String
    public init(round: Int, attempt: Int, a: String, b: String, reason: String) {
        self.round = round; self.attempt = attempt; self.a = a; self.b = b; self.reason = reason
    }
}
