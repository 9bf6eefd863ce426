import PageAllocator

/// The pre-pass over a trace, in file order: pairs every free with the
/// allocation of the same pfn that is live at that point of the trace, gives
/// each traced allocation a slot (the replay's block for it), splits the
/// events into one op list per traced CPU, and measures the peak of live
/// pages (to size the arena).
///
/// Why file order: ftrace prints the per-CPU ring buffers merged by
/// timestamp, so file order is a total order consistent with every CPU's own
/// order and with time across CPUs. Pairing in that order means a free's
/// allocation always comes earlier in file order. A replay worker that
/// reaches a free before another CPU's worker has made the allocation waits
/// for it; since every wait points back to an earlier line, the waits can
/// never form a cycle (no deadlock), and the wait is bounded anyway.
///
/// What the pre-pass cannot pair is recorded, never guessed:
/// - a free of a pfn with no live allocation in the trace (allocated before
///   the capture started, or the ring buffer dropped its allocation): skipped;
/// - an allocation of a pfn the trace still holds live (its free was not
///   captured): the older block stays allocated until the end, and counts
///   as left allocated;
/// - mm_page_free with an order other than the allocation's: reported, and the
///   replay frees the block it allocated (with its own order);
/// - mm_page_free_batched always prints order=0 (the kernel's format string);
///   frees that matched a larger allocation are counted separately;
/// - a traced allocation that failed (NULL page, pfn 0) is not replayed.
public struct ReplayPlan: Sendable {
    /// One thing a replay worker does. 24 bytes.
    public struct Op: Sendable, Equatable {
        public enum Kind: UInt8, Sendable { case alloc = 0, free = 1, freeBatched = 2 }
        /// Nanoseconds since the trace's first event.
        public var offsetNs: UInt64
        /// The slot of the traced allocation this op makes or frees.
        public var slot: Int32
        public var gfp: GFP
        public var kind: Kind
        public var order: UInt8
        /// A free of a block that another CPU allocated.
        public var crossCPU: Bool
    }

    /// What the pre-pass found, for the report.
    public struct Summary: Codable, Sendable, Equatable {
        /// Page events in the trace, by kind.
        public var allocEvents = 0
        public var freeEvents = 0
        public var freeBatchedEvents = 0
        /// mm_page_alloc events with a NULL page: failed in the traced kernel; not replayed.
        public var tracedAllocFailures = 0
        /// Frees paired with a traced allocation (replayed), by event.
        public var pairedFrees = 0
        public var pairedFreesBatched = 0
        /// Frees of pfns with no live traced allocation (skipped), by event.
        public var unknownFrees = 0
        public var unknownFreesBatched = 0
        /// Paired frees on another CPU than the allocation.
        public var crossCPUFrees = 0
        /// mm_page_free whose order differs from the allocation's.
        public var orderMismatches = 0
        /// mm_page_free_batched (prints order=0) that freed a larger allocation.
        public var batchedFreesOfHigherOrder = 0
        /// Allocations of a pfn the trace still held: the older block's free was not traced.
        public var allocsOfLivePFN = 0
        /// Traced allocations never freed in the trace (blocks, pages).
        public var leftAllocatedBlocks = 0
        public var leftAllocatedPages = 0
        /// Peak of pages the replay holds at once, in file order.
        public var peakLivePages = 0
        public var peakLiveBlocks = 0
        /// Timestamp span of the page events.
        public var spanNs: UInt64 = 0
        /// Up to 8 order mismatches, as "line N: ...".
        public var orderMismatchExamples: [String] = []
    }

    /// Page-event counts of one traced CPU.
    public struct CPUEvents: Codable, Sendable, Equatable {
        public var traceCPU: Int
        public var allocs = 0
        public var tracedAllocFailures = 0
        public var frees = 0
        public var freesBatched = 0
        public var unknownFrees = 0
        public var unknownFreesBatched = 0
        public var crossCPUFrees = 0
        public var total: Int { allocs + tracedAllocFailures + frees + freesBatched }
    }

    /// ops[traceCPU]: that CPU's ops in trace order.
    public let ops: [[Op]]
    /// events[traceCPU]: that CPU's event counts.
    public let events: [CPUEvents]
    /// Slots: one per replayed allocation.
    public let slotCount: Int
    public let summary: Summary
    /// The trace's CPU count.
    public let cpuCount: Int

    public init(trace: Trace) {
        let cpus = trace.cpuCount
        var ops = [[Op]](repeating: [], count: cpus)
        var events = (0..<cpus).map { CPUEvents(traceCPU: $0) }
        var s = Summary()
        // pfn -> (slot, order, cpu, line) of the live traced allocation.
        var live: [UInt64: (slot: Int32, order: UInt8, cpu: UInt16, line: UInt32)] = [:]
        live.reserveCapacity(1024)
        var slots: Int32 = 0
        var livePages = 0, liveBlocks = 0
        let t0 = trace.events.lazy.map(\.timestampNs).min() ?? 0
        var tMax: UInt64 = t0
        for e in trace.events {
            let c = Int(e.cpu)
            let offset = e.timestampNs >= t0 ? e.timestampNs - t0 : 0
            tMax = max(tMax, e.timestampNs)
            switch e.kind {
            case .allocFailed:
                s.tracedAllocFailures += 1
                s.allocEvents += 1
                events[c].tracedAllocFailures += 1
            case .alloc:
                s.allocEvents += 1
                events[c].allocs += 1
                if live[e.pfn] != nil { s.allocsOfLivePFN += 1 } // the older block stays held
                live[e.pfn] = (slots, e.order, e.cpu, e.line)
                ops[c].append(Op(offsetNs: offset, slot: slots, gfp: e.gfp, kind: .alloc, order: e.order, crossCPU: false))
                slots += 1
                livePages += 1 << Int(e.order)
                liveBlocks += 1
                if livePages > s.peakLivePages { s.peakLivePages = livePages }
                s.peakLiveBlocks = max(s.peakLiveBlocks, liveBlocks)
            case .free, .freeBatched:
                let batched = e.kind == .freeBatched
                if batched { s.freeBatchedEvents += 1; events[c].freesBatched += 1 } else { s.freeEvents += 1; events[c].frees += 1 }
                guard let a = live.removeValue(forKey: e.pfn) else {
                    if batched { s.unknownFreesBatched += 1; events[c].unknownFreesBatched += 1 } else { s.unknownFrees += 1; events[c].unknownFrees += 1 }
                    continue
                }
                if batched { s.pairedFreesBatched += 1 } else { s.pairedFrees += 1 }
                if a.order != e.order {
                    if batched {
                        s.batchedFreesOfHigherOrder += 1
                    } else {
                        s.orderMismatches += 1
                        if s.orderMismatchExamples.count < 8 {
                            s.orderMismatchExamples.append("line \(e.line): mm_page_free pfn 0x\(String(e.pfn, radix: 16)) order \(e.order), allocated with order \(a.order) at line \(a.line)")
                        }
                    }
                }
                let cross = a.cpu != e.cpu
                if cross { s.crossCPUFrees += 1; events[c].crossCPUFrees += 1 }
                ops[c].append(Op(offsetNs: offset, slot: a.slot, gfp: [], kind: batched ? .freeBatched : .free, order: a.order, crossCPU: cross))
                livePages -= 1 << Int(a.order)
                liveBlocks -= 1
            }
        }
        // Blocks the trace never freed: what is live now plus the older
        // blocks of re-allocated pfns (their frees were not traced).
        s.leftAllocatedBlocks = liveBlocks
        s.leftAllocatedPages = livePages
        s.spanNs = tMax - t0
        self.ops = ops
        self.events = events
        self.slotCount = Int(slots)
        self.summary = s
        self.cpuCount = cpus
    }

    /// Traced CPUs with at least one page event.
    public var activeCPUs: [Int] { events.filter { $0.total > 0 }.map(\.traceCPU) }

    /// An arena (pages per node) that holds the trace's peak with headroom:
    /// twice the peak plus 16 MiB, at least 32 MiB, rounded up to a max-order
    /// block. Twice: the per-CPU lists may hold up to an eighth of the zone,
    /// the LOW watermark must stay free for the fast path, and larger orders
    /// need contiguous free blocks.
    public func suggestedPagesPerNode(pageSize: Int = 4096) -> Int {
        let mib = (1 << 20) / pageSize
        let want = max(2 * summary.peakLivePages + 16 * mib, 32 * mib)
        let block = 1 << Order.maxOrder
        return (want + block - 1) / block * block
    }
}
