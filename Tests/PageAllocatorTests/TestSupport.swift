// Shared helpers for the PageAllocator tests: a seeded RNG, allocator
// builders, block bookkeeping (pattern writes, overlap checks) and a small
// pthread wrapper with a bounded join. Nothing here reads files at test time.
import Synchronization
import Testing
@testable import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// MARK: RNG

/// SplitMix64 (Steele, Lea, Flood 2014): seeded, reproducible, no system entropy.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform integer in 0..<n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// True with probability `percent`/100.
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

// MARK: building allocators

/// The slow-path bound of the core tests: long enough that a non-NOFAIL
/// allocation on a loaded 2-core machine fails by the policy, not by time;
/// short enough that the NOFAIL cases (which only time out) stay cheap.
let testMaxStallMs = 250

/// An allocator over a declared topology. Memory is never bound to nodes.
///
/// The core tests run under Hocko's `retries=0`, so a small allocation that
/// cannot be served fails at once with `.outOfMemory` instead of looping as
/// the kernel's policy does (GFP_NOFS at order <= 3 loops forever there), and
/// under `max_stall_ms`, which bounds __GFP_NOFAIL (it never fails, so it
/// times out). The loops themselves are tested in SlowPathTests.
func makeAllocator(nodes: Int = 1, cpusPerNode: Int = 1, zones: [ZoneSpec],
                   minFreeKbytes: Int? = nil, ratios: [Int]? = nil,
                   highFraction: Int = 0) throws -> PageAllocator {
    var c = AllocatorConfig(topology: try Topology.declared(nodes: nodes, cpusPerNode: cpusPerNode), zones: zones)
    c.minFreeKbytes = minFreeKbytes
    if let ratios { c.lowmemReserveRatio = ratios }
    c.percpuPagelistHighFraction = highFraction
    c.bindMemory = false
    c.policy.retry = .retries(0)
    c.policy.maxStallMs = testMaxStallMs
    return try PageAllocator(c)
}

/// One node, one CPU, one Normal zone of `pages` pages.
func makeSmall(pages: Int, minFreeKbytes: Int? = nil) throws -> PageAllocator {
    try makeAllocator(zones: [ZoneSpec(.normal, pages: pages)], minFreeKbytes: minFreeKbytes)
}

/// The free blocks per order that `[start, end)` seeds: maximal aligned blocks.
func expectedSeed(start: Int, end: Int) -> [Int] {
    var out = [Int](repeating: 0, count: Order.count)
    var pfn = start
    while pfn < end {
        var o = Order.maxOrder
        while o > 0 && (pfn % (1 << o) != 0 || pfn + (1 << o) > end) { o -= 1 }
        out[o] += 1
        pfn += 1 << o
    }
    return out
}

extension PageAllocator {
    /// The free blocks per order of every zone.
    func allFreeBlocks() -> [[Int]] { (0..<zoneCount).map { freeBlocks(zone: $0) } }
    /// Per-CPU pages of every zone.
    func allPerCPU() -> [Int] { (0..<zoneCount).map { perCPUPages(zone: $0) } }
    /// Free pages (NR_FREE_PAGES snapshot) of every zone.
    func allFreePages() -> [Int] { (0..<zoneCount).map { freePages(zone: $0) } }
}

/// Everything observable about where pages are; equal before and after a
/// refused call means the call changed nothing.
struct Snapshot: Equatable {
    var accounting: PageAccounting
    var freeBlocks: [[Int]]
    var perCPU: [Int]
    var freePages: [Int]
    init(_ a: PageAllocator) throws {
        accounting = try a.validate()
        freeBlocks = a.allFreeBlocks()
        perCPU = a.allPerCPU()
        freePages = a.allFreePages()
    }
}

// MARK: block contents

/// The 64-bit word written at the start and end of each page of a block.
func pattern(_ b: PageBlock, page: Int, tag: UInt64) -> UInt64 {
    (UInt64(b.pfn.rawValue + page) &* 0x9E37_79B9_7F4A_7C15) ^ tag
}

func fill(_ b: PageBlock, pageSize: Int, tag: UInt64) {
    for p in 0..<b.pages {
        let v = pattern(b, page: p, tag: tag)
        b.address.storeBytes(of: v, toByteOffset: p * pageSize, as: UInt64.self)
        b.address.storeBytes(of: ~v, toByteOffset: p * pageSize + pageSize - 8, as: UInt64.self)
    }
}

/// Whether every page still holds what `fill` wrote.
func check(_ b: PageBlock, pageSize: Int, tag: UInt64) -> Bool {
    for p in 0..<b.pages {
        let v = pattern(b, page: p, tag: tag)
        if b.address.load(fromByteOffset: p * pageSize, as: UInt64.self) != v { return false }
        if b.address.load(fromByteOffset: p * pageSize + pageSize - 8, as: UInt64.self) != ~v { return false }
    }
    return true
}

/// Tracks the blocks a test holds: pfn ownership (no overlap) and that each
/// zone's blocks sit at `base + (pfn - start) * pageSize`.
struct Holdings {
    let pageSize: Int
    var owner: [Int: Int] = [:]          // pfn -> head pfn of the block covering it
    var blocks: [PageBlock] = []
    var tags: [UInt64] = []
    var zoneBase: [Int: Int] = [:]       // zone index -> address of pfn 0 of that zone's mapping
    var pages = 0

    init(pageSize: Int) { self.pageSize = pageSize }

    /// Records a new block; returns a problem, or nil.
    mutating func add(_ b: PageBlock, tag: UInt64, allocator a: PageAllocator) -> String? {
        let d = a.zoneDescription(b.zoneIndex)
        if b.pfn.rawValue < d.startPFN.rawValue || b.pfn.rawValue + b.pages > d.startPFN.rawValue + d.pages {
            return "\(b) lies outside its zone \(d.startPFN)+\(d.pages)"
        }
        if b.pfn.rawValue % b.pages != 0 { return "\(b) is not aligned to its order" }
        if b.node != d.node { return "\(b) names node \(b.node) but its zone is on \(d.node)" }
        let base = Int(bitPattern: b.address) - (b.pfn.rawValue - d.startPFN.rawValue) * pageSize
        if let known = zoneBase[b.zoneIndex], known != base { return "\(b) address is not base + offset of its zone" }
        zoneBase[b.zoneIndex] = base
        for p in b.pfn.rawValue..<(b.pfn.rawValue + b.pages) {
            if let o = owner[p] { return "\(b) overlaps the held block at pfn \(o)" }
        }
        for p in b.pfn.rawValue..<(b.pfn.rawValue + b.pages) { owner[p] = b.pfn.rawValue }
        fill(b, pageSize: pageSize, tag: tag)
        blocks.append(b)
        tags.append(tag)
        pages += b.pages
        return nil
    }

    /// Removes block `i` (swap-remove); returns it and whether its contents survived.
    mutating func remove(at i: Int) -> (PageBlock, Bool) {
        let b = blocks[i]
        let ok = check(b, pageSize: pageSize, tag: tags[i])
        for p in b.pfn.rawValue..<(b.pfn.rawValue + b.pages) { owner[p] = nil }
        blocks.swapAt(i, blocks.count - 1)
        tags.swapAt(i, tags.count - 1)
        blocks.removeLast()
        tags.removeLast()
        pages -= b.pages
        return (b, ok)
    }
}

// MARK: threads

/// A POSIX thread running a closure, joined with a deadline.
final class TestThread: @unchecked Sendable {
    private let body: @Sendable () -> Void
    private let finished = Atomic<Bool>(false)
    private var tid = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let ctx = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let t = Unmanaged<TestThread>.fromOpaque(arg!).takeRetainedValue()
            t.body()
            t.finished.store(true, ordering: .releasing)
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Waits until the thread has finished or `deadline` (CLOCK_MONOTONIC
    /// seconds) passes; joins it when finished. Returns whether it finished.
    func join(deadline: Double) -> Bool {
        while !finished.load(ordering: .acquiring) {
            if monotonicSeconds() > deadline { return false }
            usleep(1000)
        }
        pthread_join(tid, nil)
        return true
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// `make test-tsan` sets PAGESTORM_TSAN=1: tests then do a tenth of their
/// operations (ThreadSanitizer is 10-50x slower; what matters there is that
/// every path runs concurrently, not how often), never skipping a check of
/// the allocator's state.
let underTSan = getenv("PAGESTORM_TSAN").map { String(cString: $0) } == "1"
