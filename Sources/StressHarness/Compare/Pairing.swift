import Foundation

/// `pagestorm ab`'s manifest, `<output-dir>/ab.json`: which runs were made as
/// adjacent pairs (round k: `a/rep-k.json` and `b/rep-k.json`), so that
/// `check` and `compare` given `<dir>/a` and `<dir>/b` pair them by themselves.
public struct ABManifest: Codable, Sendable {
    public static let schema = "pagestorm.ab/1"
    public var schema = ABManifest.schema
    public var a: String
    public var b: String
    public var rounds: Int
    /// Per round, the order of the two runs ("ab" or "ba").
    public var order: [String]
    /// Pairing key (file name without .json) of each round: ["rep-1", ...].
    public var pairs: [String]
    public var command: [String]
    /// `--retry-flagged`: extra attempts per round at most when a run of the round is flagged for a timing
    /// metric that decides (nil: a manifest written before retries existed).
    public var retryFlagged: Int?
    /// Which flag made a round run again ("none": no timing metric gates, so no round is retried; "cpu-time";
    /// "any"), decided from the first results file and the thresholds.
    public var retryOn: String?
    /// Every attempt discarded because a run of it was flagged, in run order (its files were renamed
    /// `rep-N.flagged-K.json`); rounds still flagged after their retries (they stay flagged and do not decide).
    public var discarded: [ABDiscardedAttempt]?
    public var stillFlagged: [Int]?
    /// `--co-run`: each round's two runs ran at the same time on the workload's CPUs (started in `order`);
    /// nil or false: back to back.
    public var coRun: Bool?

    public init(a: String, b: String, rounds: Int, order: [String], pairs: [String], command: [String], retryFlagged: Int? = nil) {
        self.a = a; self.b = b; self.rounds = rounds; self.order = order; self.pairs = pairs; self.command = command
        self.retryFlagged = retryFlagged
    }

    /// The manifest that says BASE and NEW are the two sides of one `ab` run: both are
    /// directories with the same parent, named `a` and `b`, and the parent has a readable ab.json.
    public static func covering(base: String, new: String) -> ABManifest? {
        let bu = URL(fileURLWithPath: base).standardizedFileURL, nu = URL(fileURLWithPath: new).standardizedFileURL
        guard bu.lastPathComponent == "a", nu.lastPathComponent == "b",
              bu.deletingLastPathComponent().path == nu.deletingLastPathComponent().path else { return nil }
        let path = bu.deletingLastPathComponent().appendingPathComponent("ab.json").path
        guard let data = FileManager.default.contents(atPath: path),
              let m = try? JSONDecoder().decode(ABManifest.self, from: data), m.schema == schema else { return nil }
        return m
    }
}

/// Whether compare/check pair repetitions: the command line's flag, else the thresholds
/// file's `paired`, else the default (ab: yes; check/compare: yes when BASE and NEW are an ab run's two sides).
public enum PairingChoice {
    public enum Source: String, Sendable { case flag, thresholds, abManifest = "ab manifest", abDefault = "ab's default", none }

    public static func resolve(flag: Bool?, thresholds: Bool?, defaultPaired: Bool, base: String, new: String) -> (paired: Bool, source: Source) {
        if let flag { return (flag, .flag) }
        if let thresholds { return (thresholds, .thresholds) }
        if defaultPaired { return (true, .abDefault) }
        if ABManifest.covering(base: base, new: new) != nil { return (true, .abManifest) }
        return (false, .none)
    }
}
