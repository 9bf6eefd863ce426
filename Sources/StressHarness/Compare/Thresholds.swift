import Foundation
import TOMLReader

/// What `check` does with one metric: the limits a change must pass to count,
/// which way is worse, and whether the metric gates (decides the verdict) or only reports.
public struct Limit: Sendable, Equatable, Codable {
    /// Percent: a change smaller than this (in the worse or better direction) is "unchanged".
    public var relative: Double?
    /// In the metric's unit: a change smaller than this is "unchanged".
    public var absolute: Double?
    /// Overrides the metric's own direction ("higher" or "lower" is worse).
    public var worse: Better?
    public var gate: Bool
}

/// One `[[rule]]` of a thresholds file: a glob over metric ids and the keys it sets.
public struct ThresholdRule: Sendable, Equatable {
    public var match: String
    public var relative: Double?
    public var absolute: Double?
    public var worse: Better?
    public var gate: Bool?
    /// Where it came from ("built-in", or file:line).
    public var origin: String
}

public struct ThresholdError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The thresholds of `pagestorm check`: built-in defaults, then a file's rules.
/// For each metric every matching rule is applied in order, each replacing the
/// keys it sets, so a later rule refines an earlier one.
public struct Thresholds: Sendable {
    public var alpha: Double = 0.05
    public var trustFlagged = false
    /// `paired = true/false`: decide timings with the paired rule on repetitions paired by file name
    /// (`pagestorm ab`'s rounds) or not; nil: the command's default (ab and check on ab's output: paired).
    public var paired: Bool? = nil
    /// `paired_limit`, `paired_strong_limit` (percent): the paired rule's limits.
    public var pairedRule = PairedRule()
    public var rules: [ThresholdRule]

    /// The documented defaults (README "pagestorm check"): exact counters and
    /// instructions gate; timings and counts of timed runs only report.
    public static let defaultRules: [ThresholdRule] = [
        ThresholdRule(match: "*", relative: 10, absolute: nil, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "exact/*", relative: nil, absolute: nil, worse: nil, gate: true, origin: "built-in"),
        ThresholdRule(match: "instructions/*", relative: 1, absolute: nil, worse: nil, gate: true, origin: "built-in"),
        ThresholdRule(match: "throughput/*", relative: 5, absolute: nil, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "latency/*", relative: 10, absolute: 5, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "latency/*/p99.99", relative: 50, absolute: 100, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "latency/*/max", relative: 100, absolute: 1000, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "failures/*", relative: nil, absolute: 0, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "oom_kills", relative: nil, absolute: 0, worse: nil, gate: false, origin: "built-in"),
        ThresholdRule(match: "stalls/*", relative: nil, absolute: 0, worse: nil, gate: false, origin: "built-in"),
    ]

    public init(rules: [ThresholdRule] = Thresholds.defaultRules) { self.rules = rules }

    public func limit(for m: MetricInfo) -> Limit { limit(forID: m.id) }

    /// The limit of the metric with this id (the rules match ids only).
    public func limit(forID id: String) -> Limit {
        var l = Limit(relative: nil, absolute: nil, worse: nil, gate: false)
        for r in rules where Glob.matches(r.match, id) {
            if r.relative != nil || r.absolute != nil { l.relative = r.relative; l.absolute = r.absolute }
            if let w = r.worse { l.worse = w }
            if let g = r.gate { l.gate = g }
        }
        return l
    }

    static let ruleKeys = ["match", "relative", "absolute", "worse", "gate"]
    static let topKeys = ["alpha", "trust_flagged", "paired", "paired_limit", "paired_strong_limit", "rule"]

    /// Reads a thresholds file (TOML); every error names the file, line and key.
    public static func load(path: String) throws(ThresholdError) -> Thresholds {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ThresholdError(message: FileManager.default.fileExists(atPath: path) ? "\(path): cannot read the thresholds file" : "\(path): no such thresholds file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ThresholdError(message: "\(path): the thresholds file is not UTF-8 text") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ThresholdError) -> Thresholds {
        let root: TOMLTable
        do { root = try TOML.parse(text, file: file) } catch { throw ThresholdError(message: error.description) }
        var t = Thresholds()
        func err(_ line: Int, _ key: String, _ msg: String) -> ThresholdError { ThresholdError(message: "\(file):\(line): \(key): \(msg)") }
        for (k, v) in root.entries where !topKeys.contains(k) {
            throw err(v.line, k, "unknown key; known: \(topKeys.joined(separator: ", ")) (a limit goes in a [[rule]] table)")
        }
        if let a = root["alpha"] {
            guard let x = a.number, x > 0, x < 1 else { throw err(a.line, "alpha", "must be a number between 0 and 1 (exclusive), got \(a.typeName == "string" ? a.string! : a.typeName)") }
            t.alpha = x
        }
        if let f = root["trust_flagged"] {
            guard let b = f.bool else { throw err(f.line, "trust_flagged", "must be true or false, got a \(f.typeName)") }
            t.trustFlagged = b
        }
        if let f = root["paired"] {
            guard let b = f.bool else { throw err(f.line, "paired", "must be true or false, got a \(f.typeName)") }
            t.paired = b
        }
        for key in ["paired_limit", "paired_strong_limit"] {
            guard let v = root[key] else { continue }
            guard let x = v.number, x >= 0, x.isFinite else { throw err(v.line, key, "must be a percentage >= 0, got \(v.typeName == "string" ? "\"\(v.string!)\"" : v.typeName == "float" || v.typeName == "integer" ? String(v.number!) : v.typeName)") }
            if key == "paired_limit" { t.pairedRule.limitPercent = x } else { t.pairedRule.strongPercent = x }
        }
        if t.pairedRule.strongPercent < t.pairedRule.limitPercent, let v = root["paired_strong_limit"] ?? root["paired_limit"] {
            throw err(v.line, "paired_strong_limit", "must be >= paired_limit (\(t.pairedRule.limitPercent)), got \(t.pairedRule.strongPercent)")
        }
        if let r = root["rule"] {
            guard let arr = r.array else { throw err(r.line, "rule", "must be an array of tables ([[rule]]), got a \(r.typeName)") }
            for el in arr {
                guard let tab = el.table else { throw err(el.line, "rule", "each rule must be a table, got a \(el.typeName)") }
                for (k, v) in tab.entries where !ruleKeys.contains(k) {
                    throw err(v.line, "rule.\(k)", "unknown key; known: \(ruleKeys.joined(separator: ", "))")
                }
                guard let mv = tab["match"] else { throw err(tab.line, "rule.match", "missing: every [[rule]] needs match = \"<glob over metric ids>\"") }
                guard let match = mv.string, !match.isEmpty else { throw err(mv.line, "rule.match", "must be a non-empty string (a glob such as \"latency/*/p99\")") }
                var rule = ThresholdRule(match: match, relative: nil, absolute: nil, worse: nil, gate: nil, origin: "\(file):\(tab.line)")
                if let v = tab["relative"] {
                    guard let x = v.number, x >= 0, x.isFinite else { throw err(v.line, "rule.relative", "must be a percentage >= 0, got \(v.typeName == "string" ? "\"\(v.string!)\"" : v.typeName == "float" || v.typeName == "integer" ? String(v.number!) : v.typeName)") }
                    rule.relative = x
                }
                if let v = tab["absolute"] {
                    guard let x = v.number, x >= 0, x.isFinite else { throw err(v.line, "rule.absolute", "must be a number >= 0 in the metric's unit, got \(v.typeName == "float" || v.typeName == "integer" ? String(v.number!) : v.typeName)") }
                    rule.absolute = x
                }
                if let v = tab["worse"] {
                    guard let s = v.string, s == "higher" || s == "lower" else { throw err(v.line, "rule.worse", "must be \"higher\" or \"lower\", got \(v.string.map { "\"\($0)\"" } ?? v.typeName)") }
                    rule.worse = Better(rawValue: s)
                }
                if let v = tab["gate"] {
                    guard let b = v.bool else { throw err(v.line, "rule.gate", "must be true or false, got a \(v.typeName)") }
                    rule.gate = b
                }
                if rule.relative == nil && rule.absolute == nil && rule.worse == nil && rule.gate == nil {
                    throw err(tab.line, "rule", "sets nothing: give relative, absolute, worse or gate")
                }
                t.rules.append(rule)
            }
        }
        return t
    }
}
