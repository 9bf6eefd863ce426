/// Why an allocation or a free was refused. Every case leaves the allocator
/// exactly as it was: nothing is lost, nothing half-done.
public enum AllocError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Memory is short: no eligible zone passed its watermark or had a block,
    /// and the slow path gave up.
    case outOfMemory(order: Int, flags: GFP)
    /// An order outside 0...10.
    case invalidOrder(Int)
    /// A node number the topology does not have.
    case noSuchNode(Int, nodeCount: Int)
    /// A CPU number the topology does not have.
    case noSuchCPU(Int, cpuCount: Int)
    /// The block is larger than any zone the request may use.
    case requestLargerThanArena(order: Int, largestZonePages: Int)
    /// The flags name zones (e.g. GFP_DMA) that this topology does not have.
    case noEligibleZone(flags: GFP)
    /// Freeing a block that is already free.
    case doubleFree(pfn: Int, order: Int)
    /// Freeing a pfn that is not the head of an allocated block.
    case notAllocated(pfn: Int)
    /// Freeing with an order other than the one allocated.
    case wrongOrder(pfn: Int, allocated: Int, given: Int)
    /// A pfn (or zone) outside the allocator's memory.
    case pfnOutOfRange(pfn: Int)
    /// The calling task is an OOM victim: it left the allocator at a safe
    /// point and must free what it holds and exit (fatal_signal_pending).
    case killed(task: Int)
    /// The allocator was shut down (the watchdog ended the run) while this
    /// allocation looped in the slow path.
    case aborted(order: Int, flags: GFP)
    /// The allocation spent longer than policy max_stall_ms in the slow path.
    case timedOut(order: Int, flags: GFP, milliseconds: Int)
    /// fail_page_alloc failed this request on purpose (no reclaim, no OOM, no warning).
    case injectedFailure(order: Int, flags: GFP)
    /// The task's memory group is at its limit and neither reclaim nor an
    /// OOM kill inside the group made room.
    case groupLimit(group: Int, order: Int, flags: GFP)
    /// Reservations belong to a task (owner != 0).
    case reservationNeedsTask
    /// More pages than the zone could ever hold above MIN.
    case reservationTooLarge(pages: Int, available: Int)
    /// The task already holds a reservation in another zone.
    case reservationActive(task: Int)
    /// The reservation did not fit within reservation_wait_ms.
    case reservationTimeout(pages: Int, waitedMs: Int)

    public var description: String {
        switch self {
        case .outOfMemory(let o, let f): return "out of memory: order:\(o), mode:\(f.hex)(\(f))"
        case .invalidOrder(let o): return "invalid order \(o): orders are 0...\(Order.maxOrder)"
        case .noSuchNode(let n, let c): return "node \(n) does not exist (this topology has \(c) node(s), 0...\(c - 1))"
        case .noSuchCPU(let n, let c): return "cpu \(n) does not exist (this topology has \(c) CPU(s), 0...\(c - 1))"
        case .requestLargerThanArena(let o, let p):
            return "order \(o) (\(1 << o) pages) is larger than any eligible zone (largest has \(p) pages)"
        case .noEligibleZone(let f): return "no zone of this topology can serve mode \(f.hex)(\(f))"
        case .doubleFree(let p, let o): return "double free of pfn 0x\(String(p, radix: 16)) (order \(o)): the block is already free"
        case .notAllocated(let p): return "pfn 0x\(String(p, radix: 16)) was never allocated (it is not the head of an allocated block)"
        case .wrongOrder(let p, let a, let g): return "pfn 0x\(String(p, radix: 16)) was allocated with order \(a) but freed with order \(g)"
        case .pfnOutOfRange(let p): return "pfn 0x\(String(p, radix: 16)) is outside the allocator's memory"
        case .killed(let t): return "task \(t) was chosen by the OOM killer and must exit"
        case .aborted(let o, let f): return "allocator shut down while order:\(o) mode:\(f.hex)(\(f)) looped in the slow path"
        case .groupLimit(let g, let o, let f): return "memory group \(g) is at its limit: order:\(o), mode:\(f.hex)(\(f))"
        case .reservationNeedsTask: return "a reservation needs a task (owner != 0)"
        case .reservationTooLarge(let p, let a): return "a reservation of \(p) pages can never fit (at most \(a) above MIN)"
        case .reservationActive(let t): return "task \(t) already holds a reservation in another zone"
        case .reservationTimeout(let p, let w): return "a reservation of \(p) pages did not fit after \(w) ms"
        case .injectedFailure(let o, let f): return "fail_page_alloc injected a failure: order:\(o), mode:\(f.hex)(\(f))"
        case .timedOut(let o, let f, let ms): return "order:\(o) mode:\(f.hex)(\(f)) gave up after \(ms) ms in the slow path"
        }
    }
}
