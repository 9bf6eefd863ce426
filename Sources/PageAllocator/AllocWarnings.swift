import CNUMA
import Synchronization

/// warn_alloc(): the kernel's allocation-failure warning, rate limited (one
/// per `ratelimitMs`, 10 s by default), suppressed by __GFP_NOWARN, and
/// counted by order and flags whether printed or not, so an operator can
/// read a counter instead of a log.
public struct AllocWarningStats: Sendable, Equatable, Codable {
    /// Failures by "order:N mode:FLAGS" key.
    public var failures: [String: Int] = [:]
    public var printed = 0
    public var suppressedNoWarn = 0
    public var suppressedRatelimit = 0
    /// Injected failures (fail_page_alloc), which the kernel never warns about.
    public var injected = 0
    /// The printed lines (at most 1000 kept).
    public var lines: [String] = []

    public init() {}
}

final class WarningLog: @unchecked Sendable {
    let ratelimitNs: UInt64
    let state = Mutex<(stats: AllocWarningStats, lastNs: UInt64, everPrinted: Bool)>((AllocWarningStats(), 0, false))
    /// Called with each printed line (the harness prints to stderr).
    let sink: (@Sendable (String) -> Void)?

    init(ratelimitMs: Int, sink: (@Sendable (String) -> Void)?) {
        ratelimitNs = UInt64(ratelimitMs) * 1_000_000
        self.sink = sink
    }

    func record(comm: String, order: Int, gfp: GFP, nodemask: String, injected: Bool, extra: String? = nil) {
        let key = "order:\(order) mode:\(gfp)"
        let now = cnuma_monotonic_ns()
        var line: String? = nil
        state.withLock { s in
            s.stats.failures[key, default: 0] += 1
            if injected { s.stats.injected += 1; if extra != nil { line = extra }; return }
            if gfp.contains(.noWarn) { s.stats.suppressedNoWarn += 1; return }
            if s.everPrinted && now - s.lastNs < ratelimitNs { s.stats.suppressedRatelimit += 1; return }
            s.everPrinted = true
            s.lastNs = now
            s.stats.printed += 1
            let l = "\(comm): page allocation failure: order:\(order), mode:\(gfp.hex)(\(gfp)), nodemask=\(nodemask)"
            if s.stats.lines.count < 1000 { s.stats.lines.append(l) }
            line = l
        }
        if let line { sink?(line) }
    }
}

extension PageAllocator {
    /// Failures by order and flags, and what was printed or suppressed.
    public func allocationWarnings() -> AllocWarningStats { slow.warnings.state.withLock { $0.stats } }

    /// Failures fail_page_alloc injected so far.
    public var injectedFailures: Int { slow.injector?.injected.load(ordering: .relaxed) ?? 0 }

    func taskName(_ id: UInt16, cpu: Int) -> String {
        id == 0 ? "cpu\(cpu)" : (slow.tasks.names.withLock { $0[id] } ?? "task\(id)")
    }

    /// warn_alloc() for a failed allocation.
    func warnAlloc(owner: UInt16, cpu: Int, order: Int, gfp: GFP, thisNode: Int?) {
        slow.warnings.record(comm: taskName(owner, cpu: cpu), order: order, gfp: gfp,
                             nodemask: thisNode.map { "\($0)" } ?? "(null)", injected: false)
    }
}

extension PageAllocator {
    /// Per order o, the kernel's unusable free space index
    /// (debugfs extfrag/unusable_index): the share of free pages that sit in
    /// blocks smaller than 2^o, 0.0 (none) to 1.0 (all); 1.0 when nothing is free.
    public func unusableFreeIndex(zone index: Int) -> [Double] {
        let blocks = freeBlocks(zone: index)
        let freePages = blocks.enumerated().reduce(0) { $0 + ($1.element << $1.offset) }
        return (0..<Order.count).map { o in
            guard freePages > 0 else { return 1.0 }
            var suitable = 0
            for j in o..<Order.count { suitable += blocks[j] << (j - o) }
            return Double((freePages - (suitable << o)) * 1000 / freePages) / 1000
        }
    }

    /// Per order o, the kernel's fragmentation index (extfrag/extfrag_index):
    /// -1 when a block of order o is free; otherwise toward 0 a failure would
    /// be for lack of memory, toward 1 for fragmentation.
    public func fragmentationIndex(zone index: Int) -> [Double] {
        let blocks = freeBlocks(zone: index)
        let total = blocks.reduce(0, +)
        let freePages = blocks.enumerated().reduce(0) { $0 + ($1.element << $1.offset) }
        return (0..<Order.count).map { o in
            if total == 0 { return 0 }
            var suitable = 0
            for j in o..<Order.count { suitable += blocks[j] << (j - o) }
            if suitable > 0 { return -1 }
            let requested = 1 << o
            return Double(1000 - (1000 + freePages * 1000 / requested) / total) / 1000
        }
    }
}
