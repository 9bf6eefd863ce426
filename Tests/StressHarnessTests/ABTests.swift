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
    }

    @Test func badInputIsRefusedWithExit2() throws {
        let bin = try UserFacingTests.binary()
        for (args, says) in [
            (["ab", "--a", bin, "--b", bin, "--", "smoke"], "give the command after --"),
            (["ab", "--a", bin, "--b", "/nonexistent/pagestorm", "--", "run"], "--b: /nonexistent/pagestorm is not an executable file"),
            (["ab", "--a", bin, "--b", bin, "--rounds", "0", "--", "run"], "--rounds must be 1...100"),
            (["ab", "--a", bin, "--b", bin, "--", "run", "--output", "x.json"], "ab sets --output itself"),
        ] {
            let (code, _, err) = try UserFacingTests.pagestorm(args, cwd: repoRoot.path)
            #expect(code == 2, "\(args)")
            #expect(err.contains(says), "\(args): \(err)")
        }
    }
}
