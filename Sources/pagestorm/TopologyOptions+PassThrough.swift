extension TopologyOptions {
    /// The topology flags as given, to pass on to a child `pagestorm` (bench --instructions' probes).
    var passThroughArguments: [String] {
        var a: [String] = []
        if let nodes { a += ["--nodes", String(nodes)] }
        if let cpusPerNode { a += ["--cpus-per-node", cpusPerNode] }
        if let nodeIDs { a += ["--node-ids", nodeIDs] }
        if let distances { a += ["--distances", distances] }
        if let zones { a += ["--zones", zones] }
        if let arenaMiB { a += ["--arena-mib", String(arenaMiB)] }
        if pageSize != 4096 { a += ["--page-size", String(pageSize)] }
        if let minFreeKbytes { a += ["--min-free-kbytes", String(minFreeKbytes)] }
        if watermarkScaleFactor != 10 { a += ["--watermark-scale-factor", String(watermarkScaleFactor)] }
        if let lowmemReserveRatio { a += ["--lowmem-reserve-ratio", lowmemReserveRatio] }
        return a
    }
}
