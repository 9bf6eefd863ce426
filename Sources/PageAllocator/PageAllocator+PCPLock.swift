import CNUMA
import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

/// How the per-CPU lists are owned, as built (`pcp_lock` resolved).
public enum PCPLockMode: String, Sendable, Equatable {
    /// Restartable sequences on the owning CPU, compare-and-swap + membarrier elsewhere.
    case rseq
    /// A compare-and-swap trylock everywhere (the kernel's local_trylock).
    case trylock
}

/// Ownership of one CPU's slot (`PerCPUPages`) for one operation.
///
/// The slot's first word says who owns it: 0 nobody; 1 a trylock holder
/// (trylock mode); 2 a thread that took it with `cnuma_rseq_take` while
/// running on the slot's CPU (rseq mode: one plain store inside a
/// restartable sequence, no atomic read-modify-write); any other value the
/// token of a thread that took it from outside (rseq mode: compare-and-swap
/// of its token, then a membarrier on the slot's CPU, then the token must
/// still be there). docs/allocator.md argues why the two kinds never overlap.
extension PageAllocator {
    /// Decides `pcp_lock`: rseq where the process, the kernel and the
    /// topology allow it. `.auto` falls back to trylock with a reason;
    /// an explicit `.rseq` that cannot be had throws.
    static func resolvePCPLock(_ want: SlowPathPolicy.PCPLock, topology: Topology, identity: Bool, realCPUs: Int) throws(ConfigError) -> (PCPLockMode, String?) {
        if want == .trylock { return (.trylock, nil) }
        var err: Int32 = 0
        let s = cnuma_rseq_setup(&err)
        var why: String? = nil
        switch s {
        case 0: break
        case 1: why = "rseq critical sections are written for x86-64 only"
        case 2: why = "glibc did not register rseq for this process (kernel without rseq, GLIBC_TUNABLES=glibc.pthread.rseq=0, or valgrind)"
        case 3: why = "membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ) failed (errno \(err); needs Linux 5.10)"
        default: why = "this thread's rseq area holds no CPU number"
        }
        if why == nil && (topology.isDeclared || !identity || realCPUs != topology.cpuCount) {
            why = "the topology's logical CPUs are not the machine's CPUs one to one (a declared topology, or a subset of the CPUs), so a per-CPU list is not owned by one real CPU"
        }
        guard let why else { return (.rseq, nil) }
        if want == .rseq { throw .invalid(field: "policy.pcp_lock", value: "rseq", reason: "unavailable here: \(why); use pcp_lock = trylock or auto") }
        return (.trylock, "pcp_lock = auto fell back to trylock: \(why)")
    }

    /// Restarts of the rseq critical section seen so far (all threads, all allocators).
    public static var rseqRestarts: UInt64 { cnuma_rseq_aborts() }

    /// The fast path's attempt: one rseq sequence (rseq mode) or one trylock.
    /// (`rseqOffset`, not the equal `cpuArea` that thisCPU() loaded: reusing
    /// that keeps it live across sched_getcpu() where that is a call, a spill
    /// per call, for one L1 load saved in rseq mode.)
    @inlinable @inline(__always)
    func tryTakeSlotFast(_ slot: PerCPUPages, cpu: Int) -> Bool {
        if rseqOn { return cnuma_rseq_take_fast(slot.word, Int32(truncatingIfNeeded: cpu), rseqOffset) }
        return slot.lock.tryLockBit()
    }

    /// Takes `cpu`'s slot for one operation without waiting: false when it
    /// is taken (the caller goes to the buddy, as a failed trylock does).
    @inlinable @inline(__always)
    func tryTakeSlot(_ slot: PerCPUPages, cpu: Int) -> Bool {
        if !rseqOn { return slot.lock.tryLockBit() }
        if cnuma_rseq_take_fast(slot.word, Int32(truncatingIfNeeded: cpu), rseqOffset) { return true }
        let r = cnuma_rseq_take(slot.word, Int32(truncatingIfNeeded: cpu), rseqOffset)
        if r == 1 { return true }
        if r == 0 { return false }
        return tryTakeSlotSlow(slot, cpu: cpu, first: r)
    }

    /// The sequence aborted, or the thread is not on `cpu` (an explicit cpu,
    /// or it migrated): retry a few times while on `cpu`, else take the slot
    /// from outside.
    @usableFromInline @inline(never)
    func tryTakeSlotSlow(_ slot: PerCPUPages, cpu: Int, first: Int32) -> Bool {
        var r = first
        for _ in 0..<4 {
            if r == -2 { cnuma_rseq_count_abort() }
            if Int(cnuma_current_cpu()) != cpu { break }
            r = cnuma_rseq_take(slot.word, Int32(truncatingIfNeeded: cpu), rseqOffset)
            if r >= 0 { return r == 1 }
        }
        if r == -2 { cnuma_rseq_count_abort() }
        return tryTakeForeign(slot, cpu: cpu)
    }

    /// A token no other live thread uses, never 0, 1 or 2.
    @usableFromInline static func foreignToken() -> Int {
        Int(bitPattern: UInt(pthread_self())) | 3 << 60
    }

    /// One attempt from outside the slot's CPU: compare-and-swap our token,
    /// fence the CPU, and own the slot only if the token survived.
    @usableFromInline
    func tryTakeForeign(_ slot: PerCPUPages, cpu: Int) -> Bool {
        let token = PageAllocator.foreignToken()
        guard slot.lock.word.pointee.compareExchange(expected: 0, desired: token, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed).exchanged else { return false }
        fenceCPU(cpu)
        return slot.lock.word.pointee.load(ordering: .acquiring) == token
    }

    @usableFromInline
    func fenceCPU(_ cpu: Int) {
        let rc = cnuma_rseq_fence_cpu(Int32(truncatingIfNeeded: cpu))
        // Registered at init; a failure here would make rseq ownership unsound.
        precondition(rc == 0, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) failed: errno \(-rc)")
    }

    /// Releases a slot taken by any of the ways above.
    @inlinable @inline(__always)
    func releaseSlot(_ slot: PerCPUPages) { slot.lock.unlock() }

    /// Takes `cpu`'s slot in every zone, waiting (spinning, then yielding)
    /// as long as it takes: drains, validate() and the refill/drain bench.
    /// rseq mode: all of them with one fence; if a sequence on that CPU took
    /// one between our compare-and-swap and the fence, give back all and
    /// start again (no holding while waiting, so no deadlock).
    func lockCPUSlots(_ cpu: Int) {
        if !rseqOn {
            for z in 0..<zoneCount { zones[z].pcp(cpu).lock.lock() }
            return
        }
        let token = PageAllocator.foreignToken()
        var spins = 0
        while true {
            for z in 0..<zoneCount {
                let w = zones[z].pcp(cpu).lock.word
                while !w.pointee.compareExchange(expected: 0, desired: token, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed).exchanged {
                    spins &+= 1
                    if spins & 63 == 0 { sched_yield() } else { cnuma_cpu_relax() }
                }
            }
            fenceCPU(cpu)
            var all = true
            for z in 0..<zoneCount where zones[z].pcp(cpu).lock.word.pointee.load(ordering: .acquiring) != token { all = false }
            if all { return }
            for z in 0..<zoneCount {
                let w = zones[z].pcp(cpu).lock.word
                _ = w.pointee.compareExchange(expected: token, desired: 0, ordering: .releasing)
            }
            sched_yield()
        }
    }

    /// Takes one slot, waiting as long as it takes (the statistics): the
    /// trylock's lock(), or in rseq mode the take from outside (compare-and-
    /// swap, fence) retried until it holds. A plain lock() in rseq mode would
    /// race a sequence's plain store on the slot's CPU. Release: releaseSlot.
    func lockSlot(_ slot: PerCPUPages, cpu: Int) {
        if !rseqOn { slot.lock.lock(); return }
        var spins = 0
        while !tryTakeForeign(slot, cpu: cpu) {
            spins &+= 1
            if spins & 63 == 0 { sched_yield() } else { cnuma_cpu_relax() }
        }
    }

    func unlockCPUSlots(_ cpu: Int) {
        for z in 0..<zoneCount { zones[z].pcp(cpu).lock.unlock() }
    }
}
