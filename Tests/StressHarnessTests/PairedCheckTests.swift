import Foundation
import Testing
@testable import StressHarness

/// `check --paired` (and `ab`'s verdict): timings decided by the paired rule on
/// repetitions paired by file name, from synthetic results files. The runs
/// carry the machine's speed phases (rounds 2 and 5 about 60% faster on both
/// sides, as on the 2-core VM): the U test cannot see a 9% slowdown through
/// them; pairs can.
@Suite struct PairedCheckTests {
    /// Calls/s of round i (both sides share the round's phase).
    static let phase: [Double] = [7.5e6, 12.3e6, 7.6e6, 7.4e6, 12.5e6]

    static func sides(_ d: String, newFactor: Double, newJitter: [Double] = [0, 0, 0, 0, 0], aManifest: Bool = false) -> (String, String) {
        let a = FakeResults.reps(d, "a", 5) { FakeResults.run(callsPerSecond: phase[$0], p99: 170) }
        let b = FakeResults.reps(d, "b", 5) { FakeResults.run(callsPerSecond: phase[$0] * newFactor * (1 + newJitter[$0]), p99: 170) }
        if aManifest {
            let m = ABManifest(a: "/bin/a", b: "/bin/b", rounds: 5, order: ["ab", "ba", "ab", "ba", "ab"], pairs: (1...5).map { "rep-\($0)" }, command: ["run"])
            try! ResultsFile.write(m, to: "\(d)/ab.json")
        }
        return (a, b)
    }

    static var gatingThroughput: Thresholds {
        var th = Thresholds()
        th.rules.append(ThresholdRule(match: "throughput/*", relative: 5, absolute: nil, worse: nil, gate: true, origin: "test"))
        return th
    }

    static func check(_ a: String, _ b: String, paired: Bool, rule: PairedRule = PairedRule()) throws -> CheckReport {
        var o = CompareOptions()
        o.paired = paired
        o.pairedRule = rule
        return Checker.decide(Comparer.compare(base: try ResultSet.load(a), new: try ResultSet.load(b), baseName: "a", newName: "b", options: o), thresholds: gatingThroughput)
    }

    @Test func aNinePercentSlowdownThroughSpeedPhasesIsCaughtOnlyPaired() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let (a, b) = Self.sides(d, newFactor: 1 / 1.1, newJitter: [0.01, -0.01, 0.005, 0, -0.005])
        // Unpaired: the phases overlap the two sets, the U test says nothing.
        let unpaired = try Self.check(a, b, paired: false)
        #expect(unpaired.verdict == .unchanged, "\(unpaired.decisions.filter { $0.metric.hasPrefix("throughput") })")
        // Paired: regressed, the headline carries the paired median change.
        let paired = try Self.check(a, b, paired: true)
        #expect(paired.verdict == .regressed && paired.exitCode == 10)
        #expect(paired.headline?.hasPrefix("-9.") == true && paired.headline?.contains("regression of throughput (calls/s)") == true, "\(paired.headline ?? "nil")")
        let tp = try #require(paired.comparison?.points[0].metrics.first { $0.metric.id == "throughput/calls_per_s" })
        let pd = try #require(tp.paired)
        #expect(pd.pairs == 5 && pd.agreeing == 5 && abs(pd.median + 9.09) < 1.2)
        #expect(paired.decisions.contains { $0.metric == "throughput/calls_per_s" && $0.decision == "regressed" && $0.reason.contains("paired: median pair change") })
        // Rendered: the table says the paired rule decided.
        let text = CompareRender.text(try #require(paired.comparison))
        #expect(text.contains("paired rule on repetitions paired by file name") && text.contains("ALARM (decides)"))
        #expect(!text.contains("ALARM not counted"), "\(text)")
    }

    /// The same slowdown, but every B run flagged untrustworthy (as co-run runs are on wall time): the paired
    /// rule still alarms on the numbers, the table says the alarm is not counted, and the verdict is unchanged.
    @Test func aPairedAlarmOnFlaggedRunsIsShownAsNotCounted() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let a = FakeResults.reps(d, "a", 5) { FakeResults.run(callsPerSecond: Self.phase[$0], p99: 170) }
        let b = FakeResults.reps(d, "b", 5) { FakeResults.run(callsPerSecond: Self.phase[$0] / 1.1, p99: 170, untrustworthy: true) }
        let r = try Self.check(a, b, paired: true)
        #expect(r.verdict == .unchanged, "\(r.decisions.filter { $0.metric.hasPrefix("throughput") })")
        let text = CompareRender.text(try #require(r.comparison))
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("throughput (calls/s)") })
        #expect(line.contains("ALARM not counted (flagged)") && line.contains("FLAGGED"), "\(line)")
    }

    @Test func anAACheckThroughSpeedPhasesStaysUnchanged() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // Same build; one pair split by a phase change (B's run 3 fast).
        let (a, b) = Self.sides(d, newFactor: 1, newJitter: [0.02, -0.015, 0.6, -0.01, 0.01])
        let r = try Self.check(a, b, paired: true)
        #expect(r.verdict == .unchanged)
        let tp = try #require(r.comparison?.points[0].metrics.first { $0.metric.id == "throughput/calls_per_s" })
        #expect(tp.paired?.alarm == false && tp.significant == false)
    }

    @Test func theRuleItselfAgreementAndTheStrongLimit() throws {
        let rule = PairedRule()
        let base = [7.5, 7.6, 12.3, 7.4, 7.5]
        // -6%, three pairs that way and two split the other way: between the limits, not enough agreement.
        let mid = [7.5 * 0.94, 7.6 * 1.5, 12.3 * 0.94, 7.4 * 0.94, 7.5 * 1.4]
        #expect(rule.decide(base: base, new: mid)?.alarm == false)
        // -9.1% with the same two split pairs: beyond the strong limit, an alarm (session 4's rule said no).
        let strong = [7.5 / 1.1, 7.6 * 1.5, 12.3 / 1.1, 7.4 / 1.1, 7.5 * 1.4]
        #expect(rule.decide(base: base, new: strong)?.alarm == true)
        #expect(PairedRule(strongPercent: .infinity).decide(base: base, new: strong)?.alarm == false)
        // -6% in 4 of 5 pairs: an alarm.
        let four = [7.5 * 0.94, 7.6 * 0.94, 12.3 * 0.94, 7.4 * 0.94, 7.5 * 1.4]
        #expect(rule.decide(base: base, new: four)?.alarm == true)
        // Under 5%: never.
        #expect(rule.decide(base: base, new: base.map { $0 * 0.96 })?.alarm == false)
        // Limits from the thresholds file move it.
        #expect(PairedRule(limitPercent: 3, strongPercent: 3).decide(base: base, new: base.map { $0 * 0.96 })?.alarm == true)
        #expect(rule.decide(base: [1, 2], new: [1, 2]) == nil && rule.decide(base: [1, 0, 1], new: [1, 1, 1]) == nil)
    }

    @Test func pairingIsByFileNameAndSaysWhyItCannot() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let (a, b) = Self.sides(d, newFactor: 1)
        #expect(Comparer.pairingProblem(base: try ResultSet.load(a), new: try ResultSet.load(b)) == nil)
        // Another name on one side: no pairing, and the message names the unmatched files.
        try FileManager.default.moveItem(atPath: "\(b)/rep-5.json", toPath: "\(b)/run-5.json")
        let p = try #require(Comparer.pairingProblem(base: try ResultSet.load(a), new: try ResultSet.load(b)))
        #expect(p.contains("do not pair by file name") && p.contains("rep-5") && p.contains("run-5"), "\(p)")
        let two = FakeResults.reps(d, "two-a", 2) { _ in FakeResults.run(callsPerSecond: 1e6, p99: 170) }
        let twoB = FakeResults.reps(d, "two-b", 2) { _ in FakeResults.run(callsPerSecond: 1e6, p99: 170) }
        #expect(Comparer.pairingProblem(base: try ResultSet.load(two), new: try ResultSet.load(twoB)) == "2 pair(s): the paired rule needs at least 3")
    }

    @Test func anABRunsTwoSidesArePairedByThemselves() throws {
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let (a, b) = Self.sides(d, newFactor: 1 / 1.1, aManifest: true)
        #expect(ABManifest.covering(base: a, new: b)?.rounds == 5)
        #expect(PairingChoice.resolve(flag: nil, thresholds: nil, defaultPaired: false, base: a, new: b) == (true, .abManifest))
        // The flag and the thresholds file override it; without a manifest nothing pairs by itself.
        #expect(PairingChoice.resolve(flag: false, thresholds: true, defaultPaired: false, base: a, new: b) == (false, .flag))
        #expect(PairingChoice.resolve(flag: nil, thresholds: false, defaultPaired: true, base: a, new: b) == (false, .thresholds))
        #expect(ABManifest.covering(base: b, new: a) == nil)
        try FileManager.default.removeItem(atPath: "\(d)/ab.json")
        #expect(PairingChoice.resolve(flag: nil, thresholds: nil, defaultPaired: false, base: a, new: b) == (false, .none))
    }

    @Test func theThresholdsFileChoosesPairingAndLimits() throws {
        let t = try Thresholds.parse("paired = true\npaired_limit = 4\npaired_strong_limit = 7\n", file: "t.toml")
        #expect(t.paired == true && t.pairedRule == PairedRule(limitPercent: 4, strongPercent: 7))
        #expect(Thresholds().paired == nil && Thresholds().pairedRule == PairedRule())
        func message(_ text: String) -> String {
            do { _ = try Thresholds.parse(text, file: "t.toml"); return "" } catch { return error.description }
        }
        #expect(message("paired = 1") == "t.toml:1: paired: must be true or false, got a integer")
        #expect(message("\npaired_limit = -2") == "t.toml:2: paired_limit: must be a percentage >= 0, got -2.0")
        #expect(message("paired_limit = 6\npaired_strong_limit = 5") == "t.toml:2: paired_strong_limit: must be >= paired_limit (6.0), got 5.0")
    }

    /// The command line: check on an ab run's two sides pairs by itself (exit 10), --no-paired gives
    /// the U test's verdict (exit 0), --paired on sides that cannot pair is bad input (exit 2).
    @Test func checkOnTheCommandLine() throws {
        let bin = try UserFacingTests.binary()
        let d = FakeResults.dir()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let (a, b) = Self.sides(d, newFactor: 1 / 1.1, newJitter: [0.01, -0.01, 0.005, 0, -0.005], aManifest: true)
        try "[[rule]]\nmatch = \"throughput/*\"\nrelative = 5\ngate = true\n".write(toFile: "\(d)/t.toml", atomically: true, encoding: .utf8)
        let (c1, o1, e1) = try UserFacingTests.pagestorm(["check", "--baseline", a, b, "--thresholds", "\(d)/t.toml"], cwd: d)
        #expect(c1 == 10 && o1.contains("regression of throughput") && e1.contains("two sides of a pagestorm ab run"), "\(o1)\n\(e1)")
        let (c2, o2, _) = try UserFacingTests.pagestorm(["check", "--baseline", a, b, "--thresholds", "\(d)/t.toml", "--no-paired"], cwd: d)
        #expect(c2 == 0 && o2.contains("check: unchanged"), "\(o2)")
        try "paired = false\n[[rule]]\nmatch = \"throughput/*\"\nrelative = 5\ngate = true\n".write(toFile: "\(d)/u.toml", atomically: true, encoding: .utf8)
        let (c3, _, _) = try UserFacingTests.pagestorm(["check", "--baseline", a, b, "--thresholds", "\(d)/u.toml"], cwd: d)
        #expect(c3 == 0)
        let lone = FakeResults.reps(d, "lone", 2) { _ in FakeResults.run(callsPerSecond: 1e6, p99: 170) }
        let (c4, _, e4) = try UserFacingTests.pagestorm(["check", "--baseline", a, lone, "--paired"], cwd: d)
        #expect(c4 == 2 && e4.contains("cannot pair the repetitions (--paired)"), "\(e4)")
    }
}
