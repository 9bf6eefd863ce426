import Foundation

/// Instructions per operation from the CPU's own counter (`perf stat -e
/// instructions:u`), where the machine has hardware counters
/// (`pagestorm bench --instructions --counter perf`). Unlike callgrind it runs
/// the binary at full speed with glibc's rseq registration, so the fast path
/// takes `pcp_lock = rseq` and the CPU lookup is one load; the counts are
/// therefore recorded under their own metric ids (`instructions-perf/<key>`)
/// and never compared with callgrind's (`instructions/<key>`). A counter
/// read of user-mode instructions is nearly, not exactly, repeatable
/// (interrupt returns, page faults): the low/high difference cancels start-up.
public enum PerfStat {
    /// The count in the first field of `perf stat -x,` output for `event`, or nil
    /// when perf printed `<not supported>` / `<not counted>` (no hardware counter).
    public static func parseCount(_ text: String, event: String = "instructions:u") -> Int? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 3, f[2].hasPrefix(event.split(separator: ":").first ?? "") else { continue }
            return Int(f[0].trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Whether `perf stat` can count user-mode instructions here; when not, why.
    public static func available() -> (ok: Bool, why: String) {
        guard let perf = Instructions.which("perf") else { return (false, "perf is not installed (Debian: linux-perf)") }
        let out = NSTemporaryDirectory() + "pagestorm-perf-probe-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard let r = try? Instructions.runTool(perf, ["stat", "-x,", "-e", "instructions:u", "-o", out, "--", "/bin/true"]), r.status == 0,
              let text = try? String(contentsOfFile: out, encoding: .utf8) else {
            return (false, "perf stat could not run here")
        }
        if parseCount(text) != nil { return (true, "") }
        let field = text.split(separator: "\n").first { $0.contains("instructions") }?.split(separator: ",").first.map(String.init) ?? "no count"
        return (false, "this machine has no hardware instruction counter (perf stat -e instructions:u says \(field); a VM often has none): use --counter callgrind")
    }

    /// Runs every key under `perf stat`, at `low` and `high` pairs (one after the other: counters are per process).
    public static func measure(executable: String, probeArgs: [String], keys: [String], low: Int, high: Int,
                               log: (String) -> Void) throws -> InstructionsReport {
        let (ok, why) = available()
        guard ok, let perf = Instructions.which("perf") else { throw InstructionsError(message: "--counter perf: \(why)") }
        let tmp = NSTemporaryDirectory() + "pagestorm-perf-\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var rows: [InstructionsRow] = []
        for key in keys {
            var totals: [Int] = []
            for n in [low, high] {
                let out = tmp + "/perf.\(key).\(n)"
                let r = try Instructions.runTool(perf, ["stat", "-x,", "-e", "instructions:u", "-o", out, "--", executable, "bench", "--probe", key, "--iterations", String(n)] + probeArgs)
                guard r.status == 0, let text = try? String(contentsOfFile: out, encoding: .utf8), let total = parseCount(text) else {
                    throw InstructionsError(message: "perf stat failed for \(key) at \(n) iterations (exit \(r.status)): \(r.stderr.split(separator: "\n").suffix(5).joined(separator: " | "))")
                }
                totals.append(total)
            }
            let per = Double(totals[1] - totals[0]) / Double(high - low)
            log("\(key): \(totals[0]) instructions at \(low) pairs, \(totals[1]) at \(high): \(String(format: "%.2f", per)) per pair (perf stat)")
            rows.append(InstructionsRow(key: key, name: Instructions.names[key] ?? key, unit: "pair", instructionsPerOp: per, iterationsLow: low,
                                        iterationsHigh: high, instructionsLow: totals[0], instructionsHigh: totals[1],
                                        cpuLookupPerOp: nil, withoutCPULookupPerOp: nil))
        }
        return InstructionsReport(startedAt: ISO8601DateFormatter().string(from: Date()), machine: .current(), tool: "perf stat -e instructions:u", rows: rows)
    }
}
