import CNUMA
import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// A per-CPU-cached, NUMA-aware, concurrent buddy page allocator over real
/// memory, modelled on Linux 6.x (mm/page_alloc.c).
///
/// Structure: nodes hold zones (lowest type first); zones hold buddy free
/// areas of orders 0...10 and one per-CPU page cache per CPU for orders 0...3.
/// Each node's memory is one mmap'd arena, bound to its node with libnuma
/// where the topology is real and has several nodes.
///
/// Locking: a per-CPU cache is taken without waiting (a failure falls back
/// to the buddy under the zone lock): with a restartable sequence on its own
/// CPU (pcp_lock = rseq) or a trylock (pcp_lock = trylock); see
/// PageAllocator+PCPLock.swift. The zone lock protects the free lists
/// and the zone's locked counters. Lock order: per-CPU slot, then zone lock.
/// `Locked` in a name means the caller holds the zone lock.
///
/// All stored properties are `let`, and hot data sits behind raw pointers, so
/// the fast path pays no ARC, no exclusivity checks and no dynamic dispatch.
///
/// Lock contract. Invariants: the seven of docs/allocator.md ("Invariants"),
/// checked by `validate()` with every slot (CPU by CPU, ascending) and then
/// every zone lock held. Fields:
/// - every stored property is a `let` set in `init`, before the allocator
///   is shared: read without a lock by any thread afterwards;
/// - the tables behind `zonelists`, `zonelistLens`, `cpuNode`,
///   `realToLogical`, `cpuFast` and `freeZones` are written only in `init`: read-only after;
/// - `zones`: each Zone's contract (the zone lock, atomics, set-up-only info),
///   and each of its per-CPU slots' (PerCPUPages: the slot's owner);
/// - `slow` (SlowPathState): atomics, pthread/Synchronization mutexes and the
///   LRU locks (NodeLRU: never held while taking a zone lock or a slot), each
///   documented at its type; the OOM lock is a trylock or a mutex (`oom_lock`);
/// - `mappings`, `pcpBlocks`: set in `init`, unmapped and freed in `deinit`,
///   when no thread can hold a reference.
/// Lock order: a per-CPU slot, then a zone lock; an LRU lock alone.
public final class PageAllocator: @unchecked Sendable {
    public let config: AllocatorConfig
    public let topology: Topology
    public let pageSize: Int
    public let pageShift: Int
    public let nodeCount: Int
    public let cpuCount: Int
    public let zonesPerNode: Int
    public let zoneCount: Int
    /// The min_free_kbytes in force (given or computed).
    public let minFreeKbytes: Int
    /// Pages managed by all zones.
    public let totalPages: Int
    /// Highest order served by the per-CPU lists (-1: none).
    @usableFromInline let pcpMaxOrder: Int
    /// fail_page_alloc is armed.
    @usableFromInline let faultInjectionOn: Bool
    /// Memory groups exist: allocations charge, frees uncharge.
    @usableFromInline let memcgOn: Bool
    /// Neither of the above: the fast path may serve allocations.
    @usableFromInline let fastPathOn: Bool
    /// Highest order the inline allocation fast path serves: pcpMaxOrder, or -1 when !fastPathOn.
    @usableFromInline let fastMaxOrder: Int
    /// Highest order the inline free fast path serves: pcpMaxOrder, or -1 with memory groups.
    @usableFromInline let freeFastMaxOrder: Int
    /// glibc's rseq area (offset from the thread pointer) when registered, else 0:
    /// the CPU number is one load from it in either pcp_lock mode.
    @usableFromInline let cpuArea: Int
    /// cpuCount when logical CPU i is real CPU i, else 0: a real CPU number
    /// below it is the logical one (one compare for the map and the range).
    @usableFromInline let fastCPULimit: UInt

    @usableFromInline let zones: UnsafeMutablePointer<Zone>
    /// zonelists[((node * 2 + thisNode) * 4 + type) * zoneCount + i]: zone indices.
    @usableFromInline let zonelists: UnsafeMutablePointer<Int32>
    @usableFromInline let zonelistLens: UnsafeMutablePointer<Int32>
    /// Node of each logical CPU.
    @usableFromInline let cpuNode: UnsafeMutablePointer<Int>
    /// Logical CPU for each real CPU (sched_getcpu value).
    @usableFromInline let realToLogical: UnsafeMutablePointer<Int>
    @usableFromInline let realCPUCount: Int
    /// Logical CPU i is real CPU i (a discovered topology): skip the table.
    @usableFromInline let identityCPUMap: Bool
    /// The fast path's shortcut, per zone type t and logical CPU:
    /// cpuFast[t * cpuCount + cpu] = the per-CPU slot of this CPU in the first
    /// zone of that CPU's node's zonelist for t (nil: no zone). One row per
    /// type: a caller's flags fix the row, which a loop computes once, and
    /// the CPU is a scaled index into it (no shift and add per call). All
    /// nil when the allocation fast path serves no order (fastMaxOrder < 0).
    @usableFromInline let cpuFast: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The free fast path's zone table, indexed by a block's zone byte (0...255)
    /// without a bounds check: rows of 256 words, `freeZoneRows` apart: the
    /// zone's first pfn, its managed pages (0 for a zone byte that names no
    /// zone, and for every zone when the free fast path is off, so every pfn
    /// fails the range check), its per-CPU slots, and the expect row (freeExpect).
    @usableFromInline let freeZones: UnsafeMutablePointer<Int>
    @inlinable static var freeZoneRows: Int { 256 }
    /// The fourth row of `freeZones`, indexed by a block's order byte: the
    /// state-and-order pair (PageMeta.stateAndOrder) an allocated head of
    /// that order holds when the free fast path takes the order
    /// (0...freeFastMaxOrder), else PageMeta.noHead.
    @inlinable @inline(__always)
    static func freeExpect(_ fz: UnsafeMutablePointer<Int>, order: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: fz[3 &* freeZoneRows &+ order])
    }
    /// Words of `freeZones`: four rows of 256.
    static var freeZonesWords: Int { 4 * freeZoneRows }
    /// pcp_lock as built: rseq ownership of the per-CPU lists, or trylock.
    public let pcpLock: PCPLockMode
    /// Why `pcp_lock = auto` fell back to trylock (nil: it did not).
    public let pcpLockNote: String?
    @usableFromInline let rseqOn: Bool
    /// glibc's __rseq_offset (rseq mode).
    @usableFromInline let rseqOffset: Int
    /// Slow-path state: policy, tasks, LRUs, OOM killer, background threads.
    let slow: SlowPathState
    private let mappings: [(UnsafeMutableRawPointer, Int)]
    private let pcpBlocks: [UnsafeMutableRawPointer]
    /// What binding each node's arena came to (see checkPlacement()).
    public let arenaBinding: [ArenaBinding]

    /// Builds the allocator: maps each node's arena, lays out zones and
    /// per-CPU caches, computes watermarks and seeds the free lists.
    ///
    /// `warningSink` receives each printed allocation-failure warning line.
    public init(_ config: AllocatorConfig, warningSink: (@Sendable (String) -> Void)? = nil) throws(ConfigError) {
        try config.validate()
        cnuma_init()
        self.config = config
        let topo = config.topology
        topology = topo
        pageSize = config.pageSize
        pageShift = config.pageSize.trailingZeroBitCount
        nodeCount = topo.nodeCount
        cpuCount = topo.cpuCount
        zonesPerNode = config.zones.count
        zoneCount = nodeCount * zonesPerNode
        pcpMaxOrder = config.perCPUMaxOrder
        faultInjectionOn = config.faultInjection.enabled
        memcgOn = !config.memoryGroups.isEmpty
        fastPathOn = !faultInjectionOn && !memcgOn
        fastMaxOrder = fastPathOn ? config.perCPUMaxOrder : -1
        freeFastMaxOrder = memcgOn ? -1 : config.perCPUMaxOrder
        guard zoneCount <= 255, nodeCount <= 255 else {
            throw .invalid(field: "nodes", value: "\(nodeCount)", reason: "at most 255 zones in all")
        }
        // pcp_lock is decided before anything is allocated: a refused `rseq`
        // throws here, where nothing can leak (LeakSanitizer found the arenas,
        // zones and tables of refused allocators leaked when it threw later).
        realCPUCount = max(topo.machineCPUs, topo.realCPU.max().map { $0 + 1 } ?? 1)
        identityCPUMap = topo.realCPU == Array(0..<cpuCount)
        fastCPULimit = identityCPUMap ? UInt(cpuCount) : 0
        cpuArea = cnuma_rseq_glibc_area()
        (pcpLock, pcpLockNote) = try PageAllocator.resolvePCPLock(config.policy.pcpLock, topology: topo, identity: identityCPUMap, realCPUs: realCPUCount)
        rseqOn = pcpLock == .rseq
        rseqOffset = rseqOn ? cnuma_rseq_area_offset() : 0

        // Sizing that depends on all zones.
        let perNodePages = config.zones.reduce(0) { $0 + $1.pages }
        totalPages = perNodePages * nodeCount
        let kbPerPage = config.pageSize / 1024
        let minFree = config.minFreeKbytes ?? KernelFormulas.minFreeKbytes(lowmemKbytes: totalPages * kbPerPage)
        minFreeKbytes = minFree
        let pagesMin = minFree / kbPerPage

        // Arenas and metadata.
        var maps: [(UnsafeMutableRawPointer, Int)] = []
        var blocks: [UnsafeMutableRawPointer] = []
        func mapZeroed(_ bytes: Int, node: Int) throws(ConfigError) -> UnsafeMutableRawPointer {
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else {
                for (q, n) in maps { munmap(q, n) }
                throw .mapFailed(node: node, bytes: bytes, errno: errno)
            }
            maps.append((p, bytes))
            return p
        }

        let zs = UnsafeMutablePointer<Zone>.allocate(capacity: zoneCount)
        var pfnCursor = 0
        var binding: [ArenaBinding] = []
        for n in 0..<nodeCount {
            pfnCursor = (pfnCursor + 1023) & ~1023 // nodes start on a max-order boundary
            let arena = try mapZeroed(perNodePages * config.pageSize, node: n)
            binding.append(ArenaBinding.bind(arena, length: perNodePages * config.pageSize, node: n, topology: topo, enabled: config.bindMemory))
            var managedByType = [Int](repeating: 0, count: ZoneType.count)
            for z in config.zones { managedByType[z.type.rawValue] = z.pages }
            let reserve = KernelFormulas.lowmemReserve(managedByType: managedByType, ratios: ZoneType.allCases.map { config.ratio($0) })
            // zone_highsize(): a memory-only node's per-CPU high is split over every CPU.
            let cpusOfNode = topo.hasCPUs(n) ? topo.nodes[n].cpus.count : topo.cpuCount
            var offset = 0
            for (i, spec) in config.zones.enumerated() {
                let meta = try mapZeroed(spec.pages * MemoryLayout<PageMeta>.stride, node: n)
                let wm = KernelFormulas.watermarks(managed: spec.pages, pagesMin: pagesMin, lowmemPages: totalPages, scaleFactor: config.watermarkScaleFactor)
                let batch = KernelFormulas.pcpBatch(managed: spec.pages, pageSize: config.pageSize)
                let high = KernelFormulas.pcpHighBounds(managed: spec.pages, low: wm.low, batch: batch, cpusOfNode: cpusOfNode, highFraction: config.percpuPagelistHighFraction)
                let threshold = KernelFormulas.vmstatThreshold(managed: spec.pages, onlineCPUs: topo.cpuCount, pageSize: config.pageSize)
                let slots = PerCPUPages.makeSlots(cpus: topo.cpuCount, batch: batch, highMin: high.min, highMax: high.max)
                blocks.append(slots)
                let info = ZoneInfo(
                    wmarkMin: wm.min, wmarkLow: wm.low, wmarkHigh: wm.high, wmarkPromo: wm.promo,
                    startPFN: pfnCursor, endPFN: pfnCursor + spec.pages, managed: spec.pages,
                    meta: meta.bindMemory(to: PageMeta.self, capacity: spec.pages),
                    memory: arena + offset * config.pageSize,
                    pcpBase: slots, pageShift: pageShift,
                    maxDrift: topo.cpuCount * threshold, vmThreshold: threshold,
                    node: n, type: spec.type, index: n * zonesPerNode + i,
                    batch: batch, highMin: high.min, highMax: high.max, cpuCount: topo.cpuCount)
                let zone = Zone.make(info: info)
                for c in 0..<topo.cpuCount { zone.pcp(c).setZone(zone) }
                for t in 0..<ZoneType.count { zone.lowmemReserve[t] = reserve[spec.type.rawValue][t] }
                let seeded = zone.seedFreeListsLocked()
                zone.freePages.pointee.store(seeded, ordering: .relaxed)
                (zs + n * zonesPerNode + i).initialize(to: zone)
                pfnCursor += spec.pages
                offset += spec.pages
            }
        }
        zones = zs
        arenaBinding = binding
        slow = SlowPathState(policy: config.policy, reclaim: config.reclaim, nodes: nodeCount, zones: zoneCount,
                             faultInjection: config.faultInjection, warnRatelimitMs: config.warnRatelimitMs, warningSink: warningSink,
                             groups: config.memoryGroups)
        mappings = maps
        pcpBlocks = blocks

        // Zonelists: nodes by distance; within a node, highest eligible zone first.
        let stride = zoneCount
        zonelists = .allocate(capacity: nodeCount * 2 * ZoneType.count * stride)
        zonelistLens = .allocate(capacity: nodeCount * 2 * ZoneType.count)
        for n in 0..<nodeCount {
            for thisNode in 0..<2 {
                let order = thisNode == 1 ? [NodeID(n)] : topo.fallbackOrder(from: NodeID(n))
                for t in 0..<ZoneType.count {
                    let slot = (n * 2 + thisNode) * ZoneType.count + t
                    var len = 0
                    for node in order {
                        for i in Swift.stride(from: zonesPerNode - 1, through: 0, by: -1) where config.zones[i].type.rawValue <= t {
                            zonelists[slot * stride + len] = Int32(node.rawValue * zonesPerNode + i)
                            len += 1
                        }
                    }
                    zonelistLens[slot] = Int32(len)
                }
            }
        }
        cpuNode = .allocate(capacity: cpuCount)
        for c in 0..<cpuCount { cpuNode[c] = topo.node(of: CPUID(c)).rawValue }
        realToLogical = .allocate(capacity: realCPUCount)
        for r in 0..<realCPUCount { realToLogical[r] = topo.realCPU.firstIndex(of: r) ?? (r % cpuCount) }
        cpuFast = .allocate(capacity: cpuCount * ZoneType.count)
        cpuFast.initialize(repeating: nil, count: cpuCount * ZoneType.count)
        for c in 0..<cpuCount {
            for t in 0..<ZoneType.count {
                let slot = (cpuNode[c] * 2) * ZoneType.count + t
                guard zonelistLens[slot] > 0 else { continue }
                let zone = zones[Int(zonelists[slot * stride])]
                // No slots when the fast path serves no order: allocate() then
                // needs no order limit for order 0 (see there).
                if fastMaxOrder >= 0 { cpuFast[t * cpuCount + c] = zone.pcp(c).base }
                // The fast path checks LOW with classzone t in this zone: the flag's level covers every such t.
                let i = zone.info
                i.pointee.fastMark = i.pointee.fastMark == .max ? 0 : i.pointee.fastMark
                i.pointee.fastMark = max(i.pointee.fastMark, i.pointee.wmarkLow + zone.lowmemReserve[t] + i.pointee.maxDrift)
            }
        }
        freeZones = .allocate(capacity: PageAllocator.freeZonesWords)
        freeZones.initialize(repeating: 0, count: PageAllocator.freeZonesWords)
        precondition(MemoryLayout<PageMeta>.offset(of: \PageMeta.state) == PageMeta.stateOffset
                     && MemoryLayout<PageMeta>.offset(of: \PageMeta.order) == PageMeta.stateOffset + 1, "PageMeta: state and order are not adjacent at stateOffset")
        for o in 0..<PageAllocator.freeZoneRows {
            freeZones[3 * PageAllocator.freeZoneRows + o] = Int(o <= freeFastMaxOrder ? PageMeta.allocatedHead(order: o) : PageMeta.noHead)
        }
        for z in 0..<zoneCount {
            let i = zones[z].info.pointee
            freeZones[z] = i.startPFN
            // Per-CPU lists off for frees (perCPUMaxOrder < 0, or memory groups): 0 pages, so
            // every free goes straight to freeGeneral after the range check, as it did
            // after the order check before the expect row took that check over.
            freeZones[PageAllocator.freeZoneRows + z] = freeFastMaxOrder >= 0 ? i.managed : 0
            freeZones[2 * PageAllocator.freeZoneRows + z] = Int(bitPattern: i.pcpBase)
        }
    }

    deinit {
        stopBackgroundThreads()
        for i in 0..<zoneCount { zones[i].destroy() }
        zones.deallocate()
        for b in pcpBlocks { b.deallocate() }
        for (p, n) in mappings { munmap(p, n) }
        zonelists.deallocate()
        zonelistLens.deallocate()
        cpuNode.deallocate()
        realToLogical.deallocate()
        cpuFast.deallocate()
        freeZones.deallocate()
    }

    // MARK: small lookups

    /// The logical CPU the calling thread runs on: one load from glibc's
    /// rseq area (sched_getcpu() where glibc registered none, e.g. valgrind)
    /// when logical CPUs are real CPUs; else currentCPUIndex(). Always in
    /// 0..<cpuCount, so the fast paths check only a CPU the caller names.
    @inlinable @inline(__always)
    func thisCPU() -> Int {
        let r = cpuArea != 0 ? Int(cnuma_rseq_cpu(cpuArea)) : Int(cnuma_sched_getcpu())
        if UInt(bitPattern: r) < fastCPULimit { return r }
        return currentCPUIndexCold()
    }

    @usableFromInline @inline(never)
    func currentCPUIndexCold() -> Int { currentCPUIndex() }

    /// The logical CPU the calling thread runs on (sched_getcpu via rseq),
    /// always in 0..<cpuCount (a failed sched_getcpu, -1, maps like any
    /// other number outside the table).
    @inlinable @inline(__always)
    public func currentCPUIndex() -> Int {
        let r = Int(cnuma_current_cpu())
        let u = UInt(bitPattern: r)
        if identityCPUMap && u < UInt(bitPattern: cpuCount) { return r }
        return realToLogical[u < UInt(bitPattern: realCPUCount) ? r : Int(u % UInt(bitPattern: realCPUCount))]
    }

    @inlinable @inline(__always)
    func zonelist(node: Int, type: ZoneType, thisNode: Bool) -> (UnsafeMutablePointer<Int32>, Int) {
        let slot = (node &* 2 &+ (thisNode ? 1 : 0)) &* ZoneType.count &+ type.rawValue
        return (zonelists + slot &* zoneCount, Int(zonelistLens[slot]))
    }

    /// The zone table index of the zone holding `pfn`, or nil.
    public func zoneIndex(containing pfn: PFN) -> Int? {
        var lo = 0, hi = zoneCount - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let i = zones[mid].info.pointee
            if pfn.rawValue < i.startPFN { hi = mid - 1 } else if pfn.rawValue >= i.endPFN { lo = mid + 1 } else { return mid }
        }
        return nil
    }

    /// Describes zone `index` (node, type, pfn range, watermarks, pcp sizing).
    public func zoneDescription(_ index: Int) -> ZoneSummary {
        let z = zones[index]
        let i = z.info.pointee
        return ZoneSummary(index: index, node: NodeID(i.node), type: i.type, startPFN: PFN(i.startPFN), pages: i.managed,
                           min: i.wmarkMin, low: i.wmarkLow, high: i.wmarkHigh, promo: i.wmarkPromo,
                           lowmemReserve: (0..<ZoneType.count).map { z.lowmemReserve[$0] },
                           batch: i.batch, highMin: i.highMin, highMax: i.highMax, vmstatThreshold: i.vmThreshold)
    }
}

/// Sizing facts of one zone, for output and tests.
public struct ZoneSummary: Sendable, Equatable {
    public let index: Int
    public let node: NodeID
    public let type: ZoneType
    public let startPFN: PFN
    public let pages: Int
    public let min: Int, low: Int, high: Int, promo: Int
    /// lowmem_reserve against requests whose highest zone type is 0...3.
    public let lowmemReserve: [Int]
    public let batch: Int, highMin: Int, highMax: Int
    public let vmstatThreshold: Int
}
