import Foundation
import Testing
@testable import PageAllocator
import Topology

@Suite(.serialized) struct MemoryGroupTests {
    static func allocator(limit: Int, _ tweak: (inout AllocatorConfig) -> Void = { _ in }) throws -> PageAllocator {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: 2048)
        cfg.memoryGroups = [MemoryGroupSpec(name: "small", limitPages: limit)]
        cfg.policy.maxStallMs = 2000
        tweak(&cfg)
        return try PageAllocator(cfg)
    }

    static func take(_ a: PageAllocator, _ n: Int, owner: UInt16, flags: GFP = .kernel) throws -> [PageBlock] {
        try (0..<n).map { _ in try a.allocate(order: .zero, flags: flags, cpu: CPUID(0), owner: owner) }
    }

    @Test func chargesAndUnchargesEveryPage() throws {
        let a = try Self.allocator(limit: 100)
        let t = try #require(a.registerTask(name: "in", group: 1))
        let bs = try Self.take(a, 40, owner: t)
        let big = try a.allocate(order: 3, flags: .kernel, cpu: CPUID(0), owner: t)
        #expect(a.memoryGroupStats()[0].usagePages == 48)
        for b in bs + [big] { try a.free(b, cpu: CPUID(0)) }
        #expect(a.memoryGroupStats()[0].usagePages == 0)
        #expect(a.memoryGroupStats()[0].maxUsagePages == 48)
        #expect(a.registerTask(name: "bad", group: 2) == nil)
        try a.validate()
    }

    @Test func atTheLimitItReclaimsInsideTheGroupFirst() throws {
        let a = try Self.allocator(limit: 100)
        let inside = try #require(a.registerTask(name: "in", group: 1))
        let outside = try #require(a.registerTask(name: "out"))
        let theirs = try Self.take(a, 50, owner: outside)
        for b in theirs { a.addReclaimable(b, kind: .clean, owner: outside) }
        let cache = try Self.take(a, 100, owner: inside)
        for b in cache { a.addReclaimable(b, kind: .clean, owner: inside) }
        let more = try Self.take(a, 30, owner: inside)
        let g = a.memoryGroupStats()[0]
        #expect(g.reclaimedPages >= 30)
        #expect(g.usagePages <= 100)
        #expect(a.reclaimablePages()[.clean]! >= 50) // the outsider's cache was not touched
        #expect(a.slowPathCounter(.oomKill) == 0)
        for b in more { try a.free(b, cpu: CPUID(0)) }
        a.dropAllReclaimable()
        #expect(a.memoryGroupStats()[0].usagePages == 0)
        #expect(try a.validate().allocated == 0)
    }

    @Test func aGroupOOMKillsOnlyInsideTheGroup() throws {
        let a = try Self.allocator(limit: 100) { $0.policy.retry = .retries(0) }
        let big = try #require(a.registerTask(name: "big-inside", group: 1))
        let small = try #require(a.registerTask(name: "small-inside", group: 1))
        let huge = try #require(a.registerTask(name: "huge-outside"))
        let hb = try Self.take(a, 70, owner: big)
        a.setTaskRSS(big, pages: 70)
        let hs = try Self.take(a, 20, owner: small)
        a.setTaskRSS(small, pages: 20)
        let hh = try Self.take(a, 1000, owner: huge)
        a.setTaskRSS(huge, pages: 1000)
        // The small task needs 20 more: 10 fit, then over the limit with nothing to reclaim: group OOM.
        var extra: [PageBlock] = []
        var failure: AllocError? = nil
        for _ in 0..<20 {
            do { extra.append(try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: small)) } catch { failure = error; break }
        }
        #expect(extra.count == 10)
        #expect(failure == .groupLimit(group: 1, order: 0, flags: .kernel))
        #expect(a.taskShouldDie(big))
        #expect(!a.taskShouldDie(huge))
        #expect(a.memoryGroupStats()[0].oomKills == 1)
        #expect(a.oomEvents().map(\.victim) == [Int(big)])
        for b in hb + hs + hh + extra { try a.free(b, cpu: CPUID(0)) }
        #expect(a.memoryGroupStats()[0].usagePages == 0)
        try a.validate()
    }

    @Test func aNonBlockingChargeFailsAtOnce() throws {
        let a = try Self.allocator(limit: 10)
        let t = try #require(a.registerTask(name: "in", group: 1))
        let bs = try Self.take(a, 10, owner: t, flags: .atomic)
        #expect(throws: AllocError.groupLimit(group: 1, order: 0, flags: .atomic)) { _ = try a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0), owner: t) }
        #expect(a.memoryGroupStats()[0].failcnt == 1)
        for b in bs { try a.free(b, cpu: CPUID(0)) }
        try a.validate()
    }
}

@Suite(.serialized) struct ReservationTests {
    static func allocator(_ tweak: (inout AllocatorConfig) -> Void = { _ in }) throws -> PageAllocator {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: 2048)
        cfg.policy.maxStallMs = 300
        cfg.policy.reservationWaitMs = 200
        tweak(&cfg)
        return try PageAllocator(cfg)
    }

    static func fillNoWait(_ a: PageAllocator, owner: UInt16) -> [PageBlock] {
        var out: [PageBlock] = []
        repeat {
            while let b = try? a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0), owner: owner) { out.append(b) }
        } while a.drainAllCPUs() > 0
        return out
    }

    @Test func aReservationHoldsPagesBackFromEveryoneElseAndFeedsTheTransaction() throws {
        let a = try Self.allocator()
        let tx = try #require(a.registerTask(name: "tx"))
        let other = try #require(a.registerTask(name: "other"))
        let r = try a.reserve(pages: 100, owner: tx, cpu: CPUID(0))
        #expect(a.reservedPages(zone: 0) == 100)
        let theirs = Self.fillNoWait(a, owner: other)
        // The others stopped 100 pages early: the transaction gets them.
        var mine: [PageBlock] = []
        for _ in 0..<60 { mine.append(try a.allocate(order: .zero, flags: .noFS, cpu: CPUID(0), owner: tx, reserve: .transaction)) }
        #expect(a.slowPathCounter(.resvUsed) == 60)
        #expect(a.reservedPages(zone: 0) == 40)
        #expect(a.commit(r) == 40)
        #expect(a.reservedPages(zone: 0) == 0)
        #expect(a.slowPathCounter(.resvReturned) == 40)
        for b in theirs + mine { try a.free(b, cpu: CPUID(0)) }
        #expect(try a.validate().allocated == 0)
    }

    /// One rule for reservation credit, on the first pass and in the slow
    /// path alike: only the transaction's own allocations (reserve:
    /// .transaction) may count the reservation as free; the same task's
    /// ordinary allocations see the raised watermark like everyone else.
    /// (The slow path used to credit every allocation of a task that had a
    /// reservation, without taking the page out of it.)
    @Test func onlyTheTransactionIsCreditedOnBothPaths() throws {
        let a = try Self.allocator()
        let tx = try #require(a.registerTask(name: "tx"))
        let other = try #require(a.registerTask(name: "other"))
        let r = try a.reserve(pages: 100, owner: tx, cpu: CPUID(0))
        let theirs = Self.fillNoWait(a, owner: other)
        // Below LOW and MIN for everyone but the transaction: both passes refuse an ordinary allocation of tx.
        #expect(throws: AllocError.outOfMemory(order: 0, flags: .noWait)) {
            _ = try a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0), owner: tx)
        }
        #expect(a.reservedPages(zone: 0) == 100)
        #expect(a.slowPathCounter(.resvUsed) == 0)
        // The transaction's allocation of the same flags reaches the same slow path and is credited.
        let mine = try a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0), owner: tx, reserve: .transaction)
        #expect(a.slowPathCounter(.resvUsed) == 1)
        #expect(a.reservedPages(zone: 0) == 99)
        #expect(a.commit(r) == 99)
        for b in theirs + [mine] { try a.free(b, cpu: CPUID(0)) }
        #expect(try a.validate().allocated == 0)
    }

    @Test func anEstimateTooSmallOverrunsIntoTheNormalPath() throws {
        let a = try Self.allocator()
        let tx = try #require(a.registerTask(name: "tx"))
        let r = try a.reserve(pages: 4, owner: tx, cpu: CPUID(0))
        var mine: [PageBlock] = []
        for _ in 0..<10 { mine.append(try a.allocate(order: .zero, flags: .noFS, cpu: CPUID(0), owner: tx, reserve: .transaction)) }
        #expect(a.slowPathCounter(.resvUsed) == 4)
        #expect(a.slowPathCounter(.resvOverrun) == 6)
        #expect(a.commit(r) == 0)
        for b in mine { try a.free(b, cpu: CPUID(0)) }
        try a.validate()
    }

    @Test func aReservationThatDoesNotFitWaitsForReclaim() throws {
        // Reclaiming 200 clean pages takes well under a millisecond; the
        // long wait keeps a preempted test thread from timing out.
        let a = try Self.allocator { $0.policy.reservationWaitMs = 5_000 }
        let tx = try #require(a.registerTask(name: "tx"))
        let other = try #require(a.registerTask(name: "other"))
        let cache = Self.fillNoWait(a, owner: other)
        for b in cache { a.addReclaimable(b, kind: .clean, owner: other) }
        let r = try a.reserve(pages: 200, owner: tx, cpu: CPUID(0))
        #expect(r.waitedNs > 0)
        #expect(a.slowPathCounter(.resvWaits) == 1)
        a.commit(r)
        a.dropAllReclaimable()
        #expect(try a.validate().allocated == 0)
    }

    @Test func aReservationThatCannotFitTimesOut() throws {
        let a = try Self.allocator()
        let tx = try #require(a.registerTask(name: "tx"))
        let held = Self.fillNoWait(a, owner: 0)
        #expect(throws: AllocError.self) { _ = try a.reserve(pages: 200, owner: tx, cpu: CPUID(0)) }
        #expect(a.slowPathCounter(.resvTimeouts) == 1)
        #expect(a.reservedPages(zone: 0) == 0)
        #expect(throws: AllocError.reservationTooLarge(pages: 5000, available: 2048 - a.zoneDescription(0).min)) {
            _ = try a.reserve(pages: 5000, owner: tx, cpu: CPUID(0))
        }
        #expect(throws: AllocError.reservationNeedsTask) { _ = try a.reserve(pages: 1, owner: 0, cpu: CPUID(0)) }
        for b in held { try a.free(b, cpu: CPUID(0)) }
        try a.validate()
    }

    @Test func anExitingTaskReturnsItsReservation() throws {
        let a = try Self.allocator()
        let tx = try #require(a.registerTask(name: "tx"))
        _ = try a.reserve(pages: 50, owner: tx, cpu: CPUID(0))
        a.taskExited(tx)
        #expect(a.reservedPages(zone: 0) == 0)
    }
}
