import Synchronization
import Topology
#if canImport(Glibc)
import Glibc
#endif

private final class ThreadStart: @unchecked Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Worker threads are pthreads, not Swift concurrency tasks: they pin, and
/// they must never hop between threads.
public enum Threads {
    /// Starts one pthread per index; returns their handles. The bodies are
    /// nonisolated closures made here, never in main-actor code.
    public static func start(count: Int, stackBytes: Int = 1 << 20, _ body: @escaping @Sendable (Int) -> Void) -> [pthread_t] {
        var out: [pthread_t] = []
        for i in 0..<count {
            let box = Unmanaged.passRetained(ThreadStart { body(i) }).toOpaque()
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setstacksize(&attr, stackBytes)
            var tid = pthread_t()
            let rc = pthread_create(&tid, &attr, { arg in
                let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
                start.body()
                return nil
            }, box)
            pthread_attr_destroy(&attr)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            out.append(tid)
        }
        return out
    }

    public static func join(_ threads: [pthread_t]) {
        for t in threads { pthread_join(t, nil) }
    }

    /// Runs `body(i)` on `count` pthreads and waits for all of them.
    public static func run(count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        join(start(count: count, body))
    }
}

/// A one-shot start barrier: every worker spins until all have arrived, so
/// they start together.
public final class StartBarrier: @unchecked Sendable {
    private let arrived = Atomic<Int>(0)
    private let parties: Int
    public init(parties: Int) { self.parties = parties }
    public func arriveAndWait() {
        arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        var spins = 0
        while arrived.load(ordering: .acquiring) < parties {
            spins += 1
            if spins & 255 == 0 { sched_yield() }
        }
    }
}
