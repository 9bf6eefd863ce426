import Foundation
import Testing

/// Issue 9's rules for the layout, kept by a test: every folder of the
/// harness is in docs/harness.md's code map, every file of the allocator in
/// docs/allocator.md's, and no Swift source file is over 500 lines.
@Suite struct CodeMapTests {
    let fm = FileManager.default

    func text(_ path: String) throws -> String {
        try String(contentsOf: repoRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func everyHarnessFolderIsInTheCodeMap() throws {
        let map = try text("docs/harness.md")
        let dirs = try fm.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("Sources/StressHarness").path).filter { !$0.contains(".") }
        #expect(dirs.count >= 10)
        for d in dirs { #expect(map.contains("| `\(d)/` |"), "Sources/StressHarness/\(d) has no row in docs/harness.md's code map") }
        for target in try fm.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("Sources").path) {
            #expect(map.contains("`Sources/\(target)`"), "Sources/\(target) is not named in docs/harness.md's code map")
        }
    }

    @Test func everyAllocatorFileIsInItsMap() throws {
        let map = try text("docs/allocator.md")
        let files = try fm.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("Sources/PageAllocator").path).filter { $0.hasSuffix(".swift") }
        #expect(files.count >= 30)
        for f in files {
            // `PageAllocator+X.swift` may appear as `+X.swift` in a row that lists several.
            let short = f.hasPrefix("PageAllocator+") ? String(f.dropFirst("PageAllocator".count)) : f
            #expect(map.contains("`\(f)`") || map.contains("`\(short)`"), "Sources/PageAllocator/\(f) is not in docs/allocator.md")
        }
    }

    @Test func noSwiftSourceFileIsOver500Lines() throws {
        var checked = 0
        for top in ["Sources", "Tests", "Plugins"] {
            let root = repoRoot.appendingPathComponent(top)
            guard let e = fm.enumerator(atPath: root.path) else { continue }
            for case let rel as String in e where rel.hasSuffix(".swift") {
                let lines = try text("\(top)/\(rel)").split(separator: "\n", omittingEmptySubsequences: false).count - 1
                #expect(lines <= 500, "\(top)/\(rel) has \(lines) lines")
                checked += 1
            }
        }
        #expect(checked > 100)
    }
}
