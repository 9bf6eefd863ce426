/// Exit codes of `pagestorm`, one per outcome (package-benchmark's habit of
/// separating "the result is bad" from "the tool failed").
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// The run finished and its verdict is `ok`.
    case ok = 0
    /// The run finished with allocation failures as its verdict (`failures`).
    case failures = 1
    /// Bad input: a malformed or contradictory workload, trace or flag.
    case badInput = 2
    /// The tool failed: an invariant broke (validate()), I/O failed, a bug.
    case toolFailed = 3
    /// The watchdog saw no progress while workers waited: `livelock`.
    case livelock = 4
    /// The watchdog found a cycle of waits: `deadlock`.
    case deadlock = 5
    /// The run finished, but an open-loop worker did not keep its target
    /// rate (`overloaded`): the latencies measure queueing behind the schedule.
    case overloaded = 6
    /// Interrupted (Ctrl-C); partial results were written.
    case interrupted = 130
    /// Terminated by SIGTERM (a time limit); partial results were written.
    case terminated = 143
}
