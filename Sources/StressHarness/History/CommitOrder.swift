import Foundation

/// Orders a history's runs by the commit graph instead of by start time
/// (`pagestorm history --order commits`): a run of an older commit measured
/// later (a rerun, a bisection) then sits where its commit sits. The order is
/// `git rev-list --topo-order --reverse` of a checkout's HEAD, oldest first;
/// runs of one commit keep their start-time order, and a dirty build of a
/// commit (`<rev>-dirty`) sits with that commit, after its clean runs.
public struct CommitOrder: Sendable {
    /// Full commit ids, oldest first.
    public let commits: [String]
    let index: [String: Int]

    public init(commits: [String]) {
        self.commits = commits
        var idx: [String: Int] = [:]
        for (i, c) in commits.enumerated() { idx[c] = i }
        index = idx
    }

    /// The position of a recorded revision (a full or abbreviated id, maybe with
    /// "-dirty"), or nil when it is not in the graph (unknown, or "unknown").
    public func position(of revision: String) -> (index: Int, dirty: Bool)? {
        let dirty = revision.hasSuffix("-dirty")
        let rev = dirty ? String(revision.dropLast(6)) : revision
        guard rev.count >= 7, rev.allSatisfy(\.isHexDigit) else { return nil }
        if let i = index[rev] { return (i, dirty) }
        // Abbreviated: the unique commit with this prefix.
        let matches = commits.indices.filter { commits[$0].hasPrefix(rev) }
        return matches.count == 1 ? (matches[0], dirty) : nil
    }

    /// `samples` (in start-time order) reordered by commit; those whose revision
    /// is not in the graph are returned apart.
    public func order(_ samples: [History.Sample]) -> (ordered: [History.Sample], notInGraph: [History.Sample]) {
        var keyed: [(Int, Bool, Int, History.Sample)] = []
        var out: [History.Sample] = []
        for (n, s) in samples.enumerated() {
            if let p = position(of: s.revision) { keyed.append((p.index, p.dirty, n, s)) } else { out.append(s) }
        }
        keyed.sort { a, b in a.0 != b.0 ? a.0 < b.0 : (a.1 != b.1 ? !a.1 : a.2 < b.2) }
        return (keyed.map(\.3), out)
    }

    /// The commit graph of the git checkout at `dir` (HEAD's ancestry), or an error saying why not.
    public static func load(gitDir dir: String) throws(HistoryError) -> CommitOrder {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", dir, "rev-list", "--topo-order", "--reverse", "HEAD"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw HistoryError("--order commits: cannot run git: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw HistoryError("--order commits: \(dir) is not a git checkout with commits (git rev-list: \(errText.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        let commits = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        return CommitOrder(commits: commits)
    }
}
