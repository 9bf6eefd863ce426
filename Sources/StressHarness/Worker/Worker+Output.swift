import Histogram

import Topology
/// What a worker leaves behind for the main thread (copied out of raw memory).
/// Its own record (measuring window, time series, stop reason, task fate) is
/// the worker's `WorkerRecord`, held whole; `o.measuring` etc. read through it.
@dynamicMemberLookup
struct WorkerOutput: @unchecked Sendable {
    var index: Int
    var group: Int
    var pinnedTo: String
    var pinError: String?
    var allocatorCPU: Int?
    var counters: WorkerCounters
    /// Per local class: its global class id, histogram, calls and (x 4 levels) failures.
    var classes: [Int], histograms: [Histogram<UInt64>], classCalls: [Int], classFailures: [Int]
    var opDraws: [Int]
    var locks: [LockCounters]
    var record: WorkerRecord
    var freedAtCleanup: Int
    /// Including what clean-up found.
    var totalCorruptions: Int
    var totalFreeErrors: Int
    /// Open loop: how late the worker was when its loop ended, past the
    /// intended start of the operation it would have started next (0: on
    /// or ahead of schedule, or a closed loop).
    var endLagTicks: UInt64 = 0

    subscript<T>(dynamicMember field: KeyPath<WorkerRecord, T>) -> T { record[keyPath: field] }
}

extension Worker {
    /// Copies the measurements out. `before` is the counters at the end of the
    /// loop (clean-up may add corruptions and free errors after it).
    func output(plan: WorkerPlan, pinError: String?, measured: WorkerCounters, freedAtCleanup: Int) -> WorkerOutput {
        WorkerOutput(
            index: index, group: plan.group, pinnedTo: plan.pinLabel ?? plan.pin.description, pinError: pinError, allocatorCPU: plan.allocatorCPU,
            counters: measured, classes: plan.classes,
            histograms: (0..<mem.classCount).map { mem.hist[$0].histogram() },
            classCalls: (0..<mem.classCount).map { mem.classCalls[$0] },
            classFailures: (0..<(mem.classCount * ClassFailureIndex.levels)).map { mem.classFailures[$0] },
            opDraws: (0..<mem.opCount).map { mem.opDraws[$0] },
            locks: (0..<locks.count).map { mem.lockStats[$0] },
            record: record, freedAtCleanup: freedAtCleanup, totalCorruptions: c.corruptions, totalFreeErrors: c.freeErrors,
            endLagTicks: endLagTicks)
    }

    /// Open loop: loopEnd past the next intended start.
    var endLagTicks: UInt64 {
        guard timing.intervalTicks > 0, record.loopEnd > runStart else { return 0 }
        let next = runStart &+ UInt64(paceK * timing.intervalTicks)
        return record.loopEnd > next ? record.loopEnd - next : 0
    }
}
