extension PageAllocator {
    /// The /proc/buddyinfo text: one line per zone, free blocks per order.
    public func buddyinfo() -> String {
        var s = ""
        for z in 0..<zoneCount {
            let i = zones[z].info.pointee
            s += "Node \(topology.number(of: i.node)), zone " + pad(i.type.name, 8) + " "
            for n in freeBlocks(zone: z) { s += pad(String(n), 6) + " " }
            s += "\n"
        }
        return s
    }

    /// The /proc/zoneinfo text for every zone: free pages, watermarks, sizes,
    /// protection (lowmem_reserve), counters, and each CPU's pageset: the
    /// kernel's fields only, unless `extras` adds this project's counters
    /// (nr_free_pcp as a zone field, pgalloc, pgfree, zone_lock_acquire).
    public func zoneinfo(extras: Bool = false) -> String {
        var s = ""
        for z in 0..<zoneCount {
            let zone = zones[z]
            let i = zone.info.pointee
            let c = counters(zone: z)
            let free = freePages(zone: z)
            s += "Node \(topology.number(of: i.node)), zone " + pad(i.type.name, 8)
            s += "\n  pages free     \(free)"
            s += "\n        boost    0"
            s += "\n        min      \(i.wmarkMin)"
            s += "\n        low      \(i.wmarkLow)"
            s += "\n        high     \(i.wmarkHigh)"
            s += "\n        promo    \(i.wmarkPromo)"
            s += "\n        spanned  \(i.managed)"
            s += "\n        present  \(i.managed)"
            s += "\n        managed  \(i.managed)"
            s += "\n        cma      0"
            s += "\n        protection: (" + (0..<ZoneType.count).map { String(zone.lowmemReserve[$0]) }.joined(separator: ", ") + ")"
            func stat(_ name: String, _ v: Int) { s += "\n      " + name.padding(12) + " \(v)" }
            stat("nr_free_pages", free)
            if extras { stat("nr_free_pcp", perCPUPages(zone: z)) }
            for e in [VMEvent.numaHit, .numaMiss, .numaForeign, .numaLocal, .numaOther] { stat(e.name, c[e]) }
            if extras {
                stat("pgalloc", c[.pgalloc])
                stat("pgfree", c[.pgfree])
                stat("zone_lock_acquire", c[.zoneLockAcquire])
            }
            s += "\n  pagesets"
            for cpu in 0..<cpuCount {
                let p = perCPUState(zone: z, cpu: cpu)
                s += "\n    cpu: \(cpu)"
                s += "\n              count:    \(p.count)"
                s += "\n              high:     \(p.high)"
                s += "\n              batch:    \(p.batch)"
                s += "\n              high_min: \(p.highMin)"
                s += "\n              high_max: \(p.highMax)"
                s += "\n  vm stats threshold: \(i.vmThreshold)"
            }
            s += "\n  node_unreclaimable:  0"
            s += "\n  start_pfn:           \(i.startPFN)\n"
        }
        return s
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
