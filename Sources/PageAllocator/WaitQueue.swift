#if canImport(Glibc)
import Glibc
#endif

/// A wait queue: a pthread mutex and a CLOCK_MONOTONIC condition variable in
/// heap memory. Every wait is bounded by a timeout; a wake-up wakes all.
/// `generation` lets a waiter sleep until "something happened since I looked".
///
/// Lock contract: `generation` is read and written only with `mutex` held
/// (`ticket`, `wait`, `wakeAll`); `mutex` and `cond` are set at `init` and
/// destroyed in `deinit`, when no thread can hold a reference. A pthread mutex
/// rather than Synchronization.Mutex: ThreadSanitizer sees it (docs/allocator.md).
public final class WaitQueue: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var generation: UInt64 = 0 // under mutex

    public init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// The current generation (a ticket for `wait(after:)`).
    public var ticket: UInt64 {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return generation
    }

    /// Sleeps until a wake-up after `ticket`, or `timeoutNs`. Returns true if woken.
    @discardableResult
    public func wait(after ticket: UInt64, timeoutNs: UInt64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let deadline = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + timeoutNs
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while generation == ticket {
            if pthread_cond_timedwait(cond, mutex, &ts) == ETIMEDOUT { return generation != ticket }
        }
        return true
    }

    /// Wakes every waiter.
    public func wakeAll() {
        pthread_mutex_lock(mutex)
        generation &+= 1
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }
}

/// Sleeps for `ns` nanoseconds (the simulated I/O time, a scheduler tick).
public func sleepNanoseconds(_ ns: UInt64) {
    guard ns > 0 else { return }
    var req = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    var rem = timespec()
    while nanosleep(&req, &rem) == -1 && errno == EINTR { req = rem }
}
