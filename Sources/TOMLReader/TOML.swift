/// A small, strict TOML reader that remembers the line of every key.
///
/// Supported (TOML 1.0 minus dates and times): comments; tables `[a.b]`;
/// arrays of tables `[[group]]`; dotted keys `a.b = 1`; bare and quoted keys;
/// basic strings (with escapes), literal strings, and their multi-line forms;
/// integers (decimal with `_`, `0x`, `0o`, `0b`, signs); floats (`1.5`,
/// `1e3`, `inf`, `nan`); booleans; arrays (over several lines, trailing
/// comma allowed); inline tables.
///
/// Strict: a key defined twice, a table defined twice, a value where a table
/// is expected, a bad escape, a leading zero, an underscore not between
/// digits, an integer that overflows Int64, and dates are errors. Every error
/// carries the file and line (and column) where it was found.
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public let message: String
    public var description: String { "\(file):\(line):\(column): malformed TOML: \(message)" }
}

/// A parsed value and the line it starts on.
public struct TOMLValue: Equatable, Sendable {
    public indirect enum Kind: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case bool(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
    }
    public var kind: Kind
    public var line: Int

    public init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }

    /// The TOML type name, as error messages use it.
    public var typeName: String {
        switch kind {
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .bool: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }

    public var string: String? { if case .string(let s) = kind { return s }; return nil }
    public var integer: Int64? { if case .integer(let i) = kind { return i }; return nil }
    public var bool: Bool? { if case .bool(let b) = kind { return b }; return nil }
    public var array: [TOMLValue]? { if case .array(let a) = kind { return a }; return nil }
    public var table: TOMLTable? { if case .table(let t) = kind { return t }; return nil }
    /// A float, or an integer read as a float.
    public var number: Double? {
        switch kind {
        case .float(let d): return d
        case .integer(let i): return Double(i)
        default: return nil
        }
    }
}

/// A table: keys in the order they were written, each with its value and line.
public struct TOMLTable: Equatable, Sendable {
    /// The line of the table's header (`[name]`), of its inline `{`, or 1 for the root.
    public var line: Int
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    public init(line: Int) { self.line = line }

    public subscript(_ key: String) -> TOMLValue? {
        get { values[key] }
        set {
            if let newValue {
                if values[key] == nil { keys.append(key) }
                values[key] = newValue
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var isEmpty: Bool { keys.isEmpty }
    /// (key, value) in written order.
    public var entries: [(key: String, value: TOMLValue)] { keys.map { ($0, values[$0]!) } }
}

public enum TOML {
    /// Parses `text`; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<input>") throws(TOMLError) -> TOMLTable {
        var p = TOMLParser(text: text, file: file)
        return try p.parseDocument()
    }
}

