import Testing
@testable import PageAllocator
import Topology

/// fail_page_alloc's knobs with the kernel's exact order of checks, and
/// warn_alloc's rate limit, NOWARN and counters.
@Suite struct FaultInjectionTests {
    static func allocator(_ fi: String, ratelimitMs: Int = 10_000) throws -> PageAllocator {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: 4096)
        cfg.faultInjection = try FaultInjectionSettings.parse(fi)
        cfg.warnRatelimitMs = ratelimitMs
        return try PageAllocator(cfg)
    }

    /// Outcome of n allocations: true = injected failure. Frees what it gets.
    static func outcomes(_ a: PageAllocator, _ n: Int, order: Int = 0, flags: GFP = .atomic) -> [Bool] {
        (0..<n).map { _ in
            do {
                let b = try a.allocate(order: order, flags: flags, cpu: CPUID(0))
                try? a.free(b, cpu: CPUID(0))
                return false
            } catch let e as AllocError {
                return e == .injectedFailure(order: order, flags: flags)
            } catch {
                return false
            }
        }
    }

    @Test func parsesDebugfsNamesAndRejectsUnknownKnobs() throws {
        let s = try FaultInjectionSettings.parse("probability=10,interval=1,times=-1,min-order=0,ignore-gfp-wait=N,space=5,verbose=0")
        #expect(s.probability == 10 && s.interval == 1 && s.times == -1 && s.minOrder == 0 && !s.ignoreGfpWait && s.space == 5 && s.verbose == 0)
        #expect(throws: ConfigError.self) { try FaultInjectionSettings.parse("probability=101") }
        #expect(throws: ConfigError.self) { try FaultInjectionSettings.parse("times=-2") }
        #expect(throws: ConfigError.self) { try FaultInjectionSettings.parse("min-order=11") }
        #expect(throws: ConfigError.self) { try FaultInjectionSettings.parse("bogus=1") }
        #expect(throws: ConfigError.self) { try FaultInjectionSettings.parse("probability") }
        // Kernel defaults.
        let d = FaultInjectionSettings()
        #expect(d.interval == 1 && d.times == 1 && d.minOrder == 1 && d.ignoreGfpWait && d.ignoreGfpHighmem && d.probability == 0)
    }

    @Test func timesCountsDown() throws {
        let a = try Self.allocator("probability=100,times=2,min-order=0")
        #expect(Self.outcomes(a, 4) == [true, true, false, false])
        #expect(a.injectedFailures == 2)
        try a.validate()
    }

    @Test func timesMinusOneIsUnlimited() throws {
        let a = try Self.allocator("probability=100,times=-1,min-order=0")
        #expect(Self.outcomes(a, 50).allSatisfy { $0 })
    }

    @Test func intervalFailsEveryNthEligibleCall() throws {
        let a = try Self.allocator("probability=100,times=-1,interval=3,min-order=0")
        #expect(Self.outcomes(a, 9) == [false, false, true, false, false, true, false, false, true])
    }

    @Test func spacePassesThatManyPagesFirst() throws {
        // space 4, order 0: 4>1, 3>1, 2>1 pass (space 1); then 1>1 is false: fail.
        let a = try Self.allocator("probability=100,times=-1,space=4,min-order=0")
        #expect(Self.outcomes(a, 5) == [false, false, false, true, true])
    }

    @Test func minOrderIgnoreGfpWaitAndNofailAreNeverFailed() throws {
        let a = try Self.allocator("probability=100,times=-1")
        #expect(Self.outcomes(a, 3, order: 0) == [false, false, false]) // min-order 1 by default
        #expect(Self.outcomes(a, 3, order: 1) == [true, true, true])
        #expect(Self.outcomes(a, 3, order: 1, flags: .kernel) == [false, false, false]) // ignore-gfp-wait
        #expect(Self.outcomes(a, 3, order: 1, flags: [.atomic, .noFail]) == [false, false, false])
        #expect(Self.outcomes(a, 3, order: 1, flags: [.atomic, .highmem]) == [false, false, false]) // ignore-gfp-highmem
    }

    @Test func probabilityIsRoughlyHonoured() throws {
        let a = try Self.allocator("probability=25,times=-1,min-order=0")
        let fails = Self.outcomes(a, 4000).filter { $0 }.count
        #expect(fails > 800 && fails < 1200)
    }

    @Test func injectedFailuresSkipTheSlowPathAndTheWarning() throws {
        let a = try Self.allocator("probability=100,times=1,min-order=0")
        _ = Self.outcomes(a, 1)
        #expect(a.totalCounters()[.allocSlowpath] == 0)
        let w = a.allocationWarnings()
        #expect(w.printed == 0)
        #expect(w.injected == 1)
        #expect(w.failures["order:0 mode:GFP_ATOMIC"] == 1)
    }

    @Test func warnAllocIsRateLimitedSuppressedByNowarnAndAlwaysCounted() throws {
        let a = try Self.allocator("", ratelimitMs: 60_000)
        var held: [PageBlock] = []
        while let b = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) { held.append(b) }
        // Already failed once above (printed). Two more: rate limited. One NOWARN.
        for _ in 0..<2 { _ = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) }
        _ = try? a.allocate(order: .zero, flags: [.atomic, .noWarn], cpu: CPUID(0))
        let w = a.allocationWarnings()
        #expect(w.printed == 1)
        #expect(w.suppressedRatelimit == 2)
        #expect(w.suppressedNoWarn == 1)
        #expect(w.failures["order:0 mode:GFP_ATOMIC"] == 3)
        #expect(w.failures["order:0 mode:GFP_ATOMIC|__GFP_NOWARN"] == 1)
        #expect(w.lines.first == "cpu0: page allocation failure: order:0, mode:0x820(GFP_ATOMIC), nodemask=(null)")
        for b in held { try a.free(b, cpu: CPUID(0)) }
        try a.validate()
    }

    @Test func unusableFreeIndexSeesFragmentation() throws {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: 1024)
        cfg.perCPUMaxOrder = -1
        let a = try PageAllocator(cfg)
        #expect(a.unusableFreeIndex(zone: 0).allSatisfy { $0 == 0 })
        #expect(a.fragmentationIndex(zone: 0).allSatisfy { $0 == -1 })
        // Take every page, then free every other one: only order-0 holes remain.
        var all: [PageBlock] = []
        while let b = try? a.allocate(order: .zero, flags: [.atomic, .memalloc], cpu: CPUID(0)) { all.append(b) }
        for b in all where b.pfn.rawValue % 2 == 0 { try a.free(b, cpu: CPUID(0)) }
        let u = a.unusableFreeIndex(zone: 0)
        #expect(u[0] == 0)
        #expect(u[1...].allSatisfy { $0 == 1 })
        let f = a.fragmentationIndex(zone: 0)
        #expect(f[0] == -1)
        #expect(f[3] > 0.5) // a failure at order 3 would be fragmentation, not lack of memory
        for b in all where b.pfn.rawValue % 2 == 1 { try a.free(b, cpu: CPUID(0)) }
        #expect(try a.validate().buddyFree == 1024)
    }
}
