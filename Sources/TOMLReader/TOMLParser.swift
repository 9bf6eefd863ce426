// MARK: - Parser

/// The tree under construction: classes so that headers can reopen tables.
final class Node {
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

struct TOMLParser {
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

}
