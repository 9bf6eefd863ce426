/// Why a worker's loop, or a whole run, ended. The raw values are the
/// results' spelling (`status.stopReason`, `workers[].stopReason`).
public enum StopReason: String, Sendable, Codable, CaseIterable {
    /// A timed run reached its deadline.
    case duration
    /// An op-count run did its operations.
    case ops
    /// The run told the worker to stop (the end of the run, the watchdog, Ctrl-C).
    case stopped
    /// Worker: the OOM killer killed its task and it did not restart.
    case killed
    /// Worker: the allocator was shut down under it.
    case aborted
    /// Worker: a level-3 failure stopped its group.
    case groupStopped = "group-stopped"
    /// Run: Ctrl-C (or the test's interruptAfterMs).
    case interrupted
    /// Run: SIGTERM (the run ended like Ctrl-C; the exit status says 143).
    case terminated
    /// Run: an op-count run did not finish within timeout_ms.
    case timeout
    /// Run: workers did not get ready, stop or clean up in time.
    case stuck
    /// Run: the watchdog's verdicts.
    case livelock, deadlock

    /// The stop reason of a run the watchdog ended.
    init(_ v: Verdict) {
        switch v {
        case .livelock: self = .livelock
        case .deadlock: self = .deadlock
        // The watchdog fires only livelock and deadlock.
        case .ok, .failures, .overloaded: self = .stopped
        }
    }
}
