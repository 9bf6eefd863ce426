import Foundation

/// Deterministic mode (`pagestorm run --deterministic`): one worker, an
/// operation count, no warm-up, a fixed seed. With one thread making every
/// allocator call in an order fixed by the seed, the harness's counters and
/// the allocator's vmstat counters come out identical on every run of the
/// same build, so `pagestorm check` compares them exactly.
public enum Deterministic {
    public static let defaultOps = 200_000

    /// Reduces `w` to its deterministic form: the single group's workers set to
    /// 1, `ops` operations, no warm-up, latency sampling as written (timing
    /// does not change what the worker does). Errors name what stands in the way.
    public static func apply(_ w: Workload, ops: Int?) throws(OverrideError) -> Workload {
        var w = w
        guard w.groups.count == 1 else {
            throw OverrideError(message: "--deterministic: workload \(w.name) has \(w.groups.count) worker groups (\(w.groups.map(\.name).joined(separator: ", "))); deterministic mode runs one worker, so it needs a workload with one group")
        }
        if w.groups[0].loop != "closed" {
            throw OverrideError(message: "--deterministic: group \(w.groups[0].name) runs an open loop (paced by the clock); deterministic mode needs a closed loop")
        }
        w.groups[0].workers = 1
        // The per-CPU lists' high/batch depend on the CPUs of the node: a
        // workload that takes the machine's topology gets a declared one
        // (1 node of 2 CPUs), so the counters do not depend on the machine.
        if w.topology.kind == "machine" {
            guard w.topology.nodes == 1 else {
                throw OverrideError(message: "--deterministic: workload \(w.name) uses the machine's \(w.topology.nodes) NUMA nodes; declare its [topology] (deterministic counters need a fixed topology)")
            }
            w.topology = TopologySpec(kind: "declared", nodes: 1, cpusPerNode: [2], distances: [[10]])
            w.groups[0].cpus = w.groups[0].cpus.prefix(1).map { $0 % 2 }
        }
        w.run.mode = "ops"
        w.run.ops = ops ?? w.run.ops ?? defaultOps
        w.run.durationMs = nil
        w.run.warmupMs = 0
        return w
    }

    /// Whether a resolved workload is deterministic in this sense.
    public static func isDeterministic(_ w: Workload) -> Bool {
        w.workerCount == 1 && w.run.mode == "ops" && w.run.warmupMs == 0
    }
}
