import Foundation

/// Bad input to `pagestorm report`: one message naming the file (exit 2).
public struct ReportError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(_ path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// A sweep point's keyed latency rows, repetitions pooled (SweepMerge.poolKeyed), with their merged histograms.
public struct KeyedPools {
    public var byGroup: [(row: PooledKeyedLatency, histogram: EncodedHistogram)] = []
    public var byLabel: [(row: PooledKeyedLatency, histogram: EncodedHistogram)] = []
    public init(byGroup: [(row: PooledKeyedLatency, histogram: EncodedHistogram)] = [], byLabel: [(row: PooledKeyedLatency, histogram: EncodedHistogram)] = []) {
        self.byGroup = byGroup
        self.byLabel = byLabel
    }
}

/// One thing the report draws, read from a file or a sweep folder.
public enum ReportInput {
    case run(path: String, RunResult)
    /// A sweep: its summary, and per point and latency class the repetitions'
    /// histograms merged (empty when only summary.json was given); `keyed`:
    /// per point, the keyed rows (by worker group, by op label) pooled the same way.
    case sweep(path: String, SweepSummary, pooled: [String: [String: EncodedHistogram]], note: String?, keyed: [String: KeyedPools] = [:])
    case debate(path: String, DebateReport)
    case loadCurve(path: String, LoadCurveResult)
    case numa(path: String, NumaMatrixResult)

    static let debateSchema = "pagestorm.debate/1"

    /// The schemas a file may have.
    public static let schemas = [RunResult.schemaName, SweepSummary.schemaName, ReportInput.debateSchema, LoadCurveResult.schemaName, NumaMatrixResult.schemaName]

    /// Reads `path`: a sweep results folder (with `sweep.json`; merged or
    /// not), or a JSON file of one of `schemas`.
    public static func load(_ path: String) throws(ReportError) -> ReportInput {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ReportError(path, "no such file or folder")
        }
        if isDir.boolValue { return try loadSweep(path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw ReportError(path, "cannot read the file") }
        guard let any = try? JSONSerialization.jsonObject(with: data), let obj = any as? [String: Any] else {
            throw ReportError(path, "not a JSON object: give a pagestorm results file (\(schemas.joined(separator: ", "))) or a sweep results folder")
        }
        guard let schema = obj["schema"] as? String else {
            if obj["fingerprint"] != nil || obj["runs"] != nil { throw ReportError(path, "has no \"schema\" key; give its sweep folder instead") }
            throw ReportError(path, "has no \"schema\" key: not a pagestorm results file (expected one of \(schemas.joined(separator: ", ")))")
        }
        func decode<T: Decodable>(_ t: T.Type) throws(ReportError) -> T {
            let d = JSONDecoder()
            d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            do { return try d.decode(t, from: data) } catch {
                throw ReportError(path, "is not a valid \(schema) file: \(describe(error))")
            }
        }
        switch schema {
        case RunResult.schemaName: return .run(path: path, try decode(RunResult.self))
        case SweepSummary.schemaName: return .sweep(path: path, try decode(SweepSummary.self), pooled: [:], note: "from summary.json alone: latency curves end at p99.99 (give the sweep folder for the full histograms)")
        case ReportInput.debateSchema: return .debate(path: path, try decode(DebateReport.self))
        case LoadCurveResult.schemaName: return .loadCurve(path: path, try decode(LoadCurveResult.self))
        case NumaMatrixResult.schemaName: return .numa(path: path, try decode(NumaMatrixResult.self))
        case SweepManifest.schemaName:
            throw ReportError(path, "is a sweep manifest: give its folder (\(URL(fileURLWithPath: path).deletingLastPathComponent().path))")
        default:
            throw ReportError(path, "schema \"\(schema)\" is not one the report draws (it draws \(schemas.joined(separator: ", ")) and sweep folders)")
        }
    }

    /// A sweep folder: its manifest and whatever run files it holds (a shard's
    /// folder, a merged one, or a sweep still running), summarised as `merge` does.
    static func loadSweep(_ dir: String) throws(ReportError) -> ReportInput {
        let manifestPath = "\(dir)/\(SweepManifest.fileName)"
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            throw ReportError(dir, "is a folder without \(SweepManifest.fileName): not a sweep results folder (give results/<sweep name>)")
        }
        let m: SweepManifest
        do { m = try ResultsFile.read(SweepManifest.self, from: manifestPath) } catch {
            throw ReportError(manifestPath, "cannot read the sweep manifest: \(describe(error))")
        }
        var results: [String: RunResult] = [:]
        var failed = Set<String>()
        for run in m.runs.sorted(by: { ($0.point, $0.rep) < ($1.point, $1.rep) }) {
            let p = SweepFolder.path(dir, run)
            guard FileManager.default.fileExists(atPath: p) else {
                if FileManager.default.fileExists(atPath: SweepFolder.failedPath(dir, run)) { failed.insert(run.id) }
                continue
            }
            let r: RunResult
            do { r = try ResultsFile.read(RunResult.self, from: p) } catch {
                throw ReportError(p, "cannot read the run's results: \(describe(error))")
            }
            if r.shard.sweep != nil && r.shard.sweep != m.name {
                throw ReportError(p, "belongs to sweep '\(r.shard.sweep!)', not '\(m.name)'")
            }
            results[run.id] = r
        }
        let (summary, pools) = SweepMerge.summarizePooled(m, results: results, failedIDs: failed)
        let missing = m.runs.count - results.count
        let note = missing == 0 ? nil : "\(missing) of \(m.runs.count) runs have no results in this folder (\(failed.count) failed); the charts show the rest"
        return .sweep(path: dir, summary, pooled: pools.mapValues(\.latency), note: note,
                      keyed: pools.compactMapValues { $0.keyed.byGroup.isEmpty && $0.keyed.byLabel.isEmpty ? nil : $0.keyed })
    }

    static func describe(_ error: Error) -> String {
        if let d = error as? DecodingError {
            func at(_ c: DecodingError.Context) -> String {
                let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                return p.isEmpty ? "" : " at \(p.hasPrefix(".") ? String(p.dropFirst()) : p)"
            }
            switch d {
            case .keyNotFound(let k, let c): return "missing key \"\(k.stringValue)\"\(at(c))"
            case .typeMismatch(_, let c), .valueNotFound(_, let c): return "wrong type\(at(c)): \(c.debugDescription)"
            case .dataCorrupted(let c): return "\(c.debugDescription)\(at(c))"
            @unknown default: return "\(d)"
            }
        }
        return "\(error)"
    }
}
