import TOMLReader
import Foundation
import PageAllocator
import Topology

// MARK: - Reading tables

/// Reads one TOML table for the decoder: typed getters with defaults and
/// ranges, and a check that every key is known. Errors carry the key's line.
struct TableReader {
    let file: String
    let path: String
    let table: TOMLTable

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String?, _ message: String, line: Int? = nil) -> WorkloadError {
        let l = line ?? key.flatMap { table[$0]?.line } ?? table.line
        return WorkloadError(file: file, line: l, field: key.map(field) ?? path, message: message)
    }

    /// Throws on the first key (in written order) that is not in `known`.
    func allowOnly(_ known: [String]) throws(WorkloadError) {
        for k in table.keys where !known.contains(k) {
            let hint = known.first { $0.lowercased() == k.lowercased().replacingOccurrences(of: "-", with: "_") }
            throw fail(k, "unknown key '\(k)'\(hint.map { " (did you mean '\($0)'?)" } ?? ""); known keys here: \(known.joined(separator: ", "))")
        }
    }

    func has(_ key: String) -> Bool { table[key] != nil }

    func int(_ key: String) throws(WorkloadError) -> Int? {
        guard let v = table[key] else { return nil }
        guard let i = v.integer else { throw fail(key, "expected an integer, found a \(v.typeName)") }
        guard let n = Int(exactly: i) else { throw fail(key, "integer out of range") }
        return n
    }

    func int(_ key: String, default d: Int, range: ClosedRange<Int>, what: String? = nil) throws(WorkloadError) -> Int {
        guard let n = try int(key) else { return d }
        try check(key, n, range, what: what)
        return n
    }

    func check(_ key: String, _ n: Int, _ range: ClosedRange<Int>, what: String? = nil) throws(WorkloadError) {
        if n < range.lowerBound {
            throw fail(key, n < 0 && range.lowerBound >= 0
                       ? "must not be negative, got \(n)\(what.map { " (\($0))" } ?? "")"
                       : "must be at least \(range.lowerBound), got \(n)\(what.map { " (\($0))" } ?? "")")
        }
        if n > range.upperBound { throw fail(key, "must be at most \(range.upperBound), got \(n)\(what.map { " (\($0))" } ?? "")") }
    }

    func double(_ key: String) throws(WorkloadError) -> Double? {
        guard let v = table[key] else { return nil }
        guard let d = v.number else { throw fail(key, "expected a number, found a \(v.typeName)") }
        return d
    }

    func string(_ key: String) throws(WorkloadError) -> String? {
        guard let v = table[key] else { return nil }
        guard let s = v.string else { throw fail(key, "expected a string, found a \(v.typeName)") }
        return s
    }

    func string(_ key: String, default d: String, oneOf allowed: [String]? = nil) throws(WorkloadError) -> String {
        guard let s = try string(key) else { return d }
        if let allowed, !allowed.contains(s) {
            throw fail(key, "'\(s)' is not one of: \(allowed.joined(separator: ", "))")
        }
        return s
    }

    func bool(_ key: String, default d: Bool) throws(WorkloadError) -> Bool {
        guard let v = table[key] else { return d }
        guard let b = v.bool else { throw fail(key, "expected true or false, found a \(v.typeName)") }
        return b
    }

    func intArray(_ key: String) throws(WorkloadError) -> [Int]? {
        guard let v = table[key] else { return nil }
        guard let a = v.array else { throw fail(key, "expected an array of integers, found a \(v.typeName)") }
        var out: [Int] = []
        for (i, e) in a.enumerated() {
            guard let n = e.integer.flatMap({ Int(exactly: $0) }) else { throw fail(key, "element \(i) must be an integer, found a \(e.typeName)", line: e.line) }
            out.append(n)
        }
        return out
    }

    func subtable(_ key: String) throws(WorkloadError) -> TableReader? {
        guard let v = table[key] else { return nil }
        guard let t = v.table else { throw fail(key, "expected a table, found a \(v.typeName)") }
        return TableReader(file: file, path: field(key), table: t)
    }

    /// An array of tables (`[[key]]` or an array of inline tables).
    func tables(_ key: String) throws(WorkloadError) -> [TableReader] {
        guard let v = table[key] else { return [] }
        guard let a = v.array else {
            let hint = v.table != nil ? " (a [[\(field(key)).…]] header needs a [[\(field(key))]] header above it)" : ""
            throw fail(key, "expected an array of tables ([[\(field(key))]]), found a \(v.typeName)\(hint)")
        }
        var out: [TableReader] = []
        for (i, e) in a.enumerated() {
            guard let t = e.table else { throw fail(key, "element \(i) must be a table, found a \(e.typeName)", line: e.line) }
            out.append(TableReader(file: file, path: "\(field(key))[\(i)]", table: t))
        }
        return out
    }
}
