import Foundation

/// Which way is worse for a metric.
public enum Better: String, Codable, Sendable {
    case higher, lower
    /// Exact counters: any change is a behaviour change; neither way is better.
    case exact
}

/// How repetitions of a metric are summarised.
public enum MetricKind: String, Codable, Sendable {
    /// A rate (calls/s): harmonic mean.
    case rate
    /// A time or a count per run: arithmetic mean.
    case time
    /// A counter of a deterministic run: must be identical.
    case exact
    /// Instructions per operation under callgrind: repeatable to the instruction.
    case instructions
}

/// What a metric is: its id (matched by thresholds), label and unit, which way is worse.
public struct MetricInfo: Codable, Sendable, Equatable {
    public var id: String
    public var label: String
    public var unit: String
    public var better: Better
    public var kind: MetricKind
    /// Depends on the machine's speed and load (timings, rates, counts of a timed run).
    public var timing: Bool { kind == .rate || kind == .time }
}

/// One repetition: a results file reduced to its metrics.
public struct Rep: Sendable {
    public var path: String
    public var schema: String
    /// workload.name (run results), "bench" or "instructions".
    public var workload: String
    public var workloadFile: String?
    public var machine: String
    public var revision: String
    /// A single-worker op-count run with no warm-up: its counters must be exact.
    public var deterministic: Bool
    /// The run flagged itself as untrustworthy for timing (noise.untrustworthy).
    public var untrustworthy: Bool
    public var noiseReason: String?
    /// Untrustworthy even for `throughput/ops_per_cpu_s`, which leaves preemption
    /// out: the run was partial, or the machine's steal time was above the limit
    /// (a vCPU that does not run may still count as the thread's CPU time).
    public var cpuTimeUntrustworthy = false
    public var values: [String: Double]
    public var info: [String: MetricInfo]
    /// The results file's `startedAt` (ISO 8601), when it has one.
    public var startedAt: String? = nil
    /// What pairs this repetition with one of the other side (`check --paired`): the file's
    /// name without `.json` (`rep-3`: round 3 of `pagestorm ab`, whose two runs were adjacent in time).
    public var pairKey: String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }
}

/// One point (a single run or set of repetitions, or one point of a sweep).
public struct PointSet: Sendable {
    /// "" for a single point; the sweep point's id otherwise.
    public var id: String
    public var reps: [Rep]
}

/// Errors in the inputs of compare/check: each names what is wrong (exit 2).
public struct CompareInputError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

public enum ResultSet {
    public static let runSchema = "pagestorm.run/1"
    public static let benchSchema = "pagestorm.bench/1"
    public static let instructionsSchema = "pagestorm.instructions/1"

    /// Loads BASE or NEW: a results file; several files separated by commas
    /// (repetitions of one point); a directory of results files
    /// (repetitions); or a sweep directory (`<point id>/rep-<n>.json`, one
    /// sub-directory per point). Returns the points, sorted by id.
    public static func load(_ spec: String) throws(CompareInputError) -> [PointSet] {
        let fm = FileManager.default
        let parts = spec.split(separator: ",").map(String.init)
        if parts.count > 1 {
            var reps: [Rep] = []
            for p in parts { reps.append(try loadFile(p, explicit: true)) }
            return [PointSet(id: "", reps: reps)]
        }
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: spec, isDirectory: &isDir) else { throw CompareInputError("\(spec): no such file or directory") }
        if !isDir.boolValue { return [PointSet(id: "", reps: [try loadFile(spec, explicit: true)])] }
        guard let names = try? fm.contentsOfDirectory(atPath: spec) else { throw CompareInputError("\(spec): cannot read the directory") }
        let jsons = names.filter(isRepFile).sorted()
        let dirs = names.filter { n in
            var d: ObjCBool = false
            return !n.hasPrefix(".") && fm.fileExists(atPath: spec + "/" + n, isDirectory: &d) && d.boolValue
        }.sorted()
        var points: [PointSet] = []
        for d in dirs {
            let sub = (try? fm.contentsOfDirectory(atPath: spec + "/" + d))?.filter(isRepFile).sorted() ?? []
            var reps: [Rep] = []
            for f in sub { if let r = try loadFileIfResults(spec + "/" + d + "/" + f) { reps.append(r) } }
            if !reps.isEmpty { points.append(PointSet(id: d, reps: reps)) }
        }
        if !points.isEmpty { return points }
        var reps: [Rep] = []
        for f in jsons { if let r = try loadFileIfResults(spec + "/" + f) { reps.append(r) } }
        guard !reps.isEmpty else { throw CompareInputError("\(spec): no results files (\(runSchema), \(benchSchema) or \(instructionsSchema)) in the directory or its sub-directories") }
        return [PointSet(id: "", reps: reps)]
    }

    /// A results file of a directory: not hidden (a sweep's temporaries), not a sweep's kept-aside partial
    /// (`rep-N.partial-PID.json`) or failure record (`rep-N.failed.json`), not an attempt `pagestorm ab`
    /// discarded because a run of it was flagged (`rep-N.flagged-K.json`, listed in ab.json).
    static func isRepFile(_ name: String) -> Bool {
        name.hasSuffix(".json") && !name.hasPrefix(".") && !name.contains(".partial-") && !name.hasSuffix(".failed.json")
            && !name.contains(".flagged-")
    }

    /// A file in a directory: other pagestorm files (a sweep manifest, a debate table) are skipped.
    static func loadFileIfResults(_ path: String) throws(CompareInputError) -> Rep? {
        do { return try parseFile(path, explicit: false) } catch is SkipFile { return nil } catch let e as CompareInputError { throw e } catch {
            throw CompareInputError("\(path): \(error)")
        }
    }

    struct SkipFile: Error {}

    static func loadFile(_ path: String, explicit: Bool) throws(CompareInputError) -> Rep {
        do { return try parseFile(path, explicit: explicit) } catch let e as CompareInputError { throw e } catch is SkipFile {
            throw CompareInputError("\(path): not a pagestorm results file")
        } catch { throw CompareInputError("\(path): \(error)") }
    }

    static func parseFile(_ path: String, explicit: Bool) throws -> Rep {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CompareInputError(FileManager.default.fileExists(atPath: path) ? "\(path): cannot read the file" : "\(path): no such file")
        }
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw CompareInputError("\(path): not valid JSON (\(error.localizedDescription))")
        }
        guard let obj = any as? [String: Any] else { throw CompareInputError("\(path): not a pagestorm results file (the JSON is not an object)") }
        let schema = (obj["schema"] as? String) ?? (obj["schemaVersion"] as? String) ?? ""
        var rep: Rep
        switch schema {
        case runSchema: rep = try runRep(obj, path: path)
        case benchSchema: rep = benchRep(obj, path: path)
        case instructionsSchema: rep = instructionsRep(obj, path: path)
        default:
            if schema.hasPrefix("pagestorm.run/") || schema.hasPrefix("pagestorm.bench/") || schema.hasPrefix("pagestorm.instructions/") {
                throw CompareInputError("\(path): schema \(schema) is not one this pagestorm reads (\(runSchema), \(benchSchema), \(instructionsSchema)); compare files of the same schema version, written by builds that agree")
            }
            if !explicit && schema.hasPrefix("pagestorm.") { throw SkipFile() }
            throw CompareInputError("\(path): not a pagestorm results file (schema \(schema.isEmpty ? "missing" : "'\(schema)'"))")
        }
        rep.startedAt = obj["startedAt"] as? String
        return rep
    }

    static func num(_ v: Any?) -> Double? {
        if let n = v as? NSNumber { return n.doubleValue }
        if let s = v as? String { return Double(s) }
        return nil
    }

    static func machineName(_ m: [String: Any]?) -> String {
        guard let m else { return "unknown" }
        let host = m["hostname"] as? String ?? "?"
        let cpu = m["cpuModel"] as? String ?? "?"
        let cores = num(m["cores"]).map { "\(Int($0)) cores" } ?? "?"
        return "\(host) (\(cpu), \(cores))"
    }

    static let percentiles: [(String, String)] = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("p9999", "p99.99"), ("max", "max")]
    /// vmstat counters a timed run reports per 1000 allocator calls.
    public static let chosenVmstat = ["pcp_refill", "pcp_drain", "zone_lock_contended", "pcp_lock_contended", "alloc_slowpath", "pgalloc_fail", "allocstall"]

    static func runRep(_ o: [String: Any], path: String) throws -> Rep {
        let workload = o["workload"] as? [String: Any] ?? [:]
        let run = workload["run"] as? [String: Any] ?? [:]
        let groups = workload["groups"] as? [[String: Any]] ?? []
        let workers = groups.reduce(0) { $0 + Int(num($1["workers"]) ?? 0) }
        let deterministic = (run["mode"] as? String) == "ops" && workers == 1 && (num(run["warmupMs"]) ?? 1) == 0
        let machine = o["machine"] as? [String: Any]
        var rep = Rep(path: path, schema: runSchema, workload: workload["name"] as? String ?? "?", workloadFile: o["workloadFile"] as? String,
                      machine: machineName(machine), revision: machine?["gitRevision"] as? String ?? "unknown",
                      deterministic: deterministic, untrustworthy: false, noiseReason: nil, values: [:], info: [:])
        func put(_ id: String, _ label: String, _ unit: String, _ better: Better, _ kind: MetricKind, _ v: Double?) {
            guard let v, v.isFinite else { return }
            rep.values[id] = v
            rep.info[id] = MetricInfo(id: id, label: label, unit: unit, better: better, kind: kind)
        }
        if let noise = o["noise"] as? [String: Any] {
            rep.untrustworthy = (noise["untrustworthy"] as? Bool) ?? false
            rep.noiseReason = noise["reason"] as? String
            rep.cpuTimeUntrustworthy = (num(noise["stealPercent"]) ?? 0) > NoiseReport.maxStealPercent
        }
        let status = o["status"] as? [String: Any] ?? [:]
        if (status["partial"] as? Bool) == true {
            rep.untrustworthy = true
            rep.cpuTimeUntrustworthy = true
            rep.noiseReason = (rep.noiseReason.map { $0 + "; " } ?? "") + "partial run (\(status["stopReason"] as? String ?? "?"))"
        }
        let tp = o["throughput"] as? [String: Any] ?? [:]
        let slow = o["slowPath"] as? [String: Any] ?? [:]
        let slowCounters = slow["counters"] as? [String: Any] ?? [:]
        let counters = o["counters"] as? [String: Any] ?? [:]
        let vm = counters["vmstatDelta"] as? [String: Any] ?? [:]
        let failures = o["failures"] as? [String: Any] ?? [:]
        let byLevel = failures["byLevel"] as? [String: Any] ?? [:]
        let latency = o["latency"] as? [[String: Any]] ?? []
        let stalls = slow["stalls"] as? [String: Any] ?? [:]
        if deterministic {
            // Exact counters: identical on every run of the same build, workload and seed.
            for (k, key) in [("calls", "calls"), ("allocs", "allocs"), ("frees", "frees"), ("remote_frees", "remoteFrees"), ("failed_allocs", "failedAllocs"), ("operations", "operations")] {
                put("exact/\(k)", "\(k)", "count", .exact, .exact, num(tp[key]))
            }
            for (k, v) in vm { put("exact/vmstat/\(k)", "vmstat \(k)", "count", .exact, .exact, num(v)) }
            // kswapd_wakeups, pgscan_kswapd, pgsteal_kswapd: counted by (or about) an asynchronous thread, so not exact.
            for (k, v) in slowCounters where !k.hasPrefix("resv_wait_ns") && !k.contains("kswapd") { put("exact/slowpath/\(k)", "slow path \(k)", "count", .exact, .exact, num(v)) }
            for (k, v) in byLevel { put("exact/failures/L\(k)", "failures L\(k)", "count", .exact, .exact, num(v)) }
            for c in latency {
                guard let name = c["name"] as? String else { continue }
                put("exact/calls/\(name)", "\(name) calls", "count", .exact, .exact, num(c["calls"]))
                put("exact/failures/\(name)", "\(name) failures", "count", .exact, .exact, num(c["failures"]))
            }
            if let ops = o["operations"] as? [[String: Any]] {
                for op in ops { put("exact/draws/\(op["group"] as? String ?? "?").\(op["op"] as? String ?? "?")", "draws of \(op["group"] as? String ?? "?").\(op["op"] as? String ?? "?")", "count", .exact, .exact, num(op["draws"])) }
            }
        }
        put("throughput/calls_per_s", "throughput", "calls/s", .higher, .rate, num(tp["callsPerSecond"]))
        put("throughput/ops_per_s", "operations", "ops/s", .higher, .rate, num(tp["operationsPerSecond"]))
        // Operations per second of the workers' own CPU time (noise.workers' cpuNs over the same window):
        // time the machine gave to other threads does not count, so preemption by other jobs does not move it.
        if let ws = (o["noise"] as? [String: Any])?["workers"] as? [[String: Any]], let ops = num(tp["operations"]) {
            let cpuNs = ws.compactMap { num($0["cpuNs"]) }.reduce(0, +)
            if cpuNs > 0 { put("throughput/ops_per_cpu_s", "operations per CPU-second", "ops/cpu-s", .higher, .rate, ops / (cpuNs / 1e9)) }
        }
        for c in latency {
            guard let name = c["name"] as? String, let s = c["summary"] as? [String: Any], (num(c["calls"]) ?? 0) > 0 else { continue }
            let hist = c["histogram"] as? [String: Any]
            if let h = hist, (num(h["totalCount"]) ?? 1) == 0 { continue }
            for (key, label) in percentiles { put("latency/\(name)/\(label)", "\(name) \(label)", "ns", .lower, .time, num(s[key])) }
        }
        // Keyed by worker group and by op label (results that have them): latency/group/<group>/<class>/<pct>, latency/label/<label>/<class>/<pct>.
        for (field, kind) in [("latencyByGroup", "group"), ("latencyByLabel", "label")] {
            for c in o[field] as? [[String: Any]] ?? [] {
                guard let k = c["key"] as? String, let name = c["name"] as? String, let s = c["summary"] as? [String: Any], (num(c["calls"]) ?? 0) > 0 else { continue }
                if let h = c["histogram"] as? [String: Any], (num(h["totalCount"]) ?? 1) == 0 { continue }
                for (key, label) in percentiles { put("latency/\(kind)/\(k)/\(name)/\(label)", "\(kind) \(k) \(name) \(label)", "ns", .lower, .time, num(s[key])) }
                put("failures/\(kind)/\(k)/\(name)", "\(kind) \(k) \(name) failures", "count", .lower, .time, num(c["failures"]) ?? 0)
            }
        }
        let totalFailures = num(failures["total"]) ?? 0
        put("failures/total", "failures", "count", .lower, .time, totalFailures)
        for l in 0...3 { put("failures/L\(l)", "failures L\(l)", "count", .lower, .time, num(byLevel[String(l)]) ?? 0) }
        put("oom_kills", "OOM kills", "count", .lower, .time, num(slowCounters["oom_kill"]) ?? 0)
        put("stalls/count", "stalls", "count", .lower, .time, num(stalls["count"]) ?? 0)
        put("stalls/total_ms", "stall time", "ms", .lower, .time, num(stalls["totalMs"]) ?? 0)
        put("counters/pcp_hit_rate", "pcp hit rate", "%", .higher, .time, num(counters["pcpHitRate"]).map { $0 * 100 })
        let calls = max(1, num(tp["calls"]) ?? 1)
        for k in chosenVmstat {
            let v = k == "allocstall" ? num(slowCounters[k]) : num(vm[k])
            put("vmstat/\(k)", "\(k) per 1k calls", "/1k calls", .lower, .time, (v ?? 0) * 1000 / calls)
        }
        return rep
    }

    static func benchRep(_ o: [String: Any], path: String) -> Rep {
        let machine = o["machine"] as? [String: Any]
        var rep = Rep(path: path, schema: benchSchema, workload: "bench", workloadFile: nil, machine: machineName(machine),
                      revision: machine?["gitRevision"] as? String ?? "unknown", deterministic: false, untrustworthy: false,
                      noiseReason: nil, values: [:], info: [:])
        for r in o["rows"] as? [[String: Any]] ?? [] {
            guard let name = r["name"] as? String, let m = num(r["median"]) else { continue }
            let unit = r["unit"] as? String ?? "ns"
            rep.values["bench/\(name)"] = m
            rep.info["bench/\(name)"] = MetricInfo(id: "bench/\(name)", label: name, unit: unit, better: .lower, kind: .time)
            if let ratio = num(r["ratioToCalibration"]), !name.hasPrefix("calibration") {
                rep.values["bench-ratio/\(name)"] = ratio
                rep.info["bench-ratio/\(name)"] = MetricInfo(id: "bench-ratio/\(name)", label: name + " / calibration", unit: "ratio", better: .lower, kind: .time)
            }
        }
        return rep
    }

    static func instructionsRep(_ o: [String: Any], path: String) -> Rep {
        let machine = o["machine"] as? [String: Any]
        var rep = Rep(path: path, schema: instructionsSchema, workload: "instructions", workloadFile: nil, machine: machineName(machine),
                      revision: machine?["gitRevision"] as? String ?? "unknown", deterministic: true, untrustworthy: false,
                      noiseReason: nil, values: [:], info: [:])
        // perf's counts (rseq path, real CPU lookup) are another metric than callgrind's (trylock, sched_getcpu).
        let prefix = (o["tool"] as? String ?? "").hasPrefix("perf") ? "instructions-perf" : "instructions"
        for r in o["rows"] as? [[String: Any]] ?? [] {
            guard let key = r["key"] as? String, let v = num(r["instructionsPerOp"]) else { continue }
            rep.values["\(prefix)/\(key)"] = v
            rep.info["\(prefix)/\(key)"] = MetricInfo(id: "\(prefix)/\(key)", label: "\(key) instructions" + (prefix == "instructions" ? "" : " (perf)"), unit: "instr/\(r["unit"] as? String ?? "op")", better: .lower, kind: .instructions)
        }
        return rep
    }
}
