import Foundation
import PageAllocator
import Topology

// [memory]
extension WorkloadDecoder {
    func decodeMemory(_ r: TableReader, nodes: Int) throws(WorkloadError) -> MemorySpec {
        try r.allowOnly(WorkloadDecoder.memoryKeys)
        let pageSize = try r.int("page_size", default: 4096, range: 4096...65536)
        guard pageSize & (pageSize - 1) == 0 else { throw r.fail("page_size", "must be a power of two, got \(pageSize)") }
        if r.has("arena_mib") && r.has("zones") {
            throw r.fail("zones", "contradicts arena_mib (give one: arena_mib makes one Normal zone per node)")
        }
        var zones: [ZoneRecord] = []
        if r.has("zones") {
            let zs = try r.tables("zones")
            guard !zs.isEmpty else { throw r.fail("zones", "needs at least one zone") }
            var last = -1
            for z in zs {
                try z.allowOnly(["type", "mib", "pages"])
                guard let typeName = try z.string("type") else { throw z.fail(nil, "a zone needs a type (DMA, DMA32, Normal or Movable)") }
                guard let type = ZoneType(name: typeName) else { throw z.fail("type", "'\(typeName)' is not a zone type (DMA, DMA32, Normal, Movable)") }
                guard type.rawValue > last else { throw z.fail("type", "zones must be listed lowest first, each type once (DMA, DMA32, Normal, Movable)") }
                last = type.rawValue
                if z.has("mib") && z.has("pages") { throw z.fail("pages", "contradicts mib (give one)") }
                let pages: Int
                if let mib = try z.int("mib") {
                    try z.check("mib", mib, 1...(1 << 22))
                    pages = mib * (1 << 20) / pageSize
                } else if let p = try z.int("pages") {
                    try z.check("pages", p, 1...AllocatorConfig.maxPagesPerNode)
                    pages = p
                } else {
                    throw z.fail(nil, "a zone needs its size: mib = N or pages = N")
                }
                zones.append(ZoneRecord(type: type.name, pages: pages))
            }
        } else {
            let mib = try r.int("arena_mib", default: 64, range: 1...(1 << 22))
            zones = [ZoneRecord(type: "Normal", pages: mib * (1 << 20) / pageSize)]
        }
        let perNode = zones.reduce(0) { $0 + $1.pages }
        guard perNode <= AllocatorConfig.maxPagesPerNode else {
            throw r.fail(r.has("zones") ? "zones" : "arena_mib", "\(perNode) pages per node; at most \(AllocatorConfig.maxPagesPerNode)")
        }
        let given = try r.int("min_free_kbytes")
        if let g = given { try r.check("min_free_kbytes", g, 0...(1 << 30)) }
        let minFree = given ?? KernelFormulas.minFreeKbytes(lowmemKbytes: perNode * nodes * (pageSize / 1024))
        let wsf = try r.int("watermark_scale_factor", default: 10, range: 1...3000, what: "as vm.watermark_scale_factor")
        let ratios = try r.intArray("lowmem_reserve_ratio") ?? ZoneType.allCases.map(\.defaultLowmemReserveRatio)
        guard (1...4).contains(ratios.count) else { throw r.fail("lowmem_reserve_ratio", "needs 1 to 4 ratios (DMA, DMA32, Normal, Movable), got \(ratios.count)") }
        for x in ratios { try r.check("lowmem_reserve_ratio", x, 0...Int(Int32.max)) }
        let pcpMax = try r.int("pcp_max_order", default: Order.pcpMax, range: -1...Order.pcpMax, what: "-1 turns the per-CPU lists off")
        let fraction = try r.int("percpu_pagelist_high_fraction", default: 0, range: 0...Int(Int32.max))
        if fraction != 0 && fraction < 8 { throw r.fail("percpu_pagelist_high_fraction", "must be 0 (auto) or at least 8, as the sysctl; got \(fraction)") }
        let bind = try r.bool("bind_memory", default: true)
        if r.has("swap_pages") && r.has("swap_mib") { throw r.fail("swap_mib", "contradicts swap_pages (give one)") }
        var swap = try r.int("swap_pages", default: 0, range: 0...(1 << 40), what: "swap slots in pages")
        if let mib = try r.int("swap_mib") {
            try r.check("swap_mib", mib, 0...(1 << 22))
            swap = mib * (1 << 20) / pageSize
        }
        let ratelimit = try r.int("warn_ratelimit_ms", default: 10_000, range: 0...86_400_000, what: "one printed allocation-failure warning per this many ms")
        let pressure = try r.bool("pressure", default: false)
        let wiHit = try r.bool("weighted_interleave_hit", default: true)
        return MemorySpec(pageSize: pageSize, zones: zones, minFreeKbytes: minFree, minFreeKbytesGiven: given != nil,
                          watermarkScaleFactor: wsf, lowmemReserveRatio: ratios, pcpMaxOrder: pcpMax,
                          percpuPagelistHighFraction: fraction, bindMemory: bind, swapPages: swap, warnRatelimitMs: ratelimit,
                          pressure: pressure ? true : nil, weightedInterleaveHit: wiHit ? nil : false)
    }
}
