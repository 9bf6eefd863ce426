import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and SIGTERM: the first SIGINT or SIGTERM asks the run to stop
/// cleanly (results are still written, marked partial; exit 130 for SIGINT,
/// 143 for SIGTERM, what `timeout`, CI runners and Slurm send at a time
/// limit); a second one exits at once.
private let interruptCount = Atomic<Int>(0)
/// The signal that asked first (0: none).
private let interruptSignal = Atomic<Int32>(0)

public enum Interrupt {
    private static let installed = Mutex<[sigaction]?>(nil)
    /// The signals handled, in the order of `installed`'s saved handlers.
    public static let signals: [Int32] = [SIGINT, SIGTERM]

    /// True once SIGINT or SIGTERM arrived since `install()`.
    public static var requested: Bool { interruptCount.load(ordering: .relaxed) > 0 }

    /// The signal that asked the run to stop (SIGINT or SIGTERM), 0 if none.
    public static var signal: Int32 { interruptSignal.load(ordering: .relaxed) }

    /// The exit status of an interrupted run: 143 after SIGTERM, else 130.
    public static var exitStatus: ExitStatus { signal == SIGTERM ? .terminated : .interrupted }

    /// Installs the handlers (idempotent) and clears the flag.
    public static func install() {
        interruptCount.store(0, ordering: .relaxed)
        interruptSignal.store(0, ordering: .relaxed)
        installed.withLock { old in
            guard old == nil else { return }
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                // Async-signal-safe: atomics, and _exit on the second signal.
                _ = interruptSignal.compareExchange(expected: 0, desired: sig, ordering: .relaxed)
                if interruptCount.wrappingAdd(1, ordering: .relaxed).newValue >= 2 { _exit(128 + sig) }
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            var saved: [sigaction] = []
            var unblock = sigset_t()
            sigemptyset(&unblock)
            for s in signals {
                var previous = sigaction()
                sigaction(s, &sa, &previous)
                saved.append(previous)
                sigaddset(&unblock, s)
            }
            // A parent may have started us with these signals blocked (the
            // mask is inherited across exec): a handler is useless then.
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
            old = saved
        }
    }

    /// Puts the previous handlers back.
    public static func uninstall() {
        installed.withLock { old in
            guard let saved = old else { return }
            for (s, var previous) in zip(signals, saved) { sigaction(s, &previous, nil) }
            old = nil
        }
    }
}
