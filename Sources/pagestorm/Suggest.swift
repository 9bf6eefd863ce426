import Foundation

/// "Did you mean ...?" for mistyped names.
enum Suggest {
    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }

    /// The candidate nearest to `name`, when it is near enough to be a typo
    /// (at most a third of the longer name's letters differ, at least 2 allowed)
    /// or one is a prefix of the other.
    static func nearest(_ name: String, among candidates: [String]) -> String? {
        guard let best = candidates.min(by: { distance(name, $0) < distance(name, $1) }) else { return nil }
        let d = distance(name, best)
        if d <= max(2, max(name.count, best.count) / 3) { return best }
        if best.hasPrefix(name) || name.hasPrefix(best) { return best }
        return nil
    }

    /// A missing file's message: PATH does not exist, and the closest
    /// `.toml` beside it (or in ./Workloads/ when its folder does not exist).
    static func missingFile(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        var dir = url.deletingLastPathComponent().path
        var shownDir = (path as NSString).deletingLastPathComponent
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if !fm.fileExists(atPath: dir, isDirectory: &isDir) || !isDir.boolValue {
            dir = "Workloads"
            shownDir = "Workloads"
        }
        let names = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".toml") }
        var message = "\(path) does not exist"
        if let n = nearest(url.lastPathComponent, among: names) {
            message += "; did you mean \(shownDir.isEmpty ? n : shownDir + "/" + n)?"
        } else if !names.isEmpty {
            message += "; workload files in \(shownDir.isEmpty ? "." : shownDir)/: \(names.sorted().joined(separator: ", "))"
        }
        return message
    }
}
