import CNUMA
import Foundation
import PageAllocator
#if canImport(Glibc)
import Glibc
#endif

/// The main thread while the workers run: the barrier (every worker pinned
/// and prefilled, then go), then the monitor loop until every worker has
/// stopped: progress, Ctrl-C, the deadline or timeout, the watchdog, stalls,
/// the end-abort of workers left inside the allocator, and the stop grace.
/// Why the run ends is one `StopReason`; every wait is bounded.
struct Supervisor {
    let s: RunSetup
    /// Why the run ends: its natural end (`duration` or `ops`) until something stops it.
    var reason: StopReason
    /// When the workers were told to stop (nil: the run goes on to its natural end).
    var stopAskedAt: UInt64? = nil
    /// Ctrl-C (the exit status says so even when the watchdog's verdict replaces the reason).
    var interrupted = false
    /// Workers did not get ready, stop or clean up in time: no clean-up, no validate.
    var stuck = false
    /// The allocator was shut down because workers were still inside it after the end.
    var endAborted = false
    var problems: [String] = []
    var stalls: StallTracker
    /// The counters at the start of the measured window (the end of the warm-up).
    var startSnapshot: [ZoneCounters]? = nil
    /// /proc/stat and /proc/loadavg when the workers were released (noise).
    var machineStart = MachineSample()
    var slowWindowStart: [(name: String, value: Int)]? = nil
    var goNs: UInt64 = 0
    /// Free pages against the watermarks, once per bucket_ms.
    var freePages: FreePagesSampler

    private var watchdogParked = false
    private var lastPrint: UInt64 = 0
    private var lastCalls = 0
    private let warmupNs: UInt64
    private let runNs: UInt64
    private let grace: UInt64
    private let endAbortNs: UInt64
    private let tty: Bool

    init(_ s: RunSetup) {
        self.s = s
        let r = s.workload.run
        reason = s.opsMode ? .ops : .duration
        stalls = StallTracker(thresholdMs: s.harness.stallMs, warnings: s.harness.stallWarnings, workers: s.n)
        freePages = FreePagesSampler(intervalMs: r.bucketMs, allocator: s.allocator)
        warmupNs = UInt64(r.warmupMs) * 1_000_000
        runNs = warmupNs + UInt64(s.opsMode ? r.timeoutMs : (r.durationMs ?? 0)) * 1_000_000
        grace = UInt64(s.options.stopGraceMs) * 1_000_000
        endAbortNs = UInt64(s.harness.endAbortMs) * 1_000_000
        tty = s.options.progress && isatty(1) != 0
        if r.warmupMs == 0 { slowWindowStart = s.allocator.slowPathCounters() }
    }

    /// Asks every worker to stop, for `why`.
    mutating func stop(_ why: StopReason, at now: UInt64) {
        reason = why
        s.control.stop.store(true, ordering: .relaxed)
        stopAskedAt = now
    }

    /// Waits until every worker is pinned and prefilled (bounded; Ctrl-C and
    /// the watchdog end the wait), then lets them go.
    mutating func barrier() {
        let n = s.n
        let readyDeadline = cnuma_monotonic_ns() + 600_000_000_000
        var failed: StopReason? = nil
        while s.control.ready.load(ordering: .acquiring) < n {
            if s.options.handleInterrupts && Interrupt.requested { interrupted = true; failed = .interrupted; break }
            if cnuma_monotonic_ns() > readyDeadline {
                problems.append("workers did not get ready (prefill) within 600 s")
                stuck = true
                failed = .stuck
                break
            }
            usleep(1000)
        }
        if failed == nil, let fired = s.watchdog?.report { failed = StopReason(fired.verdict) }
        if failed == nil {
            if s.workload.run.warmupMs == 0 { startSnapshot = StressRun.snapshot(s.allocator) }
            machineStart = MachineSample.now()
            s.control.goTicks.store(cnuma_cycles(), ordering: .releasing)
        }
        goNs = cnuma_monotonic_ns()
        lastPrint = goNs
        // The first free-pages sample at the release, whenever the monitor loop first looks.
        if failed == nil { freePages.maybeSample(elapsedNs: 0, allocator: s.allocator) }
        if let why = failed { stop(why, at: goNs) }
    }

    /// The monitor loop: until every worker has stopped, or they would not within the grace.
    mutating func watch() {
        let n = s.n
        while s.control.stopped.load(ordering: .acquiring) < n {
            usleep(UInt32(min(5, s.harness.pollMs)) * 1000)
            let now = cnuma_monotonic_ns()
            let elapsed = now - goNs
            stalls.observe(now: now, control: s.control, allocator: s.allocator)
            freePages.maybeSample(elapsedNs: elapsed, allocator: s.allocator)
            // The watchdog judges the run, not its wind-down: once the deadline
            // has passed, workers stop one by one, and one still in the
            // allocator is left alone with nobody to free memory for it.
            // end_abort_ms ends it instead (and the run says so).
            if !s.opsMode && elapsed >= runNs && !watchdogParked { watchdogParked = true; s.watchdog?.stop() }
            if slowWindowStart == nil && elapsed >= warmupNs { slowWindowStart = s.allocator.slowPathCounters() }
            if let wr = s.watchdog?.report, stopAskedAt == nil || reason != StopReason(wr.verdict) {
                if stopAskedAt == nil { stopAskedAt = now }
                reason = StopReason(wr.verdict)
            }
            endAbortIfLate(elapsed: elapsed)
            if startSnapshot == nil && elapsed >= warmupNs && stopAskedAt == nil { startSnapshot = StressRun.snapshot(s.allocator) }
            if let asked = stopAskedAt {
                if now - asked > grace {
                    stuck = true
                    problems.append("\(n - s.control.stopped.load(ordering: .acquiring)) of \(n) workers did not stop within \(s.options.stopGraceMs) ms of being told to")
                    break
                }
            } else {
                checkEnd(now: now, elapsed: elapsed)
            }
            printProgress(now: now, elapsed: elapsed)
        }
        if tty { print("\r\u{1B}[K", terminator: ""); fflush(nil) }
    }

    /// A worker still inside the allocator well after the end: shut the
    /// allocator down so that its slow-path loop returns (.aborted).
    private mutating func endAbortIfLate(elapsed: UInt64) {
        let endNs = stopAskedAt.map { $0 - goNs } ?? (s.opsMode ? UInt64.max : runNs)
        if !endAborted && !s.allocator.isShutDown && endNs != .max && elapsed >= endNs + endAbortNs {
            endAborted = true
            s.allocator.shutdown()
            s.control.stop.store(true, ordering: .relaxed)
        }
    }

    /// Ctrl-C, an op-count run past timeout_ms, a timed run past its deadline and the grace.
    private mutating func checkEnd(now: UInt64, elapsed: UInt64) {
        let ctrlC = (s.options.handleInterrupts && Interrupt.requested) || (s.options.interruptAfterMs.map { elapsed >= UInt64($0) * 1_000_000 } ?? false)
        if ctrlC {
            interrupted = true
            stop(.interrupted, at: now)
        } else if s.opsMode && elapsed >= runNs {
            problems.append("the run did not finish its \(s.workload.run.ops ?? 0) operations per worker within timeout_ms = \(s.workload.run.timeoutMs)")
            stop(.timeout, at: now)
        } else if !s.opsMode && elapsed >= runNs + grace {
            problems.append("workers did not stop at the deadline")
            stop(.stuck, at: now)
        }
    }

    /// The live progress line (a terminal only), four times a second.
    private mutating func printProgress(now: UInt64, elapsed: UInt64) {
        guard tty && now - lastPrint >= 250_000_000 else { return }
        let calls = s.control.totalProgress()
        let rate = Double(calls - lastCalls) / (Double(now - lastPrint) / 1e9)
        let phase = elapsed < warmupNs ? " (warm-up)" : ""
        let total = s.opsMode ? "" : String(format: " / %.1f s", Double(runNs) / 1e9)
        print(String(format: "\r\u{1B}[K  %.1f s%@%@  %@ calls  %@ calls/s", Double(elapsed) / 1e9, total, phase,
                     human(Double(calls)), human(rate)), terminator: "")
        fflush(nil)
        lastPrint = now
        lastCalls = calls
    }
}
