import Foundation
import Testing
import StressHarness

/// `pagestorm ab` end to end: the tool runs two binaries alternately (ABBA),
/// then compares and checks them. Deterministic runs (one worker, an op
/// count, a seed) make the verdict exact: the same binary against itself is
/// unchanged, and a B whose operations differ is a behaviour change.
@Suite(.serialized) struct ABTests {
    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "pagestorm-ab-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A shell script that runs `bin` with `extra` appended (a "build" that behaves differently).
    static func wrapper(_ dir: String, _ body: String) throws -> String {
        let path = dir + "/b.sh"
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    static let runArgs = ["--", "run", "--deterministic", "--ops", "3000"]

    /// A thresholds file that lets flagged runs decide (refused with --co-run).
    static func trustFlaggedFile() -> String {
        let path = NSTemporaryDirectory() + "pagestorm-ab-trust-\(UUID().uuidString).toml"
        try? "trust_flagged = true\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theSameBinaryTwiceRunsInABBAOrderAndIsUnchanged() throws {
        let bin = try UserFacingTests.binary()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", bin, "--b", bin, "--rounds", "2", "--output-dir", dir + "/ab"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 0, "\(out)\n\(err)")
        // ABBA: round 1 runs A then B, round 2 B then A.
        let order = err.split(separator: "\n").filter { $0.hasPrefix("ab: round") }.map { String($0.split(separator: " ")[2...3].joined(separator: " ")) }
        #expect(order == ["1/2 A", "1/2 B", "2/2 B", "2/2 A"], "\(err)")
        for f in ["a/rep-1.json", "a/rep-2.json", "b/rep-1.json", "b/rep-2.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/ab/" + f), "\(f) missing")
        }
        #expect(out.contains("ab: unchanged"), "\(out)")
        // The pairing is recorded; the paired rule needs 3 rounds, so with 2 it says why timings are not paired.
        let m = try JSONDecoder().decode(ABManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ab/ab.json")))
        #expect(m.rounds == 2 && m.order == ["ab", "ba"] && m.pairs == ["rep-1", "rep-2"])
        #expect(out.contains("timings not paired: 2 pair(s): the paired rule needs at least 3; decided by the U test"), "\(out)")
    }

    /// Three rounds or more: ab decides timings by the paired rule, and check on its two sides pairs them by itself.
    @Test func threeRoundsArePairedAndCheckFindsThePairingAgain() throws {
        let bin = try UserFacingTests.binary()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", bin, "--b", bin, "--rounds", "3", "--output-dir", dir + "/ab"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 0, "\(out)\n\(err)")
        #expect(out.contains("timings decided by the paired rule on the 3 rounds"), "\(out)")
        #expect(out.contains("paired: median"), "\(out)")
        let (c2, o2, e2) = try UserFacingTests.pagestorm(["check", "--baseline", dir + "/ab/a", dir + "/ab/b", "--verbose"], cwd: repoRoot.path)
        #expect(c2 == 0 && e2.contains("two sides of a pagestorm ab run") && o2.contains("paired rule on repetitions paired by file name"), "\(o2)\n\(e2)")
        let (c3, o3, _) = try UserFacingTests.pagestorm(["ab", "--a", bin, "--b", bin, "--rounds", "3", "--no-paired", "--output-dir", dir + "/ab2"] + Self.runArgs,
                                                        cwd: repoRoot.path, timeoutS: 300)
        #expect(c3 == 0 && o3.contains("timings decided by the U test on two independent sets"), "\(o3)")
    }

    @Test func aBWhoseOperationsDifferIsABehaviourChangeExit10() throws {
        let bin = try UserFacingTests.binary()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Another seed: another sequence of operations, so other exact counters.
        let b = try Self.wrapper(dir, "exec '\(bin)' \"$@\" --seed 99")
        let (code, out, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", bin, "--b", b, "--rounds", "1", "--output-dir", dir + "/ab"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 10, "\(out)\n\(err)")
        #expect(out.contains("behaviour change of"), "\(out)")
        #expect(out.contains("ab: regressed"), "\(out)")
    }

    @Test func aFailingOrHungBuildStopsTheABWithExit3() throws {
        let bin = try UserFacingTests.binary()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let failing = try Self.wrapper(dir, "echo 'boom' >&2; exit 7")
        var (code, _, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", bin, "--b", failing, "--rounds", "1", "--output-dir", dir + "/f"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 3)
        #expect(err.contains("B (\(failing)) exited 7") && err.contains("boom"), "\(err)")
        // A B that never ends is killed at --timeout-s; ab does not wait for ever.
        let hung = dir + "/hung.sh"
        try "#!/bin/sh\nexec sleep 600\n".write(toFile: hung, atomically: true, encoding: .utf8)
        chmod(hung, 0o755)
        let t0 = Date()
        (code, _, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", hung, "--b", bin, "--rounds", "1", "--timeout-s", "2", "--output-dir", dir + "/h"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 120)
        #expect(code == 3)
        #expect(err.contains("did not finish within --timeout-s 2 s"), "\(err)")
        #expect(Date().timeIntervalSince(t0) < 60)
        // Co-run: a B that fails at once stops the round without waiting for A's whole run (30 s here); A is stopped.
        let t1 = Date()
        (code, _, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", bin, "--b", failing, "--rounds", "1", "--co-run", "--output-dir", dir + "/c", "--", "run", "--duration-ms", "30000", "--warmup-ms", "0"],
            cwd: repoRoot.path, timeoutS: 120)
        #expect(code == 3 && err.contains("B (\(failing)) exited 7"), "\(err)")
        #expect(Date().timeIntervalSince(t1) < 20, "waited \(Date().timeIntervalSince(t1)) s")
        #expect(!err.contains("A (\(bin)) exited"), "\(err)")
    }

    /// A "build" that runs `bin`, then marks its first `flagged` results files untrustworthy (the others
    /// trustworthy, steal 0, so that the machine's own flags cannot disturb the test); counts its runs in `dir/<name>.count`.
    static func flagging(_ dir: String, name: String, bin: String, flagged: Int) throws -> String {
        let path = dir + "/\(name).sh"
        let count = dir + "/\(name).count"
        try """
        #!/bin/sh
        '\(bin)' "$@" || exit $?
        out=""; prev=""
        for a in "$@"; do [ "$prev" = "--output" ] && out="$a"; prev="$a"; done
        n=$(cat '\(count)' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '\(count)'
        if [ $n -le \(flagged) ] && grep -q '"untrustworthy" : true' "$out"; then
          # flagged by the machine already (it has a reason): the test's reason instead
          sed -i -e 's/"reason" : "[^"]*"/"reason" : "test flag"/g' -e 's/"stealPercent" : [0-9.eE+-]*/"stealPercent" : 0/' "$out"
        elif [ $n -le \(flagged) ]; then
          sed -i -e 's/"untrustworthy" : false/"reason" : "test flag", "untrustworthy" : true/' -e 's/"stealPercent" : [0-9.eE+-]*/"stealPercent" : 0/' "$out"
        else
          sed -i -e 's/"untrustworthy" : true/"untrustworthy" : false/' -e 's/"stealPercent" : [0-9.eE+-]*/"stealPercent" : 0/' "$out"
        fi

        """.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    static func runs(_ dir: String, _ name: String) -> Int {
        Int(((try? String(contentsOfFile: dir + "/\(name).count", encoding: .utf8)) ?? "0").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// --co-run: each round's A and B run at the same time (a wrapper logs when each process starts and ends:
    /// every round's two intervals overlap), the manifest says so, and the deterministic counters still agree.
    @Test func coRunRunsEachRoundsTwoSidesAtTheSameTime() throws {
        let bin = try UserFacingTests.binary()
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = dir + "/times.log"
        func timed(_ name: String) throws -> String {
            let path = dir + "/\(name).sh"
            try "#!/bin/sh\necho \"\(name) start $(date +%s%N)\" >> '\(log)'\n'\(bin)' \"$@\"; rc=$?\necho \"\(name) end $(date +%s%N)\" >> '\(log)'\nexit $rc\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
            return path
        }
        let (code, out, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", try timed("a"), "--b", try timed("b"), "--rounds", "3", "--co-run", "--output-dir", dir + "/ab"] + Self.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 0 && out.contains("ab: unchanged") && out.contains("co-run: each round's A and B ran at the same time"), "\(out)\n\(err)")
        #expect(err.contains("ab: round 1/3 A+B together") && err.contains("ab: round 2/3 B+A together"), "\(err)")
        let m = try JSONDecoder().decode(ABManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ab/ab.json")))
        #expect(m.coRun == true && m.order == ["ab", "ba", "ab"])
        // Per side, the k-th start and end are round k's; each round's intervals overlap.
        var t: [String: [Int]] = [:]
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3, let ns = Int(f[2]) { t["\(f[0]) \(f[1])", default: []].append(ns) }
        }
        #expect(t["a start"]?.count == 3 && t["b end"]?.count == 3, "\(t)")
        for k in 0..<3 {
            guard let as_ = t["a start"]?[safe: k], let ae = t["a end"]?[safe: k], let bs = t["b start"]?[safe: k], let be = t["b end"]?[safe: k] else { continue }
            #expect(as_ < be && bs < ae, "round \(k + 1): A \(as_)...\(ae), B \(bs)...\(be) do not overlap")
        }
    }

    @Test func badInputIsRefusedWithExit2() throws {
        let bin = try UserFacingTests.binary()
        for (args, says) in [
            (["ab", "--a", bin, "--b", bin, "--", "smoke"], "give the command after --"),
            (["ab", "--a", bin, "--b", "/nonexistent/pagestorm", "--", "run"], "--b: /nonexistent/pagestorm is not an executable file"),
            (["ab", "--a", bin, "--b", bin, "--rounds", "0", "--", "run"], "--rounds must be 1...100"),
            (["ab", "--a", bin, "--b", bin, "--", "run", "--output", "x.json"], "ab sets --output itself"),
            (["ab", "--a", bin, "--b", bin, "--retry-flagged", "11", "--", "run"], "--retry-flagged must be 0...10"),
            (["ab", "--a", bin, "--b", bin, "--co-run", "--", "bench"], "--co-run compares operations per CPU-second, which only `run` results have"),
            (["ab", "--a", bin, "--b", bin, "--co-run", "--thresholds", Self.trustFlaggedFile(), "--", "run"], "--co-run with trust_flagged = true"),
        ] {
            let (code, _, err) = try UserFacingTests.pagestorm(args, cwd: repoRoot.path)
            #expect(code == 2, "\(args)")
            #expect(err.contains(says), "\(args): \(err)")
        }
    }
}

/// `pagestorm ab --retry-flagged` end to end (about 20 runs of the binary): its own suite, so that it runs beside
/// ABTests' serialized chain instead of after it (the longest chain sets `make test`'s wall time).
@Suite(.serialized) struct ABRetryTests {
    /// Retries of flagged rounds: a round whose B run is flagged (for a timing metric that gates) runs again,
    /// at most --retry-flagged times; the discarded attempts are kept aside, listed in ab.json and the output,
    /// and never read as repetitions; a round still flagged after them stays flagged.
    @Test func flaggedRoundsAreRetriedBoundedAndListed() throws {
        let bin = try UserFacingTests.binary()
        let dir = ABTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let th = dir + "/t.toml"
        try "[[rule]]\nmatch = \"throughput/*\"\nrelative = 1000\ngate = true\n".write(toFile: th, atomically: true, encoding: .utf8)
        let a = try ABTests.flagging(dir, name: "a", bin: bin, flagged: 0)
        // B's first two runs are flagged: round 1 runs three times (two retries), rounds 2 and 3 once.
        let b = try ABTests.flagging(dir, name: "b", bin: bin, flagged: 2)
        let (code, out, err) = try UserFacingTests.pagestorm(
            ["ab", "--a", a, "--b", b, "--rounds", "3", "--retry-flagged", "2", "--thresholds", th, "--output-dir", dir + "/ab"] + ABTests.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code == 0, "\(out)\n\(err)")
        #expect(ABTests.runs(dir, "a") == 5 && ABTests.runs(dir, "b") == 5)
        let m = try JSONDecoder().decode(ABManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ab/ab.json")))
        #expect(m.retryFlagged == 2 && m.retryOn == "any" && m.stillFlagged == [])
        #expect(m.discarded == [ABDiscardedAttempt(round: 1, attempt: 1, a: "a/rep-1.flagged-1.json", b: "b/rep-1.flagged-1.json", reason: "B: test flag"),
                                ABDiscardedAttempt(round: 1, attempt: 2, a: "a/rep-1.flagged-2.json", b: "b/rep-1.flagged-2.json", reason: "B: test flag")])
        for f in ["a/rep-1.flagged-1.json", "b/rep-1.flagged-2.json", "b/rep-1.flagged-2.stderr", "b/rep-3.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/ab/" + f), "\(f) missing")
        }
        #expect(err.contains("ab: round 1/3 flagged (B: test flag): attempt 1 kept aside"), "\(err)")
        #expect(out.contains("1 round(s) re-run, 2 attempt(s) discarded") && out.contains("none still flagged"), "\(out)")
        // The discarded attempts are not repetitions: 3 a side, none flagged, and check pairs them by itself.
        for side in ["a", "b"] {
            let reps = try ResultSet.load(dir + "/ab/" + side)[0].reps
            #expect(reps.count == 3 && !reps.contains { $0.untrustworthy }, "\(reps.map(\.path))")
        }
        let (c2, o2, e2) = try UserFacingTests.pagestorm(["check", "--baseline", dir + "/ab/a", dir + "/ab/b", "--thresholds", th], cwd: repoRoot.path)
        #expect(c2 == 0 && !o2.contains("untrustworthy:"), "\(o2)\n\(e2)")

        // Always flagged, one retry: every round runs twice and stays flagged (it does not decide).
        let always = try ABTests.flagging(dir, name: "b2", bin: bin, flagged: 1000)
        let (code2, out2, err2) = try UserFacingTests.pagestorm(
            ["ab", "--a", a, "--b", always, "--rounds", "2", "--retry-flagged", "1", "--thresholds", th, "--output-dir", dir + "/ab2"] + ABTests.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code2 == 0, "\(out2)\n\(err2)")
        #expect(ABTests.runs(dir, "b2") == 4)
        let m2 = try JSONDecoder().decode(ABManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ab2/ab.json")))
        #expect(m2.discarded?.map(\.round) == [1, 2] && m2.discarded?.map(\.attempt) == [1, 1] && m2.stillFlagged == [1, 2])
        #expect(out2.contains("still flagged, not deciding: round(s) 1, 2") && err2.contains("still flagged after 1 retry"), "\(out2)\n\(err2)")

        // No timing metric gates (no thresholds file: timings report): a flag decides nothing, nothing is retried.
        let (code3, out3, _) = try UserFacingTests.pagestorm(
            ["ab", "--a", a, "--b", always, "--rounds", "1", "--output-dir", dir + "/ab3"] + ABTests.runArgs, cwd: repoRoot.path, timeoutS: 300)
        #expect(code3 == 0 && ABTests.runs(dir, "b2") == 5 && out3.contains("flagged rounds not retried: no timing metric gates"), "\(out3)")
        let m3 = try JSONDecoder().decode(ABManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/ab3/ab.json")))
        #expect(m3.retryOn == "none" && m3.discarded == [] && m3.retryFlagged == 2)
        // --retry-flagged 0: never.
        let (code4, out4, _) = try UserFacingTests.pagestorm(
            ["ab", "--a", a, "--b", always, "--rounds", "1", "--retry-flagged", "0", "--thresholds", th, "--output-dir", dir + "/ab4"] + ABTests.runArgs,
            cwd: repoRoot.path, timeoutS: 300)
        #expect(code4 == 0 && ABTests.runs(dir, "b2") == 6 && out4.contains("flagged rounds not retried (--retry-flagged 0)"), "\(out4)")
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
