import TOMLReader
import Foundation
import Topology

/// A sweep file or a sweep argument that cannot be used: one error naming the
/// file and line (or the argument), and what is wrong. `pagestorm sweep` and
/// `pagestorm merge` exit with code 2 on it.
public struct SweepError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file, or the argument (`--shard`), or a directory.
    public let place: String
    /// 0: no line (an argument or a directory).
    public let line: Int
    public let message: String

    public init(_ place: String, line: Int = 0, _ message: String) {
        self.place = place
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(place):\(line): \(message)" : "\(place): \(message)" }
}

/// One segment of an axis key: `group[0]` is ("group", 0), `workers` is ("workers", nil).
public struct KeySegment: Equatable, Sendable, Codable {
    public var key: String
    public var index: Int?
}

/// One axis: a workload key and the values it takes.
public struct SweepAxis: Sendable {
    /// Short name: the point id's and the CSV's column name.
    public var name: String
    /// The workload key as written, e.g. `group[0].workers`, `policy.retry`.
    public var key: String
    public var path: [KeySegment]
    public var values: [TOMLValue]
    /// The text of each value in point ids and tables.
    public var labels: [String]
    /// The line of the `[[axis]]` header.
    public var line: Int
}

/// A combination of axis values.
public struct SweepPoint: Sendable {
    /// Stable: built from the axes' names and value labels, never from positions.
    public var id: String
    /// Value index per axis.
    public var valueIndex: [Int]
    /// axis name -> value label.
    public var values: [String: String]
}

/// A parsed sweep file (format: docs/sweeps.md).
public struct SweepSpec: Sendable {
    public var file: String
    public var name: String
    public var description: String
    /// `default` or the path as written.
    public var workloadRef: String
    /// The path resolved against the sweep file's folder (nil: the built-in default).
    public var workloadPath: String?
    public var baseText: String
    public var repetitions: Int
    public var seed: UInt64
    /// Each run measures the harness's own cost per call first (`measure_overhead`, default false: about 0.3 s a run in release).
    public var measureOverhead: Bool
    /// Fixed keys for every point: (key, path, value).
    public var set: [(key: String, path: [KeySegment], value: TOMLValue)]
    public var axes: [SweepAxis]
    /// [[exclude]] tables: axis name -> labels; a point matching every entry of one is dropped.
    public var excludes: [(line: Int, match: [String: [String]])]
    /// Points after the excludes, in axis order (the first axis varies slowest).
    public var points: [SweepPoint]
    /// FNV-1a of the canonical sweep (not its comments or layout): a changed sweep is a new fingerprint.
    public var fingerprint: String
    /// The canonical text the fingerprint is taken over (recorded in the manifest).
    public var canonical: String

    static let topKeys = ["name", "description", "workload", "repetitions", "seed", "measure_overhead", "set", "axis", "exclude"]
    static let axisKeys = ["key", "values", "name", "labels"]

    /// Reads and checks a sweep file: every axis value against the base
    /// workload, and every point (a combination no exclude removes must be a valid workload).
    public static func load(path: String, machine: Topology = Topology.discover()) throws(SweepError) -> SweepSpec {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SweepError(path, "cannot read the sweep file: \(error.localizedDescription)")
        }
        return try parse(text, file: path, machine: machine)
    }

    public static func parse(_ text: String, file: String, machine: Topology = Topology.discover()) throws(SweepError) -> SweepSpec {
        let root: TOMLTable
        do { root = try TOML.parse(text, file: file) } catch {
            throw SweepError(file, line: error.line, "malformed TOML: \(error.message) (column \(error.column))")
        }
        func fail(_ line: Int, _ m: String) -> SweepError { SweepError(file, line: line, m) }
        for k in root.keys where !topKeys.contains(k) {
            throw fail(root[k]!.line, "unknown key '\(k)'; known keys here: \(topKeys.joined(separator: ", "))")
        }
        func string(_ t: TOMLTable, _ k: String) throws(SweepError) -> String? {
            guard let v = t[k] else { return nil }
            guard let s = v.string else { throw fail(v.line, "\(k): expected a string, found a \(v.typeName)") }
            return s
        }
        let defaultName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let name = try string(root, "name") ?? defaultName
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }), name != ".", name != ".." else {
            throw fail(root["name"]?.line ?? 1, "name: '\(name)' must be non-empty ASCII letters, digits, '-', '_' or '.' (it names the results folder)")
        }
        let description = try string(root, "description") ?? ""
        guard let workloadRef = try string(root, "workload") else {
            throw fail(1, "workload: required: a workload file (relative to this file's folder) or \"default\" (the built-in default)")
        }
        var repetitions = 1
        if let v = root["repetitions"] {
            guard let i = v.integer else { throw fail(v.line, "repetitions: expected an integer, found a \(v.typeName)") }
            guard (1...10_000).contains(i) else { throw fail(v.line, "repetitions: must be 1...10000, got \(i)") }
            repetitions = Int(i)
        }
        var seed: UInt64 = 1
        if let v = root["seed"] {
            guard let i = v.integer else { throw fail(v.line, "seed: expected an integer, found a \(v.typeName)") }
            guard i >= 0 else { throw fail(v.line, "seed: must not be negative, got \(i)") }
            seed = UInt64(i)
        }

        var measureOverhead = false
        if let v = root["measure_overhead"] {
            guard let b = v.bool else { throw fail(v.line, "measure_overhead: expected true or false, found a \(v.typeName)") }
            measureOverhead = b
        }

        // The base workload.
        var workloadPath: String? = nil
        let baseText: String
        let baseFile: String
        if workloadRef == "default" {
            baseText = Workload.builtinDefaultText
            baseFile = "default (built-in)"
        } else {
            let dir = URL(fileURLWithPath: file).deletingLastPathComponent()
            let p = workloadRef.hasPrefix("/") ? workloadRef : dir.appendingPathComponent(workloadRef).standardized.path
            let rel = relativePath(p)
            guard let t = try? String(contentsOfFile: p, encoding: .utf8) else {
                throw fail(root["workload"]!.line, "workload: cannot read '\(workloadRef)' (looked for \(rel); a path is relative to the sweep file's folder, or \"default\")")
            }
            workloadPath = rel
            baseText = t
            baseFile = rel
        }
        let baseDefaultName = workloadPath.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? "default"
        let baseRoot: TOMLTable
        do { baseRoot = try TOML.parse(baseText, file: baseFile) } catch {
            throw SweepError(baseFile, line: error.line, "malformed TOML: \(error.message) (column \(error.column))")
        }
        do { _ = try WorkloadDecoder(file: baseFile, machine: machine).decode(baseRoot, defaultName: baseDefaultName) } catch {
            throw SweepError(baseFile, line: error.line, (error.field.isEmpty ? "" : "\(error.field): ") + error.message + " (the sweep's base workload)")
        }

        // [set]
        var sets: [(key: String, path: [KeySegment], value: TOMLValue)] = []
        if let v = root["set"] {
            guard let t = v.table else { throw fail(v.line, "set: expected a table ([set] with key = value lines), found a \(v.typeName)") }
            for (k, value) in flatten(t, prefix: "") {
                let path = try parseKey(k, file: file, line: value.line)
                sets.append((k, path, value))
            }
        }

        // [[axis]]
        var axes: [SweepAxis] = []
        guard let axisValue = root["axis"] else {
            throw fail(1, "a sweep needs at least one [[axis]] (key = \"...\", values = [...])")
        }
        guard let axisList = axisValue.array else { throw fail(axisValue.line, "axis: expected [[axis]] tables, found a \(axisValue.typeName)") }
        for (i, a) in axisList.enumerated() {
            guard let t = a.table else { throw fail(a.line, "axis[\(i)]: expected a table, found a \(a.typeName)") }
            for k in t.keys where !axisKeys.contains(k) {
                throw fail(t[k]!.line, "axis[\(i)]: unknown key '\(k)'; known keys here: \(axisKeys.joined(separator: ", "))")
            }
            guard let key = try string(t, "key") else { throw fail(t.line, "axis[\(i)]: needs key = \"...\" (a workload key such as \"group[0].workers\" or \"policy.retry\")") }
            let path = try parseKey(key, file: file, line: t["key"]!.line)
            guard let vv = t["values"] else { throw fail(t.line, "axis[\(i)] (\(key)): needs values = [...]") }
            guard let values = vv.array else { throw fail(vv.line, "axis[\(i)] (\(key)): values: expected an array, found a \(vv.typeName)") }
            guard !values.isEmpty else { throw fail(vv.line, "axis[\(i)] (\(key)): values: an axis needs at least one value, the array is empty") }
            let axisName = try string(t, "name") ?? path.last!.key
            guard !axisName.isEmpty, axisName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) else {
                throw fail(t["name"]?.line ?? t.line, "axis[\(i)]: name '\(axisName)' must be ASCII letters, digits, '_', '-' or '.'")
            }
            if let other = axes.first(where: { $0.name == axisName }) {
                throw fail(t["name"]?.line ?? t["key"]!.line, "axis[\(i)] (\(key)): its name '\(axisName)' is already the name of the axis at line \(other.line) (\(other.key)); give one of them name = \"...\"")
            }
            if let other = axes.first(where: { $0.path == path }) {
                throw fail(t["key"]!.line, "axis[\(i)]: key '\(key)' is already swept by the axis at line \(other.line)")
            }
            if let s = sets.first(where: { $0.path == path }) {
                throw fail(t["key"]!.line, "axis[\(i)]: key '\(key)' is also fixed by [set] at line \(s.value.line); give it in one place")
            }
            var labels: [String]
            if let lv = t["labels"] {
                guard let la = lv.array, la.allSatisfy({ $0.string != nil }) else { throw fail(lv.line, "axis[\(i)] (\(key)): labels: expected an array of strings") }
                guard la.count == values.count else { throw fail(lv.line, "axis[\(i)] (\(key)): labels: \(la.count) label(s) for \(values.count) value(s)") }
                labels = la.map { $0.string! }
            } else {
                labels = values.map(label)
            }
            for (j, l) in labels.enumerated() {
                if let k = labels[..<j].firstIndex(of: l) {
                    throw fail(values[j].line, "axis[\(i)] (\(key)): value \(j) ('\(l)') repeats value \(k)")
                }
            }
            axes.append(SweepAxis(name: axisName, key: key, path: path, values: values, labels: labels, line: t.line))
        }

        // [[exclude]]
        var excludes: [(line: Int, match: [String: [String]])] = []
        if let ev = root["exclude"] {
            guard let list = ev.array else { throw fail(ev.line, "exclude: expected [[exclude]] tables, found a \(ev.typeName)") }
            for (i, e) in list.enumerated() {
                guard let t = e.table else { throw fail(e.line, "exclude[\(i)]: expected a table, found a \(e.typeName)") }
                guard !t.isEmpty else { throw fail(t.line, "exclude[\(i)]: empty: it would drop every point") }
                var match: [String: [String]] = [:]
                for (k, v) in t.entries {
                    guard let axis = axes.first(where: { $0.name == k }) else {
                        throw fail(v.line, "exclude[\(i)]: '\(k)' is not an axis name; the axes are: \(axes.map(\.name).joined(separator: ", "))")
                    }
                    let wanted = v.array ?? [v]
                    var labs: [String] = []
                    for w in wanted {
                        let l = label(w)
                        guard axis.labels.contains(l) || axis.values.contains(where: { label($0) == l }) else {
                            throw fail(w.line, "exclude[\(i)]: \(k) = \(l) is not one of the axis's values (\(axis.labels.joined(separator: ", ")))")
                        }
                        labs.append(axis.labels.contains(l) ? l : axis.labels[axis.values.firstIndex { label($0) == l }!])
                    }
                    match[k] = labs
                }
                excludes.append((t.line, match))
            }
        }

        // Each value alone on the base: a wrong key or type is that value's fault.
        let decoder = WorkloadDecoder(file: baseFile, machine: machine)
        var base = baseRoot
        for s in sets {
            do { base = try setting(base, s.path, s.value) } catch { throw fail(s.value.line, "set: \(s.key): \(error.message)") }
        }
        do { _ = try decoder.decode(base, defaultName: baseDefaultName) } catch {
            let line = sets.first { error.field.hasPrefix(canonicalField($0.path)) }?.value.line ?? root["set"]?.line ?? 1
            throw fail(line, "set: the base workload with [set] is invalid: \(error.field.isEmpty ? "" : "\(error.field): ")\(error.message)")
        }
        for axis in axes {
            for (j, v) in axis.values.enumerated() {
                let t: TOMLTable
                do { t = try setting(base, axis.path, v) } catch { throw fail(v.line, "axis '\(axis.key)': \(error.message)") }
                do { _ = try decoder.decode(t, defaultName: baseDefaultName) } catch {
                    if error.field.isEmpty || error.field.hasPrefix(canonicalField(axis.path)) || error.message.contains("unknown key") {
                        throw fail(v.line, "axis '\(axis.key)' = \(axis.labels[j]): \(error.field.isEmpty ? "" : "\(error.field): ")\(error.message)")
                    }
                    throw fail(v.line, "axis '\(axis.key)' = \(axis.labels[j]) makes the base workload invalid: \(error.field): \(error.message)")
                }
            }
        }

        // Points: every combination, the first axis varying slowest, minus the excludes.
        var points: [SweepPoint] = []
        var idx = [Int](repeating: 0, count: axes.count)
        var seen: [String: Int] = [:]
        outer: while true {
            var values: [String: String] = [:]
            for (a, axis) in axes.enumerated() { values[axis.name] = axis.labels[idx[a]] }
            let excluded = excludes.contains { e in e.match.allSatisfy { k, labs in labs.contains(values[k]!) } }
            if !excluded {
                let id = pointID(axes, idx)
                if let prev = seen[id] {
                    throw fail(axes[0].line, "two points get the id '\(id)' (\(prev) and \(points.count)); give the axes distinct labels")
                }
                seen[id] = points.count
                var t = base
                for (a, axis) in axes.enumerated() {
                    do { t = try setting(t, axis.path, axis.values[idx[a]]) } catch { throw fail(axis.values[idx[a]].line, "axis '\(axis.key)': \(error.message)") }
                }
                let pointWorkload: Workload
                do { pointWorkload = try decoder.decode(t, defaultName: baseDefaultName) } catch {
                    let culprit = axes.last { error.field.hasPrefix(canonicalField($0.path)) } ?? axes.last!
                    throw fail(culprit.line, "point \(id) is contradictory and no [[exclude]] removes it: \(error.field.isEmpty ? "" : "\(error.field): ")\(error.message)")
                }
                // A peer allocator refuses pagestorm-only parts (docs/peers.md): found here, before anything runs.
                let allocator = pointWorkload.run.allocator ?? AllocatorName.pagestorm.rawValue
                if allocator != AllocatorName.pagestorm.rawValue {
                    let refused = pointWorkload.peerSupport().refused
                    if !refused.isEmpty {
                        let culprit = axes.first { canonicalField($0.path) == "run.allocator" } ?? axes.last!
                        throw fail(culprit.line, "point \(id) is contradictory and no [[exclude]] removes it: allocator \(allocator) refuses parts only pagestorm has: \(refused.joined(separator: "; "))")
                    }
                }
                points.append(SweepPoint(id: id, valueIndex: idx, values: values))
            }
            var a = axes.count - 1
            while a >= 0 {
                idx[a] += 1
                if idx[a] < axes[a].values.count { break }
                idx[a] = 0
                a -= 1
            }
            if a < 0 { break outer }
        }
        guard !points.isEmpty else { throw fail(excludes.first?.line ?? 1, "the [[exclude]] tables remove every point") }

        var canon = "pagestorm.sweep/1\nname=\(name)\nworkload=\(workloadRef)\nbase-fnv=\(hex(fnv1a(baseText)))\nrepetitions=\(repetitions)\nseed=\(seed)\nmeasure_overhead=\(measureOverhead)\n"
        for s in sets { canon += "set \(s.key)=\(canonicalValue(s.value))\n" }
        for a in axes { canon += "axis \(a.name) \(a.key)=[\(a.values.map(canonicalValue).joined(separator: ","))] labels=[\(a.labels.joined(separator: ","))]\n" }
        for e in excludes { canon += "exclude \(e.match.keys.sorted().map { "\($0)=\(e.match[$0]!.joined(separator: "|"))" }.joined(separator: " "))\n" }

        return SweepSpec(file: file, name: name, description: description, workloadRef: workloadRef, workloadPath: workloadPath,
                         baseText: baseText, repetitions: repetitions, seed: seed, measureOverhead: measureOverhead, set: sets, axes: axes, excludes: excludes,
                         points: points, fingerprint: hex(fnv1a(canon)), canonical: canon)
    }

    /// The workload of a point's run: the base with [set] and the point's axis values, and the run's seed.
    public func workload(point: SweepPoint, seed runSeed: UInt64, machine: Topology = Topology.discover()) throws -> Workload {
        let baseFile = workloadPath ?? "default (built-in)"
        var t = try TOML.parse(baseText, file: baseFile)
        for s in set { t = try SweepSpec.setting(t, s.path, s.value) }
        for (a, axis) in axes.enumerated() { t = try SweepSpec.setting(t, axis.path, axis.values[point.valueIndex[a]]) }
        let defaultName = workloadPath.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? "default"
        var w = try WorkloadDecoder(file: baseFile, machine: machine).decode(t, defaultName: defaultName)
        w.run.seed = runSeed
        return w
    }

    // MARK: keys and values

    /// Parses `group[0].op[1].orders` into segments.
    public static func parseKey(_ key: String, file: String, line: Int) throws(SweepError) -> [KeySegment] {
        var out: [KeySegment] = []
        for part in key.split(separator: ".", omittingEmptySubsequences: false) {
            var name = Substring(part)
            var index: Int? = nil
            if let open = part.firstIndex(of: "[") {
                guard part.hasSuffix("]"), let i = Int(part[part.index(after: open)..<part.index(before: part.endIndex)]), i >= 0 else {
                    throw SweepError(file, line: line, "key '\(key)': '\(part)' must be name or name[N] with N a non-negative integer")
                }
                name = part[..<open]
                index = i
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw SweepError(file, line: line, "key '\(key)': '\(part)' is not a key (segments are separated by '.', e.g. group[0].workers)")
            }
            out.append(KeySegment(key: String(name), index: index))
        }
        if out.last?.index != nil { throw SweepError(file, line: line, "key '\(key)' names a whole [[table]] entry; sweep one of its keys (e.g. \(key).workers)") }
        return out
    }

    /// The decoder's field spelling of a path: `group[0].workers`.
    static func canonicalField(_ path: [KeySegment]) -> String {
        path.map { s in s.index.map { i in "\(s.key)[\(i)]" } ?? s.key }.joined(separator: ".")
    }

    struct SetError: Error { let message: String }

    /// `t` with `value` at `path`; tables on the way are made when missing; a [[table]] entry must exist.
    static func setting(_ t: TOMLTable, _ path: [KeySegment], _ value: TOMLValue) throws(SetError) -> TOMLTable {
        var t = t
        let seg = path[0]
        if path.count == 1 {
            t[seg.key] = value
            return t
        }
        let rest = Array(path.dropFirst())
        if let i = seg.index {
            guard let existing = t[seg.key] else {
                throw SetError(message: "\(seg.key)[\(i)] does not exist: the base workload has no [[\(seg.key)]]")
            }
            guard var list = existing.array else { throw SetError(message: "\(seg.key) is a \(existing.typeName) in the base workload, not a list of [[\(seg.key)]] tables") }
            guard i < list.count else {
                throw SetError(message: "\(seg.key)[\(i)] does not exist: the base workload has \(list.count) [[\(seg.key)]] table(s) (indices count from 0)")
            }
            guard let sub = list[i].table else { throw SetError(message: "\(seg.key)[\(i)] is not a table") }
            list[i] = TOMLValue(.table(try setting(sub, rest, value)), line: list[i].line)
            t[seg.key] = TOMLValue(.array(list), line: existing.line)
            return t
        }
        let sub: TOMLTable
        if let existing = t[seg.key] {
            guard let tt = existing.table else {
                if existing.array != nil { throw SetError(message: "\(seg.key) is a list of [[\(seg.key)]] tables: give an index, e.g. \(seg.key)[0]") }
                throw SetError(message: "\(seg.key) is a \(existing.typeName), not a table")
            }
            sub = tt
        } else {
            sub = TOMLTable(line: value.line)
        }
        t[seg.key] = TOMLValue(.table(try setting(sub, rest, value)), line: t[seg.key]?.line ?? value.line)
        return t
    }

    /// `[set]` written as nested tables or dotted/quoted keys: (dotted key, value) pairs.
    static func flatten(_ t: TOMLTable, prefix: String) -> [(String, TOMLValue)] {
        var out: [(String, TOMLValue)] = []
        for (k, v) in t.entries {
            let full = prefix.isEmpty ? k : "\(prefix).\(k)"
            if let sub = v.table, !isLeafTableKey(full) {
                out += flatten(sub, prefix: full)
            } else {
                out.append((full, v))
            }
        }
        return out
    }

    /// Keys whose value is itself an inline table (an op's `orders`).
    static func isLeafTableKey(_ key: String) -> Bool { key.hasSuffix("orders") }

    /// A value's text in ids and tables: strings as they are, numbers and booleans as TOML writes them, others as canonical TOML.
    public static func label(_ v: TOMLValue) -> String {
        switch v.kind {
        case .string(let s): return s
        default: return canonicalValue(v)
        }
    }

    /// Canonical inline TOML of a value (keys in written order).
    public static func canonicalValue(_ v: TOMLValue) -> String {
        switch v.kind {
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .integer(let i): return String(i)
        case .float(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case .bool(let b): return b ? "true" : "false"
        case .array(let a): return "[" + a.map(canonicalValue).joined(separator: ",") + "]"
        case .table(let t): return "{" + t.entries.map { "\($0.key)=\(canonicalValue($0.value))" }.joined(separator: ",") + "}"
        }
    }

    /// `name=label` per axis joined by `,`; labels keep letters, digits and `._+=-`, anything else
    /// becomes `_` and the component gets `~` and 6 hex digits of the label's hash, so ids stay unique.
    static func pointID(_ axes: [SweepAxis], _ idx: [Int]) -> String {
        axes.enumerated().map { a, axis in
            let l = axis.labels[idx[a]]
            let safe = String(l.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._+=-".contains($0)) ? $0 : "_" })
            let tail = (safe == l && !l.isEmpty && l.count <= 48) ? "" : "~" + String(hex(fnv1a(l)).prefix(6))
            return "\(axis.name)=\(safe.prefix(48))\(tail)"
        }.joined(separator: ",")
    }

    static func relativePath(_ p: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let std = URL(fileURLWithPath: p).standardized.path
        return std.hasPrefix(cwd + "/") ? String(std.dropFirst(cwd.count + 1)) : std
    }
}

/// FNV-1a, 64 bits.
func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}
