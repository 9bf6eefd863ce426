import Synchronization

extension PageAllocator {
    /// Merged counters of one zone: every CPU's slot, the zone's locked
    /// counters and its rare atomics. While threads run, a statistic: each
    /// CPU's counters are read under that CPU's lock and the zone's under the
    /// zone lock, one lock at a time (never nested: the per-CPU paths take the
    /// zone lock inside their own), so the read is race-free without atomics
    /// on the fast path; the sum is not one instant's.
    public func counters(zone index: Int) -> ZoneCounters {
        let zone = zones[index]
        var r = ZoneCounters()
        for c in 0..<cpuCount {
            let slot = zone.pcp(c)
            lockSlot(slot, cpu: c)
            for e in 0..<VMEvent.count { r.values[e] &+= slot.counters[e] }
            releaseSlot(slot)
        }
        zone.lock.lock()
        for e in 0..<VMEvent.count { r.values[e] &+= zone.lockedCounters[e] }
        zone.lock.unlock()
        for e in 0..<VMEvent.count { r.values[e] &+= zone.rare[e].load(ordering: .relaxed) }
        var fast = 0
        for o in 0...Order.pcpMax {
            let e = VMEvent.fastAlloc.rawValue + o
            fast += r.values[e]
            r[.pgalloc] += r.values[e] << o
            r.values[e] = 0
        }
        r[.pcpAllocHit] += fast
        r[.numaHit] += fast
        r[.numaLocal] += fast
        return r
    }

    /// Counters of every zone added together.
    public func totalCounters() -> ZoneCounters {
        (0..<zoneCount).reduce(ZoneCounters()) { $0 + counters(zone: $1) }
    }

    /// Exact free pages of a zone in the buddy (NR_FREE_PAGES snapshot).
    public func freePages(zone index: Int) -> Int { freePagesSnapshot(zones[index]) }

    /// A zone's min, low and high watermarks (pages), as the allocator checks them now.
    public func watermarks(zone index: Int) -> (min: Int, low: Int, high: Int) {
        let i = zones[index].info.pointee
        return (i.wmarkMin, i.wmarkLow, i.wmarkHigh)
    }

    /// Pages held in per-CPU lists of a zone, all CPUs (each read under its CPU's lock).
    public func perCPUPages(zone index: Int) -> Int {
        (0..<cpuCount).reduce(0) { $0 + perCPUState(zone: index, cpu: $1).count }
    }

    /// Per-CPU state of a zone for one CPU: (count, high, batch, high_min, high_max), read under its lock.
    public func perCPUState(zone index: Int, cpu: Int) -> (count: Int, high: Int, batch: Int, highMin: Int, highMax: Int) {
        let s = zones[index].pcp(cpu)
        lockSlot(s, cpu: cpu)
        defer { releaseSlot(s) }
        return (s.count, s.high, s.batch.pointee, s.highMin.pointee, s.highMax.pointee)
    }

    /// Free blocks per order of a zone (/proc/buddyinfo's row).
    public func freeBlocks(zone index: Int) -> [Int] {
        let zone = zones[index]
        zone.lock.lock()
        defer { zone.lock.unlock() }
        return (0..<Order.count).map { zone.freeBlocks($0) }
    }

    /// /proc/vmstat-style lines: nr_free_pages, pgalloc_<zone> per zone type,
    /// then the other events summed over zones.
    public func vmstat() -> [(name: String, value: Int)] {
        var out: [(String, Int)] = []
        out.append(("nr_free_pages", (0..<zoneCount).reduce(0) { $0 + freePages(zone: $1) }))
        out.append(("nr_free_pcp", (0..<zoneCount).reduce(0) { $0 + perCPUPages(zone: $1) }))
        var byType = [Int](repeating: 0, count: ZoneType.count)
        var sum = ZoneCounters()
        for z in 0..<zoneCount {
            let c = counters(zone: z)
            byType[zones[z].info.pointee.type.rawValue] += c[.pgalloc]
            sum = sum + c
        }
        for t in ZoneType.allCases where config.zones.contains(where: { $0.type == t }) {
            out.append(("pgalloc_" + t.name.lowercased(), byType[t.rawValue]))
        }
        for e in VMEvent.allCases where e != .pgalloc && e.rawValue < VMEvent.fastAlloc.rawValue { out.append((e.name, sum[e])) }
        return out
    }

    /// Bytes of page metadata per managed page.
    public var metadataBytesPerPage: Int { MemoryLayout<PageMeta>.stride }
}
