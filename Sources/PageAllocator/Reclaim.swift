import CNUMA
import Synchronization
import Topology

/// Kinds of reclaimable memory a workload creates.
public enum ReclaimableKind: Int, Sendable, CaseIterable, Codable {
    /// Clean page cache: dropped at once.
    case clean = 0
    /// Dirty page cache: needs writeback (__GFP_FS) and simulated I/O time.
    case dirty
    /// Anonymous memory: needs swap (__GFP_IO), I/O time and a free swap slot.
    /// Private to its task: freed when the task exits, reapable by oom_reaper.
    case anon
}

/// How reclaim behaves: simulated I/O costs and swap space.
public struct ReclaimSettings: Sendable, Equatable, Codable {
    /// Simulated writeback time per dirty page.
    public var writebackNsPerPage: Int = 20_000
    /// Simulated swap-out time per anonymous page.
    public var swapNsPerPage: Int = 50_000
    /// Swap slots (pages); 0 = no swap, so anonymous memory cannot be reclaimed.
    public var swapPages: Int = 0
    /// Pages one reclaim pass aims for (SWAP_CLUSTER_MAX).
    public var batch: Int = 32
    public init() {}
}

struct LRUEntry { var block: PageBlock; var owner: UInt16 }

/// A FIFO of LRU entries: push at the back (newest), reclaim from the front (oldest).
struct LRURing {
    var items: [LRUEntry] = []
    var head = 0
    var count: Int { items.count - head }
    mutating func push(_ e: LRUEntry) { items.append(e) }
    mutating func pop() -> LRUEntry? {
        guard head < items.count else { return nil }
        let e = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count { items.removeFirst(head); head = 0 }
        return e
    }
    /// Removes and returns every entry of `owner` (O(n); exit and reap only).
    mutating func removeAll(owner: UInt16) -> [LRUEntry] {
        var out: [LRUEntry] = []
        var keep: [LRUEntry] = []
        keep.reserveCapacity(count)
        for i in head..<items.count { if items[i].owner == owner { out.append(items[i]) } else { keep.append(items[i]) } }
        items = keep
        head = 0
        return out
    }
    mutating func removeAll() -> [LRUEntry] { defer { items = []; head = 0 }; return Array(items[head...]) }
}

/// One node's LRU lists (per kind), under one lock (the lruvec lock).
final class NodeLRU: @unchecked Sendable {
    let lists = Mutex<[LRURing]>([LRURing(), LRURing(), LRURing()])
}

extension PageAllocator {
    /// Puts an allocated block on its node's LRU as reclaimable memory charged
    /// to `owner`. From now on the allocator owns it: reclaim frees it, and
    /// anonymous memory is freed when its task exits.
    public func addReclaimable(_ block: PageBlock, kind: ReclaimableKind, owner: UInt16) {
        let node = Int(block.node8)
        slow.lrus[node].lists.withLock { $0[kind.rawValue].push(LRUEntry(block: block, owner: owner)) }
        charge(owner, kind: kind, pages: block.pages, zone: block.zoneIndex)
    }

    /// Pages on the LRUs, by kind.
    public func reclaimablePages() -> [ReclaimableKind: Int] {
        var out: [ReclaimableKind: Int] = [:]
        for lru in slow.lrus {
            lru.lists.withLock { l in for k in ReclaimableKind.allCases { out[k, default: 0] += l[k.rawValue].items[l[k.rawValue].head...].reduce(0) { $0 + $1.block.pages } } }
        }
        return out
    }

    /// Frees every LRU page (drop_caches plus the exit of every task). Returns pages freed.
    @discardableResult
    public func dropAllReclaimable() -> Int {
        var n = 0
        for lru in slow.lrus {
            let all = lru.lists.withLock { l in l.indices.flatMap { k in l[k].removeAll().map { ($0, ReclaimableKind(rawValue: k)!) } } }
            for (e, k) in all { release(e, kind: k); n += e.block.pages }
        }
        return n
    }

    func charge(_ owner: UInt16, kind: ReclaimableKind, pages: Int, zone: Int) {
        if kind == .anon { slow.zoneAnon[zone].wrappingAdd(pages, ordering: .relaxed) } else { slow.zoneFile[zone].wrappingAdd(pages, ordering: .relaxed) }
        guard owner != 0 else { return }
        slow.tasks.add(owner, kind == .anon ? .anon : .cache, pages)
    }

    /// Uncharges and frees one LRU entry.
    func release(_ e: LRUEntry, kind: ReclaimableKind) {
        let z = e.block.zoneIndex
        if kind == .anon { slow.zoneAnon[z].wrappingAdd(-e.block.pages, ordering: .relaxed) } else { slow.zoneFile[z].wrappingAdd(-e.block.pages, ordering: .relaxed) }
        if e.owner != 0 { slow.tasks.add(e.owner, kind == .anon ? .anon : .cache, -e.block.pages) }
        releaseToBuddy(e.block)
    }

    /// Frees a reclaimed (or reaped) block straight to the buddy, so the
    /// watermark check of whoever reclaimed it sees the pages at once. (Linux
    /// frees them through the per-CPU lists, where NR_FREE_PAGES does not
    /// count them until a drain.)
    func releaseToBuddy(_ block: PageBlock) {
        let zone = zones[block.zoneIndex]
        let idx = UInt32(Int(block.pfn32) - zone.info.pointee.startPFN)
        let owner = zone.meta[Int(idx)].state == .allocated ? zone.meta[Int(idx)].owner : 0
        let cpu = topology.homeCPU(of: Int(block.node8)).rawValue
        do {
            try freeToBuddy(zone, idx: idx, order: block.order.rawValue, cpu: cpu, pcpContended: false)
            if memcgOn { unchargeGroup(task: owner, pages: block.pages) }
        } catch {
            assertionFailure("an LRU page was not allocated: \(error)")
        }
    }

    func freeAnonPages(of id: UInt16) {
        for lru in slow.lrus {
            for e in lru.lists.withLock({ $0[ReclaimableKind.anon.rawValue].removeAll(owner: id) }) { release(e, kind: .anon) }
        }
    }

    func uncharge(_ id: UInt16) {
        // Page cache outlives its task; stop charging it to the dead task.
        for lru in slow.lrus {
            lru.lists.withLock { l in
                for k in [ReclaimableKind.clean, .dirty] {
                    for i in l[k.rawValue].head..<l[k.rawValue].items.count where l[k.rawValue].items[i].owner == id {
                        l[k.rawValue].items[i].owner = 0
                    }
                }
            }
        }
        slow.tasks.set(id, .cache, 0)
        slow.tasks.set(id, .anon, 0)
    }

    /// zone_reclaimable_pages(): file pages, plus anonymous pages while swap has room.
    func reclaimable(zone z: Int) -> Int {
        let file = slow.zoneFile[z].load(ordering: .relaxed)
        let swapRoom = slow.reclaim.swapPages - slow.swapUsed.load(ordering: .relaxed)
        return file + (swapRoom > 0 ? min(swapRoom, slow.zoneAnon[z].load(ordering: .relaxed)) : 0)
    }

    /// shrink_node(): reclaims up to `target` pages from `node` with what
    /// `gfp` allows. Clean cache first (dropped at once), then dirty cache
    /// (writeback: needs __GFP_FS, costs I/O time), then anonymous memory
    /// (swap: needs __GFP_IO and a free slot, costs I/O time). Pages a
    /// caller may not reclaim are scanned and rotated back.
    func shrinkNode(_ node: Int, target: Int, gfp: GFP, kswapd: Bool, cpu: Int, task: UInt16, group: Int = 0) -> (scanned: Int, reclaimed: Int) {
        var free: [(LRUEntry, ReclaimableKind)] = []
        var write: [LRUEntry] = []
        var swap: [LRUEntry] = []
        var scanned = 0
        let swapLimit = slow.reclaim.swapPages
        let s = slow
        let groupOf: (UInt16) -> Int = { [unowned self] in self.group(of: $0) }
        slow.lrus[node].lists.withLock { l in
            var got = 0
            // Scans up to the list's length from the oldest end: takes what it
            // may (in `group`, allowed by `ok`), rotates the rest to the back.
            func scan(_ k: ReclaimableKind, allowed: Bool, _ take: (LRUEntry) -> Bool) {
                var n = l[k.rawValue].count
                while got < target && n > 0, let e = l[k.rawValue].pop() {
                    n -= 1
                    scanned += e.block.pages
                    if allowed && (group == 0 || groupOf(e.owner) == group) && take(e) {
                        got += e.block.pages
                    } else {
                        l[k.rawValue].push(e)
                        if !allowed && group == 0 { break } // nothing of this kind may go: one look is enough
                    }
                }
            }
            scan(.clean, allowed: true) { free.append(($0, .clean)); return true }
            // Writeback needs __GFP_FS (and __GFP_IO under it).
            scan(.dirty, allowed: gfp.contains(.fs) && gfp.contains(.io)) { write.append($0); return true }
            // Swap needs __GFP_IO and a free slot.
            scan(.anon, allowed: gfp.contains(.io) && swapLimit > 0) { e in
                guard s.swapUsed.wrappingAdd(e.block.pages, ordering: .relaxed).newValue <= swapLimit else {
                    s.swapUsed.wrappingAdd(-e.block.pages, ordering: .relaxed)
                    return false
                }
                swap.append(e)
                return true
            }
        }
        let ioPages = write.reduce(0) { $0 + $1.block.pages } + swap.reduce(0) { $0 + $1.block.pages }
        if ioPages > 0 {
            setTaskActivity(task, .reclaimIO)
            let ns = write.reduce(0) { $0 + $1.block.pages } * slow.reclaim.writebackNsPerPage
                + swap.reduce(0) { $0 + $1.block.pages } * slow.reclaim.swapNsPerPage
            sleepNanoseconds(UInt64(max(ns, 0)))
        }
        var reclaimed = 0
        for (e, k) in free { release(e, kind: k); reclaimed += e.block.pages }
        for e in write { release(e, kind: .dirty); reclaimed += e.block.pages }
        for e in swap {
            if e.owner != 0 { slow.tasks.add(e.owner, .swap, e.block.pages) }
            release(e, kind: .anon)
            reclaimed += e.block.pages
        }
        slow.counters.bump(.pgwriteback, write.reduce(0) { $0 + $1.block.pages })
        slow.counters.bump(.pswpout, swap.reduce(0) { $0 + $1.block.pages })
        slow.counters.bump(kswapd ? .pgscanKswapd : .pgscanDirect, scanned)
        slow.counters.bump(kswapd ? .pgstealKswapd : .pgstealDirect, reclaimed)
        return (scanned, reclaimed)
    }

    /// try_to_free_pages(): direct reclaim over the zonelist's nodes until a
    /// batch is reclaimed. Returns pages reclaimed (progress).
    func directReclaim(nodes: [Int], gfp: GFP, cpu: Int, task: UInt16) -> Int {
        slow.counters.bump(.allocstall)
        slow.counters.bump(.allocstall(ZoneType.highest(for: gfp)))
        var total = 0
        for n in nodes {
            total += shrinkNode(n, target: slow.reclaim.batch - total, gfp: gfp, kswapd: false, cpu: cpu, task: task).reclaimed
            if total >= slow.reclaim.batch { break }
        }
        return total
    }
}
