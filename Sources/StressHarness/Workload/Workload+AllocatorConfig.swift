import PageAllocator
import Topology

extension TopologySpec {
    /// The topology this spec describes (the machine's, or declared).
    public func build() throws(TopologyError) -> Topology {
        kind == "machine" ? Topology.discover() : try Topology.declared(cpusPerNode: cpusPerNode, distance: distances, nodeIDs: nodeIDs)
    }
}

extension MemorySpec {
    /// The allocator's memory configuration (no policy: see `Workload.allocatorConfig`).
    public func allocatorConfig(topology: Topology) -> AllocatorConfig {
        var c = AllocatorConfig(topology: topology, zones: zones.map { ZoneSpec(ZoneType(name: $0.type) ?? .normal, pages: $0.pages) })
        c.pageSize = pageSize
        c.minFreeKbytes = minFreeKbytes
        c.watermarkScaleFactor = watermarkScaleFactor
        c.lowmemReserveRatio = lowmemReserveRatio
        c.percpuPagelistHighFraction = percpuPagelistHighFraction
        c.bindMemory = bindMemory
        c.perCPUMaxOrder = pcpMaxOrder
        c.reclaim.swapPages = swapPages
        c.warnRatelimitMs = warnRatelimitMs
        c.weightedInterleaveHit = weightedInterleaveHit ?? true
        return c
    }
}

extension Workload {
    /// Everything the allocator is built from: `[topology]`, `[memory]`,
    /// `[policy]` (SlowPathPolicy), `[reclaim]`, `[fail_page_alloc]` and the
    /// `[[memory_group]]` limits.
    public func allocatorConfig(topology: Topology) throws(RunFailure) -> AllocatorConfig {
        var c = memory.allocatorConfig(topology: topology)
        try applySlowPath(to: &c)
        return c
    }

    /// Puts the workload's policy, reclaim costs, fault injection and memory
    /// groups into `c` (also used when the topology and memory come from flags).
    public func applySlowPath(to c: inout AllocatorConfig) throws(RunFailure) {
        do { c.policy = try Policy.resolve(policy) } catch { throw RunFailure(message: "\(error)", status: .badInput) }
        c.reclaim.writebackNsPerPage = reclaim.writebackNsPerPage
        c.reclaim.swapNsPerPage = reclaim.swapNsPerPage
        c.reclaim.batch = reclaim.batch
        c.reclaim.swapPages = memory.swapPages
        c.warnRatelimitMs = memory.warnRatelimitMs
        c.weightedInterleaveHit = memory.weightedInterleaveHit ?? true
        var f = failPageAlloc
        f.seed = failPageAlloc.seed ^ run.seed
        c.faultInjection = f
        c.memoryGroups = memoryGroups
    }
}

extension Workload {
    /// The workload with its topology and memory replaced by what `config` says.
    public func describing(config: AllocatorConfig) -> Workload {
        var w = self
        let t = config.topology
        w.topology = TopologySpec.describing(t)
        let perNode = config.zones.reduce(0) { $0 + $1.pages }
        w.memory = MemorySpec(
            pageSize: config.pageSize, zones: config.zones.map { ZoneRecord(type: $0.type.name, pages: $0.pages) },
            minFreeKbytes: config.minFreeKbytes ?? KernelFormulas.minFreeKbytes(lowmemKbytes: perNode * t.nodeCount * (config.pageSize / 1024)),
            minFreeKbytesGiven: config.minFreeKbytes != nil, watermarkScaleFactor: config.watermarkScaleFactor,
            lowmemReserveRatio: config.lowmemReserveRatio, pcpMaxOrder: config.perCPUMaxOrder,
            percpuPagelistHighFraction: config.percpuPagelistHighFraction, bindMemory: config.bindMemory,
            swapPages: config.reclaim.swapPages, warnRatelimitMs: config.warnRatelimitMs,
            weightedInterleaveHit: config.weightedInterleaveHit ? nil : false)
        return w
    }
}
