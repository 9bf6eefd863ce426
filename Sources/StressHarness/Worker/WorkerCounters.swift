/// Plain counters of one worker (merged on read, as mimalloc's stats.c).
struct WorkerCounters {
    var draws = 0
    /// Allocator calls: every allocation (failed ones too) and free.
    var calls: Int { allocs &+ failures &+ frees &+ remoteFrees }
    var allocs = 0
    var frees = 0
    var remoteFrees = 0
    var failures = 0
    var failuresByLevel = (0, 0, 0, 0)
    var corruptions = 0
    var freeErrors = 0
    var handoffSent = 0
    var handoffWaits = 0
    var handoffAbandoned = 0
    var consumeEmpty = 0
    var lockAbandoned = 0
    var latencyOverflows = 0
    var timedCalls = 0
    var maxLagTicks: UInt64 = 0
    // The slow path as the worker saw it.
    /// Times this worker's task was killed by the OOM killer and exited.
    var kills = 0
    /// New tasks started after a kill ([[group]] restart = true).
    var restarts = 0
    /// Restarts refused because the allocator's task table was full.
    var restartFailures = 0
    /// Allocations a restarted worker made to rebuild its prefill pools and initial page cache (not in `allocs`).
    var restartAllocs = 0
    /// Allocation calls that returned .killed (the caller was the OOM victim).
    var killedCalls = 0
    /// Allocation calls ended by the allocator's shutdown (watchdog, or the end of the run).
    var abortedCalls = 0
    /// Failures by cause: out of memory, injected (fail_page_alloc), memory-group limit, max_stall_ms, reservation refused.
    var failOOM = 0
    var failInjected = 0
    var failGroupLimit = 0
    var failTimedOut = 0
    var failReservation = 0
    /// Damage by level of need: 0 optimisations skipped, 1 errors returned
    /// safely, 2 pages of lost data, 3 subsystem failures (this worker's group stopped).
    var skipped = 0
    var safeErrors = 0
    var lostPages = 0
    var subsystemFailures = 0
    /// Caller-side NOFAIL loop: failed tries, "possible memory allocation
    /// deadlock" lines, the most tries one allocation needed, loops given up when the run ended.
    var callerRetries = 0
    var callerWarnings = 0
    var callerMaxTries = 0
    var callerAbandoned = 0
    /// Pages handed to the allocator's LRU: clean, dirty, anon.
    var lruClean = 0
    var lruDirty = 0
    var lruAnon = 0
    /// Transactions that reserved, and reservations refused (the transaction did not start).
    var reservedTransactions = 0
    /// Hand-offs to a consumer that was killed for good (freed by the producer).
    var handoffToGone = 0
    /// Blocks in this worker's inbound rings when its task exited during the
    /// run (an OOM kill, a group stop): freed by that exit.
    var handoffFreedAtExit = 0
}

/// Lock counters of one worker for one lock.
struct LockCounters {
    var acquisitions = 0
    var contended = 0
    var waitTicks: UInt64 = 0
    var maxWaitTicks: UInt64 = 0
    var abandoned = 0
}
