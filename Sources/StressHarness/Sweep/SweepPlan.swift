import Foundation

/// One run of a sweep: a point and a repetition.
public struct SweepRun: Codable, Sendable, Equatable {
    /// `<point id>/rep-<n>`: also its results file's path under the sweep folder (plus `.json`).
    public var id: String
    public var point: String
    /// 1...repetitions.
    public var rep: Int
    /// The workload seed of this run (`run.seed` in its results file).
    public var seed: UInt64
    /// Position in the sweep's seeded random order (0 first).
    public var order: Int

    public var relativePath: String { "\(point)/rep-\(rep).json" }
}

/// Which runs one process does: shard `index` of `count` (0-based).
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) { self.index = index; self.count = count }
    public static let all = ShardSpec(index: 0, count: 1)
    public var description: String { "\(index)/\(count)" }

    /// `i/n` with 0 <= i < n.
    public static func parse(_ text: String, argument: String = "--shard") throws(SweepError) -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw SweepError(argument, "'\(text)' is not i/n (shard i of n, 0 <= i < n, e.g. 0/4)")
        }
        return try make(i, n, argument: argument, text: text)
    }

    static func make(_ i: Int, _ n: Int, argument: String, text: String) throws(SweepError) -> ShardSpec {
        guard n >= 1 else { throw SweepError(argument, "'\(text)': the shard count must be at least 1") }
        guard n <= 100_000 else { throw SweepError(argument, "'\(text)': at most 100000 shards") }
        guard i >= 0, i < n else { throw SweepError(argument, "'\(text)': the shard index must be 0...\(n - 1) (shards count from 0)") }
        return ShardSpec(index: i, count: n)
    }

    /// The shard when `--shard` is absent: Slurm's array variables
    /// (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT),
    /// or a Kubernetes indexed job's JOB_COMPLETION_INDEX of `countFlag`; nil: the whole sweep.
    public static func fromEnvironment(_ env: [String: String], countFlag: Int?) throws(SweepError) -> ShardSpec? {
        if let id = env["SLURM_ARRAY_TASK_ID"] {
            guard let countText = env["SLURM_ARRAY_TASK_COUNT"] else {
                throw SweepError("SLURM_ARRAY_TASK_ID", "is set ('\(id)') but SLURM_ARRAY_TASK_COUNT is not")
            }
            guard let i = Int(id) else { throw SweepError("SLURM_ARRAY_TASK_ID", "'\(id)' is not an integer") }
            guard let n = Int(countText) else { throw SweepError("SLURM_ARRAY_TASK_COUNT", "'\(countText)' is not an integer") }
            var minimum = 0
            if let m = env["SLURM_ARRAY_TASK_MIN"] {
                guard let mm = Int(m) else { throw SweepError("SLURM_ARRAY_TASK_MIN", "'\(m)' is not an integer") }
                minimum = mm
            }
            if let step = env["SLURM_ARRAY_TASK_STEP"], step != "1" {
                throw SweepError("SLURM_ARRAY_TASK_STEP", "'\(step)': submit the array as --array=0-\(n - 1) (a step other than 1 is not supported)")
            }
            return try make(i - minimum, n, argument: "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT", text: "\(i - minimum)/\(n)")
        }
        if let idx = env["JOB_COMPLETION_INDEX"] {
            guard let n = countFlag else {
                throw SweepError("JOB_COMPLETION_INDEX", "is set ('\(idx)'): give the number of completions with --shard-count N")
            }
            guard let i = Int(idx) else { throw SweepError("JOB_COMPLETION_INDEX", "'\(idx)' is not an integer") }
            return try make(i, n, argument: "JOB_COMPLETION_INDEX/--shard-count", text: "\(i)/\(n)")
        }
        if countFlag != nil { throw SweepError("--shard-count", "is only used with JOB_COMPLETION_INDEX, which is not set") }
        return nil
    }
}

/// SplitMix64 (its own copy): seeds and the run order.
struct SweepMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

extension SweepSpec {
    /// Every run, in the sweep's seeded random order. A run's seed depends
    /// only on the sweep seed, its point id and its repetition.
    public func runs() -> [SweepRun] {
        var list: [SweepRun] = []
        for p in points {
            for r in 1...repetitions {
                var g = SweepMix(state: seed ^ fnv1a("\(p.id)/rep-\(r)"))
                list.append(SweepRun(id: "\(p.id)/rep-\(r)", point: p.id, rep: r, seed: g.next() >> 1, order: 0))
            }
        }
        list.sort { $0.id < $1.id }
        var g = SweepMix(state: seed ^ 0x5357_4545_50)
        if list.count > 1 {
            for i in stride(from: list.count - 1, to: 0, by: -1) { list.swapAt(i, g.below(i + 1)) }
        }
        for i in list.indices { list[i].order = i }
        return list
    }

    /// The runs of one shard: every `count`-th run of the order, from `index`.
    public func runs(shard: ShardSpec) -> [SweepRun] {
        runs().filter { $0.order % shard.count == shard.index }
    }
}

/// `sweep.json` in a sweep's results folder (schema `pagestorm.sweep/1`, docs/sweeps.md).
public struct SweepManifest: Codable, Sendable {
    public static let schemaName = "pagestorm.sweep/1"
    public var schema = SweepManifest.schemaName
    public var name: String
    public var description: String
    /// The sweep file as given on the command line.
    public var file: String
    /// Changes when the sweep changes (axes, values, [set], excludes, repetitions, seed, the base workload's text).
    public var fingerprint: String
    /// The binary's revision (every run's results record it too).
    public var revision: String
    /// `default` or the base workload's path.
    public var workload: String
    public var repetitions: Int
    public var seed: UInt64
    public var set: [String: String]
    public var axes: [AxisRecord]
    public var excludes: [[String: [String]]]
    public var points: [PointRecord]
    /// Every run in the seeded order.
    public var runs: [SweepRun]
    /// What the fingerprint is taken over.
    public var canonical: String

    public struct AxisRecord: Codable, Sendable, Equatable {
        public var name: String
        public var key: String
        /// Values as labels (the text in point ids and in the CSV).
        public var values: [String]
        /// Values as canonical TOML.
        public var toml: [String]
    }

    public struct PointRecord: Codable, Sendable {
        public var id: String
        /// axis name -> value label.
        public var values: [String: String]
        /// The point's workload, resolved on the machine that wrote this manifest (seed: the first run's).
        public var workload: Workload?
    }

    public static let fileName = "sweep.json"
}

extension SweepSpec {
    public func manifest(revision: String) -> SweepManifest {
        let allRuns = runs()
        let firstSeed = Dictionary(allRuns.filter { $0.rep == 1 }.map { ($0.point, $0.seed) }, uniquingKeysWith: { a, _ in a })
        return SweepManifest(
            name: name, description: description, file: file, fingerprint: fingerprint, revision: revision, workload: workloadRef,
            repetitions: repetitions, seed: seed,
            set: Dictionary(set.map { ($0.key, SweepSpec.canonicalValue($0.value)) }, uniquingKeysWith: { a, _ in a }),
            axes: axes.map { .init(name: $0.name, key: $0.key, values: $0.labels, toml: $0.values.map(SweepSpec.canonicalValue)) },
            excludes: excludes.map(\.match),
            points: points.map { p in .init(id: p.id, values: p.values, workload: try? workload(point: p, seed: firstSeed[p.id] ?? seed)) },
            runs: allRuns, canonical: canonical)
    }
}

/// The binary's revision, as results files record it.
public enum SweepRevision {
    public static func current() -> String { BuildStamp.revision }
}

/// The state of a run's files in a sweep folder.
public enum RunFileState: Equatable, Sendable {
    case missing
    /// `rep-N.json`: a complete result (whatever its verdict).
    case complete
    /// `rep-N.failed.json` only: the last try crashed, could not start, or timed out.
    case failed
}

public enum SweepFolder {
    public static func path(_ root: String, _ run: SweepRun) -> String { "\(root)/\(run.point)/rep-\(run.rep).json" }
    public static func failedPath(_ root: String, _ run: SweepRun) -> String { "\(root)/\(run.point)/rep-\(run.rep).failed.json" }

    public static func state(_ root: String, _ run: SweepRun) -> RunFileState {
        let fm = FileManager.default
        if let a = try? fm.attributesOfItem(atPath: path(root, run)), ((a[.size] as? NSNumber)?.intValue ?? 0) > 0 { return .complete }
        if fm.fileExists(atPath: failedPath(root, run)) { return .failed }
        return .missing
    }
}

/// `rep-N.failed.json`: why a run has no result.
public struct SweepRunFailure: Codable, Sendable {
    public static let schemaName = "pagestorm.sweep-failure/1"
    public var schema = SweepRunFailure.schemaName
    public var run: String
    public var seed: UInt64
    public var revision: String
    public var at: String
    /// "crashed", "could not start", "timed out", "no results" or "error".
    public var kind: String
    public var message: String
    /// The child's exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
    /// The end of what the run printed.
    public var outputTail: String
}
