// TOMLParser: values (strings, numbers, arrays, inline tables).
extension TOMLParser {
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
