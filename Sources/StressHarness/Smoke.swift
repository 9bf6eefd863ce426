import CNUMA
import PageAllocator
import Synchronization
import Topology

/// The built-in smoke workload: one pinned worker per CPU, each allocating
/// orders 0-3 (mostly 0) with GFP_KERNEL, holding up to 256 blocks and freeing
/// a random victim, writing and checking a pattern in every block, and
/// handing every 8th block to the next worker to free on another CPU.
/// Ends with every block freed and validate() passing.
public struct SmokeRun {
    public struct Result: Sendable {
        public var operations: Int
        public var failures: Int
        public var corruptions: Int
        public var seconds: Double
        public var accounting: PageAccounting
        public var opsPerSecond: Double { Double(operations) / max(seconds, 1e-9) }
    }

    public let allocator: PageAllocator
    public var milliseconds: Int
    public var seed: UInt64

    public init(allocator: PageAllocator, milliseconds: Int = 1000, seed: UInt64 = 1) {
        self.allocator = allocator
        self.milliseconds = milliseconds
        self.seed = seed
    }

    public func run() throws -> Result {
        let a = allocator
        let workers = a.cpuCount
        let ops = Atomic<Int>(0), fails = Atomic<Int>(0), bad = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let handoff = (0..<workers).map { _ in HandoffQueue() }
        let barrier = StartBarrier(parties: workers)
        let deadline = cnuma_monotonic_ns() + UInt64(milliseconds) * 1_000_000
        let seed = self.seed
        let t0 = cnuma_monotonic_ns()
        Threads.run(count: workers) { w in
            try? Affinity.pinCurrentThread(to: CPUID(w), in: a.topology)
            var rng = SplitMix64(seed: seed &+ UInt64(w) &* 0x9E37)
            var held: [PageBlock] = []
            held.reserveCapacity(256)
            var n = 0, f = 0, c = 0
            let cpu = CPUID(w)
            barrier.arriveAndWait()
            while true {
                if n & 1023 == 0 && (stop.load(ordering: .relaxed) || cnuma_monotonic_ns() >= deadline) { break }
                for b in handoff[w].takeAll() {
                    if !SmokeRun.check(b) { c += 1 }
                    try? a.free(b, cpu: cpu)
                    n += 1
                }
                let r = rng.next()
                if held.count < 256 && (held.isEmpty || r & 1 == 0) {
                    let order = r >> 8 & 7 == 0 ? Order(unchecked: Int(r >> 12 & 3)) : .zero
                    do {
                        let b = try a.allocate(order: order, flags: .kernel, cpu: cpu, owner: UInt16(w))
                        SmokeRun.fill(b)
                        if r >> 20 & 7 == 0 { handoff[(w + 1) % workers].put(b) } else { held.append(b) }
                    } catch { f += 1 }
                } else {
                    let i = Int(r >> 32) % held.count
                    let b = held.swapRemoveAt(i)
                    if !SmokeRun.check(b) { c += 1 }
                    try? a.free(b, cpu: cpu)
                }
                n += 1
            }
            stop.store(true, ordering: .relaxed)
            for b in held { if !SmokeRun.check(b) { c += 1 }; try? a.free(b, cpu: cpu) }
            ops.wrappingAdd(n, ordering: .relaxed)
            fails.wrappingAdd(f, ordering: .relaxed)
            bad.wrappingAdd(c, ordering: .relaxed)
        }
        // Blocks handed to a worker after it stopped: free them here.
        for q in handoff { for b in q.takeAll() { try? a.free(b) } }
        let secs = Double(cnuma_monotonic_ns() - t0) / 1e9
        let acct = try a.validate()
        return Result(operations: ops.load(ordering: .relaxed), failures: fails.load(ordering: .relaxed),
                      corruptions: bad.load(ordering: .relaxed), seconds: secs, accounting: acct)
    }

    static func fill(_ b: PageBlock) {
        let words = b.address.assumingMemoryBound(to: UInt64.self)
        words[0] = UInt64(b.pfn.rawValue) ^ 0xA5A5_A5A5_0000_0000
        words[b.byteCount / 8 - 1] = ~words[0]
    }

    static func check(_ b: PageBlock) -> Bool {
        let words = b.address.assumingMemoryBound(to: UInt64.self)
        return words[0] == UInt64(b.pfn.rawValue) ^ 0xA5A5_A5A5_0000_0000 && words[b.byteCount / 8 - 1] == ~words[0]
    }
}

/// A small mutex-protected queue for blocks freed by another worker.
public final class HandoffQueue: @unchecked Sendable {
    private let lock = Mutex<[PageBlock]>([])
    public init() {}
    public func put(_ b: PageBlock) { lock.withLock { $0.append(b) } }
    public func takeAll() -> [PageBlock] { lock.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q } }
}

extension Array {
    mutating func swapRemoveAt(_ i: Int) -> Element {
        swapAt(i, count - 1)
        return removeLast()
    }
}
