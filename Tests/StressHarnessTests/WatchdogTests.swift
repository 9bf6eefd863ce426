import Foundation
import Synchronization
import Testing
@testable import PageAllocator
@testable import StressHarness
import Topology

@Suite(.serialized) struct WatchdogTests {
    static func snap(_ id: UInt16, _ a: TaskActivity, target: Int = 0, victim: Bool = false) -> TaskSnapshot {
        TaskSnapshot(id: id, name: "t\(id)", alive: true, isVictim: victim, skipped: false, rss: 0, anonPages: 0, cachePages: 0,
                     swapEntries: 0, oomScoreAdj: 0, group: 0, activity: a, sinceNs: 0, order: 0, flags: .noFS, target: target)
    }

    @Test func findsTheAllocatorVictimLockCycle() {
        // Task 1 loops in the allocator holding lock 7; task 2 is the victim, waiting for lock 7.
        let tasks = [Self.snap(1, .retryingInAllocator), Self.snap(2, .waitingForLock, target: 7, victim: true)]
        let cycle = Watchdog.findCycle(tasks: tasks) { $0 == 7 ? 1 : nil }
        #expect(cycle.map(Set.init) == Set([1, 2]))
    }

    @Test func noCycleWhenTheVictimIsFree() {
        let tasks = [Self.snap(1, .retryingInAllocator), Self.snap(2, .running, victim: true)]
        #expect(Watchdog.findCycle(tasks: tasks) { _ in nil } == nil)
        // A lock wait on a lock nobody holds is no edge.
        let t2 = [Self.snap(1, .waitingForLock, target: 3), Self.snap(2, .waitingForLock, target: 4)]
        #expect(Watchdog.findCycle(tasks: t2) { _ in nil } == nil)
        // Two tasks waiting for each other's locks are a cycle.
        #expect(Watchdog.findCycle(tasks: t2) { $0 == 3 ? 2 : 1 } != nil)
    }

    /// Scenario 1 in miniature, with real threads: under `legacy` + `async`, a
    /// GFP_NOFS allocation loops forever while holding the journal lock that
    /// the OOM victim needs. The watchdog must call it a deadlock, shut the
    /// allocator down, and every thread must end.
    @Test func theClassicOOMDeadlockIsDetectedAndEnded() throws {
        var cfg = AllocatorConfig(topology: try Topology.declared(nodes: 1, cpusPerNode: 1), pagesPerNode: 1024)
        cfg.policy.retry = .legacy
        let a = try PageAllocator(cfg)
        let holder = try #require(a.registerTask(name: "fs-writer"))
        let victim = try #require(a.registerTask(name: "victim"))
        let killer = try #require(a.registerTask(name: "killer"))
        let journal = Atomic<Int>(Int(holder)) // lock 0, held by the writer
        let victimBlocks = HandoffQueue()
        // The victim holds most of memory, then blocks on the journal lock.
        var vb: [PageBlock] = []
        repeat { while let b = try? a.allocate(order: .zero, flags: .noWait, cpu: CPUID(0), owner: victim) { vb.append(b) } } while a.drainAllCPUs() > 0
        a.setTaskRSS(victim, pages: vb.count)
        for b in vb { victimBlocks.put(b) }
        let wd = Watchdog(allocator: a, settings: { var s = Watchdog.Settings(); s.deadlockAfterMs = 200; s.livelockAfterMs = 5000; return s }(),
                          progress: { 0 }, lockHolder: { id in id == 0 ? UInt16(truncatingIfNeeded: journal.load(ordering: .relaxed)) : nil },
                          lockName: { _ in "journal" }, onFire: { _ in a.shutdown() })
        wd.start()
        let outcome = Mutex<[String: String]>([:])
        Threads.run(count: 3) { i in
            switch i {
            case 0: // the writer: GFP_NOFS under the journal lock
                do { let b = try a.allocate(order: .zero, flags: .noFS, cpu: CPUID(0), owner: holder); try? a.free(b, cpu: CPUID(0)); outcome.withLock { $0["writer"] = "ok" } }
                catch let e as AllocError { outcome.withLock { $0["writer"] = "\(e)" } } catch {}
                journal.store(0, ordering: .relaxed) // commit: release the lock
            case 1: // the victim: waits for the journal lock, then dies at its safe point
                a.setTaskActivity(victim, .waitingForLock, target: 0)
                let deadline = ContinuousClock.now + .seconds(10)
                while journal.load(ordering: .relaxed) != 0 && ContinuousClock.now < deadline { usleep(1000) }
                a.setTaskActivity(victim, .running)
                for b in victimBlocks.takeAll() { try? a.free(b, cpu: CPUID(0)) }
                a.taskExited(victim)
                outcome.withLock { $0["victim"] = a.taskShouldDie(victim) ? "killed" : "not killed" }
            default: // someone with __GFP_FS triggers the OOM kill of the victim
                usleep(50_000)
                // It may succeed once the victim has exited, or end with .aborted at shutdown.
                if let b = try? a.allocate(order: .zero, flags: .kernel, cpu: CPUID(0), owner: killer) { try? a.free(b, cpu: CPUID(0)) }
            }
        }
        wd.stop()
        let r = try #require(wd.report)
        #expect(r.verdict == .deadlock)
        #expect(Set(r.cycle) == Set([Int(holder), Int(victim)]))
        #expect(r.tasks.contains { $0.contains("fs-writer") && $0.contains("retrying in the allocator at order 0 with flags GFP_NOFS") })
        #expect(r.tasks.contains { $0.contains("victim") && $0.contains("waiting for lock journal held by task \(holder)") })
        let o = outcome.withLock { $0 }
        #expect(o["writer"]?.contains("shut down") == true)
        #expect(o["victim"] == "killed")
        #expect(a.slowPathCounter(.oomKill) == 1)
        #expect(a.slowPathCounter(.nofsNoKill) >= 1)
        let acct = try a.validate()
        #expect(acct.allocated == 0)
    }
}
