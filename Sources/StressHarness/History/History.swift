import Foundation

/// Errors of `record` and `history`: bad input (exit 2) or the tool failed (exit 3).
public struct HistoryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// Bad input (exit 2) rather than a failure of the tool (exit 3).
    public var badInput: Bool
    public init(_ m: String, badInput: Bool = true) { message = m; self.badInput = badInput }
    public var description: String { message }
}

/// The results history: a SQLite database (default results/history.sqlite) of
/// runs, each keyed by the binary's revision, its start time, the machine and
/// the workload (and sweep point), with every metric `compare` reads from it.
/// The JSON results files stay the source of truth: `rebuild` makes the
/// database again from them. Recording a file twice (same bytes) is a no-op.
public final class History {
    public static let schema = "pagestorm.history/1"
    public static let defaultPath = "results/history.sqlite"
    let db: SQLiteDB
    public let path: String

    /// Opens (with `create`, creates) the database at `path`.
    public init(path: String, create: Bool) throws(HistoryError) {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard create else {
                throw HistoryError("\(path): no history database (record results first: pagestorm record RESULTS... --db \(path))")
            }
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw HistoryError("\(path): cannot create the directory \(dir): \(error.localizedDescription)", badInput: false)
            }
        }
        do { db = try SQLiteDB(path: path, create: create) } catch { throw HistoryError("\(error)", badInput: !create) }
        do {
            // A file that is not SQLite fails on the first read.
            let tables = try db.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0.first?.string }
            if tables.isEmpty {
                guard create else { throw HistoryError("\(path): an empty database, not a pagestorm history (record results first)") }
                try db.exec("""
                    BEGIN;
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    INSERT INTO meta VALUES ('schema', '\(Self.schema)');
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY,
                        file TEXT NOT NULL,
                        content_hash TEXT NOT NULL UNIQUE,
                        schema TEXT NOT NULL,
                        revision TEXT NOT NULL,
                        started_at TEXT NOT NULL,
                        machine TEXT NOT NULL,
                        workload TEXT NOT NULL,
                        point TEXT NOT NULL,
                        deterministic INTEGER NOT NULL,
                        untrustworthy INTEGER NOT NULL,
                        recorded_at TEXT NOT NULL);
                    CREATE INDEX runs_key ON runs (workload, point, machine, started_at, revision);
                    CREATE TABLE metrics (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        metric TEXT NOT NULL,
                        value REAL NOT NULL,
                        unit TEXT NOT NULL,
                        better TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        PRIMARY KEY (run_id, metric));
                    CREATE INDEX metrics_metric ON metrics (metric);
                    COMMIT;
                    """)
            } else {
                let s = try db.query("SELECT value FROM meta WHERE key = 'schema'").first?.first?.string
                guard let s else { throw HistoryError("\(path): not a pagestorm history database (no schema in table meta)") }
                guard s == Self.schema else {
                    throw HistoryError("\(path): history schema \(s), this pagestorm reads \(Self.schema); rebuild it from the JSON results: pagestorm record --rebuild DIR --db \(path)")
                }
            }
            try db.exec("PRAGMA foreign_keys = ON")
        } catch let e as HistoryError {
            throw e
        } catch {
            throw HistoryError("\(path): not a pagestorm history database (\(error))")
        }
    }

    public struct RecordSummary: Sendable {
        public var added = 0
        public var alreadyThere = 0
        public var files: [String] = []
    }

    /// Records results files. Each argument is a results file (pagestorm.run/1, pagestorm.bench/1,
    /// pagestorm.instructions/1), comma-separated files, or a directory searched recursively (other
    /// pagestorm files, sweep temporaries and failure records skipped). All or nothing: one bad file
    /// records none.
    public func record(_ specs: [String]) throws(HistoryError) -> RecordSummary {
        var files: [(path: String, explicit: Bool)] = []
        let fm = FileManager.default
        for spec in specs {
            for part in spec.split(separator: ",").map(String.init) {
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: part, isDirectory: &isDir) else { throw HistoryError("\(part): no such file or directory") }
                if isDir.boolValue {
                    let found = Self.resultsFiles(under: part)
                    files += found.map { ($0, false) }
                } else {
                    files.append((part, true))
                }
            }
        }
        var reps: [(Rep, String, String)] = []  // rep, point, hash
        for f in files {
            let rep: Rep?
            do { rep = f.explicit ? try ResultSet.loadFile(f.path, explicit: true) : try ResultSet.loadFileIfResults(f.path) } catch {
                throw HistoryError("\(error)")
            }
            guard let rep else { continue }
            guard let data = fm.contents(atPath: f.path) else { throw HistoryError("\(f.path): cannot read the file") }
            reps.append((rep, Self.pointOf(f.path), Self.hash(data)))
        }
        if reps.isEmpty { throw HistoryError("\(specs.joined(separator: " ")): no results files to record") }
        var s = RecordSummary()
        let now = ISO8601DateFormatter().string(from: Date())
        do {
            try db.exec("BEGIN IMMEDIATE")
            for (rep, point, hash) in reps {
                try db.query("""
                    INSERT OR IGNORE INTO runs (file, content_hash, schema, revision, started_at, machine, workload, point, deterministic, untrustworthy, recorded_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(rep.path), .text(hash), .text(rep.schema), .text(rep.revision), .text(rep.startedAt ?? ""), .text(rep.machine),
                          .text(rep.workload), .text(point), .int(rep.deterministic ? 1 : 0), .int(rep.untrustworthy ? 1 : 0), .text(now)])
                if db.changes == 0 { s.alreadyThere += 1; continue }
                let id = db.lastInsertRowID
                for (metric, value) in rep.values.sorted(by: { $0.key < $1.key }) {
                    guard let info = rep.info[metric] else { continue }
                    try db.query("INSERT INTO metrics (run_id, metric, value, unit, better, kind) VALUES (?, ?, ?, ?, ?, ?)",
                                 [.int(id), .text(metric), .double(value), .text(info.unit), .text(info.better.rawValue), .text(info.kind.rawValue)])
                }
                s.added += 1
                s.files.append(rep.path)
            }
            try db.exec("COMMIT")
        } catch {
            try? db.exec("ROLLBACK")
            throw HistoryError("\(path): recording failed: \(error)", badInput: false)
        }
        return s
    }

    /// Empties the database and records every results file under `dir` again.
    public func rebuild(from dir: String) throws(HistoryError) -> RecordSummary {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw HistoryError("\(dir): no such directory (rebuild takes the directory that holds the JSON results)")
        }
        do { try db.exec("BEGIN IMMEDIATE; DELETE FROM metrics; DELETE FROM runs; COMMIT;") } catch {
            try? db.exec("ROLLBACK")
            throw HistoryError("\(path): cannot empty the database: \(error)", badInput: false)
        }
        return try record([dir])
    }

    /// Every results file under `dir`, recursively, sorted (hidden entries, sweep temporaries,
    /// failure records and non-JSON files skipped).
    static func resultsFiles(under dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.hasPrefix(".") { e.skipDescendants(); continue }
            if ResultSet.isRepFile(name) { out.append(dir + "/" + rel) }
        }
        return out.sorted()
    }

    /// The sweep point of a file: `<point>` when the file is `<sweep>/<point>/rep-<n>.json` and
    /// `<sweep>` holds a sweep manifest (sweep.json); "" otherwise. The same rule for record and rebuild.
    public static func pointOf(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        guard name.hasPrefix("rep-"), name.hasSuffix(".json"), Int(name.dropFirst(4).dropLast(5)) != nil else { return "" }
        let pointDir = url.deletingLastPathComponent()
        let sweepDir = pointDir.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: sweepDir.appendingPathComponent(SweepManifest.fileName).path) else { return "" }
        return pointDir.lastPathComponent
    }

    /// FNV-1a 64 of the file's bytes: the same file recorded twice is recorded once.
    static func hash(_ data: Data) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx-%d", h, data.count)
    }

    // MARK: Reading

    /// One run's value of a metric.
    public struct Sample: Codable, Sendable {
        public var revision: String
        public var startedAt: String
        public var value: Double
        public var untrustworthy: Bool
    }

    /// The runs of one workload (and point) on one machine.
    public struct SeriesKey: Codable, Sendable, Hashable {
        public var workload: String
        public var point: String
        public var machine: String
        public var label: String { workload + (point.isEmpty ? "" : " [\(point)]") + " on " + machine }
    }

    public struct MetricRow: Sendable {
        public var unit: String
        public var better: Better
        public var kind: MetricKind
    }

    /// Metric ids in the database (for an unknown METRIC's message).
    public func metricIDs() throws(HistoryError) -> [String] {
        do { return try db.query("SELECT DISTINCT metric FROM metrics ORDER BY metric").compactMap { $0.first?.string } } catch {
            throw HistoryError("\(error)", badInput: false)
        }
    }

    public func runCount() throws(HistoryError) -> Int {
        do { return Int(try db.query("SELECT count(*) FROM runs").first?.first?.int ?? 0) } catch { throw HistoryError("\(error)", badInput: false) }
    }

    /// The samples of `metric`, grouped by series, in order of start time (then revision, then id).
    public func samples(metric: String, workload: String?, point: String?, machine: String?) throws(HistoryError) -> (info: MetricRow?, series: [(SeriesKey, [Sample])]) {
        var sql = """
            SELECT r.workload, r.point, r.machine, r.revision, r.started_at, r.untrustworthy, m.value, m.unit, m.better, m.kind
            FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.metric = ?
            """
        var params: [SQLiteDB.Value] = [.text(metric)]
        if let workload { sql += " AND r.workload = ?"; params.append(.text(workload)) }
        if let point { sql += " AND r.point = ?"; params.append(.text(point)) }
        if let machine { sql += " AND r.machine LIKE ?"; params.append(.text("%" + machine + "%")) }
        sql += " ORDER BY r.workload, r.point, r.machine, r.started_at, r.id"
        let rows: [[SQLiteDB.Value]]
        do { rows = try db.query(sql, params) } catch { throw HistoryError("\(error)", badInput: false) }
        var order: [SeriesKey] = []
        var by: [SeriesKey: [Sample]] = [:]
        var info: MetricRow?
        for r in rows {
            let key = SeriesKey(workload: r[0].string ?? "", point: r[1].string ?? "", machine: r[2].string ?? "")
            if by[key] == nil { order.append(key); by[key] = [] }
            by[key]!.append(Sample(revision: r[3].string ?? "", startedAt: r[4].string ?? "", value: r[6].double ?? .nan, untrustworthy: (r[5].int ?? 0) != 0))
            if info == nil {
                info = MetricRow(unit: r[7].string ?? "", better: Better(rawValue: r[8].string ?? "") ?? .lower, kind: MetricKind(rawValue: r[9].string ?? "") ?? .time)
            }
        }
        return (info, order.map { ($0, by[$0]!) })
    }
}

/// The analysis `pagestorm history` prints: one value per revision, the change points.
public struct HistoryAnalysis: Codable, Sendable {
    public struct Point: Codable, Sendable {
        public var revision: String
        /// The first run's start time at this revision.
        public var startedAt: String
        public var runs: Int
        /// The median over the revision's runs.
        public var value: Double
    }

    public struct Change: Codable, Sendable {
        /// Index in `points` of the first revision after the change.
        public var index: Int
        public var revision: String
        public var previousRevision: String
        /// Medians of the segments before and after (up to the neighbouring change points).
        public var before: Double
        public var after: Double
        public var shiftPercent: Double
        /// "regression", "improvement" or "change" (exact counters).
        public var direction: String
        public var q: Double
        public var p: Double
    }

    public var series: History.SeriesKey
    public var metric: String
    public var unit: String
    public var points: [Point]
    public var changes: [Change]
    /// Runs left out because they were flagged untrustworthy (timing metrics only).
    public var flaggedLeftOut: Int
    /// How the runs were ordered: "time" (start time) or "commits" (the commit graph).
    public var order: String = "time"
    /// With order "commits": runs left out because their revision is not in the graph.
    public var notInCommitGraph: Int = 0

    /// Groups consecutive runs of the same revision (in time order) into one point (their median)
    /// and finds the change points of that series.
    public static func analyse(series: History.SeriesKey, metric: String, info: History.MetricRow, samples: [History.Sample],
                               trustFlagged: Bool, detector: EDivisive) -> HistoryAnalysis {
        let timing = info.kind == .rate || info.kind == .time
        let used = samples.filter { !(timing && !trustFlagged && $0.untrustworthy) && $0.value.isFinite }
        var points: [Point] = []
        var values: [[Double]] = []
        for s in used {
            if let last = points.last, last.revision == s.revision {
                values[values.count - 1].append(s.value)
                points[points.count - 1].runs += 1
            } else {
                points.append(Point(revision: s.revision, startedAt: s.startedAt, runs: 1, value: 0))
                values.append([s.value])
            }
        }
        for i in points.indices { points[i].value = median(values[i]) }
        let series01 = points.map(\.value)
        let cps = detector.changePoints(series01)
        var changes: [Change] = []
        let bounds = [0] + cps.map(\.index) + [points.count]
        for (k, cp) in cps.enumerated() {
            let before = median(Array(series01[bounds[k]..<bounds[k + 1]]))
            let after = median(Array(series01[bounds[k + 1]..<bounds[k + 2]]))
            let shift = before == 0 ? (after == 0 ? 0 : .infinity) : (after / before - 1) * 100
            let direction: String
            switch info.better {
            case .higher: direction = after < before ? "regression" : "improvement"
            case .lower: direction = after > before ? "regression" : "improvement"
            case .exact: direction = "change"
            }
            changes.append(Change(index: cp.index, revision: points[cp.index].revision, previousRevision: points[cp.index - 1].revision,
                                  before: before, after: after, shiftPercent: shift, direction: direction, q: cp.q, p: cp.p))
        }
        return HistoryAnalysis(series: series, metric: metric, unit: info.unit, points: points, changes: changes,
                               flaggedLeftOut: samples.count - used.count)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The text `pagestorm history` prints for one series.
    public func text() -> String {
        var out = "\(metric) (\(unit)) of \(series.label): \(points.count) revision(s)"
        if flaggedLeftOut > 0 { out += ", \(flaggedLeftOut) run(s) flagged untrustworthy left out (--trust-flagged keeps them)" }
        out += order == "commits" ? ", in commit order" : ", in start-time order"
        if notInCommitGraph > 0 { out += ", \(notInCommitGraph) run(s) of revisions not in the commit graph left out" }
        out += "\n"
        let cpAt = Set(changes.map(\.index))
        let revWidth = max(8, points.map { $0.revision.count }.max() ?? 8)
        func pad(_ t: String, _ w: Int) -> String { t.count >= w ? t : t + String(repeating: " ", count: w - t.count) }
        out += "  " + pad("#", 5) + pad("revision", revWidth + 2) + pad("first run", 22) + "runs  value\n"
        for (i, p) in points.enumerated() {
            let mark = cpAt.contains(i) ? "  <- change point" : ""
            out += "  " + pad(String(i), 5) + pad(p.revision, revWidth + 2) + pad(p.startedAt, 22) + pad(String(p.runs), 6) + Self.fmt(p.value) + mark + "\n"
        }
        if changes.isEmpty {
            out += "change points (E-divisive means): none\n"
        } else {
            out += "change points (E-divisive means):\n"
            for c in changes {
                out += String(format: "  at #%d, revision %@ (after %@): %@ -> %@ (%+.1f%%), %@, q=%.3g, p=%.3f\n", c.index, c.revision as NSString,
                              c.previousRevision as NSString, Self.fmt(c.before) as NSString, Self.fmt(c.after) as NSString,
                              c.shiftPercent, c.direction as NSString, c.q, c.p)
            }
        }
        return out
    }

    static func fmt(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return abs(v) >= 1000 ? String(format: "%.0f", v) : String(format: "%.4g", v)
    }
}
