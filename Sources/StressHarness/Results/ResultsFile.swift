import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Writing results: pretty, sorted-key JSON, written atomically and never
/// over an existing file.
///
/// The bytes go to a temporary file in the same directory, named
/// `.pagestorm-tmp-<pid>-<n>-<name>` (git-ignored), which is then hard-linked
/// to the final name: link(2) fails when the name exists, so two writers can
/// never replace each other's file, and a reader never sees half a file. A
/// writer killed between the two steps leaves only the temporary file, which
/// the next write in that directory removes (`removeStaleTemporaries`).
///
/// File names: every subcommand stamps them with `stamp(_:)`, one format with
/// microseconds and the process id (`20261130T081610.123456Z-4242`), so runs
/// that start together get different names; when a name is taken anyway,
/// `write` picks `NAME-2.json`, `NAME-3.json`, ... and returns the path it wrote.
public enum ResultsFile {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    /// The prefix of our temporary files (see .gitignore).
    public static let temporaryPrefix = ".pagestorm-tmp-"

    /// UTC time to the microsecond: 20261130T081610.123456Z.
    public static func timestamp(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var secs = time_t(t.rounded(.down))
        var micros = Int(((t - Double(secs)) * 1_000_000).rounded(.down))
        if micros >= 1_000_000 { secs += 1; micros -= 1_000_000 }
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        func d(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        let us = String(micros)
        return d(tmv.tm_year + 1900, 4) + d(tmv.tm_mon + 1, 2) + d(tmv.tm_mday, 2) + "T" + d(tmv.tm_hour, 2) + d(tmv.tm_min, 2) + d(tmv.tm_sec, 2)
            + "." + String(repeating: "0", count: 6 - us.count) + us + "Z"
    }

    /// The stamp of every results file name: the UTC time to the microsecond
    /// and this process's id, e.g. 20261130T081610.123456Z-4242.
    public static func stamp(_ date: Date = Date()) -> String {
        "\(timestamp(date))-\(getpid())"
    }

    public enum WriteError: Error, CustomStringConvertible, Equatable {
        case exists(String)
        case io(path: String, what: String, errno: Int32)
        public var description: String {
            switch self {
            case .exists(let p): return "\(p) exists; results files are never overwritten: remove it or choose another path"
            case .io(let p, let what, let e): return "cannot write \(p): \(what): \(String(cString: strerror(e)))"
            }
        }
    }

    /// Writes `value` as JSON at `path`, or, when `path` exists and `uniquify`
    /// is true, at the first free `NAME-2.EXT`, `NAME-3.EXT`, ...; returns
    /// the path written. Never replaces a file.
    @discardableResult
    public static func write<T: Encodable>(_ value: T, to path: String, uniquify: Bool = true) throws -> String {
        try write(data: try encoder().encode(value), to: path, uniquify: uniquify)
    }

    /// The same for bytes.
    @discardableResult
    public static func write(data: Data, to path: String, uniquify: Bool = true) throws -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        removeStaleTemporaries(in: dir)
        let tmp = URL(fileURLWithPath: dir).appendingPathComponent("\(temporaryPrefix)\(getpid())-\(nextTemporary())-\(url.lastPathComponent)").path
        try writeNew(data, at: tmp)
        defer { unlink(tmp) }
        for candidate in candidates(path, uniquify: uniquify) {
            if link(tmp, candidate) == 0 { return candidate }
            let e = errno
            if e == EEXIST { continue }
            // A file system without hard links: create the name exclusively
            // and write into it (still never replacing a file).
            if e == EPERM || e == EOPNOTSUPP || e == EXDEV || e == EMLINK {
                do { try writeNew(data, at: candidate); return candidate } catch WriteError.exists { continue }
            }
            throw WriteError.io(path: candidate, what: "link", errno: e)
        }
        throw WriteError.exists(path)
    }

    /// Writes `value` at `path`, atomically replacing what is there: only for
    /// files derived from results and meant to be rewritten (a sweep's
    /// manifest and summaries, a run's own temporary output), never for a
    /// run's results.
    public static func replace<T: Encodable>(_ value: T, at path: String) throws {
        let data = try encoder().encode(value)
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        removeStaleTemporaries(in: dir)
        let tmp = URL(fileURLWithPath: dir).appendingPathComponent("\(temporaryPrefix)\(getpid())-\(nextTemporary())-\(url.lastPathComponent)").path
        try writeNew(data, at: tmp)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw WriteError.io(path: path, what: "rename", errno: e)
        }
    }

    public static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Removes temporary files left in `dir` by writers that died before
    /// renaming them: ours (`.pagestorm-tmp-<pid>-...`) whose process no longer
    /// exists or that are more than a day old, and Foundation's
    /// (`.dat.nosync...`, what earlier versions left) more than an hour old.
    /// Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(in dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var removed: [String] = []
        let now = Date()
        for name in names where name.hasPrefix(temporaryPrefix) || name.hasPrefix(".dat.nosync") {
            let full = URL(fileURLWithPath: dir).appendingPathComponent(name).path
            let age = ((try? FileManager.default.attributesOfItem(atPath: full))?[.modificationDate] as? Date).map { now.timeIntervalSince($0) } ?? 0
            var stale: Bool
            if name.hasPrefix(temporaryPrefix) {
                let pid = name.dropFirst(temporaryPrefix.count).prefix { $0.isNumber }
                stale = age > 86_400
                if let p = pid_t(pid), p != getpid(), kill(p, 0) == -1, errno == ESRCH { stale = true }
            } else {
                stale = age > 3600
            }
            if stale && unlink(full) == 0 { removed.append(name) }
        }
        return removed
    }

    // MARK: - Internals

    private static let counter = Atomic<Int>(0)

    private static func nextTemporary() -> Int {
        counter.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// PATH, then PATH-2.EXT ... PATH-999.EXT when uniquifying.
    static func candidates(_ path: String, uniquify: Bool) -> [String] {
        guard uniquify else { return [path] }
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let base = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return [path] + (2...999).map { ext.isEmpty ? "\(base)-\($0)" : "\(base)-\($0).\(ext)" }
    }

    /// Creates `path` exclusively (O_EXCL) and writes all of `data`, synced.
    private static func writeNew(_ data: Data, at path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            if errno == EEXIST { throw WriteError.exists(path) }
            throw WriteError.io(path: path, what: "open", errno: errno)
        }
        var failure: Int32 = 0
        data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                off += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure != 0 {
            unlink(path)
            throw WriteError.io(path: path, what: "write", errno: failure)
        }
    }
}
