import PageAllocator

/// The raw memory of one worker: its operations compiled for the hot loop,
/// its per-class histograms and counters, its pools and its ring lists.
/// Allocated in `init` and freed in `deinit`, in one place: nothing else
/// allocates or frees these pointers. Not copyable, so it is freed once.
/// Made, used and freed on the worker's thread.
struct WorkerMemory<H>: ~Copyable {
    let opCount: Int
    let ops: UnsafeMutablePointer<HotOp>
    /// Draws each operation in proportion to its weight.
    let opTable: AliasTable
    let opDraws: UnsafeMutablePointer<Int>

    let classCount: Int
    let hist: UnsafeMutablePointer<LatencyCounts>
    let classCalls: UnsafeMutablePointer<Int>
    /// classCount x 4 levels of need (index with `ClassFailureIndex`).
    let classFailures: UnsafeMutablePointer<Int>
    /// The class of a local and a remote free, by order (-1: not measured).
    let freeClass: UnsafeMutablePointer<Int32>
    let remoteFreeClass: UnsafeMutablePointer<Int32>

    let poolCount: Int
    let pools: UnsafeMutablePointer<Pool<H>>
    /// A transaction's blocks before their lifetime is applied.
    let scratch: UnsafeMutablePointer<H>

    let inboundCount: Int
    let inbound: UnsafeMutablePointer<Int>
    let producerCount: Int
    let producers: UnsafeMutablePointer<Int>
    /// The consumer worker of each global ring.
    let ringCount: Int
    let ringConsumer: UnsafeMutablePointer<Int>

    let lockCount: Int
    let lockStats: UnsafeMutablePointer<LockCounters>

    init(plan: WorkerPlan, lockCount: Int, ringConsumers: [Int]) {
        classCount = plan.classes.count
        hist = .allocate(capacity: max(classCount, 1))
        for i in 0..<classCount { (hist + i).initialize(to: LatencyCounts()) }
        classCalls = .allocate(capacity: max(classCount, 1))
        classCalls.initialize(repeating: 0, count: max(classCount, 1))
        classFailures = .allocate(capacity: max(classCount, 1) * ClassFailureIndex.levels)
        classFailures.initialize(repeating: 0, count: max(classCount, 1) * ClassFailureIndex.levels)
        freeClass = .allocate(capacity: Order.count)
        remoteFreeClass = .allocate(capacity: Order.count)
        for o in 0..<Order.count {
            freeClass[o] = Int32(plan.freeClassByOrder[o])
            remoteFreeClass[o] = Int32(plan.remoteFreeClassByOrder[o])
        }

        opCount = plan.ops.count
        ops = .allocate(capacity: max(opCount, 1))
        opDraws = .allocate(capacity: max(opCount, 1))
        opDraws.initialize(repeating: 0, count: max(opCount, 1))
        var poolSizes: [Int] = []
        var maxCount = 1
        for (i, p) in plan.ops.enumerated() {
            var pool = -1
            if p.spec.kind == .alloc && p.spec.free != .immediate {
                pool = poolSizes.count
                poolSizes.append(p.spec.batch ?? p.spec.live ?? 1)
            }
            maxCount = max(maxCount, p.spec.count)
            (ops + i).initialize(to: HotOp(p, pool: pool))
        }
        opTable = AliasTable(weights: plan.ops.map(\.spec.weight), values: Array(0..<plan.ops.count))
        poolCount = poolSizes.count
        pools = .allocate(capacity: max(poolCount, 1))
        for (i, n) in poolSizes.enumerated() { (pools + i).initialize(to: Pool(capacity: n)) }
        scratch = .allocate(capacity: maxCount)

        inboundCount = plan.inbound.count
        inbound = .allocate(capacity: max(inboundCount, 1))
        for (i, r) in plan.inbound.enumerated() { inbound[i] = r }
        producerCount = plan.producers.count
        producers = .allocate(capacity: max(producerCount, 1))
        for (i, p) in plan.producers.enumerated() { producers[i] = p }
        ringCount = ringConsumers.count
        ringConsumer = .allocate(capacity: max(ringCount, 1))
        for (i, c) in ringConsumers.enumerated() { ringConsumer[i] = c }
        self.lockCount = lockCount
        lockStats = .allocate(capacity: max(lockCount, 1))
        lockStats.initialize(repeating: LockCounters(), count: max(lockCount, 1))
    }

    /// Frees everything `init` allocated (the pools must be empty: the worker's task exited first).
    deinit {
        for i in 0..<classCount { hist[i].destroy() }
        hist.deallocate()
        classCalls.deallocate()
        classFailures.deallocate()
        freeClass.deallocate()
        remoteFreeClass.deallocate()
        for i in 0..<opCount { ops[i].destroy() }
        ops.deallocate()
        opDraws.deallocate()
        opTable.destroy()
        for i in 0..<poolCount { pools[i].buf.deallocate() }
        pools.deallocate()
        scratch.deallocate()
        inbound.deallocate()
        producers.deallocate()
        ringConsumer.deallocate()
        lockStats.deallocate()
    }
}

/// Where a class's failures at one level of need are counted in a worker's
/// `classFailures` (and in `WorkerOutput.classFailures`): class-major, four
/// levels of need (0 skipped ... 3 subsystem failure) per class.
enum ClassFailureIndex {
    static let levels = 4
    @inline(__always) static func of(_ cls: Int, need: Int) -> Int { cls &* levels &+ need }
}
