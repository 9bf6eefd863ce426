import CNUMA
import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

// Set-up before the barrier (and after a restart): prefill pools and initial page cache.
extension Worker {

    /// Fills each `prefill` pool to its `live` size and creates each
    /// reclaimable op's `initial` blocks (not measured). Gives up on a pool
    /// after as many failures as its size, and at once when the task is
    /// killed, the allocator shuts down or the run is told to stop.
    mutating func prefill() {
        for i in 0..<mem.opCount where mem.ops[i].prefill && mem.ops[i].pool >= 0 {
            let op = mem.ops[i]
            var failures = 0
            while mem.pools[op.pool].count < op.limit && failures < op.limit {
                guard let b = prefillOne(op) else {
                    if pendingDeath || aborted || control.stop.load(ordering: .relaxed) { publishRSS(); return }
                    failures += 1
                    continue
                }
                let words = mem.ops[i].nextTouchWords()
                let tag = touch(b, words: words)
                mem.pools[op.pool].pushBack(H(block: b, tag: tag, words: words))
                heldPages &+= 1 &<< backend.order(of: b)
            }
        }
        for i in 0..<mem.opCount where mem.ops[i].reclaimKind != nil && mem.ops[i].initial > 0 {
            let op = mem.ops[i]
            var made = 0, failures = 0
            while made < op.initial && failures < op.initial {
                guard let b = prefillOne(op) else {
                    if pendingDeath || aborted || control.stop.load(ordering: .relaxed) { publishRSS(); return }
                    failures += 1
                    continue
                }
                _ = touch(b, words: mem.ops[i].nextTouchWords())
                lru(b, kind: op.reclaimKind!)
                made += 1
            }
        }
        publishRSS()
    }

    mutating func prefillOne(_ op: HotOp) -> B.Block? {
        if control.stop.load(ordering: .relaxed) { return nil }
        let order = op.orders.draw(rng.next())
        do {
            let b = try allocate(Order(unchecked: order), op.flags, op.node)
            successes &+= 1
            slot.successes.pointee.store(successes, ordering: .relaxed)
            if inRestartPrefill { c.restartAllocs &+= 1 }
            return b
        } catch {
            switch error {
            case .killed: pendingDeath = true
            case .aborted: aborted = true
            default: break
            }
            return nil
        }
    }

    /// Hands a block to the allocator's LRU, charged to this task.
    @inline(__always)
    mutating func lru(_ b: B.Block, kind: ReclaimableKind) {
        backend.addReclaimable(b, kind: kind, owner: owner)
        let pages = 1 &<< backend.order(of: b)
        switch kind {
        case .clean: c.lruClean &+= pages
        case .dirty: c.lruDirty &+= pages
        case .anon: c.lruAnon &+= pages
        }
    }
}
