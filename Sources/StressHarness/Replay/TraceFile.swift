import Foundation

/// Which file a replay read: enough to find the same bytes again.
public struct TraceSource: Codable, Sendable, Equatable {
    /// The path as given.
    public var path: String
    /// The file's last path component.
    public var name: String
    /// Size on disk (compressed size for a compressed file).
    public var bytes: Int
    /// SHA-256 of the bytes on disk, 64 hex digits.
    public var sha256: String
    /// "none", "xz" or "gzip" (from the file's magic bytes, not its name).
    public var compression: String
    /// Bytes of trace text after decompression.
    public var textBytes: Int
}

/// Reads a trace file: plain text, or xz/gzip-compressed (detected from the
/// magic bytes and decompressed by running `xz -dc` / `gzip -dc` as a
/// subprocess, streamed, never all in memory). Hashes the file on disk.
public enum TraceFile {
    /// Compression formats by magic bytes, and the program that undoes them.
    static let formats: [(name: String, magic: [UInt8], program: String)] = [
        ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "xz"),
        ("gzip", [0x1F, 0x8B], "gzip"),
    ]

    /// Parses the trace at `path`. `searchPath` overrides $PATH when looking
    /// for the decompressor (tests). Errors are `TraceError`s: bad input.
    public static func load(path: String, searchPath: String? = nil) throws(TraceError) -> (Trace, TraceSource) {
        let name = URL(fileURLWithPath: path).lastPathComponent
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) != S_IFDIR else { throw .unreadable(file: path, reason: "it is a directory") }

        // Hash the bytes on disk, and look at the first ones.
        var digest = TraceDigest()
        var head: [UInt8] = []
        var size = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(file: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            buf.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if head.count < 8 { head += buf[0..<min(n, 8 - head.count)] }
            size += n
        }
        let format = formats.first { head.starts(with: $0.magic) }
        var parser = TraceParser(fileName: path)
        let textBytes: Int
        if let format {
            textBytes = try decompress(path: path, format: format, searchPath: searchPath, into: &parser)
        } else {
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
            textBytes = try readLines(fd: fd, file: path, into: &parser)
        }
        let trace = try parser.finish()
        return (trace, TraceSource(path: path, name: name, bytes: size, sha256: digest.finalizeHex(),
                                   compression: format?.name ?? "none", textBytes: textBytes))
    }

    /// The executable `program` in `searchPath` (default: $PATH), or nil.
    static func findProgram(_ program: String, searchPath: String?) -> String? {
        let dirs = (searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for d in dirs where !d.isEmpty {
            let p = String(d) + "/" + program
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Runs `PROGRAM -dc path` and parses its output as it streams.
    static func decompress(path: String, format: (name: String, magic: [UInt8], program: String), searchPath: String?,
                           into parser: inout TraceParser) throws(TraceError) -> Int {
        guard let exe = findProgram(format.program, searchPath: searchPath) else {
            throw .decompressorMissing(file: path, program: format.program, format: format.name)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["-dc", "--", path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw .unreadable(file: path, reason: "cannot run \(exe): \(error)")
        }
        let bytes: Int
        do throws(TraceError) {
            bytes = try readLines(fd: out.fileHandleForReading.fileDescriptor, file: path, into: &parser)
        } catch {
            // Stop the decompressor: nobody reads its output any more.
            p.terminate()
            p.waitUntilExit()
            throw error
        }
        p.waitUntilExit()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw .decompressFailed(file: path, program: format.program, status: p.terminationStatus, stderr: errText)
        }
        return bytes
    }

    /// Reads `fd` to the end, handing each line to the parser. Returns bytes read.
    static func readLines(fd: Int32, file: String, into parser: inout TraceParser) throws(TraceError) -> Int {
        var buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        var have = 0
        var total = 0
        while true {
            if have == buf.count {
                // One line longer than the buffer: grow it.
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buf.count * 2, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(buf))
                buf.deallocate()
                buf = bigger
            }
            let n = read(fd, buf.baseAddress! + have, buf.count - have)
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(file: file, reason: String(cString: strerror(errno)))
            }
            let eof = n == 0
            have += n
            total += n
            let bytes = UnsafeBufferPointer(start: buf.baseAddress!.assumingMemoryBound(to: UInt8.self), count: have)
            var start = 0
            for i in 0..<have where bytes[i] == 10 {
                try parser.consume(UnsafeBufferPointer(rebasing: bytes[start..<i]))
                start = i + 1
            }
            if eof {
                if start < have { try parser.consume(UnsafeBufferPointer(rebasing: bytes[start..<have])) }
                return total
            }
            if start > 0 {
                memmove(buf.baseAddress!, buf.baseAddress! + start, have - start)
                have -= start
            }
        }
    }
}
