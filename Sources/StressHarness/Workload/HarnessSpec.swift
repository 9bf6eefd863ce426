import PageAllocator

/// The `[harness]` table: what the harness does around the allocator (the
/// callers' side and the measurement), as opposed to `[policy]`, which is
/// the allocator's own. One row per knob in `HarnessSpec.table`.
public struct HarnessSpec: Codable, Sendable, Equatable {
    /// How operations whose flags carry __GFP_NOFAIL get their memory:
    /// "allocator" (the flag goes to the allocator, which loops) or
    /// "caller-loop" (the XFS way: the flag is dropped and the worker retries
    /// until the allocation succeeds).
    public var nofail: String = "allocator"
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

    public static let table: [(name: String, defaultValue: String, meaning: String)] = [
        ("nofail", "allocator", "allocator (__GFP_NOFAIL goes to the allocator, which never fails it) | caller-loop (the XFS way: drop __GFP_NOFAIL, retry in the worker until it succeeds)"),
        ("caller_loop_warn_every", "100", "caller loop: print 'possible memory allocation deadlock' after every N failed tries (XFS: 100)"),
        ("caller_loop_backoff_ms", "20", "caller loop: sleep between tries (XFS: congestion_wait(HZ/50)); 0 = retry at once"),
        ("stall_ms", "10000", "an allocation call longer than this is a stall (kernel 4.9 warned at 10 s)"),
        ("stall_warnings", "false", "print stalls in the kernel's form, 'page allocation stalls for Nms, order:N, mode:...', every stall_ms of a stall"),
        ("watchdog", "true", "run the livelock/deadlock watchdog"),
        ("livelock_ms", "3000", "livelock: no allocation succeeded for this long while a worker waited in the allocator or on a lock"),
        ("deadlock_ms", "500", "deadlock: a cycle of waits (allocator -> OOM victim -> lock holder) that lasts this long"),
        ("poll_ms", "10", "how often the watchdog and the stall tracker look at the tasks"),
        ("reservations", "true", "operations with reserve = N reserve their pages before the transaction (Chinner); false runs them without"),
        ("reserve_scale", "1", "multiplies every operation's reserve = N (rounded, at least 1): a reservation estimate too small (< 1) or too large (> 1)"),
        ("end_abort_ms", "1000", "at the end of the run, shut the allocator down (slow-path loops return .aborted) if a worker is still inside it this long after being told to stop"),
        ("stall_once_ms", "0", "test hook: worker 0 (in an open-loop group) stalls once for this long inside an operation, as if the allocator had blocked (0 = never); checks the coordinated-omission correction"),
        ("stall_once_at_ms", "0", "with stall_once_ms: the stall comes at the first operation intended at least this long after the end of the warm-up"),
    ]

    public static var keys: [String] { table.map(\.name) }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let key: String
        public let value: String
        public let expected: String
        public var description: String { "harness \(key) = \(value): expected \(expected)" }
    }

    public mutating func set(_ key: String, _ value: String) throws(ParseError) {
        func bool() throws(ParseError) -> Bool {
            switch value.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw ParseError(key: key, value: value, expected: "true or false")
            }
        }
        func int(_ r: ClosedRange<Int>) throws(ParseError) -> Int {
            guard let v = Int(value), r.contains(v) else { throw ParseError(key: key, value: value, expected: "an integer, \(r.lowerBound)...\(r.upperBound)") }
            return v
        }
        switch key {
        case "nofail":
            guard value == "allocator" || value == "caller-loop" else { throw ParseError(key: key, value: value, expected: "allocator or caller-loop") }
            nofail = value
        case "caller_loop_warn_every": callerLoopWarnEvery = try int(1...1_000_000_000)
        case "caller_loop_backoff_ms": callerLoopBackoffMs = try int(0...60_000)
        case "stall_ms": stallMs = try int(1...86_400_000)
        case "stall_warnings": stallWarnings = try bool()
        case "watchdog": watchdog = try bool()
        case "livelock_ms": livelockMs = try int(10...86_400_000)
        case "deadlock_ms": deadlockMs = try int(10...86_400_000)
        case "poll_ms": pollMs = try int(1...1000)
        case "reservations": reservations = try bool()
        case "reserve_scale":
            guard let v = Double(value), v > 0, v <= 100 else { throw ParseError(key: key, value: value, expected: "a number, more than 0 and at most 100") }
            reserveScale = v
        case "end_abort_ms": endAbortMs = try int(0...600_000)
        case "stall_once_ms": let v = try int(0...60_000); stallOnceMs = v == 0 ? nil : v
        case "stall_once_at_ms": let v = try int(0...86_400_000); stallOnceAtMs = v == 0 ? nil : v
        default: throw ParseError(key: key, value: value, expected: "a known harness key: " + HarnessSpec.keys.joined(separator: ", "))
        }
    }

    public var settings: [(String, String)] {
        [("nofail", nofail), ("caller_loop_warn_every", "\(callerLoopWarnEvery)"), ("caller_loop_backoff_ms", "\(callerLoopBackoffMs)"),
         ("stall_ms", "\(stallMs)"), ("stall_warnings", "\(stallWarnings)"), ("watchdog", "\(watchdog)"), ("livelock_ms", "\(livelockMs)"),
         ("deadlock_ms", "\(deadlockMs)"), ("poll_ms", "\(pollMs)"), ("reservations", "\(reservations)"), ("reserve_scale", "\(reserveScale)"), ("end_abort_ms", "\(endAbortMs)"),
         ("stall_once_ms", "\(stallOnceMs ?? 0)"), ("stall_once_at_ms", "\(stallOnceAtMs ?? 0)")]
    }

    public var callerLoop: Bool { nofail == "caller-loop" }
}
