/// The one boolean parser of the project (workload files, `--policy`,
/// `--harness`, `--fail-page-alloc`): true/false, yes/no, on/off, y/n, 1/0,
/// in any case. nil for anything else.
public func parseBool(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "true", "yes", "on", "y", "1": return true
    case "false", "no", "off", "n", "0": return false
    default: return nil
    }
}

/// One row of a knob table, as in mimalloc's options.c: the knob's name,
/// its default (as text), its meaning, what a value looks like, how it is
/// parsed and where it is stored. Parsing (`set`), printing (`settings`),
/// `--help`, the workload docs and the results' policy block all come from
/// the rows, so a knob is written once.
public struct Knob<Settings>: @unchecked Sendable {
    public let name: String
    public let defaultValue: String
    public let meaning: String
    /// What a value must look like (in errors and help).
    public let expected: String
    /// Stores the value; false when it does not parse.
    public let parse: (inout Settings, String) -> Bool
    /// The value as text (the canonical spelling results keep).
    public let show: (Settings) -> String

    public init(_ name: String, default d: String, expected: String, _ meaning: String,
                parse: @escaping (inout Settings, String) -> Bool, show: @escaping (Settings) -> String) {
        self.name = name
        defaultValue = d
        self.meaning = meaning
        self.expected = expected
        self.parse = parse
        self.show = show
    }

    /// A boolean, printed true/false.
    public static func bool(_ name: String, _ kp: WritableKeyPath<Settings, Bool>, default d: Bool, _ meaning: String) -> Knob {
        Knob(name, default: "\(d)", expected: "true or false (yes/no, on/off, y/n, 1/0)", meaning,
             parse: { s, v in guard let b = parseBool(v) else { return false }; s[keyPath: kp] = b; return true },
             show: { "\($0[keyPath: kp])" })
    }

    /// An integer in `range`.
    public static func int(_ name: String, _ kp: WritableKeyPath<Settings, Int>, default d: Int, _ range: ClosedRange<Int>,
                           expected: String? = nil, _ meaning: String) -> Knob {
        Knob(name, default: "\(d)", expected: expected ?? "an integer, \(range.lowerBound)...\(range.upperBound)", meaning,
             parse: { s, v in guard let n = Int(v), range.contains(n) else { return false }; s[keyPath: kp] = n; return true },
             show: { "\($0[keyPath: kp])" })
    }

    /// One of a string enum's cases.
    public static func choice<E: RawRepresentable & CaseIterable>(_ name: String, _ kp: WritableKeyPath<Settings, E>, default d: E,
                                                                   _ meaning: String) -> Knob where E.RawValue == String {
        let names = E.allCases.map(\.rawValue)
        let expected = names.count == 2 ? "\(names[0]) or \(names[1])" : names.dropLast().joined(separator: ", ") + " or " + names.last!
        return Knob(name, default: d.rawValue, expected: expected, meaning,
                    parse: { s, v in guard let e = E(rawValue: v) else { return false }; s[keyPath: kp] = e; return true },
                    show: { $0[keyPath: kp].rawValue })
    }
}

/// Settings described by a knob table.
public protocol KnobTable {
    init()
    /// Every knob, in the order settings are printed.
    static var knobs: [Knob<Self>] { get }
    /// What errors call the table ("policy", "harness"): `policy retry = x: expected ...`.
    static var section: String { get }
}

/// A setting that does not parse, for any knob table: names the key and what is expected.
public struct KnobParseError<Settings: KnobTable>: Error, Equatable, CustomStringConvertible {
    public let key: String
    public let value: String
    public let expected: String
    public init(key: String, value: String, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }
    public var description: String { "\(Settings.section) \(key) = \(value): expected \(expected)" }
}

extension KnobTable {
    public static func knob(named name: String) -> Knob<Self>? { knobs.first { $0.name == name } }

    /// Sets one knob from text, e.g. ("retry", "retries=1"), ("oom", "sync"):
    /// an unknown key or a value its row does not parse is one error naming both.
    public mutating func set(_ key: String, _ value: String) throws(KnobParseError<Self>) {
        guard let k = Self.knob(named: key) else {
            throw KnobParseError(key: key, value: value, expected: "a known \(Self.section) key: " + Self.keys.joined(separator: ", "))
        }
        guard k.parse(&self, value) else { throw KnobParseError(key: key, value: value, expected: k.expected) }
    }

    /// Every knob: name, default (as text), meaning.
    public static var table: [(name: String, defaultValue: String, meaning: String)] { knobs.map { ($0.name, $0.defaultValue, $0.meaning) } }

    /// The knobs' names, in table order.
    public static var keys: [String] { knobs.map(\.name) }

    /// The settings as (key, value) text, in table order (the results' spelling).
    public var settings: [(String, String)] { Self.knobs.map { ($0.name, $0.show(self)) } }

    /// The table in Markdown (`| key | default | accepted | meaning |`): the
    /// workload docs (Workloads/README.md) carry it verbatim, and a test checks that.
    public static var markdown: String {
        (["| key | default | accepted | meaning |", "| --- | --- | --- | --- |"]
            + knobs.map { "| `\($0.name)` | `\($0.defaultValue)` | \($0.expected) | \($0.meaning) |" })
            .joined(separator: "\n")
    }

    /// `--help` lines: `  key (default D): meaning`.
    public static var helpText: String {
        knobs.map { "  \($0.name) (default \($0.defaultValue)): \($0.meaning)" }.joined(separator: "\n")
    }
}

extension KnobTable where Self: Equatable {
    /// The rows whose default is not the type's (empty when the table and
    /// the type agree): each row's default, parsed into a fresh value, must
    /// leave it equal to `Self()`, and the default value must print as text
    /// the row parses back. Names must be unique.
    public static func rowsDisagreeingWithDefaults() -> [String] {
        var bad: [String] = []
        for k in knobs {
            var s = Self()
            if !k.parse(&s, k.defaultValue) || s != Self() { bad.append("\(k.name): default \(k.defaultValue) is not the type's") }
            var t = Self()
            if !k.parse(&t, k.show(Self())) || t != Self() { bad.append("\(k.name): prints \(k.show(Self())), which does not parse back") }
        }
        if Set(keys).count != knobs.count { bad.append("duplicate names") }
        return bad
    }
}
