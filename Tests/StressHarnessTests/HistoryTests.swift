import Foundation
import Testing
@testable import StressHarness

@Suite struct EDivisiveTests {
    /// Gaussian noise (Box-Muller over a seeded SplitMix64).
    static func noise(_ n: Int, mean: Double, sd: Double, seed: UInt64) -> [Double] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-12), u2 = Double(rng.next() >> 11) / Double(1 << 53)
            return mean + sd * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
    }

    @Test func findsAPlantedShiftAtItsIndex() {
        // 30 revisions at 100 +- 2, then 30 at 110 +- 2 (a 10% shift, 5 sigma).
        let z = Self.noise(30, mean: 100, sd: 2, seed: 1) + Self.noise(30, mean: 110, sd: 2, seed: 2)
        let cps = EDivisive().changePoints(z)
        #expect(cps.map(\.index) == [30])
        #expect(cps.first.map { $0.p <= 0.05 } == true)
    }

    @Test func findsTwoShifts() {
        let z = Self.noise(25, mean: 100, sd: 1, seed: 3) + Self.noise(25, mean: 90, sd: 1, seed: 4) + Self.noise(25, mean: 100, sd: 1, seed: 5)
        #expect(EDivisive().changePoints(z).map(\.index) == [25, 50])
    }

    @Test func findsNoneInAFlatNoisySeries() {
        // Several seeds of pure noise: no change point at p <= 0.05 in any (checked seeds, not luck at run time).
        for seed in UInt64(10)..<UInt64(15) {
            let z = Self.noise(60, mean: 100, sd: 5, seed: seed)
            #expect(EDivisive().changePoints(z).isEmpty, "seed \(seed)")
        }
    }

    @Test func theSameSeedGivesTheSameAnswer() {
        let z = Self.noise(20, mean: 100, sd: 3, seed: 7) + Self.noise(20, mean: 103, sd: 3, seed: 8)
        var d = EDivisive()
        d.seed = 99
        #expect(d.changePoints(z) == d.changePoints(z))
    }

    @Test func tooShortASeriesHasNoChangePoint() {
        #expect(EDivisive().changePoints([1, 2, 100, 100]).isEmpty)
        #expect(EDivisive().changePoints([]).isEmpty)
    }

    /// The running sums agree with the definition computed directly.
    @Test func runningSumsMatchTheDefinition() throws {
        let z = Self.noise(12, mean: 0, sd: 1, seed: 21) + Self.noise(9, mean: 2, sd: 1, seed: 22)
        func q(_ tau: Int) -> Double {
            let x = Array(z[..<tau]), y = Array(z[tau...])
            let m = Double(x.count), n = Double(y.count)
            var b = 0.0, wx = 0.0, wy = 0.0
            for a in x { for c in y { b += abs(a - c) } }
            for i in 0..<x.count { for j in (i + 1)..<x.count { wx += abs(x[i] - x[j]) } }
            for i in 0..<y.count { for j in (i + 1)..<y.count { wy += abs(y[i] - y[j]) } }
            return m * n / (m + n) * (2 * b / (m * n) - wx / (m * (m - 1) / 2) - wy / (n * (n - 1) / 2))
        }
        let best = try #require(EDivisive.bestSplit(z, 0, z.count, minSize: 3))
        let direct = (3...(z.count - 3)).max { q($0) < q($1) }!
        #expect(best.index == direct)
        #expect(abs(best.q - q(direct)) < 1e-9)
    }
}

@Suite struct HistoryTests {
    static func runFile(_ dir: String, _ name: String, revision: String, at minute: Int, calls: Double, workload: String = "w") -> String {
        var o = FakeResults.run(workload: workload, callsPerSecond: calls, p99: 100)
        var m = o["machine"] as! [String: Any]
        m["gitRevision"] = revision
        o["machine"] = m
        o["startedAt"] = String(format: "2026-11-30T10:%02d:00Z", minute)
        let path = "\(dir)/\(name)"
        FakeResults.write(o, path)
        return path
    }

    /// 12 revisions, two runs each; throughput drops 20% at revision r6.
    static func planted(_ dir: String) {
        for r in 0..<12 {
            for k in 0..<2 {
                let jitter = [0.0, 0.01, -0.008, 0.004, -0.012, 0.006][(r + k) % 6]
                _ = runFile(dir, "results/r\(r)-\(k).json", revision: "r\(r)", at: r * 2 + k, calls: (r < 6 ? 1_000_000 : 800_000) * (1 + jitter))
            }
        }
    }

    @Test func recordsAndFindsTheRevisionOfAShift() throws {
        let dir = FakeResults.dir()
        Self.planted(dir)
        let h = try History(path: "\(dir)/h.sqlite", create: true)
        let s = try h.record(["\(dir)/results"])
        #expect(s.added == 24)
        // Recording the same files again adds nothing.
        #expect(try h.record(["\(dir)/results/r0-0.json"]).alreadyThere == 1)
        #expect(try h.runCount() == 24)
        let (info, series) = try h.samples(metric: "throughput/calls_per_s", workload: nil, point: nil, machine: nil)
        #expect(series.count == 1 && series[0].1.count == 24)
        let a = HistoryAnalysis.analyse(series: series[0].0, metric: "throughput/calls_per_s", info: try #require(info), samples: series[0].1,
                                        trustFlagged: false, detector: EDivisive())
        #expect(a.points.count == 12 && a.points.allSatisfy { $0.runs == 2 })
        #expect(a.changes.count == 1)
        let c = try #require(a.changes.first)
        #expect(c.revision == "r6" && c.previousRevision == "r5" && c.direction == "regression")
        #expect(abs(c.shiftPercent + 20) < 1.5)
        #expect(a.text().contains("revision r6 (after r5)"))
    }

    @Test func rebuildGivesTheSameDatabaseBack() throws {
        let dir = FakeResults.dir()
        Self.planted(dir)
        // A sweep directory: its points are recorded with their ids.
        FakeResults.write(["schema": "pagestorm.sweep/1"], "\(dir)/results/sweep1/sweep.json")
        _ = Self.runFile(dir, "results/sweep1/p-a/rep-1.json", revision: "r11", at: 40, calls: 5)
        _ = Self.runFile(dir, "results/sweep1/p-b/rep-1.json", revision: "r11", at: 41, calls: 6)
        let h = try History(path: "\(dir)/h.sqlite", create: true)
        _ = try h.record(["\(dir)/results/r0-0.json,\(dir)/results/r0-1.json"])
        _ = try h.record(["\(dir)/results"])
        func dump() throws -> [String] {
            try h.db.query("""
                SELECT r.revision, r.started_at, r.workload, r.point, r.machine, m.metric, m.value FROM runs r JOIN metrics m ON m.run_id = r.id
                ORDER BY r.content_hash, m.metric
                """).map { $0.map { $0.string ?? "NULL" }.joined(separator: "|") }
        }
        let before = try dump()
        #expect(try h.runCount() == 26)
        let points = try h.db.query("SELECT DISTINCT point FROM runs ORDER BY point").compactMap { $0.first?.string }
        #expect(points == ["", "p-a", "p-b"])
        let s = try h.rebuild(from: "\(dir)/results")
        #expect(s.added == 26)
        #expect(try dump() == before)
        #expect(!before.isEmpty)
        // A second handle on the file reads the same.
        #expect(try History(path: "\(dir)/h.sqlite", create: false).runCount() == 26)
    }

    @Test func flaggedRunsStayOutOfTimingSeries() throws {
        let dir = FakeResults.dir()
        var o = FakeResults.run(callsPerSecond: 1, p99: 1, untrustworthy: true)
        o["startedAt"] = "2026-11-30T11:00:00Z"
        FakeResults.write(o, "\(dir)/flagged.json")
        _ = Self.runFile(dir, "ok.json", revision: "abc", at: 1, calls: 1000)
        let h = try History(path: "\(dir)/h.sqlite", create: true)
        _ = try h.record([dir])
        let (info, series) = try h.samples(metric: "throughput/calls_per_s", workload: "w", point: nil, machine: "host")
        let a = HistoryAnalysis.analyse(series: series[0].0, metric: "x", info: try #require(info), samples: series[0].1, trustFlagged: false, detector: EDivisive())
        #expect(a.flaggedLeftOut == 1 && a.points.map(\.value) == [1000])
        let b = HistoryAnalysis.analyse(series: series[0].0, metric: "x", info: try #require(info), samples: series[0].1, trustFlagged: true, detector: EDivisive())
        #expect(b.flaggedLeftOut == 0 && b.points.count == 1 && b.points[0].runs == 2)
    }

    @Test func badInputGetsOneClearError() throws {
        let dir = FakeResults.dir()
        func err(_ body: () throws -> Void) -> HistoryError? {
            do { try body(); return nil } catch { return error as? HistoryError ?? HistoryError("not a HistoryError: \(error)", badInput: false) }
        }
        // No database.
        let none = err { _ = try History(path: "\(dir)/missing.sqlite", create: false) }
        #expect(none?.badInput == true && none?.message.contains("no history database") == true)
        let h = try History(path: "\(dir)/h.sqlite", create: true)
        // A missing results file.
        let missing = err { _ = try h.record(["\(dir)/nope.json"]) }
        #expect(missing?.badInput == true && missing?.message.contains("nope.json: no such file") == true)
        // Another schema version: nothing is recorded.
        _ = Self.runFile(dir, "in/good.json", revision: "a", at: 1, calls: 1)
        FakeResults.write(FakeResults.run(callsPerSecond: 1, p99: 1, schema: "pagestorm.run/2"), "\(dir)/in/v2.json")
        let v2 = err { _ = try h.record(["\(dir)/in"]) }
        #expect(v2?.badInput == true && v2?.message.contains("schema pagestorm.run/2") == true)
        #expect(try h.runCount() == 0)
        // Not a pagestorm history: another SQLite file, and a text file.
        let other = try SQLiteDB(path: "\(dir)/other.sqlite", create: true)
        try other.exec("CREATE TABLE t (x)")
        let notOurs = err { _ = try History(path: "\(dir)/other.sqlite", create: false) }
        #expect(notOurs?.badInput == true && notOurs?.message.contains("not a pagestorm history") == true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: "\(dir)/text.sqlite"))
        let text = err { _ = try History(path: "\(dir)/text.sqlite", create: false) }
        #expect(text?.badInput == true && text?.message.contains("not a pagestorm history") == true)
        // A history of another schema version says how to rebuild it.
        try h.db.exec("UPDATE meta SET value = 'pagestorm.history/0' WHERE key = 'schema'")
        let old = err { _ = try History(path: "\(dir)/h.sqlite", create: false) }
        #expect(old?.message.contains("record --rebuild") == true)
        // Rebuild from a directory that is not there.
        try h.db.exec("UPDATE meta SET value = '\(History.schema)' WHERE key = 'schema'")
        let noDir = err { _ = try h.rebuild(from: "\(dir)/absent") }
        #expect(noDir?.badInput == true && noDir?.message.contains("no such directory") == true)
    }
}

/// `pagestorm history --order commits`: runs ordered by the commit graph, not by when they ran.
@Suite struct CommitOrderTests {
    /// A git repository with `n` empty commits; their ids, oldest first.
    static func repo(_ dir: String, commits n: Int) throws -> [String] {
        func git(_ args: [String]) throws -> String {
            try UserFacingTests.git(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"] + args, in: dir)
        }
        _ = try git(["init", "-q"])
        var ids: [String] = []
        for i in 0..<n {
            _ = try git(["commit", "-q", "--allow-empty", "-m", "c\(i)"])
            ids.append(try git(["rev-parse", "HEAD"]))
        }
        return ids
    }

    @Test func aRegressionIsNamedAtItsCommitWhateverOrderTheRunsRanIn() throws {
        let dir = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/repo", withIntermediateDirectories: true)
        let ids = try Self.repo(dir + "/repo", commits: 12)
        // Commits 6-11 are 20% slower. They were measured first (a bisection started from the
        // new end), commits 0-5 afterwards: by start time the series looks like an improvement.
        let ranAt = Array(6..<12) + Array(0..<6)
        for (minute, c) in ranAt.enumerated() {
            let jitter = [0.0, 0.01, -0.008, 0.004, -0.012, 0.006][c % 6]
            // Abbreviated ids as results record them (12 hex digits), one of them dirty.
            let rev = String(ids[c].prefix(12)) + (c == 3 ? "-dirty" : "")
            _ = HistoryTests.runFile(dir, "results/c\(c).json", revision: rev, at: minute, calls: (c < 6 ? 1_000_000 : 800_000) * (1 + jitter))
        }
        // One run of a revision this repository does not have.
        _ = HistoryTests.runFile(dir, "results/other.json", revision: "0123456789ab", at: 40, calls: 900_000)
        let h = try History(path: "\(dir)/h.sqlite", create: true)
        _ = try h.record(["\(dir)/results"])
        let (info, series) = try h.samples(metric: "throughput/calls_per_s", workload: nil, point: nil, machine: nil)
        let samples = try #require(series.first).1
        var d = EDivisive()
        d.minSize = 3
        let byTime = HistoryAnalysis.analyse(series: series[0].0, metric: "throughput/calls_per_s", info: try #require(info), samples: samples,
                                             trustFlagged: false, detector: d)
        #expect(byTime.changes.first?.direction != "regression", "by start time the drop is not where it happened")
        let graph = try CommitOrder.load(gitDir: dir + "/repo")
        #expect(graph.commits == ids)
        let (ordered, apart) = graph.order(samples)
        #expect(apart.map(\.revision) == ["0123456789ab"])
        #expect(ordered.map { String($0.revision.prefix(12)) } == ids.map { String($0.prefix(12)) })
        let a = HistoryAnalysis.analyse(series: series[0].0, metric: "throughput/calls_per_s", info: try #require(info), samples: ordered,
                                        trustFlagged: false, detector: d)
        let c = try #require(a.changes.first)
        #expect(a.changes.count == 1 && c.direction == "regression" && c.revision == String(ids[6].prefix(12)))

        // The command says the same, and how it ordered them.
        let (code, out, err) = try UserFacingTests.pagestorm(["history", "throughput/calls_per_s", "--db", "\(dir)/h.sqlite", "--order", "commits", "--git", dir + "/repo"], cwd: dir)
        #expect(code == 0, "\(err)")
        #expect(out.contains("in commit order") && out.contains("1 run(s) of revisions not in the commit graph left out"), "\(out)")
        #expect(out.contains("revision \(ids[6].prefix(12)) (after \(ids[5].prefix(12)))") && out.contains("regression"), "\(out)")
        // Not a git checkout: one clear error, exit 2.
        let (code2, _, err2) = try UserFacingTests.pagestorm(["history", "throughput/calls_per_s", "--db", "\(dir)/h.sqlite", "--order", "commits", "--git", dir + "/results"], cwd: dir)
        #expect(code2 == 2 && err2.contains("is not a git checkout with commits"), "\(err2)")
    }

    @Test func positionsOfAbbreviatedDirtyAndForeignRevisions() {
        let g = CommitOrder(commits: ["aaaaaaa1111", "bbbbbbb2222", "aaaaaaa3333"])
        #expect(g.position(of: "bbbbbbb2222")?.index == 1)
        #expect(g.position(of: "bbbbbbb")?.index == 1)
        #expect(g.position(of: "bbbbbbb-dirty")?.dirty == true)
        #expect(g.position(of: "aaaaaaa") == nil, "ambiguous prefix")
        #expect(g.position(of: "unknown") == nil && g.position(of: "abc") == nil)
    }
}

