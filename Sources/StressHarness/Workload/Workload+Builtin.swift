import Topology

/// The built-in default workload: what `pagestorm run` runs with no file and
/// what `pagestorm smoke` runs: Workloads/default.toml, embedded at build time
/// (Plugins/EmbedWorkloads).
extension Workload {
    public static let builtinDefaultText: String = {
        guard let text = EmbeddedWorkloads.text["Workloads/default.toml"] else {
            preconditionFailure("Workloads/default.toml is not embedded (Plugins/EmbedWorkloads)")
        }
        return text
    }()

    /// The built-in default, resolved against `machine`.
    public static func builtinDefault(machine: Topology = Topology.discover()) -> Workload {
        do { return try parse(builtinDefaultText, file: "<built-in default>", defaultName: "default", machine: machine) } catch {
            preconditionFailure("the built-in default workload does not parse: \(error)")
        }
    }
}
