import Foundation
import PageAllocator
import Topology

// [[memory_group]] and [[lock]]
extension WorkloadDecoder {
    func decodeMemoryGroups(_ rs: [TableReader], pageSize: Int) throws(WorkloadError) -> [MemoryGroupSpec] {
        var out: [MemoryGroupSpec] = []
        for r in rs {
            try r.allowOnly(["name", "limit_pages", "limit_mib"])
            guard let n = try r.string("name"), !n.isEmpty else { throw r.fail("name", "a memory group needs a name") }
            if out.contains(where: { $0.name == n }) { throw r.fail("name", "memory group '\(n)' is declared twice") }
            if r.has("limit_pages") && r.has("limit_mib") { throw r.fail("limit_mib", "contradicts limit_pages (give one)") }
            let limit: Int
            if let p = try r.int("limit_pages") {
                try r.check("limit_pages", p, 1...(1 << 40))
                limit = p
            } else if let m = try r.int("limit_mib") {
                try r.check("limit_mib", m, 1...(1 << 22))
                limit = m * (1 << 20) / pageSize
            } else {
                throw r.fail(nil, "memory group '\(n)' needs its limit: limit_pages = N or limit_mib = N")
            }
            out.append(MemoryGroupSpec(name: n, limitPages: limit))
        }
        return out
    }

    func decodeLocks(_ rs: [TableReader]) throws(WorkloadError) -> [LockSpec] {
        var out: [LockSpec] = []
        for r in rs {
            try r.allowOnly(["name"])
            guard let n = try r.string("name"), !n.isEmpty else { throw r.fail("name", "a lock needs a name") }
            if out.contains(where: { $0.name == n }) { throw r.fail("name", "lock '\(n)' is declared twice") }
            out.append(LockSpec(name: n))
        }
        return out
    }
}
