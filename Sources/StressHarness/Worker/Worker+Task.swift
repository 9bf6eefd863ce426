import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// The worker's task: registration, its RSS, its phase, death by the OOM killer, restart, exit.
extension Worker {

    /// Registers the worker's task (on its own thread, before the prefill).
    mutating func startTask() {
        let name = record.generation == 1 ? task.name : "\(task.name)#\(record.generation)"
        if let id = backend.registerTask(name: name, oomScoreAdj: task.oomScoreAdj, memoryGroup: task.memoryGroup) {
            owner = id
        } else {
            owner = 0
            if record.firstProblem == nil { record.firstProblem = "worker \(index): the allocator's task table is full; it runs without a task (no OOM kills, no memory group)" }
        }
        slot.task.pointee.store(Int(owner), ordering: .relaxed)
        publishedRSS = -1
    }

    /// Publishes the pages held (the task's RSS for the OOM killer's badness) when they changed.
    @inline(__always)
    mutating func publishRSS() {
        if heldPages != publishedRSS {
            publishedRSS = heldPages
            backend.setTaskRSS(owner, pages: heldPages)
        }
    }

    /// Publishes what the worker does outside allocation calls (for the watchdog's report).
    @inline(__always) func setPhase(_ p: WorkerPhase) { slot.phase.pointee.store(p.rawValue, ordering: .relaxed) }

    /// The OOM killer chose this task, and it is at a safe point: it frees
    /// everything it holds (pools, blocks others handed to it), exits, and,
    /// if its group says so, starts again as a new task with fresh pools.
    @inline(never)
    mutating func die() {
        setPhase(.dying)
        defer { setPhase(record.dead ? .gone : .running) }
        pendingDeath = false
        exitTask(reason: .killed)
        if task.restart && task.restartDelayMs > 0 {
            // The service manager's restart delay, bounded by the end of the run.
            setPhase(.restartDelay)
            let until = cnuma_monotonic_ns() &+ UInt64(task.restartDelayMs) * 1_000_000
            while cnuma_monotonic_ns() < until && !waitMustEnd() { usleep(1000) }
        }
        if task.restart && !waitMustEnd() && !aborted && !control.groupStopped(group) {
            record.generation &+= 1
            startTask()
            if owner != 0 {
                c.restarts &+= 1
                inRestartPrefill = true
                setPhase(.rebuilding)
                prefill()
                inRestartPrefill = false
                return
            }
            c.restartFailures &+= 1
        }
        goneForGood()
    }

    /// No more operations from this worker (killed and not restarted, or a
    /// level-3 failure stopped its group): consumers stop waiting for it and
    /// producers stop handing it blocks.
    mutating func goneForGood() {
        record.dead = true
        slot.gone.pointee.store(1, ordering: .relaxed)
        slot.producingDone.pointee.store(1, ordering: .releasing)
    }

    /// A level-3 failure stopped this worker's group (a file system gone
    /// read-only): the worker frees what it holds, its task exits, and it
    /// runs no more operations.
    mutating func stopGroupWorker() {
        record.stopReason = .groupStopped
        exitTask(reason: .groupStopped)
        goneForGood()
    }

    /// After its loop, until the main thread's counter snapshot: a task that
    /// is still alive stays at a safe point, so an OOM kill in the last
    /// moments of the run is answered (it frees everything and exits; no restart).
    mutating func waitForCleanup(deadlineNs: UInt64) {
        while !control.cleanupGo.load(ordering: .acquiring) && cnuma_monotonic_ns() < deadlineNs {
            if !record.dead && backend.taskShouldDie(owner) {
                exitTask(reason: .killed)
                goneForGood()
            }
            usleep(200)
        }
    }

    /// The one exit sequence of a task: it frees everything it holds (pools,
    /// blocks handed to it; checking patterns), its RSS drops to 0, it exits
    /// in the allocator (its anonymous LRU pages go with it) and the run
    /// control forgets its id. A kill counts in `kills`; blocks handed to the
    /// worker that an exit in the middle of the run frees count in
    /// `handoffFreedAtExit` (at the end of the run they are clean-up's).
    /// Returns the blocks freed.
    /// A worker gone for good exited already: at the end of the run it only frees.
    @discardableResult
    mutating func exitTask(reason: TaskExit) -> Int {
        if reason == .killed { c.kills &+= 1 }
        let (pools, inbound) = freeEverything()
        if reason != .runEnded { c.handoffFreedAtExit &+= inbound }
        let n = pools + inbound
        heldPages = 0
        if !(reason == .runEnded && record.dead) && owner != 0 {
            backend.setTaskRSS(owner, pages: 0)
            backend.setTaskActivity(owner, .running, target: 0)
            backend.taskExited(owner)
        }
        slot.task.pointee.store(0, ordering: .relaxed)
        return n
    }
}

/// Why a worker's task exits.
enum TaskExit {
    /// The OOM killer chose it (at a safe point in the loop, or while waiting for clean-up).
    case killed
    /// A level-3 failure stopped its group.
    case groupStopped
    /// The run ended: clean-up.
    case runEnded
}
