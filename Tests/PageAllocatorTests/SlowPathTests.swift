import Foundation
import Synchronization
import Testing
@testable import PageAllocator
import Topology
import CNUMA

/// The slow path: reclaim gated by flags, the OOM killer and its policies.
/// Every test bounds its waits (max_stall_ms, joins with deadlines) and ends
/// with validate() and a full page accounting.
@Suite(.serialized) struct SlowPathTests {
    static func allocator(pages: Int = 1024, _ tweak: (inout AllocatorConfig) -> Void = { _ in }) throws -> PageAllocator {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: pages)
        cfg.reclaim.writebackNsPerPage = 1000
        cfg.reclaim.swapNsPerPage = 1000
        cfg.policy.maxStallMs = 300
        tweak(&cfg)
        return try PageAllocator(cfg)
    }

    /// Allocates order-0 GFP_ATOMIC-free pages (GFP_NOWAIT: no reclaim, no OOM) until it fails.
    static func fill(_ a: PageAllocator, owner: UInt16 = 0) -> [PageBlock] {
        var out: [PageBlock] = []
        repeat {
            while let b = try? a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0), owner: owner) { out.append(b) }
        } while a.drainAllCPUs() > 0 // pages stranded on the per-CPU list go back, then fill again
        return out
    }

    static func freeAll(_ a: PageAllocator, _ bs: [PageBlock]) throws {
        for b in bs { try a.free(b, cpu: CPUID(0)) }
    }

    static func expectAllFree(_ a: PageAllocator) throws {
        a.dropAllReclaimable()
        let acct = try a.validate()
        #expect(acct.allocated == 0)
        #expect(acct.buddyFree + acct.perCPU == acct.managed)
    }

    @Test func directReclaimDropsCleanCache() throws {
        let a = try Self.allocator()
        let cache = Self.fill(a)
        for b in cache { a.addReclaimable(b, kind: .clean, owner: 0) }
        // Only the reserve below LOW is left: GFP_KERNEL must reclaim.
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0))
        #expect(a.slowPathCounter(.pgstealDirect) > 0)
        #expect(a.slowPathCounter(.allocstall) >= 1)
        // allocstall_<zone> counts by the request's highest zone (gfp_zone).
        #expect(a.slowPathCounter(.allocstallNormal) == a.slowPathCounter(.allocstall))
        let stalls = a.slowPathCounter(.allocstall)
        var more: [PageBlock] = []
        while let m = try? a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0)) { more.append(m) }
        for m in more { a.addReclaimable(m, kind: .clean, owner: 0) }
        let c = try a.allocate(order: .zero, flags: .highUserMovable, cpu: CPUID(0))
        #expect(a.slowPathCounter(.allocstall) > stalls)
        #expect(a.slowPathCounter(.allocstallMovable) == a.slowPathCounter(.allocstall) - stalls)
        #expect(a.slowPathCounter(.allocstallDMA) == 0 && a.slowPathCounter(.allocstallDMA32) == 0)
        #expect(a.slowPathCounters().contains { $0.name == "allocstall_movable" && $0.value >= 1 })
        try a.free(b, cpu: CPUID(0))
        try a.free(c, cpu: CPUID(0))
        try Self.expectAllFree(a)
    }

    @Test func noFSCannotWriteBackDirtyPagesButKernelCan() throws {
        let a = try Self.allocator { $0.policy.retry = .retries(0) }
        let dirty = Self.fill(a)
        for b in dirty { a.addReclaimable(b, kind: .dirty, owner: 0) }
        // GFP_NOFS: no writeback, and a global OOM without __GFP_FS kills nobody.
        #expect(throws: AllocError.self) { _ = try a.allocate(order: .zero, flags: .noFS, cpu: CPUID(0)) }
        #expect(a.slowPathCounter(.pgwriteback) == 0)
        #expect(a.slowPathCounter(.nofsNoKill) >= 1)
        #expect(a.slowPathCounter(.oomKill) == 0)
        // GFP_KERNEL writes back and succeeds.
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0))
        #expect(a.slowPathCounter(.pgwriteback) > 0)
        try a.free(b, cpu: CPUID(0))
        try Self.expectAllFree(a)
    }

    @Test func anonNeedsSwapSpaceAndIO() throws {
        let a = try Self.allocator { $0.reclaim.swapPages = 64; $0.policy.retry = .retries(0) }
        let anon = Self.fill(a)
        for b in anon { a.addReclaimable(b, kind: .anon, owner: 0) }
        // GFP_NOIO may not swap.
        #expect(throws: AllocError.self) { _ = try a.allocate(order: .zero, flags: .noIO, cpu: CPUID(0)) }
        #expect(a.slowPathCounter(.pswpout) == 0)
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0))
        #expect(a.slowPathCounter(.pswpout) > 0)
        #expect(a.slowPathCounter(.pswpout) <= 64)
        try a.free(b, cpu: CPUID(0))
        try Self.expectAllFree(a)
    }

    @Test func oomKillsTheBiggestTaskAndTheAllocationSucceedsAfterItExits() throws {
        let a = try Self.allocator { $0.policy.maxStallMs = 5000 }
        let hog = try #require(a.registerTask(name: "hog"))
        let small = try #require(a.registerTask(name: "small"))
        let exempt = try #require(a.registerTask(name: "exempt", oomScoreAdj: -1000))
        let held = Self.fill(a, owner: hog)
        a.setTaskRSS(hog, pages: held.count)
        a.setTaskRSS(exempt, pages: 10 * held.count)
        let heldBox = UnsafeSendableBox(held)
        // The hog's worker: polls for the kill, frees everything, exits.
        let exited = Atomic<Bool>(false)
        let t = Thread {
            let deadline = ContinuousClock.now + .seconds(5)
            while !a.taskShouldDie(hog) && ContinuousClock.now < deadline { usleep(1000) }
            for b in heldBox.value { try? a.free(b, cpu: CPUID(0)) }
            a.taskExited(hog)
            exited.store(true, ordering: .relaxed)
        }
        t.start()
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: small)
        #expect(a.slowPathCounter(.oomKill) == 1)
        #expect(a.oomEvents().first?.victim == Int(hog))
        let deadline = ContinuousClock.now + .seconds(5)
        while !exited.load(ordering: .relaxed) && ContinuousClock.now < deadline { usleep(1000) }
        let didExit = exited.load(ordering: .relaxed)
        #expect(didExit)
        try a.free(b, cpu: CPUID(0))
        try Self.expectAllFree(a)
    }

    @Test func hockoRetriesKnobFailsAfterNOOMRetries() throws {
        // The victim never exits: the kernel policy would loop; retries=2 fails.
        let a = try Self.allocator { $0.policy.retry = .retries(2); $0.policy.maxStallMs = 3000 }
        let stuck = try #require(a.registerTask(name: "stuck"))
        let me = try #require(a.registerTask(name: "me"))
        let held = Self.fill(a, owner: stuck)
        a.setTaskRSS(stuck, pages: held.count)
        #expect(throws: AllocError.outOfMemory(order: 0, flags: .kernel)) {
            _ = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: me)
        }
        #expect(a.slowPathCounter(.oomKill) == 1)
        #expect(a.slowPathCounter(.oomRetries) == 3)
        try Self.freeAll(a, held)
        try Self.expectAllFree(a)
    }

    @Test func kernelPolicyLoopsWhileAVictimIsPendingUntilMaxStall() throws {
        let a = try Self.allocator { $0.policy.maxStallMs = 200 }
        let stuck = try #require(a.registerTask(name: "stuck"))
        let me = try #require(a.registerTask(name: "me"))
        let held = Self.fill(a, owner: stuck)
        a.setTaskRSS(stuck, pages: held.count)
        #expect(throws: AllocError.timedOut(order: 0, flags: .kernel, milliseconds: 200)) {
            _ = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: me)
        }
        #expect(a.slowPathCounter(.oomKill) == 1) // no over-killing while the victim is pending
        try Self.freeAll(a, held)
        try Self.expectAllFree(a)
    }

    @Test func nofailGetsEmergencyReservesAfterAnOOMAttempt() throws {
        let a = try Self.allocator()
        let held = Self.fill(a)
        // Drain the per-CPU list and take everything down to MIN with HIGH.
        var more: [PageBlock] = []
        while let b = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) { more.append(b) }
        let b = try a.allocate(order: .zero, flags: [.noFS, .noFail], cpu: CPUID(0))
        #expect(a.slowPathCounter(.nofailReserveDips) >= 1)
        try a.free(b, cpu: CPUID(0))
        try Self.freeAll(a, held + more)
        try Self.expectAllFree(a)
    }

    @Test func nofailWithoutEmergencyReservesLoopsUntilBounded() throws {
        let a = try Self.allocator { $0.policy.nofailEmergencyReserve = false; $0.policy.maxStallMs = 200 }
        let held = Self.fill(a)
        var more: [PageBlock] = []
        while let b = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) { more.append(b) }
        #expect(throws: AllocError.timedOut(order: 0, flags: [.noFS, .noFail], milliseconds: 200)) {
            _ = try a.allocate(order: .zero, flags: [.noFS, .noFail], cpu: CPUID(0))
        }
        #expect(a.slowPathCounter(.nofailReserveDips) == 0)
        try Self.freeAll(a, held + more)
        try Self.expectAllFree(a)
    }

    @Test func atomicNeverSleepsAndFailsCleanly() throws {
        let a = try Self.allocator()
        let held = Self.fill(a)
        var more: [PageBlock] = []
        while let b = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) { more.append(b) }
        #expect(throws: AllocError.outOfMemory(order: 0, flags: .atomic)) { _ = try a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0)) }
        #expect(a.slowPathCounter(.allocstall) == 0)
        try Self.freeAll(a, held + more)
        try Self.expectAllFree(a)
    }

    @Test func aVictimLeavesTheAllocatorAtASafePoint() throws {
        let a = try Self.allocator { $0.policy.oomVictimReserve = false; $0.policy.maxStallMs = 3000 }
        let victim = try #require(a.registerTask(name: "victim"))
        let held = Self.fill(a, owner: victim)
        a.setTaskRSS(victim, pages: held.count)
        // The victim itself allocates and triggers its own kill: it must leave with .killed.
        #expect(throws: AllocError.killed(task: Int(victim))) {
            _ = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: victim)
        }
        #expect(a.taskShouldDie(victim))
        try Self.freeAll(a, held)
        a.taskExited(victim)
        try Self.expectAllFree(a)
    }

    /// The kernel never fails __GFP_NOFAIL, not even for an OOM victim: the
    /// victim's NOFAIL allocation keeps looping (with its reserves) until a
    /// page comes free, where a plain allocation of the victim leaves with
    /// .killed at once.
    @Test func aVictimsNofailAllocationWaitsInsteadOfLeaving() throws {
        let a = try Self.allocator { $0.policy.maxStallMs = 2000 }
        let victim = try #require(a.registerTask(name: "victim"))
        var held = Self.fill(a, owner: victim)
        a.setTaskRSS(victim, pages: held.count)
        // It invokes the OOM killer on itself, then may take a page of its ALLOC_OOM share.
        if let b = try? a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: victim) { held.append(b) }
        #expect(a.taskShouldDie(victim))
        // Empty the reserves too: nothing is left for anyone, victims included.
        while let b = try? a.allocate(order: .zero, flags: .atomic, cpu: CPUID(0), reserve: .memalloc) { held.append(b) }
        #expect(throws: AllocError.killed(task: Int(victim))) {
            _ = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: victim)
        }
        let result = Mutex<Result<PageBlock, AllocError>?>(nil)
        let start = ContinuousClock.now
        let t = Thread {
            do throws(AllocError) {
                let b = try a.allocate(order: .zero, flags: [.noFS, .noFail], cpu: CPUID(0), owner: victim)
                result.withLock { $0 = .success(b) }
            } catch { result.withLock { $0 = .failure(error) } }
        }
        t.start()
        usleep(100_000)
        #expect(result.withLock { $0 } == nil, "still looping: NOFAIL does not leave with .killed")
        try a.free(held.removeLast(), cpu: CPUID(0))
        let deadline = ContinuousClock.now + .seconds(5)
        while result.withLock({ $0 == nil }) && ContinuousClock.now < deadline { usleep(1000) }
        let got = try #require(result.withLock { $0 })
        guard case .success(let b) = got else { Issue.record("the victim's NOFAIL allocation failed: \(got)"); return }
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        held.append(b)
        try Self.freeAll(a, held)
        a.taskExited(victim)
        try Self.expectAllFree(a)
    }

    /// The reaper frees a victim's memory under oom_lock (kernels 4.8-4.18),
    /// so that no OOM killer can see the victim skipped while its pages are
    /// still being freed and kill a second task for nothing.
    @Test func theReaperReapsUnderOOMLock() throws {
        let a = try Self.allocator { $0.policy.reaper = true }
        let victim = try #require(a.registerTask(name: "victim"))
        let anon = Self.fill(a, owner: victim)
        for b in anon { a.addReclaimable(b, kind: .anon, owner: victim) }
        guard case .killed(victim) = a.selectAndKill(triggeredBy: 0, order: 0, gfp: .kernel) else {
            Issue.record("the victim was not chosen"); return
        }
        #expect(a.slow.oomLock.tryLock(), "the test holds oom_lock, as an OOM killer would")
        let started = Atomic<Bool>(false)
        let t = Thread { started.store(true, ordering: .releasing); a.reap(victim) }
        t.start()
        let deadline = ContinuousClock.now + .seconds(5)
        while !started.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(1000) }
        usleep(30_000)
        #expect(!a.oomEvents().contains { $0.kind == "reap" }, "no reap while an OOM killer holds oom_lock")
        #expect(a.reclaimablePages()[.anon, default: 0] == anon.count)
        let unlockedAt = cnuma_monotonic_ns()
        a.slow.oomLock.unlock()
        while !a.oomEvents().contains(where: { $0.kind == "reap" }) && ContinuousClock.now < deadline { usleep(1000) }
        let reap = try #require(a.oomEvents().first { $0.kind == "reap" })
        #expect(reap.atNs >= unlockedAt && reap.victim == Int(victim) && reap.badness == anon.count)
        #expect(a.reclaimablePages()[.anon, default: 0] == 0)
        a.taskExited(victim)
        try Self.expectAllFree(a)
    }

    /// Tasks are not reused, so a run that kills and restarts workers needs
    /// many ids: the table grows in chunks of 4096 up to every UInt16 id, a
    /// task far past the first chunk is a full task (the OOM killer chooses
    /// it), and registration past the last id is refused, not a crash.
    @Test func theTaskTableGrowsToEveryUInt16Id() throws {
        let a = try Self.allocator()
        for i in 1...5000 {
            let id = try #require(a.registerTask(name: "t\(i)"))
            #expect(id == UInt16(i))
            a.taskExited(id)
        }
        let big = try #require(a.registerTask(name: "big"))
        #expect(big == 5001)
        let held = Self.fill(a, owner: big)
        a.setTaskRSS(big, pages: held.count)
        guard case .killed(big) = a.selectAndKill(triggeredBy: 0, order: 0, gfp: .kernel) else {
            Issue.record("task 5001 was not chosen"); return
        }
        #expect(a.taskShouldDie(big))
        #expect(a.oomEvents().first?.victimName == "big")
        try Self.freeAll(a, held)
        a.taskExited(big)
        var last: UInt16 = big
        while let id = a.registerTask(name: "x") { last = id; a.taskExited(id) }
        #expect(last == UInt16.max, "every id up to 65535 is handed out")
        #expect(a.registerTask(name: "one too many") == nil)
        #expect(a.taskSnapshots(aliveOnly: true).isEmpty)
        #expect(a.taskSnapshots().count == Int(UInt16.max))
        try Self.expectAllFree(a)
    }

    @Test func shutdownAbortsALoopingAllocation() throws {
        let a = try Self.allocator { $0.policy.retry = .legacy; $0.policy.maxStallMs = 0 }
        let held = Self.fill(a)
        let result = Mutex<AllocError?>(nil)
        let t = Thread {
            do { _ = try a.allocate(order: .zero, flags: .noFS, cpu: CPUID(0)) } catch let e as AllocError { result.withLock { $0 = e } } catch {}
        }
        t.start()
        usleep(100_000)
        a.shutdown()
        let deadline = ContinuousClock.now + .seconds(5)
        while result.withLock({ $0 == nil }) && ContinuousClock.now < deadline { usleep(1000) }
        #expect(result.withLock { $0 } == .aborted(order: 0, flags: .noFS))
        try Self.freeAll(a, held)
        try Self.expectAllFree(a)
    }

    @Test func reaperFreesTheVictimsAnonymousMemory() throws {
        let a = try Self.allocator { $0.policy.reaper = true; $0.policy.reaperDelayMs = 10; $0.policy.maxStallMs = 5000 }
        a.startBackgroundThreads()
        defer { a.stopBackgroundThreads() }
        let victim = try #require(a.registerTask(name: "victim"))
        let me = try #require(a.registerTask(name: "me"))
        let anon = Self.fill(a, owner: victim)
        for b in anon { a.addReclaimable(b, kind: .anon, owner: victim) } // no swap: only the reaper can free it
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: me)
        // The victim was killed, and the reaper freed exactly its anonymous pages.
        // The allocation can succeed as soon as the reaper starts freeing, before
        // it records the reap: wait (bounded) for the record.
        let deadline = ContinuousClock.now + .seconds(5)
        while !a.oomEvents().contains(where: { $0.kind == "reap" }) && ContinuousClock.now < deadline { usleep(1000) }
        let events = a.oomEvents()
        #expect(events.first?.kind == "kill" && events.first?.victim == Int(victim))
        #expect(events.contains { $0.kind == "reap" && $0.victim == Int(victim) && $0.badness == anon.count })
        #expect(a.slowPathCounter(.oomReapedPages) == anon.count)
        #expect(a.reclaimablePages()[.anon, default: 0] == 0)
        try a.free(b, cpu: CPUID(0))
        a.taskExited(victim)
        if a.taskShouldDie(me) { a.taskExited(me) }
        try Self.expectAllFree(a)
    }

    @Test func syncOOMSleepsOnTheWaitQueueAndKillsOnce() throws {
        let a = try Self.allocator { $0.policy.oom = .sync; $0.policy.maxStallMs = 5000 }
        let hog = try #require(a.registerTask(name: "hog"))
        let me = try #require(a.registerTask(name: "me"))
        let held = Self.fill(a, owner: hog)
        a.setTaskRSS(hog, pages: held.count)
        let heldBox = UnsafeSendableBox(held)
        let t = Thread {
            let deadline = ContinuousClock.now + .seconds(5)
            while !a.taskShouldDie(hog) && ContinuousClock.now < deadline { usleep(20_000) }
            usleep(50_000)
            for b in heldBox.value { try? a.free(b, cpu: CPUID(0)) }
            a.taskExited(hog)
        }
        t.start()
        let b = try a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: me)
        #expect(a.slowPathCounter(.oomKill) == 1)
        #expect(a.slowPathCounter(.oomWaits) >= 1)
        try a.free(b, cpu: CPUID(0))
        try Self.expectAllFree(a)
    }

    @Test func kswapdWakesBelowLowAndReclaimsToHigh() throws {
        let a = try Self.allocator()
        let cache = Self.fill(a) // before kswapd runs: the fill's slow paths would wake it
        for b in cache { a.addReclaimable(b, kind: .clean, owner: 0) }
        #expect(a.freePages(zone: 0) < a.zoneDescription(0).low)
        a.startBackgroundThreads()
        defer { a.stopBackgroundThreads() }
        // What the slow path does below LOW; nothing allocates while kswapd works.
        a.wakeKswapd(node: 0)
        let zone = a.zoneDescription(0)
        let deadline = ContinuousClock.now + .seconds(5)
        while a.freePages(zone: 0) < zone.high && ContinuousClock.now < deadline { usleep(1000) }
        #expect(a.freePages(zone: 0) >= zone.high)
        #expect(a.slowPathCounter(.kswapdWakeups) >= 1)
        #expect(a.slowPathCounter(.pgstealKswapd) > 0)
        #expect(a.slowPathCounter(.pgstealDirect) == 0)
        try Self.expectAllFree(a)
    }

    @Test func policyTextParsesAndRejectsBadValues() throws {
        var p = SlowPathPolicy()
        try p.set("retry", "retries=5")
        #expect(p.retry == .retries(5))
        try p.set("oom", "sync")
        #expect(p.oom == .sync)
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("retry", "sometimes") }
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("oom", "lazy") }
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("reaper", "maybe") }
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("no_such_knob", "1") }
        #expect(SlowPathPolicy.table.count == p.settings.count)
    }
}

struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
