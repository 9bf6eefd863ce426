import PageAllocator

/// Parses the text that ftrace writes to /sys/kernel/tracing/trace (and the
/// close cousin that `trace-cmd report` prints), one line at a time, into a
/// `Trace`.
///
/// An event line is
///
///     TASK-PID [(TGID)] [CPU] [FLAGS] SECONDS.FRACTION: EVENT: KEY=VALUE ...
///
/// Task names may hold spaces, dashes and colons (`memfd:sealed-91-2593`), so
/// the line is anchored on the `[CPU]` column: the first ` [digits] ` that
/// is followed by an optional flags column, a timestamp ending in `:` and an
/// event name ending in `:`. Everything left of it is TASK-PID (PID after the
/// last dash). The FLAGS column (`.....`, `d..2.`) is absent in `trace-cmd
/// report` output and with `echo 0 > options/irq-info`.
///
/// Kept: mm_page_alloc, mm_page_free, mm_page_free_batched. Counted and
/// otherwise skipped: other events, `CPU:N [LOST M EVENTS]` markers, comment
/// lines (`#`, whose `#P:N` and `entries-in-buffer/entries-written` are
/// read), blank lines, and trace-cmd's `cpus=N`/`version = N`/`CPU N is
/// empty` header lines. Anything else is an error naming the line and field.
public struct TraceParser {
    public let fileName: String
    private(set) var events: [TraceEvent] = []
    private(set) var lineCount = 0
    private var nonBlankLines = 0
    private var declaredCPUs: Int?
    private var maxCPU = -1
    private var entriesInBuffer: Int?
    private var entriesWritten: Int?
    private var lost: [Int: Int] = [:]
    private var other: [String: Int] = [:]
    private var unmodelled: [String: Int] = [:]
    private var traceCmdHeader = false
    private var gfpCache: [[UInt8]: (GFP, [String])] = [:]
    private var lastGFP: ([UInt8], GFP, [String])?

    public init(fileName: String) {
        self.fileName = fileName
    }

    /// Parses a whole text (tests, small traces).
    public static func parse(_ text: String, fileName: String) throws(TraceError) -> Trace {
        var p = TraceParser(fileName: fileName)
        var bytes = Array(text.utf8)
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        let r: Result<Void, TraceError> = bytes.withUnsafeBufferPointer { all in
            var start = 0
            for i in 0..<all.count where all[i] == UInt8(ascii: "\n") {
                do throws(TraceError) {
                    try p.consume(UnsafeBufferPointer(rebasing: all[start..<i]))
                } catch { return .failure(error) }
                start = i + 1
            }
            return .success(())
        }
        if case .failure(let e) = r { throw e }
        return try p.finish()
    }

    /// The trace, once every line has been consumed. Refuses an empty trace
    /// and a trace without page events.
    public func finish() throws(TraceError) -> Trace {
        guard nonBlankLines > 0 else { throw .empty(file: fileName) }
        guard !events.isEmpty else { throw .noPageEvents(file: fileName, lines: lineCount, otherEvents: other) }
        return Trace(fileName: fileName, events: events, lineCount: lineCount, declaredCPUs: declaredCPUs,
                     cpuCount: max(declaredCPUs ?? 0, maxCPU + 1), entriesInBuffer: entriesInBuffer,
                     entriesWritten: entriesWritten, lostEvents: lost, otherEvents: other,
                     unmodelledGFPFlags: unmodelled, style: traceCmdHeader ? "trace-cmd" : "ftrace")
    }

    // MARK: one line

    /// Consumes one line (without its newline; a trailing `\r` is ignored).
    public mutating func consume(_ line: UnsafeBufferPointer<UInt8>) throws(TraceError) {
        lineCount += 1
        var end = line.count
        while end > 0, Byte.isSpace(line[end - 1]) { end -= 1 }
        var i = 0
        while i < end, Byte.isSpace(line[i]) { i += 1 }
        if i == end { return }
        nonBlankLines += 1
        let l = Line(bytes: line, start: i, end: end, number: lineCount, file: fileName)
        if line[i] == Byte.hash { header(l); return }
        if l.hasPrefix("CPU:", at: i) { try lostMarker(l); return }
        if l.hasPrefix("cpus=", at: i), let n = l.integer(in: (i + 5)..<end) { declaredCPUs = n; traceCmdHeader = true; return }
        if l.hasPrefix("version = ", at: i) { traceCmdHeader = true; return }
        if l.hasPrefix("CPU ", at: i), l.contains("is empty") || l.contains("data recorded") { return }
        try eventLine(l, from: i)
    }

    private mutating func header(_ l: Line) {
        if let r = l.find("#P:") {
            var j = r.upperBound
            var n = 0, digits = 0
            while j < l.end, let d = Byte.digit(l.bytes[j]) { n = n * 10 + d; digits += 1; j += 1 }
            if digits > 0 && digits < 7 { declaredCPUs = n }
        }
        if let r = l.find("entries-in-buffer/entries-written:") {
            var j = r.upperBound
            while j < l.end, Byte.isSpace(l.bytes[j]) { j += 1 }
            let a = l.scanInteger(&j)
            if j < l.end, l.bytes[j] == UInt8(ascii: "/") {
                j += 1
                if let a, let b = l.scanInteger(&j) { entriesInBuffer = a; entriesWritten = b }
            }
        }
    }

    /// `CPU:N [LOST M EVENTS]` (ftrace) or `CPU:N [M EVENTS DROPPED]` (trace-cmd).
    private mutating func lostMarker(_ l: Line) throws(TraceError) {
        var j = l.start + 4
        guard let cpu = l.scanInteger(&j), l.contains("EVENTS") else {
            throw l.error("lost-events", "a line starting 'CPU:' must be a lost-events marker like 'CPU:1 [LOST 42 EVENTS]'")
        }
        while j < l.end, !Byte.isDigit(l.bytes[j]) { j += 1 }
        guard let n = l.scanInteger(&j) else {
            throw l.error("lost-events", "no event count in the lost-events marker")
        }
        lost[cpu, default: 0] += n
    }

    /// The columns of an event line, found from the `[CPU]` anchor.
    private struct Columns {
        var cpu: Int
        var timestampNs: UInt64
        var eventName: Range<Int>
        var fields: Int
    }

    private mutating func eventLine(_ l: Line, from start: Int) throws(TraceError) {
        let b = l.bytes
        var firstProblem: TraceError?
        var found: (Columns, Int)?
        var k = start + 1
        while k < l.end {
            if b[k] == UInt8(ascii: "["), Byte.isSpace(b[k - 1]) {
                switch columns(l, bracket: k) {
                case .success(let c): found = (c, k)
                case .failure(let e): if firstProblem == nil { firstProblem = e }
                }
                if found != nil { break }
            }
            k += 1
        }
        guard let found else {
            throw firstProblem ?? l.error("cpu", "no [CPU] column; expected 'TASK-PID [CPU] FLAGS SECONDS.FRACTION: EVENT: FIELDS' as in /sys/kernel/tracing/trace")
        }
        let (cols, bracket) = found
        try checkTaskPID(l, start: start, bracket: bracket)
        let name = cols.eventName
        let kind: TraceEvent.Kind
        if l.equals(name, "mm_page_alloc") {
            kind = .alloc
        } else if l.equals(name, "mm_page_free") {
            kind = .free
        } else if l.equals(name, "mm_page_free_batched") {
            kind = .freeBatched
        } else {
            other[l.string(name), default: 0] += 1
            maxCPU = max(maxCPU, cols.cpu)
            return
        }
        var event = try fields(l, kind: kind, from: cols.fields)
        event.cpu = UInt16(cols.cpu)
        event.timestampNs = cols.timestampNs
        events.append(event)
        maxCPU = max(maxCPU, cols.cpu)
    }

    /// Reads `[CPU] [FLAGS] TIMESTAMP: EVENT:` from the bracket at `k`.
    private func columns(_ l: Line, bracket k: Int) -> Result<Columns, TraceError> {
        let b = l.bytes
        var j = k + 1
        var cpu = 0, digits = 0
        while j < l.end, let d = Byte.digit(b[j]) { cpu = cpu * 10 + d; digits += 1; j += 1 }
        guard digits > 0, j < l.end, b[j] == UInt8(ascii: "]") else {
            return .failure(l.error("cpu", "the [CPU] column must be a decimal CPU number in brackets, e.g. [001]"))
        }
        guard digits <= 5, cpu < 65536 else { return .failure(l.error("cpu", "CPU \(l.string(k + 1..<j)) is out of range (0...65535)")) }
        j += 1
        guard j < l.end, Byte.isSpace(b[j]) else { return .failure(l.error("cpu", "expected a space after the [CPU] column")) }
        // Next token: the timestamp (`123.456789:`), or the flags column then the timestamp.
        var tok = l.token(after: &j)
        if tok.isEmpty || b[tok.upperBound - 1] != UInt8(ascii: ":") {
            tok = l.token(after: &j)
        }
        guard !tok.isEmpty, b[tok.upperBound - 1] == UInt8(ascii: ":") else {
            return .failure(l.error("timestamp", "expected SECONDS.FRACTION: after the [CPU] and flags columns, e.g. '301.899888:'"))
        }
        guard let ts = Line.timestamp(b, tok.lowerBound..<(tok.upperBound - 1)) else {
            return .failure(l.error("timestamp", "'\(l.string(tok))' is not SECONDS.FRACTION: (trace_clock local, global, mono or boot; counter and x86-tsc clocks are not supported)"))
        }
        while j < l.end, Byte.isSpace(b[j]) { j += 1 }
        let nameStart = j
        while j < l.end, Byte.isNameByte(b[j]) { j += 1 }
        guard j > nameStart, j < l.end, b[j] == UInt8(ascii: ":") else {
            return .failure(l.error("event", "expected an event name followed by ':' after the timestamp, e.g. 'mm_page_alloc:'"))
        }
        return .success(Columns(cpu: cpu, timestampNs: ts, eventName: nameStart..<j, fields: j + 1))
    }

    /// TASK-PID (and an optional `(TGID)` column) left of the [CPU] column.
    private func checkTaskPID(_ l: Line, start: Int, bracket: Int) throws(TraceError) {
        let b = l.bytes
        var end = bracket
        while end > start, Byte.isSpace(b[end - 1]) { end -= 1 }
        if end > start, b[end - 1] == UInt8(ascii: ")") {
            var o = end - 1
            while o > start, b[o] != UInt8(ascii: "(") { o -= 1 }
            if b[o] == UInt8(ascii: "(") {
                end = o
                while end > start, Byte.isSpace(b[end - 1]) { end -= 1 }
            }
        }
        var dash = end - 1
        while dash >= start, b[dash] != UInt8(ascii: "-") { dash -= 1 }
        guard dash >= start, dash + 1 < end, (dash + 1..<end).allSatisfy({ Byte.isDigit(b[$0]) }) else {
            throw l.error("task-pid", "expected TASK-PID (e.g. 'bash-5839') before the [CPU] column, got '\(l.string(start..<end))'")
        }
    }

    /// Reads the KEY=VALUE fields of a page event.
    private mutating func fields(_ l: Line, kind: TraceEvent.Kind, from start: Int) throws(TraceError) -> TraceEvent {
        let b = l.bytes
        var j = start
        var pfn: UInt64?
        var order: Int?
        var migratetype = -1
        var gfp: GFP?
        var pageIsNull = true
        let event = kind.description
        while true {
            let tok = l.token(after: &j)
            if tok.isEmpty { break }
            var eq = tok.lowerBound
            while eq < tok.upperBound, b[eq] != UInt8(ascii: "=") { eq += 1 }
            guard eq < tok.upperBound, eq > tok.lowerBound else {
                throw l.error("fields", "expected KEY=VALUE fields after '\(event):', got '\(l.string(tok))'")
            }
            let key = tok.lowerBound..<eq
            let value = (eq + 1)..<tok.upperBound
            if l.equals(key, "pfn") {
                guard let v = Line.unsigned(b, value) else {
                    throw l.error("pfn", "'\(l.string(value))' is not a page frame number (hex 0x... or decimal)")
                }
                pfn = v
            } else if l.equals(key, "order") {
                guard let v = Line.unsigned(b, value, hexAllowed: false), v <= UInt64(Order.maxOrder) else {
                    throw l.error("order", "'\(l.string(value))' is not an order 0...\(Order.maxOrder)")
                }
                order = Int(v)
            } else if l.equals(key, "migratetype") {
                guard let v = Line.signed(b, value), v >= -1, v < 16 else {
                    throw l.error("migratetype", "'\(l.string(value))' is not a migratetype number (0 UNMOVABLE, 1 MOVABLE, 2 RECLAIMABLE, ...)")
                }
                migratetype = v
            } else if l.equals(key, "gfp_flags") {
                gfp = try parseGFP(l, value)
            } else if l.equals(key, "page") {
                pageIsNull = l.equals(value, "(null)") || value.allSatisfy { b[$0] == UInt8(ascii: "0") || b[$0] == UInt8(ascii: "x") }
            }
        }
        let needs = kind == .alloc ? "pfn=, order= and gfp_flags=" : (kind == .free ? "pfn= and order=" : "pfn=")
        guard let pfn else { throw l.error("pfn", "missing; \(event) needs \(needs)") }
        switch kind {
        case .alloc:
            guard let order else { throw l.error("order", "missing; \(event) needs \(needs)") }
            guard let gfp else { throw l.error("gfp_flags", "missing; \(event) needs \(needs)") }
            // A failed allocation prints a NULL page and pfn=0x0.
            let k: TraceEvent.Kind = pfn == 0 && pageIsNull ? .allocFailed : .alloc
            return TraceEvent(kind: k, cpu: 0, pfn: pfn, order: order, gfp: gfp, migratetype: migratetype, timestampNs: 0, line: l.number)
        case .free:
            guard let order else { throw l.error("order", "missing; \(event) needs \(needs)") }
            return TraceEvent(kind: .free, cpu: 0, pfn: pfn, order: order, timestampNs: 0, line: l.number)
        case .freeBatched, .allocFailed:
            return TraceEvent(kind: .freeBatched, cpu: 0, pfn: pfn, order: order ?? 0, timestampNs: 0, line: l.number)
        }
    }

    /// `GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP`, `none` or a hex mask.
    /// Kernel flag names this model has no bit for are counted and ignored;
    /// anything not shaped like a flag name is an error. Cached by spelling.
    private mutating func parseGFP(_ l: Line, _ value: Range<Int>) throws(TraceError) -> GFP {
        let b = l.bytes
        if let last = lastGFP, last.0.elementsEqual(b[value]) {
            for n in last.2 { unmodelled[n, default: 0] += 1 }
            return last.1
        }
        let key = Array(b[value])
        let parsed: (GFP, [String])
        if let hit = gfpCache[key] {
            parsed = hit
        } else {
            var flags = GFP()
            var ignored: [String] = []
            let text = l.string(value)
            for part in text.split(separator: "|", omittingEmptySubsequences: false) {
                let name = String(part)
                if let f = try? GFP(parsing: name), !name.isEmpty {
                    flags.formUnion(f)
                } else if TraceParser.looksLikeGFPName(name) {
                    ignored.append(name)
                } else {
                    throw l.error("gfp_flags", "'\(name)' in '\(text)' is not a GFP flag (expected kernel names like GFP_KERNEL|__GFP_COMP, 'none' or a hex mask)")
                }
            }
            parsed = (flags, ignored)
            gfpCache[key] = parsed
        }
        lastGFP = (key, parsed.0, parsed.1)
        for n in parsed.1 { unmodelled[n, default: 0] += 1 }
        return parsed.0
    }

    /// `GFP_X` or `__GFP_X` with X of capitals, digits and underscores.
    static func looksLikeGFPName(_ s: String) -> Bool {
        let rest: Substring
        if s.hasPrefix("__GFP_") { rest = s.dropFirst(6) } else if s.hasPrefix("GFP_") { rest = s.dropFirst(4) } else { return false }
        return !rest.isEmpty && rest.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || Byte.isDigit($0) || $0 == 95 }
    }
}

// MARK: bytes

enum Byte {
    static let hash = UInt8(ascii: "#")
    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 13 || c == 10 }
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    @inline(__always) static func digit(_ c: UInt8) -> Int? { c >= 48 && c <= 57 ? Int(c - 48) : nil }
    @inline(__always) static func hex(_ c: UInt8) -> UInt64? {
        switch c {
        case 48...57: return UInt64(c - 48)
        case 97...102: return UInt64(c - 87)
        case 65...70: return UInt64(c - 55)
        default: return nil
        }
    }
    @inline(__always) static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c == 95
    }
}

/// One line being parsed: its bytes, the non-blank range, its number.
struct Line {
    let bytes: UnsafeBufferPointer<UInt8>
    let start: Int
    let end: Int
    let number: Int
    let file: String

    func string(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[r]), as: UTF8.self) }

    func error(_ field: String, _ reason: String) -> TraceError {
        .badLine(file: file, line: number, field: field, reason: reason, text: string(start..<end))
    }

    func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for (n, i) in r.enumerated() where bytes[i] != p[n] { return false }
        return true
    }

    func hasPrefix(_ s: StaticString, at i: Int) -> Bool {
        i + s.utf8CodeUnitCount <= end && equals(i..<(i + s.utf8CodeUnitCount), s)
    }

    func find(_ s: StaticString) -> Range<Int>? {
        let n = s.utf8CodeUnitCount
        guard end - start >= n else { return nil }
        for i in start...(end - n) where equals(i..<(i + n), s) { return i..<(i + n) }
        return nil
    }

    func contains(_ s: StaticString) -> Bool { find(s) != nil }

    /// The next space-separated token at or after `j`; moves `j` past it.
    func token(after j: inout Int) -> Range<Int> {
        while j < end, Byte.isSpace(bytes[j]) { j += 1 }
        let s = j
        while j < end, !Byte.isSpace(bytes[j]) { j += 1 }
        return s..<j
    }

    /// A decimal integer at `j` (moves `j` past it).
    func scanInteger(_ j: inout Int) -> Int? {
        var n = 0, digits = 0
        while j < end, let d = Byte.digit(bytes[j]), digits < 18 { n = n * 10 + d; digits += 1; j += 1 }
        return digits > 0 ? n : nil
    }

    /// The whole of `r` as a decimal integer.
    func integer(in r: Range<Int>) -> Int? {
        var j = r.lowerBound
        guard let v = scanInteger(&j), j == r.upperBound else { return nil }
        return v
    }

    /// `0x1a2b` (hex) or `1234` (decimal), the whole range.
    static func unsigned(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, hexAllowed: Bool = true) -> UInt64? {
        guard !r.isEmpty else { return nil }
        var v: UInt64 = 0
        if hexAllowed, r.count > 2, b[r.lowerBound] == 48, b[r.lowerBound + 1] == UInt8(ascii: "x") || b[r.lowerBound + 1] == UInt8(ascii: "X") {
            guard r.count <= 18 else { return nil }
            for i in (r.lowerBound + 2)..<r.upperBound {
                guard let h = Byte.hex(b[i]) else { return nil }
                v = v << 4 | h
            }
            return v
        }
        guard r.count <= 19 else { return nil }
        for i in r {
            guard let d = Byte.digit(b[i]) else { return nil }
            v = v * 10 + UInt64(d)
        }
        return v
    }

    static func signed(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        guard !r.isEmpty else { return nil }
        if b[r.lowerBound] == UInt8(ascii: "-") {
            return unsigned(b, (r.lowerBound + 1)..<r.upperBound, hexAllowed: false).flatMap { $0 < 1 << 62 ? -Int($0) : nil }
        }
        return unsigned(b, r, hexAllowed: false).flatMap { $0 < 1 << 62 ? Int($0) : nil }
    }

    /// `SECONDS.FRACTION` in nanoseconds (fraction digits beyond 9 are dropped).
    static func timestamp(_ b: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> UInt64? {
        var i = r.lowerBound
        var secs: UInt64 = 0, sd = 0
        while i < r.upperBound, let d = Byte.digit(b[i]) { secs = secs * 10 + UInt64(d); sd += 1; i += 1 }
        guard sd > 0, sd <= 10, i < r.upperBound, b[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        var frac: UInt64 = 0, fd = 0
        while i < r.upperBound, let d = Byte.digit(b[i]) {
            if fd < 9 { frac = frac * 10 + UInt64(d) }
            fd += 1
            i += 1
        }
        guard fd > 0, i == r.upperBound else { return nil }
        for _ in min(fd, 9)..<9 { frac *= 10 }
        return secs * 1_000_000_000 + frac
    }
}
