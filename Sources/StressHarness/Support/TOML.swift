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

// MARK: - Parser

/// The tree under construction: classes so that headers can reopen tables.
private final class Node {
    enum Kind { case table, arrayOfTables, value }
    var kind: Kind
    var line: Int
    var children: [String: Node] = [:]
    var order: [String] = []
    var elements: [Node] = []        // arrayOfTables
    var value: TOMLValue? = nil      // value (incl. arrays, inline tables)
    var explicit = false             // defined by a [header]
    var definedByDottedKey = false   // created by `a.b = ...` (cannot be reopened by a header)

    init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }

    func child(_ k: String) -> Node? { children[k] }
    func add(_ k: String, _ n: Node) {
        children[k] = n
        order.append(k)
    }

    func freeze() -> TOMLTable {
        var t = TOMLTable(line: line)
        for k in order {
            let c = children[k]!
            switch c.kind {
            case .table: t[k] = TOMLValue(.table(c.freeze()), line: c.line)
            case .arrayOfTables: t[k] = TOMLValue(.array(c.elements.map { TOMLValue(.table($0.freeze()), line: $0.line) }), line: c.line)
            case .value: t[k] = c.value!
            }
        }
        return t
    }
}

private struct TOMLParser {
    let bytes: [UInt8]
    let file: String
    var pos = 0
    var line = 1
    var lineStart = 0

    init(text: String, file: String) {
        bytes = Array(text.utf8)
        self.file = file
    }

    // MARK: errors and characters

    func error(_ message: String, line l: Int? = nil, column c: Int? = nil) -> TOMLError {
        TOMLError(file: file, line: l ?? line, column: c ?? (pos - lineStart + 1), message: message)
    }

    var atEnd: Bool { pos >= bytes.count }
    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }
    func peek(_ offset: Int) -> UInt8? { pos + offset < bytes.count ? bytes[pos + offset] : nil }

    mutating func advance() {
        if bytes[pos] == UInt8(ascii: "\n") {
            line += 1
            lineStart = pos + 1
        }
        pos += 1
    }

    func describe(_ b: UInt8?) -> String {
        guard let b else { return "end of file" }
        switch b {
        case UInt8(ascii: "\n"): return "end of line"
        case UInt8(ascii: "\r"): return "carriage return"
        case UInt8(ascii: "\t"): return "tab"
        case 0x20..<0x7F: return "'\(Character(Unicode.Scalar(b)))'"
        default: return "byte 0x\(String(b, radix: 16))"
        }
    }

    mutating func skipSpaces() {
        while let b = peek, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { pos += 1 }
    }

    /// Skips a comment to the end of the line (not the newline). Control characters are errors.
    mutating func skipComment() throws(TOMLError) {
        guard peek == UInt8(ascii: "#") else { return }
        while let b = peek, b != UInt8(ascii: "\n") {
            if b == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { break }
            if (b < 0x20 && b != UInt8(ascii: "\t")) || b == 0x7F { throw error("control character \(describe(b)) in a comment") }
            pos += 1
        }
    }

    /// After a statement: spaces, an optional comment, then a newline or the end.
    mutating func expectEndOfLine() throws(TOMLError) {
        skipSpaces()
        try skipComment()
        if atEnd { return }
        if peek == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { pos += 1 }
        guard peek == UInt8(ascii: "\n") else { throw error("expected the end of the line after the value, found \(describe(peek))") }
        advance()
    }

    /// Skips blank lines, spaces, comments and newlines (inside arrays and between statements).
    mutating func skipTrivia() throws(TOMLError) {
        while let b = peek {
            if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { pos += 1 }
            else if b == UInt8(ascii: "\n") { advance() }
            else if b == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { pos += 1 }
            else if b == UInt8(ascii: "#") { try skipComment() }
            else { return }
        }
    }

    // MARK: document

    mutating func parseDocument() throws(TOMLError) -> TOMLTable {
        let root = Node(.table, line: 1)
        root.explicit = true
        var current = root
        while true {
            try skipTrivia()
            guard let b = peek else { break }
            if b == UInt8(ascii: "[") {
                let headerLine = line
                pos += 1
                let isArray = peek == UInt8(ascii: "[")
                if isArray { pos += 1 }
                skipSpaces()
                let key = try parseKey()
                skipSpaces()
                guard peek == UInt8(ascii: "]") else { throw error("expected ']' to close the table header [\(key.joined(separator: "."))], found \(describe(peek))") }
                pos += 1
                if isArray {
                    guard peek == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header [[\(key.joined(separator: "."))]]") }
                    pos += 1
                }
                try expectEndOfLine()
                current = try isArray ? openArrayTable(root, key, line: headerLine) : openTable(root, key, line: headerLine)
            } else {
                try parseKeyValue(into: current)
                try expectEndOfLine()
            }
        }
        return root.freeze()
    }

    /// Walks/creates the intermediate tables of a header path.
    func descend(_ root: Node, _ path: ArraySlice<String>, line l: Int, full: [String]) throws(TOMLError) -> Node {
        var n = root
        for k in path {
            if let c = n.child(k) {
                switch c.kind {
                case .table: n = c
                case .arrayOfTables: n = c.elements.last!
                case .value:
                    throw error("'\(full.joined(separator: "."))': '\(k)' already holds a \(c.value!.typeName) (line \(c.line)), not a table", line: l, column: 1)
                }
            } else {
                let c = Node(.table, line: l)
                n.add(k, c)
                n = c
            }
        }
        return n
    }

    func openTable(_ root: Node, _ key: [String], line l: Int) throws(TOMLError) -> Node {
        let parent = try descend(root, key.dropLast(), line: l, full: key)
        let last = key.last!
        if let c = parent.child(last) {
            guard c.kind == .table else {
                throw error("table [\(key.joined(separator: "."))] conflicts with the \(c.kind == .arrayOfTables ? "array of tables" : c.value!.typeName) defined on line \(c.line)", line: l, column: 1)
            }
            if c.explicit || c.definedByDottedKey {
                throw error("table [\(key.joined(separator: "."))] is defined twice (first on line \(c.line))", line: l, column: 1)
            }
            c.explicit = true
            c.line = l
            return c
        }
        let c = Node(.table, line: l)
        c.explicit = true
        parent.add(last, c)
        return c
    }

    func openArrayTable(_ root: Node, _ key: [String], line l: Int) throws(TOMLError) -> Node {
        let parent = try descend(root, key.dropLast(), line: l, full: key)
        let last = key.last!
        let element = Node(.table, line: l)
        element.explicit = true
        if let c = parent.child(last) {
            guard c.kind == .arrayOfTables else {
                throw error("[[\(key.joined(separator: "."))]] conflicts with the \(c.kind == .table ? "table" : c.value!.typeName) defined on line \(c.line)", line: l, column: 1)
            }
            c.elements.append(element)
        } else {
            let c = Node(.arrayOfTables, line: l)
            c.elements.append(element)
            parent.add(last, c)
        }
        return element
    }

    mutating func parseKeyValue(into table: Node) throws(TOMLError) {
        let keyLine = line, keyColumn = pos - lineStart + 1
        let key = try parseKey()
        skipSpaces()
        guard peek == UInt8(ascii: "=") else { throw error("expected '=' after the key '\(key.joined(separator: "."))', found \(describe(peek))") }
        pos += 1
        skipSpaces()
        let value = try parseValue(context: key.joined(separator: "."))
        var n = table
        for k in key.dropLast() {
            if let c = n.child(k) {
                guard c.kind == .table, c.definedByDottedKey else {
                    throw error("key '\(key.joined(separator: "."))': '\(k)' is already defined (line \(c.line)) and cannot be extended with a dotted key", line: keyLine, column: keyColumn)
                }
                n = c
            } else {
                let c = Node(.table, line: keyLine)
                c.definedByDottedKey = true
                n.add(k, c)
                n = c
            }
        }
        let last = key.last!
        if let c = n.child(last) {
            throw error("key '\(key.joined(separator: "."))' is defined twice (first on line \(c.line))", line: keyLine, column: keyColumn)
        }
        let c = Node(.value, line: keyLine)
        c.value = TOMLValue(value.kind, line: keyLine)
        n.add(last, c)
    }

    // MARK: keys

    static func isBare(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ||
            (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    /// A dotted key: parts separated by '.', each bare or quoted.
    mutating func parseKey() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            guard let b = peek else { throw error("expected a key, found end of file") }
            if b == UInt8(ascii: "\"") {
                if peek(1) == UInt8(ascii: "\"") && peek(2) == UInt8(ascii: "\"") { throw error("a key cannot be a multi-line string") }
                parts.append(try parseBasicString())
            } else if b == UInt8(ascii: "'") {
                if peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") { throw error("a key cannot be a multi-line string") }
                parts.append(try parseLiteralString())
            } else if TOMLParser.isBare(b) {
                let start = pos
                while let c = peek, TOMLParser.isBare(c) { pos += 1 }
                parts.append(String(decoding: bytes[start..<pos], as: UTF8.self))
            } else {
                throw error("expected a key (letters, digits, '_', '-', or a quoted string), found \(describe(b))")
            }
            skipSpaces()
            if peek == UInt8(ascii: ".") { pos += 1; continue }
            return parts
        }
    }

    // MARK: values

    mutating func parseValue(context: String) throws(TOMLError) -> TOMLValue {
        let l = line
        guard let b = peek else { throw error("expected a value for '\(context)', found end of file") }
        switch b {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\"") && peek(2) == UInt8(ascii: "\"") { return TOMLValue(.string(try parseMultilineBasic()), line: l) }
            return TOMLValue(.string(try parseBasicString()), line: l)
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") { return TOMLValue(.string(try parseMultilineLiteral()), line: l) }
            return TOMLValue(.string(try parseLiteralString()), line: l)
        case UInt8(ascii: "["):
            return try parseArray(context: context)
        case UInt8(ascii: "{"):
            return try parseInlineTable(context: context)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matchWord("true") { return TOMLValue(.bool(true), line: l) }
            if matchWord("false") { return TOMLValue(.bool(false), line: l) }
            throw error("invalid value for '\(context)': expected true, false, a number, a quoted string, an array or an inline table")
        default:
            return try parseNumber(context: context)
        }
    }

    mutating func matchWord(_ w: String) -> Bool {
        let u = Array(w.utf8)
        guard pos + u.count <= bytes.count, Array(bytes[pos..<(pos + u.count)]) == u else { return false }
        if let after = pos + u.count < bytes.count ? bytes[pos + u.count] : nil, TOMLParser.isBare(after) { return false }
        pos += u.count
        return true
    }

    mutating func parseArray(context: String) throws(TOMLError) -> TOMLValue {
        let l = line
        pos += 1 // [
        var items: [TOMLValue] = []
        while true {
            try skipTrivia()
            guard let b = peek else { throw error("array for '\(context)' opened on line \(l) is never closed") }
            if b == UInt8(ascii: "]") { pos += 1; break }
            items.append(try parseValue(context: "\(context)[\(items.count)]"))
            try skipTrivia()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            if peek == UInt8(ascii: "]") { pos += 1; break }
            if atEnd { throw error("array for '\(context)' opened on line \(l) is never closed") }
            throw error("expected ',' or ']' in the array for '\(context)', found \(describe(peek))")
        }
        return TOMLValue(.array(items), line: l)
    }

    mutating func parseInlineTable(context: String) throws(TOMLError) -> TOMLValue {
        let l = line
        pos += 1 // {
        let node = Node(.table, line: l)
        node.explicit = true
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            pos += 1
            return TOMLValue(.table(node.freeze()), line: l)
        }
        while true {
            skipSpaces()
            if peek == UInt8(ascii: "\n") || peek == UInt8(ascii: "\r") { throw error("an inline table must be on one line (the one for '\(context)' opened on line \(l))") }
            try parseKeyValue(into: node)
            skipSpaces()
            if peek == UInt8(ascii: ",") { pos += 1; continue }
            if peek == UInt8(ascii: "}") { pos += 1; break }
            if peek == UInt8(ascii: "\n") || peek == nil { throw error("inline table for '\(context)' is not closed with '}' on its line") }
            throw error("expected ',' or '}' in the inline table for '\(context)', found \(describe(peek))")
        }
        return TOMLValue(.table(node.freeze()), line: l)
    }

    // MARK: strings

    mutating func parseBasicString() throws(TOMLError) -> String {
        pos += 1 // "
        var out: [UInt8] = []
        while true {
            guard let b = peek else { throw error("string is not closed before the end of the file") }
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { throw error("string is not closed on its line (use \"\"\" for a multi-line string)") }
            if b == UInt8(ascii: "\\") {
                try parseEscape(into: &out)
                continue
            }
            if (b < 0x20 && b != UInt8(ascii: "\t")) || b == 0x7F { throw error("control character \(describe(b)) in a string (escape it)") }
            out.append(b)
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func parseEscape(into out: inout [UInt8]) throws(TOMLError) {
        pos += 1 // backslash
        guard let e = peek else { throw error("escape at the end of the file") }
        pos += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard pos + n <= bytes.count, let v = UInt32(String(decoding: bytes[pos..<(pos + n)], as: UTF8.self), radix: 16),
                  let scalar = Unicode.Scalar(v) else {
                throw error("invalid unicode escape \\\(Character(Unicode.Scalar(e)))... (need \(n) hex digits naming a Unicode scalar)")
            }
            pos += n
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))' (valid: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)")
        }
    }

    mutating func parseLiteralString() throws(TOMLError) -> String {
        pos += 1 // '
        let start = pos
        while true {
            guard let b = peek else { throw error("literal string is not closed before the end of the file") }
            if b == UInt8(ascii: "'") { break }
            if b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { throw error("literal string is not closed on its line (use ''' for a multi-line string)") }
            if (b < 0x20 && b != UInt8(ascii: "\t")) || b == 0x7F { throw error("control character \(describe(b)) in a literal string") }
            pos += 1
        }
        let s = String(decoding: bytes[start..<pos], as: UTF8.self)
        pos += 1
        return s
    }

    mutating func skipFirstNewline() {
        if peek == UInt8(ascii: "\n") { advance() }
        else if peek == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { pos += 1; advance() }
    }

    mutating func parseMultilineBasic() throws(TOMLError) -> String {
        let l = line
        pos += 3
        skipFirstNewline()
        var out: [UInt8] = []
        while true {
            guard let b = peek else { throw error("multi-line string opened on line \(l) is never closed") }
            if b == UInt8(ascii: "\"") && peek(1) == UInt8(ascii: "\"") && peek(2) == UInt8(ascii: "\"") {
                pos += 3
                // Up to two quotes right before the closing delimiter belong to the string.
                var extra = 0
                while extra < 2 && peek == UInt8(ascii: "\"") { out.append(0x22); pos += 1; extra += 1 }
                break
            }
            if b == UInt8(ascii: "\\") {
                // Line-ending backslash: trim the newline and following whitespace.
                var q = pos + 1
                while q < bytes.count && (bytes[q] == UInt8(ascii: " ") || bytes[q] == UInt8(ascii: "\t")) { q += 1 }
                if q < bytes.count && (bytes[q] == UInt8(ascii: "\n") || bytes[q] == UInt8(ascii: "\r")) {
                    pos = q
                    while let c = peek, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { advance() }
                    continue
                }
                try parseEscape(into: &out)
                continue
            }
            if b == UInt8(ascii: "\n") { out.append(b); advance(); continue }
            if (b < 0x20 && b != UInt8(ascii: "\t") && b != UInt8(ascii: "\r")) || b == 0x7F { throw error("control character \(describe(b)) in a string") }
            out.append(b)
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func parseMultilineLiteral() throws(TOMLError) -> String {
        let l = line
        pos += 3
        skipFirstNewline()
        var out: [UInt8] = []
        while true {
            guard let b = peek else { throw error("multi-line literal string opened on line \(l) is never closed") }
            if b == UInt8(ascii: "'") && peek(1) == UInt8(ascii: "'") && peek(2) == UInt8(ascii: "'") {
                pos += 3
                var extra = 0
                while extra < 2 && peek == UInt8(ascii: "'") { out.append(0x27); pos += 1; extra += 1 }
                break
            }
            if b == UInt8(ascii: "\n") { out.append(b); advance(); continue }
            if (b < 0x20 && b != UInt8(ascii: "\t") && b != UInt8(ascii: "\r")) || b == 0x7F { throw error("control character \(describe(b)) in a literal string") }
            out.append(b)
            pos += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: numbers

    mutating func parseNumber(context: String) throws(TOMLError) -> TOMLValue {
        let l = line, col = pos - lineStart + 1
        let start = pos
        while let b = peek, TOMLParser.isBare(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") { pos += 1 }
        let tok = String(decoding: bytes[start..<pos], as: UTF8.self)
        func bad(_ why: String) -> TOMLError { error("invalid value '\(tok)' for '\(context)': \(why)", line: l, column: col) }
        guard !tok.isEmpty else {
            throw error("expected a value for '\(context)' (a number, true/false, a quoted string, an array or an inline table), found \(describe(peek))")
        }
        if tok.contains(":") || tok.dropFirst().contains("-") && !tok.lowercased().contains("e") {
            throw bad("dates and times are not supported here")
        }
        var body = Substring(tok)
        var negative = false
        if body.first == "+" || body.first == "-" {
            negative = body.first == "-"
            body = body.dropFirst()
        }
        if body == "inf" { return TOMLValue(.float(negative ? -.infinity : .infinity), line: l) }
        if body == "nan" { return TOMLValue(.float(.nan), line: l) }
        // Prefixed integers.
        if body.hasPrefix("0x") || body.hasPrefix("0o") || body.hasPrefix("0b") {
            guard tok.first != "+" && tok.first != "-" else { throw bad("a sign is not allowed on hex, octal or binary integers") }
            let radix = body.hasPrefix("0x") ? 16 : body.hasPrefix("0o") ? 8 : 2
            let digits = try TOMLParser.stripUnderscores(body.dropFirst(2), bad)
            guard !digits.isEmpty, let v = UInt64(digits, radix: radix) else { throw bad("not a valid base-\(radix) integer") }
            guard v <= UInt64(Int64.max) else { throw bad("does not fit in a 64-bit signed integer") }
            return TOMLValue(.integer(Int64(v)), line: l)
        }
        guard let first = body.first, first.isASCIIDigit else {
            throw bad("expected a number, true/false, a quoted string (strings need quotes), an array or an inline table")
        }
        let isFloat = body.contains(".") || ((body.contains("e") || body.contains("E")) && !body.hasPrefix("0x"))
        if isFloat {
            let s = try TOMLParser.stripUnderscores(body, bad)
            // Every '.' needs digits on both sides; the integer part has no leading zero.
            let intPart = s.prefix { $0 != "." && $0 != "e" && $0 != "E" }
            guard !intPart.isEmpty, intPart.allSatisfy(\.isASCIIDigit) else { throw bad("a float needs digits before the point or exponent") }
            if intPart.count > 1 && intPart.first == "0" { throw bad("leading zeros are not allowed") }
            if let dot = s.firstIndex(of: ".") {
                let frac = s[s.index(after: dot)...].prefix { $0 != "e" && $0 != "E" }
                guard !frac.isEmpty, frac.allSatisfy(\.isASCIIDigit) else { throw bad("a float needs digits after the point") }
            }
            guard let d = Double(s) else { throw bad("not a valid float") }
            return TOMLValue(.float(negative ? -d : d), line: l)
        }
        let s = try TOMLParser.stripUnderscores(body, bad)
        guard !s.isEmpty, s.allSatisfy(\.isASCIIDigit) else {
            throw bad("expected a number, true/false, a quoted string (strings need quotes), an array or an inline table")
        }
        if s.count > 1 && s.first == "0" { throw bad("leading zeros are not allowed") }
        guard let v = Int64((negative ? "-" : "") + s) else { throw bad("does not fit in a 64-bit signed integer") }
        return TOMLValue(.integer(v), line: l)
    }

    /// Removes underscores, each of which must sit between two digits.
    static func stripUnderscores(_ s: Substring, _ bad: (String) -> TOMLError) throws(TOMLError) -> String {
        var out = ""
        var prev: Character? = nil
        let chars = Array(s)
        for (i, c) in chars.enumerated() {
            if c == "_" {
                let next = i + 1 < chars.count ? chars[i + 1] : nil
                guard let p = prev, p.isHexDigit, let n = next, n.isHexDigit else { throw bad("an underscore must sit between two digits") }
            } else {
                out.append(c)
            }
            prev = c
        }
        return out
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
