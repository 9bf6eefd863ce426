import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C: the first SIGINT asks the run to stop cleanly (results are still
/// written, marked partial, exit 130); a second one exits at once.
private let interruptCount = Atomic<Int>(0)

public enum Interrupt {
    private static let installed = Mutex<sigaction?>(nil)

    /// True once SIGINT arrived since `install()`.
    public static var requested: Bool { interruptCount.load(ordering: .relaxed) > 0 }

    /// Installs the handler (idempotent) and clears the flag.
    public static func install() {
        interruptCount.store(0, ordering: .relaxed)
        installed.withLock { old in
            guard old == nil else { return }
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { _ in
                // Async-signal-safe: an atomic add, and _exit on the second.
                if interruptCount.wrappingAdd(1, ordering: .relaxed).newValue >= 2 { _exit(130) }
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            var previous = sigaction()
            sigaction(SIGINT, &sa, &previous)
            old = previous
        }
    }

    /// Puts the previous handler back.
    public static func uninstall() {
        installed.withLock { old in
            guard var previous = old else { return }
            sigaction(SIGINT, &previous, nil)
            old = nil
        }
    }
}
