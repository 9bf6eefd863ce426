import PageAllocator

/// The `[harness]` table: what the harness does around the allocator (the
/// callers' side and the measurement), as opposed to `[policy]`, which is
/// the allocator's own. One row per knob in `HarnessSpec.knobs`.
public struct HarnessSpec: Codable, Sendable, Equatable, KnobTable {
    /// How operations whose flags carry __GFP_NOFAIL get their memory.
    public enum Nofail: String, Codable, Sendable, CaseIterable {
        /// The flag goes to the allocator, which loops.
        case allocator
        /// The XFS way: the flag is dropped and the worker retries until the allocation succeeds.
        case callerLoop = "caller-loop"
    }
    public var nofail: Nofail = .allocator
    /// Caller loop: print "possible memory allocation deadlock" every N failed tries (XFS: 100).
    public var callerLoopWarnEvery: Int = 100
    /// Caller loop: sleep between tries (XFS: congestion_wait(HZ/50), 20 ms).
    public var callerLoopBackoffMs: Int = 20
    /// An allocation call longer than this is a stall (kernel 4.9: 10 s).
    public var stallMs: Int = 10_000
    /// Print stalls in the kernel's form, "page allocation stalls for Nms, order:N", once per stall_ms of a stall.
    public var stallWarnings: Bool = false
    /// Run the livelock/deadlock watchdog.
    public var watchdog: Bool = true
    /// Livelock: no allocation succeeded for this long while a worker waited in the allocator or on a lock.
    public var livelockMs: Int = 3000
    /// Deadlock: a cycle of waits that lasts this long.
    public var deadlockMs: Int = 500
    /// How often the watchdog and the stall tracker look.
    public var pollMs: Int = 10
    /// Operations that declare `reserve = N` reserve before their transaction
    /// (Chinner). false: the same workload without reservations.
    public var reservations: Bool = true
    /// Multiplies every operation's `reserve` (rounded, at least 1): an
    /// estimate that is too small (< 1) or too large (> 1), without editing the file.
    public var reserveScale: Double = 1
    /// When the run ends and a worker is still inside the allocator this long
    /// after being told to stop, the allocator is shut down (its slow-path
    /// loops return .aborted), so the run always ends.
    public var endAbortMs: Int = 1000
    /// Test hook: worker 0 (it must run an open loop) stalls once for this
    /// long inside one operation (nil: never), the first operation intended
    /// at least `stallOnceAtMs` after the end of the warm-up. It checks the
    /// coordinated-omission correction against a known answer. Optional so
    /// that results files written before them still decode (absent = 0).
    public var stallOnceMs: Int? = nil
    public var stallOnceAtMs: Int? = nil

    public init() {}

    /// Every knob, one row each: name, default, meaning, parser, where it is stored.
    public static let knobs: [Knob<HarnessSpec>] = [
        .choice("nofail", \.nofail, default: .allocator, "how operations whose flags carry `__GFP_NOFAIL` get their memory: allocator (the flag goes to the allocator, which loops) or caller-loop (the XFS way: the flag is dropped and the worker retries until the allocation succeeds)"),
        .int("caller_loop_warn_every", \.callerLoopWarnEvery, default: 100, 1...1_000_000_000, "caller loop: print `<task>(<id>): possible memory allocation deadlock size <bytes> in <op> (mode:0x...) after N tries` every N failed tries, and count them (XFS: 100)"),
        .int("caller_loop_backoff_ms", \.callerLoopBackoffMs, default: 20, 0...60_000, "caller loop: sleep between tries (XFS: `congestion_wait(HZ/50)`); 0 retries at once"),
        .int("stall_ms", \.stallMs, default: 10_000, 1...86_400_000, "an allocation call longer than this is a stall (kernel 4.9 warned at 10 s)"),
        .bool("stall_warnings", \.stallWarnings, default: false, "print stalls as kernels 4.9-4.14 did, `<task>: page allocation stalls for Nms, order:N, mode:0x...(GFP_...), nodemask=(null)`, once per `stall_ms` of a stall"),
        .bool("watchdog", \.watchdog, default: true, "run the livelock/deadlock watchdog"),
        .int("livelock_ms", \.livelockMs, default: 3000, 10...86_400_000, "livelock: no allocation succeeded for this long while a worker waited in the allocator or on a lock"),
        .int("deadlock_ms", \.deadlockMs, default: 500, 10...86_400_000, "deadlock: a cycle of waits (allocator -> OOM victim -> lock holder) that lasts this long"),
        .int("poll_ms", \.pollMs, default: 10, 1...1000, "how often the watchdog and the stall tracker look"),
        .bool("reservations", \.reservations, default: true, "operations with `reserve = N` reserve their pages before the transaction (Chinner); false runs the same workload without reservations"),
        Knob("reserve_scale", default: "1", expected: "a number, more than 0 and at most 100",
             "multiplies every operation's `reserve` (rounded, at least 1): an estimate too small (< 1) or too large (> 1), without editing the file",
             parse: { h, v in guard let x = Double(v), x > 0, x <= 100 else { return false }; h.reserveScale = x; return true },
             show: { "\($0.reserveScale)" }),
        .int("end_abort_ms", \.endAbortMs, default: 1000, 0...600_000, "at the end of the run, a worker still inside the allocator this long after being told to stop is ended by shutting the allocator down (its slow-path loop returns `.aborted`); the run says so"),
        Knob("stall_once_ms", default: "0", expected: "an integer, 0...60000",
             "test hook: worker 0 (in an open-loop group) stalls once for this long inside an operation, as if the allocator had blocked (0 = never); checks the coordinated-omission correction",
             parse: { h, v in guard let n = Int(v), (0...60_000).contains(n) else { return false }; h.stallOnceMs = n == 0 ? nil : n; return true },
             show: { "\($0.stallOnceMs ?? 0)" }),
        Knob("stall_once_at_ms", default: "0", expected: "an integer, 0...86400000",
             "with stall_once_ms: the stall comes at the first operation intended at least this long after the end of the warm-up",
             parse: { h, v in guard let n = Int(v), (0...86_400_000).contains(n) else { return false }; h.stallOnceAtMs = n == 0 ? nil : n; return true },
             show: { "\($0.stallOnceAtMs ?? 0)" }),
    ]

    /// A setting that does not parse (`set` comes from KnobTable): "harness KEY = VALUE: expected ...".
    public typealias ParseError = KnobParseError<HarnessSpec>
    public static let section = "harness"

    public var callerLoop: Bool { nofail == .callerLoop }
}
