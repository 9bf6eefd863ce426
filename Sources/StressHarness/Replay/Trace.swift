import PageAllocator

/// One page event of a kernel trace: kmem:mm_page_alloc, kmem:mm_page_free
/// or kmem:mm_page_free_batched, as the ftrace text output prints them.
///
/// 32 bytes; a trace holds one per event line, in file order.
public struct TraceEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        /// mm_page_alloc that returned a page.
        case alloc = 0
        /// mm_page_free (__free_pages and friends).
        case free = 1
        /// mm_page_free_batched (free_unref_folios / release_pages).
        case freeBatched = 2
        /// mm_page_alloc that returned no page (the kernel prints pfn=0x0 and
        /// a NULL page): the request failed in the traced kernel.
        case allocFailed = 3

        /// The tracepoint's name.
        public var description: String {
            switch self {
            case .alloc, .allocFailed: return "mm_page_alloc"
            case .free: return "mm_page_free"
            case .freeBatched: return "mm_page_free_batched"
            }
        }
        public var isFree: Bool { self == .free || self == .freeBatched }
    }

    /// The pfn the traced kernel reported (0 for a failed allocation).
    public var pfn: UInt64
    /// The timestamp in nanoseconds (the trace's seconds.fraction column).
    public var timestampNs: UInt64
    /// The gfp_flags of an allocation (empty for frees).
    public var gfp: GFP
    /// Line number in the trace file, 1-based.
    public var line: UInt32
    /// The trace's CPU column.
    public var cpu: UInt16
    public var kind: Kind
    /// The order the trace printed (mm_page_free_batched always prints 0).
    public var order: UInt8
    /// The migratetype an allocation printed (-1 when absent or for frees).
    public var migratetype: Int8

    public init(kind: Kind, cpu: Int, pfn: UInt64, order: Int, gfp: GFP = [], migratetype: Int = -1, timestampNs: UInt64, line: Int) {
        self.kind = kind
        self.cpu = UInt16(truncatingIfNeeded: cpu)
        self.pfn = pfn
        self.order = UInt8(truncatingIfNeeded: order)
        self.gfp = gfp
        self.migratetype = Int8(truncatingIfNeeded: migratetype)
        self.timestampNs = timestampNs
        self.line = UInt32(truncatingIfNeeded: line)
    }
}

/// A parsed trace: its page events in file order, and everything the parser
/// saw but does not replay (other events, lost-event markers, header facts).
///
/// Invariants: `events` is in file order (which is the order ftrace merged
/// the per-CPU buffers in, by timestamp); every event's `cpu` is below
/// `cpuCount`; `events` is not empty (the parser refuses a trace without
/// page events).
public struct Trace: Sendable {
    /// The file's path as given (for messages).
    public var fileName: String
    public var events: [TraceEvent]
    /// Lines read, including comments and blank lines.
    public var lineCount: Int
    /// CPUs the header declares (`#P:N` of ftrace, `cpus=N` of trace-cmd), if any.
    public var declaredCPUs: Int?
    /// max(declaredCPUs, highest CPU seen + 1).
    public var cpuCount: Int
    /// `entries-in-buffer/entries-written` of the ftrace header, if present.
    /// Fewer in the buffer than written means the ring buffer overwrote the
    /// oldest events.
    public var entriesInBuffer: Int?
    public var entriesWritten: Int?
    /// `CPU:N [LOST M EVENTS]` markers: lost events by CPU.
    public var lostEvents: [Int: Int] = [:]
    /// Well-formed event lines of other tracepoints (kmalloc, ...): count by name.
    public var otherEvents: [String: Int] = [:]
    /// GFP flag names the kernel printed that this model has no bit for
    /// (e.g. `__GFP_SKIP_KASAN`): ignored, counted by name.
    public var unmodelledGFPFlags: [String: Int] = [:]
    /// "ftrace" (the tracefs `trace` file) or "trace-cmd" (`trace-cmd report`),
    /// judged from the header and the columns.
    public var style: String

    /// Events of each kind.
    public func count(_ kind: TraceEvent.Kind) -> Int { events.reduce(0) { $0 + ($1.kind == kind ? 1 : 0) } }
    /// Timestamp span of the events, in nanoseconds.
    public var spanNs: UInt64 {
        guard let f = events.first?.timestampNs, let l = events.last?.timestampNs, l > f else { return 0 }
        return l - f
    }
}

/// A trace that cannot be read or replayed. Each case names the file, and a
/// bad line names its number and the field. Maps to exit code 2 (bad input).
public enum TraceError: Error, Equatable, CustomStringConvertible {
    /// A line that does not parse: which line, which field, what is wrong.
    case badLine(file: String, line: Int, field: String, reason: String, text: String)
    /// The file has no lines, or only blank ones.
    case empty(file: String)
    /// The file parses but holds no mm_page_alloc/mm_page_free/mm_page_free_batched events.
    case noPageEvents(file: String, lines: Int, otherEvents: [String: Int])
    /// The file cannot be opened or read.
    case unreadable(file: String, reason: String)
    /// The file is compressed and the program that decompresses it is missing.
    case decompressorMissing(file: String, program: String, format: String)
    /// The decompressor ran and failed (a corrupt or truncated file).
    case decompressFailed(file: String, program: String, status: Int32, stderr: String)

    public var description: String {
        switch self {
        case .badLine(let f, let l, let field, let reason, let text):
            let shown = text.count > 200 ? String(text.prefix(200)) + "..." : text
            return "\(f):\(l): field '\(field)': \(reason)\n  line \(l): \(shown)"
        case .empty(let f):
            return "\(f): the trace is empty (no lines, or only blank ones); capture one with: cat /sys/kernel/tracing/trace > FILE"
        case .noPageEvents(let f, let n, let other):
            let seen = other.isEmpty ? "" : "; it holds only " + other.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
            return "\(f): no page events in \(n) lines (mm_page_alloc, mm_page_free, mm_page_free_batched)\(seen); enable them with: "
                + "echo 1 | tee /sys/kernel/tracing/events/kmem/{mm_page_alloc,mm_page_free,mm_page_free_batched}/enable"
        case .unreadable(let f, let r): return "\(f): cannot read the trace: \(r)"
        case .decompressorMissing(let f, let p, let fmt):
            return "\(f) is \(fmt)-compressed, but the '\(p)' program was not found in PATH; install it (Debian: apt-get install xz-utils) or decompress the file first (\(p) -dk \(f))"
        case .decompressFailed(let f, let p, let s, let e):
            return "\(f): '\(p) -dc' failed with status \(s)" + (e.isEmpty ? "" : ": " + e.traceTrimmed)
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines.
    var traceTrimmed: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
