// GFP bits, presets, the kernel spelling (parse and print), and how flags
// turn into ALLOC_* flags.
import Testing
@testable import PageAllocator

@Suite struct GFPTests {
    @Test func bitsMatchGfpTypesH() {
        let bits: [(GFP, UInt32)] = [
            (.dma, 0x1), (.highmem, 0x2), (.dma32, 0x4), (.movable, 0x8), (.reclaimable, 0x10), (.high, 0x20),
            (.io, 0x40), (.fs, 0x80), (.zero, 0x100), (.directReclaim, 0x400), (.kswapdReclaim, 0x800),
            (.write, 0x1000), (.noWarn, 0x2000), (.retryMayFail, 0x4000), (.noFail, 0x8000), (.noRetry, 0x10000),
            (.memalloc, 0x20000), (.comp, 0x40000), (.noMemalloc, 0x80000), (.hardwall, 0x100000),
            (.thisNode, 0x200000), (.account, 0x400000),
        ]
        for (f, v) in bits { #expect(f.rawValue == v, "\(f)") }
    }

    @Test func presetValues() {
        #expect(GFP.kernel.rawValue == 0xcc0)
        #expect(GFP.noFS.rawValue == 0xc40)
        #expect(GFP.noIO.rawValue == 0xc00)
        #expect(GFP.atomic.rawValue == 0x820)
        #expect(GFP.noWait.rawValue == 0x800)
        #expect(GFP.reclaim.rawValue == 0xc00)
        #expect(GFP.kernelAccount.rawValue == 0x400cc0)
        #expect(GFP.user.rawValue == 0x100cc0)
        #expect(GFP.highUser.rawValue == 0x100cc2)
        #expect(GFP.highUserMovable.rawValue == 0x100cca)
        // GFP_TRANSHUGE_LIGHT = (HIGHUSER_MOVABLE | COMP | NOMEMALLOC | NOWARN) & ~RECLAIM.
        #expect(GFP.transhugeLight.rawValue == 0x1c20ca)
        #expect(GFP.transhuge.rawValue == 0x1c24ca)
        #expect(GFP.kernel.allowsBlocking && GFP.noFS.allowsBlocking && GFP.noIO.allowsBlocking)
        #expect(!GFP.atomic.allowsBlocking && !GFP.noWait.allowsBlocking && !GFP.transhugeLight.allowsBlocking)
    }

    @Test func parsesTheKernelSpelling() throws {
        #expect(try GFP(parsing: "GFP_NOFS|__GFP_NOFAIL") == [.noFS, .noFail])
        #expect(try GFP(parsing: "GFP_NOFS|__GFP_NOFAIL").rawValue == 0x8c40)
        #expect(try GFP(parsing: " GFP_KERNEL | __GFP_ZERO ") == [.kernel, .zero])
        #expect(try GFP(parsing: "GFP_ATOMIC|__GFP_NOWARN") == [.atomic, .noWarn])
        #expect(try GFP(parsing: "__GFP_DMA") == .dma)
        #expect(try GFP(parsing: "__GFP_DMA32|GFP_KERNEL") == [.dma32, .kernel])
        #expect(try GFP(parsing: "__GFP_THISNODE|GFP_KERNEL").rawValue == 0x200cc0)
        #expect(try GFP(parsing: "") == [])
        #expect(try GFP(parsing: "0") == [])
        #expect(try GFP(parsing: "none") == [])
    }

    @Test func parsesHexMasks() throws {
        #expect(try GFP(parsing: "0xcc0") == .kernel)
        #expect(try GFP(parsing: "0XCC0") == .kernel)
        #expect(try GFP(parsing: "GFP_NOFS|0x8000") == [.noFS, .noFail])
        #expect(try GFP(parsing: "0x1|0x2").rawValue == 0x3)
        // Bits the kernel does not name survive a round trip as hex.
        let odd = try GFP(parsing: "GFP_KERNEL|0x800000")
        #expect(odd.rawValue == 0x800cc0)
        #expect(odd.description == "GFP_KERNEL|0x800000")
        #expect(try GFP(parsing: odd.description) == odd)
    }

    @Test(arguments: ["GFP_BOGUS", "GFP_KERNEL|__GFP_WAIT", "gfp_kernel", "GFP_KERNEL||__GFP_ZERO", "0x", "0xzz", "0x1ffffffff", "GFP_NOFS|"])
    func unknownTokensThrowNamingTheToken(_ text: String) {
        do {
            _ = try GFP(parsing: text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.input == text)
            let expected: [String: String] = [
                "GFP_BOGUS": "GFP_BOGUS", "GFP_KERNEL|__GFP_WAIT": "__GFP_WAIT", "gfp_kernel": "gfp_kernel",
                "GFP_KERNEL||__GFP_ZERO": "", "0x": "0x", "0xzz": "0xzz", "0x1ffffffff": "0x1ffffffff", "GFP_NOFS|": "",
            ]
            #expect(error.token == expected[text])
            #expect(error.description.contains("'\(error.token)'"))
        }
    }

    @Test func printsPresetsByName() {
        let named: [(GFP, String)] = [
            (.kernel, "GFP_KERNEL"), (.noFS, "GFP_NOFS"), (.noIO, "GFP_NOIO"), (.atomic, "GFP_ATOMIC"),
            (.noWait, "GFP_NOWAIT"), (.user, "GFP_USER"), (.highUser, "GFP_HIGHUSER"),
            (.highUserMovable, "GFP_HIGHUSER_MOVABLE"), (.transhuge, "GFP_TRANSHUGE"),
            (.transhugeLight, "GFP_TRANSHUGE_LIGHT"), (.kernelAccount, "GFP_KERNEL_ACCOUNT"),
            (.dma, "GFP_DMA"), (.dma32, "GFP_DMA32"), (.noFail, "__GFP_NOFAIL"), (.thisNode, "__GFP_THISNODE"),
            // __GFP_RECLAIM is the same mask as GFP_NOIO, which comes first.
            (.reclaim, "GFP_NOIO"), ([], "0"),
        ]
        for (f, s) in named { #expect(f.description == s) }
    }

    @Test func roundTripsEveryPresetAndBit() throws {
        for (name, f) in GFP.names {
            #expect(try GFP(parsing: name) == f, "\(name)")
            #expect(try GFP(parsing: f.description) == f, "\(name) printed as \(f.description)")
            #expect(try GFP(parsing: f.hex) == f)
        }
        // Every combination of a preset with a single extra bit.
        for (_, p) in GFP.names {
            for bit in 0..<23 {
                let f = GFP(rawValue: p.rawValue | 1 << UInt32(bit))
                #expect(try GFP(parsing: f.description) == f, "\(f.hex) printed as \(f.description)")
            }
        }
    }

    /// Greedy, in the order of include/trace/events/mmflags.h: the presets,
    /// then single bits in bit order.
    @Test func printsGreedilyInTheKernelsOrder() {
        #expect(GFP([.kernel, .account, .zero, .comp]).description == "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP")
        #expect(GFP([.noFS, .noFail]).description == "GFP_NOFS|__GFP_NOFAIL")
        #expect(GFP([.kernel, .thisNode]).description == "GFP_KERNEL|__GFP_THISNODE")
        #expect(GFP([.atomic, .noWarn]).description == "GFP_ATOMIC|__GFP_NOWARN")
        #expect(GFP([.transhugeLight, .directReclaim]).description == "GFP_TRANSHUGE")
        #expect(GFP([.highUserMovable, .comp]).description == "GFP_HIGHUSER_MOVABLE|__GFP_COMP")
        #expect(GFP([.kernel, .hardwall]).description == "GFP_USER")
        #expect(GFP([.kernel, .dma32]).description == "GFP_KERNEL|GFP_DMA32")
        // Single bits follow bit order: MOVABLE 0x8 and RECLAIMABLE 0x10 before HIGH 0x20 and ZERO 0x100.
        #expect(GFP([.kernel, .reclaimable, .zero]).description == "GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_ZERO")
        #expect(GFP([.atomic, .movable, .noWarn]).description == "GFP_ATOMIC|__GFP_MOVABLE|__GFP_NOWARN")
        #expect(GFP([.high, .movable]).description == "__GFP_MOVABLE|__GFP_HIGH")
        #expect(GFP([.directReclaim, .io]).description == "__GFP_IO|__GFP_DIRECT_RECLAIM")
        #expect(GFP([.noWait, .account, .write]).description == "GFP_NOWAIT|__GFP_WRITE|__GFP_ACCOUNT")
    }

    @Test func hexIsLowercaseWithPrefix() {
        #expect(GFP.kernel.hex == "0xcc0")
        #expect(GFP([.noFS, .noFail]).hex == "0x8c40")
        #expect(GFP([]).hex == "0x0")
    }

    // MARK: ALLOC_* flags

    @Test func allocFlagsFromGFP() {
        #expect(AllocFlags.from(gfp: .atomic, order: 0) == [.minReserve, .nonBlock, .kswapd])
        #expect(AllocFlags.from(gfp: .atomic, order: 2) == [.minReserve, .nonBlock, .kswapd, .highAtomic])
        #expect(AllocFlags.from(gfp: .noWait, order: 0) == [.nonBlock, .kswapd])
        #expect(AllocFlags.from(gfp: .kernel, order: 0) == [.kswapd])
        #expect(AllocFlags.from(gfp: .kernel, order: 5) == [.kswapd])
        #expect(AllocFlags.from(gfp: .noFS, order: 0) == [.kswapd])
        #expect(AllocFlags.from(gfp: [.kernel, .high], order: 0) == [.minReserve, .kswapd])
        // No reclaim at all: non-blocking, no kswapd.
        #expect(AllocFlags.from(gfp: [], order: 0) == [.nonBlock])
        // NOMEMALLOC: not worth trying harder.
        #expect(AllocFlags.from(gfp: [.atomic, .noMemalloc], order: 1) == [.minReserve, .kswapd])
        // The reserve flags themselves.
        let reserve: AllocFlags = [.minReserve, .nonBlock, .oom, .noWatermarks]
        #expect(AllocFlags.from(gfp: .kernel, order: 0).isDisjoint(with: reserve))
        #expect(AllocFlags.from(gfp: .noWait, order: 0).intersection(reserve) == .nonBlock)
        #expect(AllocFlags.from(gfp: .atomic, order: 0).intersection(reserve) == [.minReserve, .nonBlock])
    }

    @Test func reserveAccessFlags() {
        #expect(ReserveAccess.none.reserveFlags(for: .kernel) == [])
        #expect(ReserveAccess.oomVictim.reserveFlags(for: .kernel) == .oom)
        #expect(ReserveAccess.memalloc.reserveFlags(for: .kernel) == .noWatermarks)
        #expect(ReserveAccess.none.reserveFlags(for: [.kernel, .memalloc]) == .noWatermarks)
        #expect(ReserveAccess.oomVictim.reserveFlags(for: [.kernel, .memalloc]) == .noWatermarks)
        // NOMEMALLOC overrides everything.
        #expect(ReserveAccess.memalloc.reserveFlags(for: [.kernel, .noMemalloc]) == [])
        #expect(ReserveAccess.oomVictim.reserveFlags(for: [.kernel, .noMemalloc]) == [])
        #expect(ReserveAccess.none.reserveFlags(for: [.memalloc, .noMemalloc]) == [])
    }

    @Test func zoneTypeForFlags() {
        #expect(ZoneType.highest(for: .kernel) == .normal)
        #expect(ZoneType.highest(for: [.kernel, .dma]) == .dma)
        #expect(ZoneType.highest(for: [.kernel, .dma32]) == .dma32)
        #expect(ZoneType.highest(for: .highUserMovable) == .movable)
        #expect(ZoneType.highest(for: [.kernel, .movable]) == .normal)
        #expect(ZoneType.highest(for: .highUser) == .normal)
        #expect(ZoneType(name: "dma32") == .dma32)
        #expect(ZoneType(name: "HighMem") == nil)
    }
}

/// The fast path's branch-free gfp_zone() agrees with the readable one for
/// every combination of the four zone modifiers, with other flags set or not.
@Suite struct GFPZoneTableTests {
    @Test func highestIndexAgreesWithHighest() {
        for bits in UInt32(0)..<16 {
            for other in [GFP(), .kernel, .atomic, GFP([.high, .noWarn])] {
                let f = GFP(rawValue: bits | (other.rawValue & ~0xf))
                #expect(ZoneType.highestIndex(for: f) == ZoneType.highest(for: f).rawValue, "flags \(f.rawValue)")
            }
        }
    }
}
