import Foundation
import PageAllocator
@testable import StressHarness
import Testing

/// The ftrace text parser: good lines of each event kind, the header and
/// marker lines, and one test per bad field naming its line.
@Suite struct ReplayParserTests {
    static let header = """
    # tracer: nop
    #
    # entries-in-buffer/entries-written: 119368/120000   #P:2
    #
    #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
    #              | |         |   |||||     |         |
    """
    static let alloc = "            bash-5839    [000] .....   301.899888: mm_page_alloc: page=00000000c79e097c pfn=0x10d1af order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP"
    static let free = "            bash-5853    [001] ...2.   301.900041: mm_page_free: page=0000000036701f9e pfn=0x14e8aa order=2"
    static let batched = "            bash-5853    [001] ...4.   301.900043: mm_page_free_batched: page=0000000036701f9e pfn=0x14e8aa order=0"

    @Test func allocLine() throws {
        let t = try TraceParser.parse(Self.header + "\n" + Self.alloc, fileName: "t.trace")
        #expect(t.events.count == 1)
        let e = try #require(t.events.first)
        #expect(e.kind == .alloc)
        #expect(e.cpu == 0)
        #expect(e.pfn == 0x10d1af)
        #expect(e.order == 0)
        #expect(e.migratetype == 0)
        #expect(e.gfp == GFP([.kernelAccount, .zero, .comp]))
        #expect(e.timestampNs == 301_899_888_000)
        #expect(e.line == 7)
        #expect(t.declaredCPUs == 2)
        #expect(t.cpuCount == 2)
        #expect(t.entriesInBuffer == 119_368)
        #expect(t.entriesWritten == 120_000)
        #expect(t.lineCount == 7)
        #expect(t.style == "ftrace")
    }

    @Test func freeAndBatchedLines() throws {
        let t = try TraceParser.parse([Self.free, Self.batched].joined(separator: "\n"), fileName: "t")
        #expect(t.events.map(\.kind) == [.free, .freeBatched])
        #expect(t.events.map(\.cpu) == [1, 1])
        #expect(t.events.map(\.pfn) == [0x14e8aa, 0x14e8aa])
        #expect(t.events.map(\.order) == [2, 0])
        #expect(t.events.map(\.line) == [1, 2])
        #expect(t.events[1].timestampNs == 301_900_043_000)
        #expect(t.declaredCPUs == nil)
        #expect(t.cpuCount == 2) // highest CPU seen + 1
    }

    @Test func taskNamesWithSpacesDashesColonsAndTGID() throws {
        let lines = [
            "  Web Content-4242    [003] d..1.   10.000001: mm_page_free: page=00000000a pfn=0x1 order=0",
            "memfd:sealed-91-2593  [000] .....   10.000002: mm_page_free: page=00000000b pfn=0x2 order=0",
            "          <idle>-0       [001] ..s1.   10.000003: mm_page_free: page=00000000c pfn=0x3 order=0",
            "            bash-5839    (   5839) [002] .....   10.000004: mm_page_free: page=00000000d pfn=0x4 order=1",
            "   kworker/u8:2-123 [000] 10.000005: mm_page_free: pfn=0x5 order=0",
        ]
        let t = try TraceParser.parse(lines.joined(separator: "\n"), fileName: "t")
        #expect(t.events.map(\.cpu) == [3, 0, 1, 2, 0])
        #expect(t.events.map(\.pfn) == [1, 2, 3, 4, 5])
        #expect(t.events.map(\.timestampNs) == [10_000_001_000, 10_000_002_000, 10_000_003_000, 10_000_004_000, 10_000_005_000])
    }

    @Test func traceCmdReportStyle() throws {
        let text = """
        version = 6
        CPU 1 is empty
        cpus=4
                     cat-5864  [000]   302.309259: mm_page_alloc:        page=0xffffea0005a9d540 pfn=0x14a9d5 order=1 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP
                     cat-5864  [000]   302.309300123: mm_page_free:         page=0xffffea0005a9d540 pfn=0x14a9d5 order=1
        """
        let t = try TraceParser.parse(text, fileName: "t")
        #expect(t.style == "trace-cmd")
        #expect(t.declaredCPUs == 4)
        #expect(t.cpuCount == 4)
        #expect(t.events.map(\.kind) == [.alloc, .free])
        #expect(t.events[0].gfp == GFP([.highUserMovable, .comp]))
        #expect(t.events[1].timestampNs == 302_309_300_123)
    }

    @Test func markersOtherEventsFailedAllocsAndUnmodelledFlags() throws {
        let text = """
        CPU:1 [LOST 42 EVENTS]
                   a-1     [000] .....     1.000000: kmalloc: call_site=foo ptr=0x0 bytes_req=8
                   a-1     [000] .....     1.000001: mm_page_alloc: page=0000000000000000 pfn=0x0 order=3 migratetype=0 gfp_flags=GFP_NOWAIT|__GFP_NOWARN
                   a-1     [000] .....     1.000002: mm_page_alloc: page=(null) pfn=0 order=0 migratetype=0 gfp_flags=GFP_ATOMIC
                   a-1     [001] .....     1.000003: mm_page_alloc: page=00000000deadbeef pfn=1234 order=0 migratetype=1 gfp_flags=GFP_KERNEL|__GFP_SKIP_KASAN|__GFP_NOLOCKDEP
                   a-1     [001] .....     1.000004: mm_page_alloc: page=00000000deadbeef pfn=1235 order=0 migratetype=1 gfp_flags=none
                   a-1     [001] .....     1.000005: mm_page_alloc: page=00000000deadbeef pfn=1236 order=0 migratetype=1 gfp_flags=0x400cc0

        CPU:0 [3 EVENTS DROPPED]
        """
        let t = try TraceParser.parse(text, fileName: "t")
        #expect(t.lostEvents == [1: 42, 0: 3])
        #expect(t.otherEvents == ["kmalloc": 1])
        #expect(t.events.map(\.kind) == [.allocFailed, .allocFailed, .alloc, .alloc, .alloc])
        #expect(t.events[2].pfn == 1234) // decimal pfn, as kernels before 5.x print it
        #expect(t.events[2].gfp == .kernel)
        #expect(t.events[3].gfp == GFP())
        #expect(t.events[4].gfp == .kernelAccount)
        #expect(t.unmodelledGFPFlags == ["__GFP_SKIP_KASAN": 1, "__GFP_NOLOCKDEP": 1])
        #expect(t.lineCount == 9)
    }

    /// A bad line: its text and the field the error must name.
    struct Bad: Sendable, CustomTestStringConvertible {
        let line: String
        let field: String
        var testDescription: String { field + ": " + line }
    }

    static let badLines: [Bad] = [
        Bad(line: "this is not a trace line", field: "cpu"),
        Bad(line: "   bash-1 [0x1] ..... 1.0: mm_page_free: pfn=0x1 order=0", field: "cpu"),
        Bad(line: "   bash-1 [99999999] ..... 1.0: mm_page_free: pfn=0x1 order=0", field: "cpu"),
        Bad(line: "   bash-1 [000] ..... 1.0 mm_page_free: pfn=0x1 order=0", field: "timestamp"),
        Bad(line: "   bash-1 [000] ..... 12345: mm_page_free: pfn=0x1 order=0", field: "timestamp"),
        Bad(line: "   bash-1 [000] ..... 1.5x: mm_page_free: pfn=0x1 order=0", field: "timestamp"),
        Bad(line: "   bash-1 [000] ..... 1.000001: : pfn=0x1 order=0", field: "event"),
        Bad(line: "   bash [000] ..... 1.000001: mm_page_free: pfn=0x1 order=0", field: "task-pid"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: pfn=0xzz order=0", field: "pfn"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: page=0000000a order=0", field: "pfn"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: pfn=0x1 order=x", field: "order"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: pfn=0x1 order=11", field: "order"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: pfn=0x1", field: "order"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_alloc: pfn=0x1 order=0 migratetype=0", field: "gfp_flags"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_alloc: pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL|bogus", field: "gfp_flags"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_alloc: pfn=0x1 order=0 migratetype=movable gfp_flags=GFP_KERNEL", field: "migratetype"),
        Bad(line: "   bash-1 [000] ..... 1.000001: mm_page_free: pfn=0x1 order=0 garbage", field: "fields"),
        Bad(line: "CPU:x [LOST 1 EVENTS]", field: "lost-events"),
    ]

    @Test(arguments: badLines)
    func badLineNamesFileLineAndField(_ bad: Bad) {
        // Two good lines first: the error must name line 3.
        let text = [Self.alloc, Self.free, bad.line, Self.free].joined(separator: "\n")
        #expect {
            _ = try TraceParser.parse(text, fileName: "bad.trace")
        } throws: { error in
            guard case .badLine(let file, let line, let field, let reason, let shown) = error as? TraceError else { return false }
            let message = (error as! TraceError).description
            return file == "bad.trace" && line == 3 && field == bad.field && !reason.isEmpty
                && shown == bad.line.traceTrimmed
                && message.hasPrefix("bad.trace:3: field '\(bad.field)': ")
        }
    }

    @Test func emptyTraceAndTraceWithoutPageEvents() {
        #expect(throws: TraceError.empty(file: "e")) { _ = try TraceParser.parse("", fileName: "e") }
        #expect(throws: TraceError.empty(file: "e")) { _ = try TraceParser.parse("\n  \n\t\n", fileName: "e") }
        let noPages = Self.header + "\n   a-1 [000] ..... 1.000000: kmalloc: bytes_req=8\n"
        #expect {
            _ = try TraceParser.parse(noPages, fileName: "n")
        } throws: { error in
            guard case .noPageEvents(let f, let lines, let other) = error as? TraceError else { return false }
            return f == "n" && lines == 7 && other == ["kmalloc": 1] && (error as! TraceError).description.contains("mm_page_alloc")
        }
        #expect {
            _ = try TraceParser.parse("# tracer: nop\n#\n", fileName: "c")
        } throws: { error in
            if case .noPageEvents(_, 2, let other) = error as? TraceError { return other.isEmpty }
            return false
        }
    }

    @Test func sha256KnownAnswers() {
        func hex(_ s: String) -> String {
            var d = TraceDigest()
            d.update(Array(s.utf8))
            return d.finalizeHex()
        }
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // Fed in uneven pieces (partial blocks, whole blocks, a partial tail): the same digest.
        var d = TraceDigest()
        let bytes = Array(String(repeating: "a", count: 1000).utf8)
        var i = 0
        for n in [1, 63, 64, 65, 127, 200, 3, 477] {
            d.update(Array(bytes[i..<(i + n)]))
            i += n
        }
        #expect(i == 1000)
        #expect(d.finalizeHex() == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}

/// Reading files: plain, xz via the subprocess, and the errors.
@Suite struct ReplayTraceFileTests {
    static func temp(_ name: String, _ bytes: [UInt8]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pagestorm-replay-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    @Test func plainFileWithoutTrailingNewlineAndCRLF() throws {
        let text = ReplayParserTests.alloc + "\r\n" + ReplayParserTests.free
        let path = try Self.temp("plain.trace", Array(text.utf8))
        let (t, src) = try TraceFile.load(path: path)
        #expect(t.events.count == 2)
        #expect(src.compression == "none")
        #expect(src.bytes == text.utf8.count)
        #expect(src.textBytes == text.utf8.count)
        #expect(src.name == "plain.trace")
        #expect(src.sha256.count == 64)
    }

    @Test func fixtureIsReadThroughXz() throws {
        let path = try ReplayFixture.path()
        let (t, src) = try TraceFile.load(path: path)
        #expect(src.compression == "xz")
        #expect(src.sha256 == "53a8fca8073866b3070db667e3e6b8c35fde6ec3e836bf091d4435a72db501ee")
        #expect(t.lineCount == 30011)
        #expect(t.events.count == 30011 - 12) // 12 header comment lines
        #expect(t.declaredCPUs == 2)
    }

    @Test func missingDecompressorIsAClearError() throws {
        let path = try ReplayFixture.path()
        #expect(throws: TraceError.decompressorMissing(file: path, program: "xz", format: "xz")) {
            _ = try TraceFile.load(path: path, searchPath: "/nonexistent-dir")
        }
    }

    @Test func emptyFile() throws {
        let path = try Self.temp("empty.trace", [])
        #expect(throws: TraceError.empty(file: path)) { _ = try TraceFile.load(path: path) }
    }

    @Test func corruptXzAndMissingFile() throws {
        let path = try Self.temp("corrupt.trace.xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 1, 2, 3, 4, 5])
        #expect {
            _ = try TraceFile.load(path: path)
        } throws: { error in
            if case .decompressFailed(_, "xz", let status, _) = error as? TraceError { return status != 0 }
            return false
        }
        #expect {
            _ = try TraceFile.load(path: "/nonexistent-dir/x.trace")
        } throws: { error in
            if case .unreadable(let f, let reason) = error as? TraceError { return f == "/nonexistent-dir/x.trace" && reason.contains("No such file") }
            return false
        }
    }

    @Test func badLineInCompressedFileStopsTheDecompressor() throws {
        // A long trace with a bad line early: the error comes back, xz is stopped.
        var text = ReplayParserTests.alloc + "\nnot a trace line\n"
        text += String(repeating: ReplayParserTests.free + "\n", count: 50_000)
        let plain = try Self.temp("long.trace", Array(text.utf8))
        let xz = Process()
        xz.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        xz.arguments = ["xz", "-kf", "-0", plain]
        try xz.run()
        xz.waitUntilExit()
        try #require(xz.terminationStatus == 0)
        #expect {
            _ = try TraceFile.load(path: plain + ".xz")
        } throws: { error in
            if case .badLine(plain + ".xz", 2, "cpu", _, _) = error as? TraceError { return true }
            return false
        }
    }
}

/// The fixture: a real trace of a page-cache read on a 2-CPU machine.
enum ReplayFixture {
    static func path() throws -> String {
        let url = try #require(Bundle.module.url(forResource: "page-cache-read.trace", withExtension: "xz", subdirectory: "Fixtures"))
        return url.path
    }
}
