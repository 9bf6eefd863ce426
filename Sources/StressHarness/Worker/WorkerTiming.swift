/// Run-wide timing a worker needs, in cycle-counter ticks.
struct WorkerTiming {
    var opsMode: Bool
    var opsTarget: Int
    var warmupTicks: UInt64
    var durationTicks: UInt64
    var bucketTicks: UInt64
    var maxBuckets: Int
    /// Open loop: ticks between intended starts (0: closed loop).
    var intervalTicks: Double
    /// ns = ticks * mulQ32 >> 32.
    var mulQ32: UInt64
    var nsPerTick: Double
    /// Closed loop: time an operation when (random & mask) == 0.
    var sampleMask: UInt64
    var pageSize: Int
}

/// What a worker is doing, beyond its allocation calls (published for the watchdog's report).
enum WorkerPhase: Int, CaseIterable {
    case starting = 0, running, dying, restartDelay, rebuilding, lockWait, handoffWait, callerBackoff, finished, gone
    var text: String {
        ["starting (prefill)", "running operations", "dying (freeing what it holds)", "waiting to restart", "rebuilding its pools after a restart",
         "waiting for a lock", "waiting for a full hand-off queue", "in a caller loop's backoff", "finished its loop", "gone (killed for good or its group stopped)"][rawValue]
    }
}
