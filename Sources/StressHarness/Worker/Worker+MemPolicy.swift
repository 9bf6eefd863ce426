import PageAllocator
import Topology

extension Worker {
    /// One allocator call: under the group's memory policy, unless the
    /// operation names a node (alloc_pages_node(), which ignores the policy).
    @inline(__always)
    mutating func allocate(_ order: Order, _ flags: GFP, _ node: NodeID?) throws(AllocError) -> B.Block {
        if node == nil, let p = policy {
            return try backend.allocate(order: order, flags: flags, policy: p, cursor: &cursor, cpu: cpu, owner: owner)
        }
        return try backend.allocate(order: order, flags: flags, node: node, cpu: cpu, owner: owner)
    }
}
