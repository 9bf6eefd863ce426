import Foundation
import PackagePlugin

/// Embeds the workload files the tool runs without a file into the target as
/// `EmbeddedWorkloads.text[path]`: the built-in default (`pagestorm run` with
/// no file, `pagestorm smoke`) and the shapes `pagestorm bench --peers` runs.
/// Workloads/ holds the one copy; the binary carries it, so it runs from any
/// directory. Plugins/EmbedWorkloads/embed.sh writes the Swift file; the
/// build reruns it when one of the files changes.
@main
struct EmbedWorkloads: BuildToolPlugin {
    /// Paths relative to the package; keys of `EmbeddedWorkloads.text`.
    static let files = [
        "Workloads/default.toml",
        "Workloads/nbbs-cached-allocation.toml",
        "Workloads/nbbs-constant-occupancy.toml",
        "Workloads/mimalloc-larson.toml",
        "Workloads/mimalloc-xmalloc-test.toml",
    ]

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let package = context.package.directoryURL
        let script = package.appendingPathComponent("Plugins/EmbedWorkloads/embed.sh")
        let out = context.pluginWorkDirectoryURL.appendingPathComponent("EmbeddedWorkloads.swift")
        let inputs = Self.files.map { package.appendingPathComponent($0) }
        return [
            .buildCommand(
                displayName: "Embedding \(Self.files.count) workload files",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, package.path, out.path] + Self.files,
                inputFiles: [script] + inputs,
                outputFiles: [out])
        ]
    }
}
