import PageAllocator
import Synchronization

/// A small mutex-protected queue for blocks freed by another worker.
public final class HandoffQueue: @unchecked Sendable {
    private let lock = Mutex<[PageBlock]>([])
    public init() {}
    public func put(_ b: PageBlock) { lock.withLock { $0.append(b) } }
    public func takeAll() -> [PageBlock] { lock.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q } }
}
