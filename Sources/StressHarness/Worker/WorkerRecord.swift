/// What a worker's loop records about its own run: the measuring window, its
/// thread's CPU time, the time series, how it stopped and what became of its
/// task. One struct, held by the worker while it runs (`Worker.record`) and
/// handed whole to the main thread in its `WorkerOutput`, so the fields are
/// written once. Plain values; the loop reads `measuring` and `loopEnd` as
/// fields of the worker, as before.
struct WorkerRecord {
    var measuring = false
    var measureStart: UInt64 = 0
    var loopEnd: UInt64 = 0
    /// getrusage(RUSAGE_THREAD) at the start of measuring and at the end of the loop (noise).
    var usageStart = ThreadUsage(), usageEnd = ThreadUsage()
    /// Per time bucket: calls, failures, successful allocations.
    var buckets: [UInt64] = [], failureBuckets: [UInt64] = [], allocBuckets: [UInt64] = []
    var stopReason = StopReason.duration
    var firstProblem: String? = nil
    /// Tasks this worker has been (1 + restarts over the whole run).
    var generation = 1
    /// Killed and not restarted, or its group stopped: no more operations.
    var dead = false
}
