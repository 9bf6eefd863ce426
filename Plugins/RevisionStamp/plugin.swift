import Foundation
import PackagePlugin

/// Stamps the git revision the binary is built from, with a dirty mark, into
/// the target as `BuildStamp` (Plugins/RevisionStamp/stamp.sh writes it).
///
/// A prebuild command runs before every `swift build`, so a plain build gets
/// the revision right; the script rewrites the file only when it changes, so
/// an unchanged tree recompiles nothing.
@main
struct RevisionStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appendingPathComponent("Stamp")
        let package = context.package.directoryURL
        let script = package.appendingPathComponent("Plugins/RevisionStamp/stamp.sh")
        return [
            .prebuildCommand(
                displayName: "Stamping the git revision of \(package.lastPathComponent)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [script.path, package.path, out.appendingPathComponent("BuildStamp.swift").path],
                outputFilesDirectory: out)
        ]
    }
}
