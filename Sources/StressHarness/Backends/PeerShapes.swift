import Topology

/// The workload shapes `pagestorm bench --peers` runs on every allocator:
/// the files in Workloads/, embedded at build time (Plugins/EmbedWorkloads)
/// so that the tool runs from any directory.
public enum PeerShapes {
    /// (key, file name, text), in the order tables print them.
    public static let all: [(key: String, file: String, text: String)] =
        ["nbbs-cached-allocation", "nbbs-constant-occupancy", "mimalloc-larson", "mimalloc-xmalloc-test"].map { key in
            let file = "Workloads/\(key).toml"
            guard let text = EmbeddedWorkloads.text[file] else { preconditionFailure("\(file) is not embedded (Plugins/EmbedWorkloads)") }
            return (key, file, text)
        }

    public static func workload(_ key: String, machine: Topology = Topology.discover()) throws(WorkloadError) -> Workload {
        guard let s = all.first(where: { $0.key == key }) else {
            throw WorkloadError(file: "<bench --peers>", line: 0, field: "", message: "no shape \(key)")
        }
        return try Workload.parse(s.text, file: s.file, defaultName: key, machine: machine)
    }
}
