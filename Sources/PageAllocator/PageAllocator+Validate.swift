/// Where every page of the allocator is, as `validate()` counted it.
public struct PageAccounting: Sendable, Equatable, CustomStringConvertible {
    /// Pages managed by all zones.
    public var managed = 0
    /// Pages in free buddy blocks.
    public var buddyFree = 0
    /// Pages in per-CPU lists.
    public var perCPU = 0
    /// Pages in allocated blocks.
    public var allocated = 0
    /// Allocated blocks.
    public var allocatedBlocks = 0
    /// Of the allocated pages, those on the LRUs (reclaimable, owned by the allocator).
    public var reclaimable = 0
    public var description: String {
        "managed \(managed) = buddy \(buddyFree) + per-CPU \(perCPU) + allocated \(allocated) (\(allocatedBlocks) blocks, \(reclaimable) pages on LRUs)"
    }
}

/// An invariant that does not hold. Lists every violation found (up to 20).
public struct ValidationError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String { "allocator invariants violated:\n  " + problems.joined(separator: "\n  ") }
}

extension PageAllocator {
    /// Checks every invariant, holding every per-CPU slot (CPU by CPU, each
    /// with one membarrier in rseq mode) and then every zone lock, so it is
    /// safe (if slow) while other threads run:
    /// - every pfn is in exactly one place: a free buddy block (head or
    ///   inside), a per-CPU list, or an allocated block; no blocks overlap;
    /// - only block heads carry a state; blocks are aligned to their order;
    /// - free lists are well-formed, doubly linked, and nr_free counts them;
    /// - no two free buddies of the same order are left unmerged;
    /// - per-CPU counts equal what the lists hold;
    /// - NR_FREE_PAGES (counter + per-CPU deltas) equals the buddy's free pages.
    @discardableResult
    public func validate() throws(ValidationError) -> PageAccounting {
        for c in 0..<cpuCount { lockCPUSlots(c) }
        for z in 0..<zoneCount { zones[z].lock.lock() }
        defer {
            for z in 0..<zoneCount { zones[z].lock.unlock() }
            for c in 0..<cpuCount { unlockCPUSlots(c) }
        }
        var problems: [String] = []
        func fail(_ s: String) { if problems.count < 20 { problems.append(s) } }
        var acct = PageAccounting()
        for zi in 0..<zoneCount {
            let zone = zones[zi]
            let info = zone.info.pointee
            let m = info.meta
            let n = info.managed
            let name = "node \(info.node) zone \(info.type.name)"
            acct.managed += n
            var cover = [UInt8](repeating: 0, count: n) // 0 none, 1 buddy, 2 pcp, 3 allocated
            var isHead = [Bool](repeating: false, count: n)
            func claim(_ idx: Int, order: Int, as kind: UInt8, what: String) {
                let pfn = info.startPFN + idx
                guard pfn & ((1 << order) - 1) == 0 else { fail("\(name): \(what) block at pfn \(pfn) order \(order) is not aligned"); return }
                guard idx >= 0, idx + (1 << order) <= n else { fail("\(name): \(what) block at pfn \(pfn) order \(order) runs past the zone"); return }
                isHead[idx] = true
                for p in idx..<(idx + (1 << order)) {
                    if cover[p] != 0 { fail("\(name): pfn \(info.startPFN + p) is in two places (\(cover[p]) and \(what))"); return }
                    cover[p] = kind
                }
            }
            // Buddy free lists.
            var buddyPages = 0
            for o in 0..<Order.count {
                var idx = zone.freeHead[o]
                var prev = PageMeta.none
                var blocks = 0
                while idx != PageMeta.none {
                    guard Int(idx) < n, blocks <= n else { fail("\(name): free list \(o) is corrupt (index \(idx))"); break }
                    let pm = m[Int(idx)]
                    if pm.state != .buddy || Int(pm.order) != o || Int(pm.buddyOrder) != o + 1 { fail("\(name): free list \(o) holds pfn \(info.startPFN + Int(idx)) with state \(pm.state) order \(pm.order) buddyOrder \(pm.buddyOrder)") }
                    if pm.prev != prev { fail("\(name): free list \(o) back link broken at pfn \(info.startPFN + Int(idx))") }
                    claim(Int(idx), order: o, as: 1, what: "buddy")
                    if o < Order.maxOrder {
                        let bp = (info.startPFN + Int(idx)) ^ (1 << o)
                        if bp >= info.startPFN, bp + (1 << o) <= info.endPFN {
                            let b = m[bp - info.startPFN]
                            if b.state == .buddy && Int(b.order) == o { fail("\(name): free buddies pfn \(info.startPFN + Int(idx)) and \(bp) of order \(o) are not merged") }
                        }
                    }
                    blocks += 1
                    buddyPages += 1 << o
                    prev = idx
                    idx = pm.next
                }
                if zone.freeTail[o] != prev { fail("\(name): free list \(o) tail pointer is wrong") }
                if zone.freeBlocks(o) != blocks { fail("\(name): nr_free[\(o)] = \(zone.freeBlocks(o)) but the list holds \(blocks) blocks") }
            }
            acct.buddyFree += buddyPages
            let snapshot = freePagesSnapshot(zone)
            if snapshot != buddyPages { fail("\(name): NR_FREE_PAGES is \(snapshot) but the free lists hold \(buddyPages) pages") }
            // Per-CPU lists.
            for c in 0..<cpuCount {
                let slot = zone.pcp(c)
                var pages = 0
                for o in 0...Order.pcpMax {
                    var idx = slot.heads[o]
                    var len = 0
                    while idx != PageMeta.none {
                        guard Int(idx) < n, len <= n else { fail("\(name): cpu \(c) list \(o) is corrupt"); break }
                        let pm = m[Int(idx)]
                        if pm.state != .pcp || Int(pm.order) != o { fail("\(name): cpu \(c) list \(o) holds pfn \(info.startPFN + Int(idx)) with state \(pm.state) order \(pm.order)") }
                        claim(Int(idx), order: o, as: 2, what: "per-CPU")
                        len += 1
                        pages += 1 << o
                        idx = pm.next
                    }
                }
                if slot.count != pages { fail("\(name): cpu \(c) pcp count \(slot.count) but lists hold \(pages) pages") }
                acct.perCPU += pages
            }
            // Allocated blocks, and the tail rule.
            var idx = 0
            while idx < n {
                let pm = m[idx]
                if pm.state == .allocated {
                    if Int(pm.order) > Order.maxOrder { fail("\(name): allocated pfn \(info.startPFN + idx) has order \(pm.order)"); idx += 1; continue }
                    claim(idx, order: Int(pm.order), as: 3, what: "allocated")
                    acct.allocated += 1 << Int(pm.order)
                    acct.allocatedBlocks += 1
                    idx += 1
                } else {
                    if pm.state != .tail && !isHead[idx] { fail("\(name): pfn \(info.startPFN + idx) has state \(pm.state) but is on no list") }
                    idx += 1
                }
            }
            for p in 0..<n {
                if m[p].buddyOrder != 0 && !(cover[p] == 1 && isHead[p]) { fail("\(name): pfn \(info.startPFN + p) is marked a buddy head of order \(Int(m[p].buddyOrder) - 1) but is on no free list"); break }
                if cover[p] == 0 { fail("\(name): pfn \(info.startPFN + p) is lost: free nowhere, cached nowhere, allocated to no one"); break }
                if !isHead[p] && m[p].state != .tail { fail("\(name): pfn \(info.startPFN + p) inside a block carries state \(m[p].state)"); break }
            }
        }
        acct.reclaimable = reclaimablePages().values.reduce(0, +)
        if acct.reclaimable > acct.allocated { fail("LRUs hold \(acct.reclaimable) pages but only \(acct.allocated) are allocated") }
        if acct.buddyFree + acct.perCPU + acct.allocated != acct.managed {
            fail("page total: \(acct)")
        }
        if !problems.isEmpty { throw ValidationError(problems: problems) }
        return acct
    }
}
