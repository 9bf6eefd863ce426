import PageAllocator
import Synchronization

/// A small mutex-protected queue for blocks freed by another worker.
final class HandoffQueue: @unchecked Sendable {
    private let lock = Mutex<[PageBlock]>([])
    init() {}
    func put(_ b: PageBlock) { lock.withLock { $0.append(b) } }
    func takeAll() -> [PageBlock] { lock.withLock { q in defer { q.removeAll(keepingCapacity: true) }; return q } }
}
