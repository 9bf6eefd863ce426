import Foundation
import Topology

/// Facts about the machine and build that every results file records.
public struct MachineInfo: Codable, Sendable, Equatable {
    public var hostname: String
    public var cpuModel: String
    public var cores: Int
    public var kernel: String
    public var swiftVersion: String
    public var gitRevision: String
    public var numaNodes: Int
    public var topology: String
    public var libnuma: Bool

    public static func current(topology: Topology? = nil) -> MachineInfo {
        let t = topology ?? Topology.discover()
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
            gitRevision: gitRevision(), numaNodes: Topology.discover().nodeCount, topology: t.description,
            libnuma: Topology.discover().canBindMemory || Topology.numaAvailable)
    }

    static var swiftCompilerVersion: String {
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

    /// `git rev-parse --short HEAD` in the working directory (with -dirty), or "unknown".
    static func gitRevision() -> String {
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git"] + args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return nil }
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return nil }
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let rev = git(["rev-parse", "--short=12", "HEAD"]) else { return "unknown" }
        let dirty = (git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty ? "" : "-dirty"
        return rev + dirty
    }
}
