/// The slow-path policies argued over in 2015, one switchable setting each.
/// `SlowPathPolicy.knobs` has one row per knob (name, default, meaning,
/// parser, where it is stored: mimalloc's options.c); `set(_:_:)`,
/// `settings`, `table`, the docs and `--help` all come from the rows.
public struct SlowPathPolicy: Sendable, Equatable, Codable, KnobTable {
    public enum Retry: Sendable, Equatable, Codable, CustomStringConvertible {
        /// Linux 6.x should_reclaim_retry(): give up reclaim after 16 loops
        /// without progress, then OOM; small orders loop while the OOM killer
        /// reports progress.
        case kernel
        /// Pre-2015 should_alloc_retry(): order <= 3 retries forever.
        case legacy
        /// Hocko's knob: at most N OOM-involving retries for order <= 3, then fail.
        case retries(Int)
        public var description: String {
            switch self {
            case .kernel: return "kernel"
            case .legacy: return "legacy"
            case .retries(let n): return "retries=\(n)"
            }
        }
    }

    public enum OOMMode: String, Sendable, Equatable, Codable, CaseIterable {
        /// Kill and return; allocators poll (retry at once).
        case async
        /// Weiner: the killer and everyone after it sleep on a wait queue
        /// until the victim exits, bounded by `oomWaitTimeoutMs`.
        case sync
    }

    /// How a per-CPU list is owned for one operation (see docs/allocator.md, "pcp_lock").
    public enum PCPLock: String, Sendable, Equatable, Codable, CaseIterable {
        /// rseq where the machine allows it, else trylock (and the allocator says why).
        case auto
        /// Restartable sequences: the owning CPU takes its list with one plain
        /// store inside an rseq critical section; other CPUs take it with a
        /// compare-and-swap and a membarrier. Refused where unavailable.
        case rseq
        /// The kernel's way: a compare-and-swap trylock (contended: the buddy).
        case trylock
    }

    public var retry: Retry = .kernel
    public var oom: OOMMode = .async
    /// oom_reaper: a thread frees the victim's anonymous memory without
    /// waiting for it to exit, then marks it skipped (MMF_OOM_SKIP).
    public var reaper: Bool = false
    /// Delay before the reaper reaps (the kernel waits 2 s since 5.18).
    public var reaperDelayMs: Int = 100
    /// Pick another victim when the current one has not exited after this long (0 = never).
    public var victimTimeoutMs: Int = 0
    /// Sync OOM: longest wait on the victim's exit (Weiner used 1 s).
    public var oomWaitTimeoutMs: Int = 1000
    /// Take oom_lock with trylock (the kernel) rather than waiting for it.
    public var oomLockTrylock: Bool = true
    /// ALLOC_OOM: OOM victims may dip to 50% of MIN.
    public var oomVictimReserve: Bool = true
    /// Weiner's private OOM watermark: the allocation that issued a kill may
    /// go below MIN (to the ALLOC_OOM share) on its next attempt.
    public var oomKillerReserve: Bool = false
    /// __GFP_NOFAIL gets ALLOC_NO_WATERMARKS after an OOM attempt.
    public var nofailEmergencyReserve: Bool = true
    /// Longest time one allocation may spend in the slow path before the
    /// allocator gives up with `.timedOut` (0 = unbounded; the harness's
    /// watchdog still bounds the run).
    public var maxStallMs: Int = 0
    /// Longest time a reservation waits for reclaim to make room (0 = fail at once).
    public var reservationWaitMs: Int = 1000
    /// How the per-CPU lists are owned (fast-path synchronisation).
    public var pcpLock: PCPLock = .auto

    public init() {}

    /// Every knob, one row each: name, default, meaning, parser, where it is stored.
    public static let knobs: [Knob<SlowPathPolicy>] = [
        Knob("retry", default: "kernel", expected: "kernel, legacy or retries=N with N >= 0",
             "kernel: should_reclaim_retry (16 loops without progress, then OOM; small orders loop while the OOM killer reports progress); legacy: pre-2015 \"order <= 3 never fails\"; retries=N: Hocko's N OOM-involving retries for order <= 3, then fail",
             parse: { p, v in
                 if v == "kernel" { p.retry = .kernel } else if v == "legacy" { p.retry = .legacy } else if v.hasPrefix("retries="), let n = Int(v.dropFirst(8)), n >= 0 {
                     p.retry = .retries(n)
                 } else { return false }
                 return true
             }, show: { $0.retry.description }),
        .choice("oom", \.oom, default: .async, "async: kill, then poll; sync: sleep on a wait queue until the victim exits (Weiner), bounded by `oom_wait_timeout_ms`"),
        .bool("reaper", \.reaper, default: false, "the oom_reaper thread frees a victim's anonymous memory without waiting for it to exit, then marks it skipped"),
        .ms("reaper_delay_ms", \.reaperDelayMs, default: 100, "delay before the reaper reaps"),
        .ms("victim_timeout_ms", \.victimTimeoutMs, default: 0, "choose another victim when the current one has not exited after this long; 0 = never"),
        .ms("oom_wait_timeout_ms", \.oomWaitTimeoutMs, default: 1000, "sync OOM: the longest wait on a victim's exit"),
        Knob("oom_lock", default: "trylock", expected: "trylock or mutex",
             "trylock: the kernel trylocks oom_lock and sleeps a tick on contention; mutex: contenders wait for it",
             parse: { p, v in guard v == "trylock" || v == "mutex" else { return false }; p.oomLockTrylock = v == "trylock"; return true },
             show: { $0.oomLockTrylock ? "trylock" : "mutex" }),
        .bool("oom_victim_reserve", \.oomVictimReserve, default: true, "ALLOC_OOM: OOM victims may use half of MIN"),
        .bool("oom_killer_reserve", \.oomKillerReserve, default: false, "Weiner's private OOM watermark: the allocation that issued a kill may use the ALLOC_OOM share on its next try"),
        .bool("nofail_emergency_reserve", \.nofailEmergencyReserve, default: true, "`__GFP_NOFAIL` gets ALLOC_NO_WATERMARKS after an OOM attempt"),
        .ms("max_stall_ms", \.maxStallMs, default: 0, "give up one allocation after this long in the slow path (a failure, cause `timedOut`); 0 = unbounded"),
        .ms("reservation_wait_ms", \.reservationWaitMs, default: 1000, "how long a reservation (`reserve = N` on an operation) that does not fit waits for reclaim before it is refused; 0 = refuse at once"),
        .choice("pcp_lock", \.pcpLock, default: .auto, "auto: rseq where available, else trylock, and says why; rseq: restartable sequences, no atomic read-modify-write on the per-CPU fast path (refused where unavailable; with a declared `[topology]` the file is refused at this key, file:line, exit 2); trylock: the kernel's compare-and-swap trylock"),
    ]

    /// A setting that does not parse (`set` comes from KnobTable): "policy KEY = VALUE: expected ...".
    public typealias ParseError = KnobParseError<SlowPathPolicy>
    public static let section = "policy"
}

extension Knob {
    /// Milliseconds, 0...86400000 (a day).
    static func ms(_ name: String, _ kp: WritableKeyPath<Settings, Int>, default d: Int, _ meaning: String) -> Knob {
        .int(name, kp, default: d, 0...86_400_000, expected: "milliseconds, 0...86400000", meaning)
    }
}

extension SlowPathPolicy.Retry {
    enum CodingKeys: String, CodingKey { case value }
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        var p = SlowPathPolicy()
        do { try p.set("retry", s) } catch { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)")) }
        self = p.retry
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
