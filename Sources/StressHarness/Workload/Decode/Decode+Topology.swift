import Foundation
import PageAllocator
import Topology

// [topology]
extension WorkloadDecoder {
    func decodeTopology(_ r: TableReader) throws(WorkloadError) -> (spec: TopologySpec, reader: TableReader) {
        try r.allowOnly(WorkloadDecoder.topologyKeys)
        let declaredKeys = ["nodes", "cpus_per_node", "distances", "node_ids"].filter(r.has)
        let kind = try r.string("kind", default: declaredKeys.isEmpty ? "machine" : "declared", oneOf: ["machine", "declared"])
        if kind == "machine" {
            if let k = declaredKeys.first {
                throw r.fail(k, "contradicts kind = \"machine\" (the machine's topology is discovered); use kind = \"declared\" to declare nodes")
            }
            var spec = TopologySpec.describing(machine)
            spec.kind = "machine"
            return (spec, r)
        }
        let nodes = try r.int("nodes", default: 1, range: 1...64)
        var perNode: [Int]
        if let v = r.table["cpus_per_node"], v.array != nil {
            perNode = try r.intArray("cpus_per_node")!
            guard perNode.count == nodes else {
                throw r.fail("cpus_per_node", "lists \(perNode.count) node(s) but nodes = \(nodes)")
            }
            for c in perNode { try r.check("cpus_per_node", c, 0...1024, what: "0 declares a memory-only node") }
            guard perNode.contains(where: { $0 > 0 }) else {
                throw r.fail("cpus_per_node", "no node has a CPU: memory-only nodes (0) need at least one node with CPUs")
            }
        } else {
            let c = try r.int("cpus_per_node", default: max(1, machine.cpuCount / nodes), range: 1...1024)
            perNode = Array(repeating: c, count: nodes)
        }
        var distances = (0..<nodes).map { a in (0..<nodes).map { b in a == b ? 10 : 20 } }
        if let v = r.table["distances"] {
            guard let rows = v.array else { throw r.fail("distances", "expected an array of arrays of integers, found a \(v.typeName)") }
            var m: [[Int]] = []
            for row in rows {
                guard let cells = row.array else { throw r.fail("distances", "each row must be an array of integers, found a \(row.typeName)", line: row.line) }
                var out: [Int] = []
                for c in cells {
                    guard let n = c.integer.flatMap({ Int(exactly: $0) }) else { throw r.fail("distances", "distances must be integers, found a \(c.typeName)", line: c.line) }
                    out.append(n)
                }
                m.append(out)
            }
            distances = m
        }
        var ids: [Int]? = nil
        if r.has("node_ids") {
            let v = try r.intArray("node_ids") ?? []
            guard v.count == nodes else { throw r.fail("node_ids", "lists \(v.count) node(s) but nodes = \(nodes)") }
            for n in v { try r.check("node_ids", n, 0...63, what: "node masks hold nodes 0...63") }
            for i in v.indices.dropFirst() where v[i] <= v[i - 1] {
                throw r.fail("node_ids", "must ascend, each number once (\(v[i]) after \(v[i - 1]))")
            }
            if v != Array(0..<nodes) { ids = v }
        }
        return (TopologySpec(kind: "declared", nodes: nodes, cpusPerNode: perNode, distances: distances, nodeIDs: ids), r)
    }

    func buildTopology(_ spec: TopologySpec, reader r: TableReader) throws(WorkloadError) -> Topology {
        if spec.kind == "machine" { return machine }
        do { return try Topology.declared(cpusPerNode: spec.cpusPerNode, distance: spec.distances, nodeIDs: spec.nodeIDs) } catch {
            throw r.fail(r.has("distances") ? "distances" : "nodes", "\(error)")
        }
    }
}
