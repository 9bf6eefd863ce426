import Histogram

import Topology
/// What a worker leaves behind for the main thread (copied out of raw memory).
struct WorkerOutput: @unchecked Sendable {
    var index: Int
    var group: Int
    var pinnedTo: String
    var pinError: String?
    var allocatorCPU: Int?
    var counters: WorkerCounters
    /// Global class id of each local histogram.
    var classes: [Int]
    var histograms: [Histogram<UInt64>]
    var classCalls: [Int]
    /// classes.count x 4 levels.
    var classFailures: [Int]
    var opDraws: [Int]
    var locks: [LockCounters]
    var buckets: [UInt64]
    var failureBuckets: [UInt64]
    var allocBuckets: [UInt64]
    var measuring: Bool
    var measureStart: UInt64
    var loopEnd: UInt64
    var stopReason: StopReason
    var firstProblem: String?
    var freedAtCleanup: Int
    /// Including what clean-up found.
    var totalCorruptions: Int
    var totalFreeErrors: Int
    /// Tasks this worker has been (1 + restarts over the whole run).
    var generation: Int
    /// Killed for good (not restarted) or stopped with its group.
    var dead: Bool
    /// Open loop: how late the worker was when its loop ended, past the
    /// intended start of the operation it would have started next (0: on
    /// or ahead of schedule, or a closed loop).
    var endLagTicks: UInt64 = 0
    var usageStart = ThreadUsage()
    var usageEnd = ThreadUsage()
}

extension Worker {
    /// Copies the measurements out. `before` is the counters at the end of the
    /// loop (clean-up may add corruptions and free errors after it).
    func output(plan: WorkerPlan, pinError: String?, measured: WorkerCounters, freedAtCleanup: Int) -> WorkerOutput {
        WorkerOutput(
            index: index, group: plan.group, pinnedTo: plan.pinLabel ?? plan.pin.description, pinError: pinError, allocatorCPU: plan.allocatorCPU,
            counters: measured, classes: plan.classes,
            histograms: (0..<classCount).map { hist[$0].histogram() },
            classCalls: (0..<classCount).map { classCalls[$0] },
            classFailures: (0..<(classCount * ClassFailureIndex.levels)).map { classFailures[$0] },
            opDraws: (0..<opCount).map { opDraws[$0] },
            locks: (0..<locks.count).map { lockStats[$0] },
            buckets: buckets, failureBuckets: failureBuckets, allocBuckets: allocBuckets, measuring: measuring,
            measureStart: measureStart, loopEnd: loopEnd, stopReason: stopReason, firstProblem: firstProblem,
            freedAtCleanup: freedAtCleanup, totalCorruptions: c.corruptions, totalFreeErrors: c.freeErrors,
            generation: generation, dead: dead, endLagTicks: endLagTicks, usageStart: usageStart, usageEnd: usageEnd)
    }

    /// Open loop: loopEnd past the next intended start.
    var endLagTicks: UInt64 {
        guard timing.intervalTicks > 0, loopEnd > runStart else { return 0 }
        let next = runStart &+ UInt64(paceK * timing.intervalTicks)
        return loopEnd > next ? loopEnd - next : 0
    }
}
