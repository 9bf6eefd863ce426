// Known answers from the kernel's sizing formulas (mm/page_alloc.c,
// mm/vmstat.c), first as pure functions, then through a built allocator.
import Testing
@testable import PageAllocator
import Topology

@Suite struct KernelFormulasTests {
    // MARK: int_sqrt and min_free_kbytes

    @Test func intSqrtIsTheFloorOfTheSquareRoot() {
        for x in 0...5000 {
            let r = KernelFormulas.intSqrt(x)
            #expect(r * r <= x && (r + 1) * (r + 1) > x, "intSqrt(\(x)) = \(r)")
        }
        for r in [46340, 65535, 65536, 1 << 20, 3_037_000_498] {
            #expect(KernelFormulas.intSqrt(r * r) == r)
            #expect(KernelFormulas.intSqrt(r * r - 1) == r - 1)
            #expect(KernelFormulas.intSqrt(r * r + 1) == r)
        }
        #expect(KernelFormulas.intSqrt(-5) == 0)
    }

    /// The largest inputs: floor(sqrt(2^63 - 1)) = 3037000499, whose successor squared overflows.
    @Test func intSqrtNearIntMax() {
        #expect(KernelFormulas.intSqrt(Int.max) == 3_037_000_499)
        #expect(KernelFormulas.intSqrt(3_037_000_499 * 3_037_000_499) == 3_037_000_499)
        #expect(KernelFormulas.intSqrt(3_037_000_499 * 3_037_000_499 - 1) == 3_037_000_498)
        #expect(KernelFormulas.intSqrt(Int.max - 1) == 3_037_000_499)
    }

    @Test(arguments: [
        (16 << 10, 512),       // 16 MiB
        (1 << 20, 4096),       // 1 GiB
        (16 << 20, 16384),     // 16 GiB
        (1 << 30, 131_072),    // 1 TiB
        (4 << 30, 262_144),    // 4 TiB: exactly the ceiling
        (1 << 50, 262_144),    // huge: clamped
        (0, 128), (1, 128), (1023, 128), // tiny: clamped
        (1024, 128),           // int_sqrt(16384) = 128 exactly
        (1100, 132),           // int_sqrt(17600) = 132
        (64 << 10, 1024),      // 64 MiB
    ])
    func minFreeKbytes(lowmemKbytes: Int, expected: Int) {
        #expect(KernelFormulas.minFreeKbytes(lowmemKbytes: lowmemKbytes) == expected)
    }

    @Test func multFracMatchesExactArithmetic() {
        #expect(KernelFormulas.multFrac(327_680, 10, 10000) == 327)
        #expect(KernelFormulas.multFrac(3840, 10, 10000) == 3)
        // No overflow where x * n would: compare with a full-width multiply and divide.
        for x in [Int.max / 2, Int.max / 3000, Int.max - 12345] {
            let exact = 10000.dividingFullWidth(x.multipliedFullWidth(by: 3000)).quotient
            #expect(KernelFormulas.multFrac(x, 3000, 10000) == exact)
        }
        for x in [0, 1, 9999, 10000, 10001, 123_456_789] {
            for n in [1, 10, 3000] { #expect(KernelFormulas.multFrac(x, n, 10000) == x * n / 10000) }
        }
    }

    // MARK: watermarks

    /// Numbers read from a real machine's /proc/zoneinfo.
    @Test func watermarksOfARealMachine() {
        // pages_min 5073 over 331520 lowmem pages gives MIN 58 and 5014.
        let dma = KernelFormulas.watermarks(managed: 3840, pagesMin: 5073, lowmemPages: 331_520, scaleFactor: 10)
        #expect(dma == .init(min: 58, low: 72, high: 86, promo: 100)) // delta = max(58 >> 2, 3) = 14
        let normal = KernelFormulas.watermarks(managed: 327_680, pagesMin: 5073, lowmemPages: 331_520, scaleFactor: 10)
        #expect(normal == .init(min: 5014, low: 6267, high: 7520, promo: 8773)) // delta = max(1253, 327)
    }

    @Test func watermarkDeltaTakesTheScaleFactorWhenLarger() {
        // tmp = 1024 * 196608 / 262144 = 768; delta = max(192, 196608 * 1000 / 10000 = 19660).
        let w = KernelFormulas.watermarks(managed: 196_608, pagesMin: 1024, lowmemPages: 262_144, scaleFactor: 1000)
        #expect(w == .init(min: 768, low: 768 + 19660, high: 768 + 2 * 19660, promo: 768 + 3 * 19660))
        let d = KernelFormulas.watermarks(managed: 196_608, pagesMin: 1024, lowmemPages: 262_144, scaleFactor: 10)
        // delta = max(768 / 4 = 192, 196608 * 10 / 10000 = 196) = 196.
        #expect(d == .init(min: 768, low: 964, high: 1160, promo: 1356))
        // No lowmem at all: MIN 0, the delta still from the scale factor.
        #expect(KernelFormulas.watermarks(managed: 100_000, pagesMin: 1024, lowmemPages: 0, scaleFactor: 10) == .init(min: 0, low: 100, high: 200, promo: 300))
    }

    @Test func lowmemReserveOfAFourZoneNode() {
        let r = KernelFormulas.lowmemReserve(managedByType: [3840, 520_000, 3_600_000, 0], ratios: [256, 256, 32, 0])
        #expect(r[0] == [0, 520_000 / 256, (520_000 + 3_600_000) / 256, (520_000 + 3_600_000) / 256])
        #expect(r[1] == [0, 0, 3_600_000 / 256, 3_600_000 / 256])
        #expect(r[2] == [0, 0, 0, 0])
        #expect(r[3] == [0, 0, 0, 0])
        // A zone the node lacks, or a ratio of 0, reserves nothing.
        let g = KernelFormulas.lowmemReserve(managedByType: [0, 1000, 5000, 800], ratios: [256, 0, 32, 0])
        #expect(g[0] == [0, 0, 0, 0])
        #expect(g[1] == [0, 0, 0, 0])
        #expect(g[2] == [0, 0, 0, 800 / 32])
    }

    // MARK: per-CPU batch and high, vmstat threshold

    @Test(arguments: [
        (0, 1), (1024, 1), (4096, 1), (8192, 1), (12288, 3), (16384, 3), (32768, 7),
        (65536, 15), (98304, 31), (131_072, 31), (196_608, 63), (262_144, 63), (327_680, 63), (1 << 30, 63),
    ])
    func pcpBatch(managed: Int, expected: Int) {
        #expect(KernelFormulas.pcpBatch(managed: managed) == expected)
    }

    @Test func pcpBatchWithLargePages() {
        // SZ_1M / 64 KiB = 16 caps the first step: 16 / 4 = 4 -> rounddown(6) - 1 = 3.
        #expect(KernelFormulas.pcpBatch(managed: 1 << 30, pageSize: 65536) == 3)
        // 16 KiB pages: cap 64 -> 16 -> rounddown(24) - 1 = 15.
        #expect(KernelFormulas.pcpBatch(managed: 1 << 30, pageSize: 16384) == 15)
    }

    @Test func pcpHighOfARealMachine() {
        let b = KernelFormulas.pcpBatch(managed: 327_680)
        #expect(b == 63)
        let h = KernelFormulas.pcpHighBounds(managed: 327_680, low: 6267, batch: b, cpusOfNode: 2, highFraction: 0)
        #expect(h.min == 3133 && h.max == 20480)
        // A fixed fraction sets both to managed / fraction / cpus.
        let f = KernelFormulas.pcpHighBounds(managed: 327_680, low: 6267, batch: b, cpusOfNode: 2, highFraction: 16)
        #expect(f.min == 10240 && f.max == 10240)
        // Never below 4 * batch.
        let s = KernelFormulas.pcpHighBounds(managed: 1024, low: 2, batch: 1, cpusOfNode: 8, highFraction: 0)
        #expect(s.min == 4 && s.max == 16) // max(2 / 8, 4); max(1024 / 8 / 8, 4)
        let t = KernelFormulas.pcpHighBounds(managed: 327_680, low: 6267, batch: 63, cpusOfNode: 1000, highFraction: 0)
        #expect(t.min == 252 && t.max == 252)
    }

    @Test(arguments: [
        (327_680, 2, 20),       // real machine: mem 10, fls 4; fls(2) = 2 -> 2*2*5
        (1024, 1, 2),
        (262_144, 4, 30),       // mem 8 -> fls 4; fls(4) = 3 -> 2*3*5
        (3840, 2, 4),
        (1 << 30, 64, 125),     // clamped
    ])
    func vmstatThreshold(managed: Int, cpus: Int, expected: Int) {
        #expect(KernelFormulas.vmstatThreshold(managed: managed, onlineCPUs: cpus) == expected)
    }

    // MARK: through a built allocator

    /// The real machine's layout: one node, 2 CPUs, DMA 3840 + Normal 327680 pages.
    @Test func realMachineLayoutThroughTheAllocator() throws {
        let a = try makeAllocator(nodes: 1, cpusPerNode: 2,
                                  zones: [ZoneSpec(.dma, pages: 3840), ZoneSpec(.normal, pages: 327_680)],
                                  minFreeKbytes: 5073 * 4)
        let dma = a.zoneDescription(0), normal = a.zoneDescription(1)
        #expect(dma.type == .dma && normal.type == .normal)
        #expect((dma.min, dma.low, dma.high, dma.promo) == (58, 72, 86, 100))
        #expect((normal.min, normal.low, normal.high, normal.promo) == (5014, 6267, 7520, 8773))
        #expect((normal.batch, normal.highMin, normal.highMax, normal.vmstatThreshold) == (63, 3133, 20480, 20))
        #expect((dma.batch, dma.highMin, dma.highMax, dma.vmstatThreshold) == (1, 36, 240, 4))
        #expect(dma.lowmemReserve == [0, 0, 1280, 1280])
        #expect(normal.lowmemReserve == [0, 0, 0, 0])
        // Each CPU's pageset starts at high_min.
        for cpu in 0..<2 {
            let p = a.perCPUState(zone: 1, cpu: cpu)
            #expect(p.count == 0 && p.high == 3133 && p.batch == 63 && p.highMin == 3133 && p.highMax == 20480)
        }
    }

    /// DMA 4096 + DMA32 61440 + Normal 196608 = 1 GiB: min_free_kbytes 4096,
    /// pages_min 1024, MIN = 1024 * managed / total, and the protection arrays.
    @Test(arguments: [1, 2])
    func threeZoneNodes(nodes: Int) throws {
        let zones = [ZoneSpec(.dma, pages: 4096), ZoneSpec(.dma32, pages: 61440), ZoneSpec(.normal, pages: 196_608)]
        let a = try makeAllocator(nodes: nodes, cpusPerNode: 2, zones: zones)
        let total = 262_144 * nodes
        #expect(a.totalPages == total)
        let minFree = KernelFormulas.intSqrt(total * 4 * 16)
        #expect(a.minFreeKbytes == (nodes == 1 ? 4096 : 5792))
        #expect(a.minFreeKbytes == minFree)
        let pagesMin = minFree / 4
        let ratios = [256, 256, 32, 0]
        var managedByType = [0, 0, 0, 0]
        for z in zones { managedByType[z.type.rawValue] = z.pages }
        #expect(a.zoneCount == 3 * nodes)
        for zi in 0..<a.zoneCount {
            let d = a.zoneDescription(zi)
            let spec = zones[zi % 3]
            #expect(d.node == NodeID(zi / 3))
            #expect(d.type == spec.type && d.pages == spec.pages)
            let m = pagesMin * spec.pages / total
            let delta = max(m / 4, spec.pages * 10 / 10000)
            #expect((d.min, d.low, d.high, d.promo) == (m, m + delta, m + 2 * delta, m + 3 * delta), "zone \(zi)")
            // reserve[i][j] = sum(managed(i+1 ... j)) / ratio[i]
            let i = spec.type.rawValue
            for j in 0..<4 {
                let sum = j > i ? (i + 1...j).reduce(0) { $0 + managedByType[$1] } : 0
                #expect(d.lowmemReserve[j] == (j > i ? sum / ratios[i] : 0), "zone \(zi) reserve[\(j)]")
            }
            let batch = KernelFormulas.pcpBatch(managed: spec.pages)
            #expect(d.batch == batch)
            #expect(d.highMin == max((m + delta) / 2, 4 * batch))
            #expect(d.highMax == max(spec.pages / 8 / 2, 4 * batch))
            #expect(d.vmstatThreshold == KernelFormulas.vmstatThreshold(managed: spec.pages, onlineCPUs: 2 * nodes))
        }
        // Literal numbers for the one-node case.
        if nodes == 1 {
            #expect(a.zoneDescription(0).min == 16)
            #expect(a.zoneDescription(1).min == 240)
            #expect(a.zoneDescription(2).min == 768)
            #expect(a.zoneDescription(0).lowmemReserve == [0, 240, 1008, 1008])
            #expect(a.zoneDescription(1).lowmemReserve == [0, 0, 768, 768])
            #expect(a.zoneDescription(2).lowmemReserve == [0, 0, 0, 0])
            #expect(a.zoneDescription(2).batch == 63)
            #expect(a.zoneDescription(1).batch == 15)
            #expect(a.zoneDescription(0).batch == 1)
        }
        // Zones are laid out in pfn order, nodes on 1024-page boundaries.
        #expect(a.zoneDescription(0).startPFN == PFN(0))
        #expect(a.zoneDescription(1).startPFN == PFN(4096))
        #expect(a.zoneDescription(2).startPFN == PFN(65536))
        if nodes == 2 { #expect(a.zoneDescription(3).startPFN == PFN(262_144)) }
    }

    @Test func configuredKnobsReachTheZones() throws {
        var c = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 4),
                                zones: [ZoneSpec(.dma32, pages: 8192), ZoneSpec(.normal, pages: 65536)])
        c.minFreeKbytes = 8192
        c.watermarkScaleFactor = 200
        c.lowmemReserveRatio = [256, 4]  // Normal and Movable take the defaults
        c.percpuPagelistHighFraction = 8
        c.bindMemory = false
        let a = try PageAllocator(c)
        let d32 = a.zoneDescription(0), n = a.zoneDescription(1)
        // pages_min 2048 over 73728 pages.
        #expect(d32.min == 2048 * 8192 / 73728)
        #expect(n.min == 2048 * 65536 / 73728)
        #expect(n.low - n.min == max(n.min / 4, 65536 * 200 / 10000))
        #expect(d32.lowmemReserve == [0, 0, 65536 / 4, 65536 / 4])
        #expect((n.highMin, n.highMax) == (65536 / 8 / 4, 65536 / 8 / 4))
        #expect(n.batch == 15)
        #expect(n.vmstatThreshold == KernelFormulas.vmstatThreshold(managed: 65536, onlineCPUs: 4))
    }

    @Test func invalidConfigurationsAreRefused() throws {
        let t = try Topology.declared(nodes: 1, cpusPerNode: 1)
        func refused(_ edit: (inout AllocatorConfig) -> Void) -> Bool {
            var c = AllocatorConfig(topology: t, pagesPerNode: 1024)
            edit(&c)
            do { _ = try PageAllocator(c); return false } catch { return true }
        }
        #expect(refused { $0.pageSize = 8000 })
        #expect(refused { $0.pageSize = 2048 })
        #expect(refused { $0.zones = [] })
        #expect(refused { $0.zones = [ZoneSpec(.normal, pages: 10), ZoneSpec(.dma, pages: 10)] })
        #expect(refused { $0.zones = [ZoneSpec(.normal, pages: 0)] })
        #expect(refused { $0.watermarkScaleFactor = 0 })
        #expect(refused { $0.watermarkScaleFactor = 3001 })
        #expect(refused { $0.minFreeKbytes = -1 })
        #expect(refused { $0.lowmemReserveRatio = [] })
        #expect(refused { $0.lowmemReserveRatio = [1, 2, 3, 4, 5] })
        #expect(refused { $0.percpuPagelistHighFraction = 7 })
        #expect(!refused { $0.percpuPagelistHighFraction = 8 })
        // PageBlock keeps a 32-bit pfn: the whole pfn space (nodes start on
        // 1024-page boundaries) must fit. Only validate(): nothing is mapped.
        func config(nodes: Int, pages: Int) throws -> AllocatorConfig {
            AllocatorConfig(topology: try Topology.declared(nodes: nodes, cpusPerNode: 1), pagesPerNode: pages)
        }
        #expect(throws: ConfigError.self) { try config(nodes: 5, pages: 1 << 30).validate() }
        #expect(throws: ConfigError.self) { try config(nodes: 5, pages: (1 << 30) - 1024).validate() }
        #expect(throws: ConfigError.self) { try config(nodes: 255, pages: 1 << 25).validate() }
        #expect(throws: ConfigError.self) { try config(nodes: 3, pages: (1 << 30) + 1).validate() }
        try config(nodes: 4, pages: 1 << 30).validate()                 // ends exactly at 2^32
        try config(nodes: 5, pages: (1 << 32) / 5 - 1024).validate()
        try config(nodes: 255, pages: (1 << 32) / 255 - 1023).validate()
        #expect(throws: ConfigError.self) { try ZoneSpec.parseList("DMA=4096,Bogus=1") }
        #expect(throws: ConfigError.self) { try ZoneSpec.parseList("DMA") }
        #expect(throws: ConfigError.self) { try ZoneSpec.parseList("Normal=x") }
        #expect(try ZoneSpec.parseList("DMA=4096, dma32=61440 ,Normal=196608") ==
                [ZoneSpec(.dma, pages: 4096), ZoneSpec(.dma32, pages: 61440), ZoneSpec(.normal, pages: 196_608)])
    }
}
