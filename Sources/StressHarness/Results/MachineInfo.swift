import Foundation
import Topology

/// Facts about the machine and build that every results file records.
public struct MachineInfo: Codable, Sendable, Equatable {
    public var hostname: String
    public var cpuModel: String
    public var cores: Int
    public var kernel: String
    public var swiftVersion: String
    /// The git revision the binary was built from (`BuildStamp.revision`,
    /// stamped at build time, "-dirty" when the tree differed from it).
    public var gitRevision: String
    public var numaNodes: Int
    public var topology: String
    public var libnuma: Bool

    public static func current(topology: Topology? = nil) -> MachineInfo {
        let machine = Topology.discover()
        let t = topology ?? machine
        var u = utsname()
        uname(&u)
        func field<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        return MachineInfo(
            hostname: field(u.nodename), cpuModel: model, cores: ProcessInfo.processInfo.activeProcessorCount,
            kernel: field(u.sysname) + " " + field(u.release), swiftVersion: swiftCompilerVersion,
            gitRevision: BuildStamp.revision, numaNodes: machine.nodeCount, topology: t.description,
            libnuma: machine.canBindMemory || Topology.numaAvailable)
    }

    public static var swiftCompilerVersion: String {
        #if compiler(>=6.4)
        return "6.4+"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #else
        return "<6.2"
        #endif
    }
}
