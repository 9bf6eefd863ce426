// pcp_lock = rseq: the per-CPU lists owned through restartable sequences on
// their own CPU and compare-and-swap + membarrier from anywhere else.
// The stress test runs many threads on the machine's CPUs (2 here), frees on
// other CPUs than the caller's (the membarrier path), drains and validate()
// from other threads all the time, and a flood of signals that forces the
// kernel to restart sequences; at the end every page is accounted for.
import CNUMA
import Synchronization
import Testing
@testable import PageAllocator
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// Whether this process can use rseq ownership at all (x86-64, glibc's
/// registration, membarrier); the machine-topology tests need it.
let rseqUsable: Bool = { var e: Int32 = 0; return cnuma_rseq_setup(&e) == 0 }()

/// SIGUSR1 deliveries, counted by the handler (async-signal-safe).
let rseqTestSignals = Atomic<Int>(0)

func makeMachineAllocator(pcpLock: SlowPathPolicy.PCPLock, zones: [ZoneSpec]) throws -> PageAllocator {
    var c = AllocatorConfig(topology: Topology.discover(), zones: zones)
    c.bindMemory = false
    c.policy.retry = .retries(0)
    c.policy.maxStallMs = testMaxStallMs
    c.policy.pcpLock = pcpLock
    return try PageAllocator(c)
}

final class RseqShared: Sendable {
    let queue = Mutex<[Handed]>([])
    let failures = Mutex<[String]>([])
    let threads = Mutex<[pthread_t]>([])
    let allocations = Atomic<Int>(0)
    let foreignFrees = Atomic<Int>(0)
    let done = Atomic<Int>(0)
    let validations = Atomic<Int>(0)
    let drains = Atomic<Int>(0)
    let signals = Atomic<Int>(0)
    let floodStopped = Atomic<Bool>(false)
    let sent = Atomic<Int>(0)
    let killFailures = Atomic<Int>(0)
    let restartsBefore: UInt64
    init(restartsBefore: UInt64) { self.restartsBefore = restartsBefore }
    func fail(_ s: String) { failures.withLock { if $0.count < 20 { $0.append(s) } } }
}

@Suite struct RseqTests {
    @Test func explicitRseqIsRefusedWhereUnavailableAndAutoSaysWhy() throws {
        // A declared topology maps logical CPUs onto real ones: never rseq.
        var c = AllocatorConfig(topology: try Topology.declared(nodes: 2, cpusPerNode: 2), zones: [ZoneSpec(.normal, pages: 1024)])
        c.bindMemory = false
        c.policy.pcpLock = .rseq
        #expect {
            _ = try PageAllocator(c)
        } throws: { e in
            guard let e = e as? ConfigError, case .invalid(let field, let value, let reason) = e else { return false }
            return field == "policy.pcp_lock" && value == "rseq" && reason.contains("declared topology")
        }
        c.policy.pcpLock = .auto
        let a = try PageAllocator(c)
        #expect(a.pcpLock == .trylock)
        #expect(a.pcpLockNote?.contains("fell back to trylock") == true)
        c.policy.pcpLock = .trylock
        let t = try PageAllocator(c)
        #expect(t.pcpLock == .trylock && t.pcpLockNote == nil)
    }

    @Test func policyKnobParses() throws {
        var p = SlowPathPolicy()
        #expect(p.pcpLock == .auto)
        try p.set("pcp_lock", "trylock")
        #expect(p.pcpLock == .trylock)
        #expect(p.settings.contains { $0 == ("pcp_lock", "trylock") })
        #expect(throws: SlowPathPolicy.ParseError.self) { try p.set("pcp_lock", "spin") }
    }

    @Test(.enabled(if: rseqUsable, "rseq ownership is unavailable on this machine"))
    func machineTopologyTakesRseqByDefault() throws {
        let a = try makeMachineAllocator(pcpLock: .auto, zones: [ZoneSpec(.normal, pages: 2048)])
        #expect(a.pcpLock == .rseq && a.pcpLockNote == nil)
        // The fast path serves from the list and the counters stay exact.
        var held: [PageBlock] = []
        for _ in 0..<500 { held.append(try a.allocate(order: 0)) }
        for b in held { try a.free(b) }
        for _ in 0..<1000 { try a.free(try a.allocate(order: 1)) }
        let c = a.totalCounters()
        #expect(c[.pgalloc] == 500 + 2000 && c[.pgfree] == c[.pgalloc])
        #expect(c[.pcpLockContended] == 0)
        let acct = try a.validate()
        #expect(acct.allocated == 0 && acct.buddyFree + acct.perCPU == 2048)
        // A double free through the rseq path is still caught.
        let b = try a.allocate(order: 0)
        try a.free(b)
        #expect(throws: AllocError.self) { try a.free(b) }
    }

    static func worker(_ a: PageAllocator, _ s: RseqShared, id: Int, ops: Int) {
        // The test runner's threads may block SIGUSR1, and new threads inherit the mask.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        s.threads.withLock { $0.append(pthread_self()) }
        if id % 4 != 3 { _ = cnuma_pin_current_thread(Int32(id % Int(a.cpuCount))) }  // every 4th migrates freely
        var rng = SplitMix64(seed: 0x5EED_0000 + UInt64(id))
        var mine: [Handed] = []
        func release(_ h: Handed) {
            guard check(h.block, pageSize: a.pageSize, tag: h.tag) else { s.fail("thread \(id): \(h.block) was overwritten while held"); return }
            var cpu: CPUID? = nil
            if rng.chance(15) {
                cpu = CPUID(rng.below(a.cpuCount))   // often another CPU's list: taken from outside
                s.foreignFrees.add(1, ordering: .relaxed)
            }
            do { try a.free(h.block, cpu: cpu) } catch { s.fail("thread \(id): free of \(h.block) threw \(error)") }
        }
        for op in 0..<ops {
            let roll = rng.below(100)
            if roll < 50 && mine.count < 32 || mine.isEmpty {
                let order = rng.chance(90) ? rng.below(4) : 4 + rng.below(3)
                do {
                    let b = try a.allocate(order: order, owner: UInt16(id + 1))
                    let tag = UInt64(id) << 48 | UInt64(op)
                    fill(b, pageSize: a.pageSize, tag: tag)
                    mine.append(Handed(block: b, tag: tag, cpu: nil))
                    s.allocations.add(1, ordering: .relaxed)
                } catch .outOfMemory {
                } catch .timedOut {
                } catch {
                    s.fail("thread \(id): allocate(order: \(order)) threw \(error)")
                }
            } else if roll < 60 {
                s.queue.withLock { $0.append(mine.remove(at: rng.below(mine.count))) }
            } else if roll < 75, let h = s.queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                release(h)
            } else {
                release(mine.remove(at: rng.below(mine.count)))
            }
        }
        // Then order-0 pairs on this CPU until the flood has forced a restart
        // (bounded: 20 s), so that the restart path has certainly run.
        let end = monotonicSeconds() + 20
        while PageAllocator.rseqRestarts == s.restartsBefore && monotonicSeconds() < end {
            if let b = try? a.allocate(order: 0) { try? a.free(b) }
        }
        for h in mine { release(h) }
        s.done.add(1, ordering: .releasing)
        // Stay alive until the flood has stopped: pthread_kill on a thread
        // that has exited (and been joined) is undefined.
        let until = monotonicSeconds() + 60
        while !s.floodStopped.load(ordering: .acquiring) && monotonicSeconds() < until { usleep(1000) }
    }

    @Test(.enabled(if: rseqUsable, "rseq ownership is unavailable on this machine"))
    func manyThreadsDrainsValidateAndASignalFloodLoseNothing() throws {
        let a = try makeMachineAllocator(pcpLock: .rseq, zones: [ZoneSpec(.dma32, pages: 1024), ZoneSpec(.normal, pages: 4096)])
        #expect(a.pcpLock == .rseq)
        let seeds = a.allFreeBlocks()
        let restartsBefore = PageAllocator.rseqRestarts
        let s = RseqShared(restartsBefore: restartsBefore)
        let threads = 8
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in rseqTestSignals.add(1, ordering: .relaxed) }
        sa.sa_flags = SA_RESTART
        sigemptyset(&sa.sa_mask)
        #expect(sigaction(SIGUSR1, &sa, nil) == 0)
        var workers: [TestThread] = []
        for t in 0..<threads { workers.append(TestThread { RseqTests.worker(a, s, id: t, ops: 20_000) }) }
        let validator = TestThread {
            while s.done.load(ordering: .acquiring) < threads {
                do {
                    let acct = try a.validate()
                    if acct.buddyFree + acct.perCPU + acct.allocated != acct.managed { s.fail("validate: \(acct)") }
                } catch { s.fail("concurrent validate(): \(error)") }
                s.validations.add(1, ordering: .relaxed)
                usleep(300)
            }
        }
        let drainer = TestThread {
            var rng = SplitMix64(seed: 7)
            while s.done.load(ordering: .acquiring) < threads {
                if rng.chance(70) { a.drain(cpu: CPUID(rng.below(a.cpuCount))) } else { a.drainAllCPUs() }
                s.drains.add(1, ordering: .relaxed)
                usleep(100)
            }
        }
        // The flood: SIGUSR1 to the workers, round robin; each signal waits
        // (at most 2 ms) until it is delivered, so signals are not merged.
        let flood = TestThread {
            let before = rseqTestSignals.load(ordering: .relaxed)
            while s.done.load(ordering: .acquiring) < threads {
                let ts = s.threads.withLock { $0 }
                guard ts.count == threads else { sched_yield(); continue }
                for t in ts {
                    let d = rseqTestSignals.load(ordering: .relaxed)
                    let rc = pthread_kill(t, SIGUSR1)
                    guard rc == 0 else { s.killFailures.add(1, ordering: .relaxed); continue }
                    s.sent.add(1, ordering: .relaxed)
                    let until = monotonicSeconds() + 0.002
                    while rseqTestSignals.load(ordering: .relaxed) == d && monotonicSeconds() < until { sched_yield() }
                }
            }
            s.signals.store(rseqTestSignals.load(ordering: .relaxed) - before, ordering: .relaxed)
            s.floodStopped.store(true, ordering: .releasing)
        }
        let deadline = monotonicSeconds() + 120
        for (i, w) in workers.enumerated() {
            guard w.join(deadline: deadline) else { Issue.record("worker \(i) did not finish in 120 s"); return }
        }
        for (name, t) in [("validator", validator), ("drainer", drainer), ("signal flood", flood)] {
            guard t.join(deadline: deadline) else { Issue.record("the \(name) did not finish"); return }
        }
        for f in s.failures.withLock({ $0 }) { Issue.record(Comment(rawValue: f)) }
        for h in s.queue.withLock({ q -> [Handed] in defer { q.removeAll() }; return q }) {
            #expect(check(h.block, pageSize: a.pageSize, tag: h.tag))
            try a.free(h.block)
        }
        let restarts = PageAllocator.rseqRestarts - restartsBefore
        #expect(s.allocations.load(ordering: .relaxed) > threads * 20_000 / 4)
        #expect(s.foreignFrees.load(ordering: .relaxed) > 0)
        #expect(s.validations.load(ordering: .relaxed) > 0 && s.drains.load(ordering: .relaxed) > 0)
        #expect(s.signals.load(ordering: .relaxed) > 100)
        #expect(restarts > 0, "the signal flood forced no restart (\(s.signals.load(ordering: .relaxed)) signals)")
        print("rseq stress: \(s.allocations.load(ordering: .relaxed)) allocations, \(s.foreignFrees.load(ordering: .relaxed)) frees from outside, \(s.validations.load(ordering: .relaxed)) validations, \(s.drains.load(ordering: .relaxed)) drains, \(s.signals.load(ordering: .relaxed)) signals delivered (\(s.sent.load(ordering: .relaxed)) sent, \(s.killFailures.load(ordering: .relaxed)) pthread_kill failures), \(restarts) restarts")
        // Every page accounted for.
        let acct = try a.validate()
        #expect(acct.allocated == 0 && acct.allocatedBlocks == 0)
        #expect(acct.buddyFree + acct.perCPU == acct.managed && acct.managed == 5120 * a.nodeCount)
        let c = a.totalCounters()
        #expect(c[.pgalloc] == c[.pgfree])
        a.drainAllCPUs()
        let drained = try a.validate()
        #expect(drained.buddyFree == drained.managed && drained.perCPU == 0)
        #expect(a.allFreeBlocks() == seeds)
    }
}
