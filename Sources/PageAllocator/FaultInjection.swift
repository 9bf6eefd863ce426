import Synchronization

/// fail_page_alloc (mm/fail_page_alloc.c, lib/fault-inject.c): its knobs
/// with their exact semantics and defaults.
public struct FaultInjectionSettings: Sendable, Equatable, Codable, KnobTable {
    /// Percent of eligible calls that fail (0 = never).
    public var probability: Int = 0
    /// Fail only every interval-th eligible call (when > 1).
    public var interval: Int = 1
    /// Failures left; -1 = unlimited, 0 = none.
    public var times: Int = 1
    /// Pages that pass before failures start ("space" in bytes in the kernel; pages here).
    public var space: Int = 0
    /// 0 silent, 1 one line per failure, 2 also the settings (no stack here).
    public var verbose: Int = 2
    /// ignore-gfp-wait: requests that may reclaim are never failed.
    public var ignoreGfpWait: Bool = true
    /// ignore-gfp-highmem: __GFP_HIGHMEM requests are never failed.
    public var ignoreGfpHighmem: Bool = true
    /// Orders below this are never failed.
    public var minOrder: Int = 1
    /// Seed of the injector's generator (the kernel uses get_random_u32).
    public var seed: UInt64 = 1

    public init() {}

    /// Whether injection can fire at all.
    public var enabled: Bool { probability > 0 && times != 0 }

    /// Parses `probability=10,interval=1,times=-1,min-order=0,...` (names as
    /// in debugfs; underscores accepted). Unknown keys and bad values throw.
    public static func parse(_ text: String) throws(ConfigError) -> FaultInjectionSettings {
        var s = FaultInjectionSettings()
        for part in text.split(separator: ",") where !part.isEmpty {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard kv.count == 2 else { throw .invalid(field: "fail_page_alloc", value: String(part), reason: "expected key=value") }
            try s.set(kv[0], kv[1])
        }
        return s
    }

    /// Every knob, one row each (debugfs names; `set` also takes underscores): name, default, meaning, parser, where it is stored.
    public static let knobs: [Knob<FaultInjectionSettings>] = [
        .int("probability", \.probability, default: 0, 0...100, expected: "an integer in 0...100", "percent of eligible calls that fail (0: injection off)"),
        .int("interval", \.interval, default: 1, 1...Int(Int32.max), expected: "an integer in 1...\(Int32.max)", "fail only every interval-th eligible call (when > 1)"),
        .int("times", \.times, default: 1, -1...Int(Int32.max), expected: "an integer in -1...\(Int32.max)", "failures left; -1 = unlimited"),
        .int("space", \.space, default: 0, 0...Int(Int32.max), expected: "an integer in 0...\(Int32.max)", "pages that pass before failures start"),
        .int("verbose", \.verbose, default: 2, 0...2, expected: "an integer in 0...2", "0 silent; 1 and 2 print a `FAULT_INJECTION: forcing a failure.` line per failure (unless NOWARN)"),
        .bool("ignore-gfp-wait", \.ignoreGfpWait, default: true, "requests that may reclaim (`__GFP_DIRECT_RECLAIM`) are never failed; set N (or false) to fail GFP_KERNEL"),
        .bool("ignore-gfp-highmem", \.ignoreGfpHighmem, default: true, "`__GFP_HIGHMEM` requests are never failed"),
        .int("min-order", \.minOrder, default: 1, 0...Order.maxOrder, expected: "an integer in 0...\(Order.maxOrder)", "orders below this are never failed"),
        Knob("seed", default: "1", expected: "an integer in 0...\(Int.max)", "the injector's random stream (xor the run's seed)",
             parse: { f, v in guard let n = Int(v), n >= 0 else { return false }; f.seed = UInt64(n); return true },
             show: { "\($0.seed)" }),
    ]

    /// Every key a workload's `[fail_page_alloc]` accepts: the debugfs names and their underscore spellings.
    public static var acceptedKeys: [String] {
        keys + keys.filter { $0.contains("-") }.map { String($0.map { $0 == "-" ? "_" : $0 }) }
    }

    public static let section = "fail_page_alloc"

    /// Like KnobTable's `set`, but takes underscores for dashes and throws the allocator's ConfigError.
    public mutating func set(_ key: String, _ value: String) throws(ConfigError) {
        let k = String(key.map { $0 == "_" ? "-" : $0 })
        guard let knob = FaultInjectionSettings.knob(named: k) else {
            throw .invalid(field: "fail_page_alloc", value: key, reason: "unknown knob; known: " + FaultInjectionSettings.keys.joined(separator: ", "))
        }
        guard knob.parse(&self, value) else { throw .invalid(field: "fail_page_alloc.\(k)", value: value, reason: "expected \(knob.expected)") }
    }
}

/// The injector's state: times and space count down, count counts eligible calls.
final class FaultInjector: @unchecked Sendable {
    let settings: FaultInjectionSettings
    let times: Atomic<Int>
    let space: Atomic<Int>
    let count = Atomic<Int>(0)
    let rng: Atomic<UInt64>
    let injected = Atomic<Int>(0)

    init(_ s: FaultInjectionSettings) {
        settings = s
        times = Atomic(s.times)
        space = Atomic(s.space)
        rng = Atomic(s.seed)
    }

    /// get_random_u32_below(100), from a shared SplitMix64 stream.
    func random100() -> Int {
        let x = rng.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % 100)
    }

    /// should_fail_alloc_page() then should_fail_ex(), in the kernel's order.
    /// Returns whether to fail, and whether to print (verbose, no NOWARN).
    func shouldFail(order: Int, gfp: GFP) -> Bool {
        let s = settings
        if order < s.minOrder { return false }
        if gfp.contains(.noFail) { return false }
        if s.ignoreGfpHighmem && gfp.contains(.highmem) { return false }
        if s.ignoreGfpWait && gfp.contains(.directReclaim) { return false }
        if s.probability == 0 { return false }
        if times.load(ordering: .relaxed) == 0 { return false }
        let size = 1 << order
        if space.load(ordering: .relaxed) > size {
            space.wrappingAdd(-size, ordering: .relaxed)
            return false
        }
        if s.interval > 1 {
            let c = count.wrappingAdd(1, ordering: .relaxed).newValue
            if c % s.interval != 0 { return false }
        }
        if s.probability <= random100() { return false }
        // atomic_dec_not_zero unless unlimited
        var t = times.load(ordering: .relaxed)
        while t != -1 && t != 0 {
            let (ok, cur) = times.compareExchange(expected: t, desired: t - 1, ordering: .relaxed)
            if ok { break }
            t = cur
        }
        if t == 0 { return false }
        injected.wrappingAdd(1, ordering: .relaxed)
        return true
    }
}
