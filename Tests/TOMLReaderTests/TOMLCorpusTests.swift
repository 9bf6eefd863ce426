import Foundation
import Testing
@testable import TOMLReader

/// The toml-test corpus (github.com/BurntSushi/toml-test), run by hand: it
/// is not part of the repository. Check it out anywhere and point
/// TOML_TEST_DIR at it (scripts/toml-test.sh does both):
///
///     TOML_TEST_DIR=/tmp/toml-test swift test --filter TOMLCorpusTests
///
/// Every valid document must either read to exactly the corpus's values or
/// be refused with an error (outside the subset); never a wrong value.
/// Invalid documents must be refused. Prints the pass rates.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TOML_TEST_DIR"] != nil, "TOML_TEST_DIR is not set"))
struct TOMLCorpusTests {
    static var root: URL { URL(fileURLWithPath: ProcessInfo.processInfo.environment["TOML_TEST_DIR"] ?? "/nonexistent").appendingPathComponent("tests") }

    static func documents(_ kind: String) -> [URL] {
        let dir = root.appendingPathComponent(kind)
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        var out: [URL] = []
        while let u = e?.nextObject() as? URL { if u.pathExtension == "toml" { out.append(u) } }
        return out.sorted { $0.path < $1.path }
    }

    /// The corpus's tagged JSON: {"type": ..., "value": "..."} leaves, plain arrays and objects.
    static func matches(_ v: TOMLValue, _ e: Any) -> Bool {
        switch v.kind {
        case .table(let t): return matches(t, e)
        case .array(let a):
            guard let ea = e as? [Any], ea.count == a.count else { return false }
            return zip(a, ea).allSatisfy { matches($0, $1) }
        default:
            guard let leaf = e as? [String: Any], let type = leaf["type"] as? String, let value = leaf["value"] as? String else { return false }
            switch (v.kind, type) {
            case (.string(let s), "string"): return s == value
            case (.integer(let i), "integer"): return Int64(value) == i
            case (.bool(let b), "bool"): return value == String(b)
            case (.float(let d), "float"):
                if d.isNaN { return value.lowercased().contains("nan") }
                if d.isInfinite { return value.lowercased().contains("inf") && (d < 0) == value.hasPrefix("-") }
                return Double(value) == d
            default: return false
            }
        }
    }

    static func matches(_ t: TOMLTable, _ e: Any) -> Bool {
        guard let d = e as? [String: Any], Set(d.keys) == Set(t.keys) else { return false }
        return t.entries.allSatisfy { matches($0.value, d[$0.key]!) }
    }

    @Test func validDocumentsReadRightOrAreRefused() throws {
        var passed = 0, refused: [String] = [], wrong: [String] = []
        let docs = Self.documents("valid")
        #expect(!docs.isEmpty, "no documents under \(Self.root.path)/valid")
        for doc in docs {
            let name = doc.path.replacingOccurrences(of: Self.root.path + "/", with: "")
            guard let text = try? String(contentsOf: doc, encoding: .utf8),
                  let json = try? Data(contentsOf: doc.deletingPathExtension().appendingPathExtension("json")),
                  let expected = try? JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) else { continue }
            do {
                let t = try TOML.parse(text, file: name)
                if Self.matches(t, expected) { passed += 1 } else { wrong.append(name) }
            } catch {
                refused.append("\(error)")
            }
        }
        let total = passed + refused.count + wrong.count
        print("toml-test valid: \(passed)/\(total) read right, \(refused.count) refused (outside the subset or a bug), \(wrong.count) wrong values")
        for r in refused { print("  refused: \(r)") }
        for w in wrong { print("  WRONG VALUE: \(w)") }
        #expect(wrong.isEmpty, "documents read to a wrong value: \(wrong)")
    }

    @Test func invalidDocumentsAreRefused() throws {
        var refused = 0, accepted: [String] = []
        for doc in Self.documents("invalid") {
            let name = doc.path.replacingOccurrences(of: Self.root.path + "/", with: "")
            guard let data = try? Data(contentsOf: doc) else { continue }
            // Not UTF-8: String(decoding:) repairs it; the corpus wants it refused, as a file read would be.
            guard let text = String(data: data, encoding: .utf8) else { refused += 1; continue }
            do { _ = try TOML.parse(text, file: name); accepted.append(name) } catch { refused += 1 }
        }
        print("toml-test invalid: \(refused)/\(refused + accepted.count) refused")
        for a in accepted { print("  accepted: \(a)") }
        #expect(refused + accepted.count > 0)
    }
}
