/// The slow-path policies argued over in 2015, one switchable setting each.
/// `SlowPathPolicy.table` lists every knob with its default and meaning
/// (mimalloc's options.c habit); `set(_:_:)` parses the textual form used in
/// workload files and on the command line.
public struct SlowPathPolicy: Sendable, Equatable, Codable {
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

    public enum OOMMode: String, Sendable, Equatable, Codable {
        /// Kill and return; allocators poll (retry at once).
        case async
        /// Weiner: the killer and everyone after it sleep on a wait queue
        /// until the victim exits, bounded by `oomWaitTimeoutMs`.
        case sync
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

    public init() {}

    /// Every knob: name, default (as text), meaning.
    public static let table: [(name: String, defaultValue: String, meaning: String)] = [
        ("retry", "kernel", "kernel (should_reclaim_retry, 16 loops without progress) | legacy (order <= 3 never fails) | retries=N (Hocko: N OOM-involving retries, then fail)"),
        ("oom", "async", "async (kill, then poll) | sync (wait on the victim's exit on a wait queue, bounded by oom_wait_timeout_ms)"),
        ("reaper", "false", "oom_reaper: free the victim's anonymous memory without waiting for its exit, then skip it"),
        ("reaper_delay_ms", "100", "delay before the reaper reaps"),
        ("victim_timeout_ms", "0", "choose another victim when the current one has not exited after this long; 0 = never"),
        ("oom_wait_timeout_ms", "1000", "sync OOM: longest wait on a victim's exit"),
        ("oom_lock", "trylock", "trylock (the kernel: contenders sleep a tick and retry) | mutex (contenders wait for the lock)"),
        ("oom_victim_reserve", "true", "ALLOC_OOM: victims may use half of MIN"),
        ("oom_killer_reserve", "false", "Weiner: the allocation that issued a kill may use the ALLOC_OOM share on its next try"),
        ("nofail_emergency_reserve", "true", "__GFP_NOFAIL gets ALLOC_NO_WATERMARKS after an OOM attempt"),
        ("max_stall_ms", "0", "give up one allocation after this long in the slow path (.timedOut); 0 = unbounded"),
        ("reservation_wait_ms", "1000", "how long a reservation that does not fit waits for reclaim before failing; 0 = fail at once"),
    ]

    /// A setting that does not parse. Names the key and what is expected.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let key: String
        public let value: String
        public let expected: String
        public var description: String { "policy \(key) = \(value): expected \(expected)" }
    }

    /// Sets one knob from text, e.g. ("retry", "retries=1"), ("oom", "sync").
    public mutating func set(_ key: String, _ value: String) throws(ParseError) {
        func bool() throws(ParseError) -> Bool {
            switch value.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw ParseError(key: key, value: value, expected: "true or false")
            }
        }
        func ms() throws(ParseError) -> Int {
            guard let v = Int(value), v >= 0, v <= 86_400_000 else { throw ParseError(key: key, value: value, expected: "milliseconds, 0...86400000") }
            return v
        }
        switch key {
        case "retry":
            if value == "kernel" { retry = .kernel } else if value == "legacy" { retry = .legacy } else if value.hasPrefix("retries=") {
                guard let n = Int(value.dropFirst(8)), n >= 0 else { throw ParseError(key: key, value: value, expected: "retries=N with N >= 0") }
                retry = .retries(n)
            } else { throw ParseError(key: key, value: value, expected: "kernel, legacy or retries=N") }
        case "oom":
            guard let m = OOMMode(rawValue: value) else { throw ParseError(key: key, value: value, expected: "async or sync") }
            oom = m
        case "reaper": reaper = try bool()
        case "reaper_delay_ms": reaperDelayMs = try ms()
        case "victim_timeout_ms": victimTimeoutMs = try ms()
        case "oom_wait_timeout_ms": oomWaitTimeoutMs = try ms()
        case "oom_lock":
            guard value == "trylock" || value == "mutex" else { throw ParseError(key: key, value: value, expected: "trylock or mutex") }
            oomLockTrylock = value == "trylock"
        case "oom_victim_reserve": oomVictimReserve = try bool()
        case "oom_killer_reserve": oomKillerReserve = try bool()
        case "nofail_emergency_reserve": nofailEmergencyReserve = try bool()
        case "max_stall_ms": maxStallMs = try ms()
        case "reservation_wait_ms": reservationWaitMs = try ms()
        default:
            throw ParseError(key: key, value: value, expected: "a known policy key: " + SlowPathPolicy.table.map(\.name).joined(separator: ", "))
        }
    }

    /// The settings as (key, value) text, in table order.
    public var settings: [(String, String)] {
        [("retry", retry.description), ("oom", oom.rawValue), ("reaper", "\(reaper)"), ("reaper_delay_ms", "\(reaperDelayMs)"),
         ("victim_timeout_ms", "\(victimTimeoutMs)"), ("oom_wait_timeout_ms", "\(oomWaitTimeoutMs)"),
         ("oom_lock", oomLockTrylock ? "trylock" : "mutex"), ("oom_victim_reserve", "\(oomVictimReserve)"),
         ("oom_killer_reserve", "\(oomKillerReserve)"), ("nofail_emergency_reserve", "\(nofailEmergencyReserve)"),
         ("max_stall_ms", "\(maxStallMs)"), ("reservation_wait_ms", "\(reservationWaitMs)")]
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
