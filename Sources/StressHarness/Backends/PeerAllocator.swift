import CNUMA
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The allocators a run or a benchmark can measure: pagestorm itself and the
/// peers people actually use, side by side (`--allocator NAME`,
/// `[run] allocator = "NAME"`, `pagestorm bench --peers`).
public enum AllocatorName: String, CaseIterable, Codable, Sendable {
    /// The allocator under test (results name it "pagestorm-buddy").
    case pagestorm
    /// glibc's malloc (the process's own): aligned_alloc / free.
    case glibc
    /// jemalloc, dlopen'd from libjemalloc.so.2: aligned_alloc / free.
    case jemalloc
    /// mimalloc, dlopen'd from libmimalloc.so.2: mi_malloc_aligned / mi_free.
    case mimalloc
    /// gperftools' tcmalloc_minimal, dlopen'd from libtcmalloc_minimal.so.4: tc_memalign / tc_free.
    case tcmalloc
    /// The kernel's page allocator: an anonymous mmap of 2^order pages, faulted
    /// in (MAP_POPULATE, or MADV_POPULATE_WRITE after an alignment trim), munmap.
    case kernel

    /// The peers (every name but pagestorm), in the order tables print them.
    public static let peers: [AllocatorName] = [.jemalloc, .mimalloc, .tcmalloc, .glibc, .kernel]

    /// Accepts the canonical names and a few spellings people use.
    public init?(parsing s: String) {
        switch s.lowercased() {
        case "pagestorm", "pagestorm-buddy", "buddy": self = .pagestorm
        case "glibc", "glibc-malloc", "malloc", "ptmalloc": self = .glibc
        case "jemalloc", "je": self = .jemalloc
        case "mimalloc", "mi": self = .mimalloc
        case "tcmalloc", "tcmalloc-minimal", "tcmalloc_minimal", "tc": self = .tcmalloc
        case "kernel", "mmap", "kernel-mmap": self = .kernel
        default: return nil
        }
    }

    /// What results files call it (`allocator`).
    public var resultsName: String { self == .pagestorm ? "pagestorm-buddy" : rawValue }

    /// The shared library a peer is loaded from (nil: already in the process).
    public var soname: String? {
        switch self {
        case .jemalloc: return "libjemalloc.so.2"
        case .mimalloc: return "libmimalloc.so.2"
        case .tcmalloc: return "libtcmalloc_minimal.so.4"
        default: return nil
        }
    }

    /// The Debian package that installs `soname`.
    public var debianPackage: String? {
        switch self {
        case .jemalloc: return "libjemalloc2"
        case .mimalloc: return "libmimalloc2.0"
        case .tcmalloc: return "libtcmalloc-minimal4"
        default: return nil
        }
    }

    /// The environment variable that points a peer at another build of its library.
    public var pathVariable: String? { soname == nil ? nil : "PAGESTORM_" + rawValue.uppercased() + "_LIB" }

    public var summary: String {
        switch self {
        case .pagestorm: return "pagestorm's buddy allocator with per-CPU lists (the allocator under test)"
        case .glibc: return "glibc malloc: aligned_alloc/free"
        case .jemalloc: return "jemalloc (\(soname!), Debian \(debianPackage!)): aligned_alloc/free"
        case .mimalloc: return "mimalloc (\(soname!), Debian \(debianPackage!)): mi_malloc_aligned/mi_free"
        case .tcmalloc: return "tcmalloc_minimal (\(soname!), Debian \(debianPackage!)): tc_memalign/tc_free"
        case .kernel: return "the kernel's page allocator: anonymous mmap of 2^order pages, populated, munmap"
        }
    }

    /// "pagestorm, glibc, jemalloc, mimalloc, tcmalloc, kernel".
    public static var known: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A name `--allocator` or `[run] allocator` does not know, or a peer that cannot be loaded.
public struct PeerError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }

    public static func unknown(_ name: String, what: String = "--allocator") -> PeerError {
        PeerError(message: "\(what): unknown allocator '\(name)'; known: \(AllocatorName.known)")
    }
}

/// A peer allocator loaded into this process: its aligned allocation and free
/// entry points. A block of order n is 2^n pages, aligned to its own size
/// (as a buddy block is). Values are copied into each worker; the library
/// stays loaded for the life of the process (dlclose of a malloc is unsafe).
public struct PeerAllocator: @unchecked Sendable {
    public typealias AlignedAlloc = @convention(c) (Int, Int) -> UnsafeMutableRawPointer?
    public typealias Free = @convention(c) (UnsafeMutableRawPointer?) -> Void

    public let name: AllocatorName
    /// The file it came from ("libc" for glibc, "mmap" for the kernel).
    public let library: String
    public let version: String
    /// Bytes of an order-0 block: the workload's page size (the system's by default).
    public private(set) var pageSize: Int
    public private(set) var pageShift: Int
    /// The machine's page size (mmap's unit).
    public var systemPageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }
    let alignedAlloc: AlignedAlloc?
    let freeFn: Free?
    let isKernel: Bool
    /// The kernel backend faults pages in with MADV_POPULATE_WRITE (Linux 5.14+); false: by writing each page.
    let populateWrite: Bool

    /// The block of `order`: 2^order pages aligned to its size, or nil when the allocator has no memory.
    @inline(__always)
    public func allocate(order: Int) -> UnsafeMutableRawPointer? {
        let size = pageSize &<< order
        if isKernel { return kernelMap(size) }
        // Size and alignment are equal, so (alignment, size) and mimalloc's (size, alignment) agree.
        return alignedAlloc.unsafelyUnwrapped(size, size)
    }

    @inline(__always)
    public func free(_ p: UnsafeMutableRawPointer, order: Int) {
        if isKernel { munmap(p, pageSize &<< order); return }
        freeFn.unsafelyUnwrapped(p)
    }

    @inline(never)
    func kernelMap(_ size: Int) -> UnsafeMutableRawPointer? {
        if size == systemPageSize {
            // One page is always aligned to its size: one mmap, faulted in by the kernel.
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
            return p == MAP_FAILED ? nil : p
        }
        // Larger blocks: map twice the size, unmap the unaligned head and the
        // tail, then fault the aligned block in (MAP_POPULATE would fault the
        // whole mapping, trimmed parts included).
        guard let raw = mmap(nil, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else { return nil }
        let addr = Int(bitPattern: raw)
        let aligned = (addr + size - 1) & ~(size - 1)
        let head = aligned - addr
        if head > 0 { munmap(raw, head) }
        let tail = size - head
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + size), tail) }
        let p = UnsafeMutableRawPointer(bitPattern: aligned)!
        if !populateWrite || madvise(p, size, PeerAllocator.madvPopulateWrite) != 0 {
            var off = 0
            while off < size { p.storeBytes(of: 0, toByteOffset: off, as: UInt8.self); off += systemPageSize }
        }
        return p
    }

    /// The same peer handing out blocks of 2^order pages of `bytes` (a power of two, at least the system's page).
    public func withPageSize(_ bytes: Int) -> PeerAllocator {
        var p = self
        p.pageSize = bytes
        p.pageShift = bytes.trailingZeroBitCount
        return p
    }

    /// How a block is allocated and freed.
    public var entryPoints: String {
        switch name {
        case .kernel: return populateWrite ? "mmap + MADV_POPULATE_WRITE (order 0: mmap MAP_POPULATE) / munmap" : "mmap + a write per page (order 0: mmap MAP_POPULATE) / munmap"
        case .mimalloc: return "mi_malloc_aligned / mi_free"
        case .tcmalloc: return "tc_memalign / tc_free"
        default: return "aligned_alloc / free"
        }
    }

    /// MADV_POPULATE_WRITE (Linux 5.14; not in every libc's headers).
    static let madvPopulateWrite: Int32 = 23

    /// Loads a peer. `path` replaces the library's file (tests; the
    /// PAGESTORM_<NAME>_LIB variable does the same from the environment).
    public static func load(_ name: AllocatorName, path: String? = nil) throws(PeerError) -> PeerAllocator {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let shift = page.trailingZeroBitCount
        switch name {
        case .pagestorm:
            throw PeerError(message: "pagestorm is not a peer allocator")
        case .kernel:
            return PeerAllocator(name: name, library: "mmap", version: "Linux " + kernelRelease(), pageSize: page, pageShift: shift,
                                 alignedAlloc: nil, freeFn: nil, isKernel: true, populateWrite: probePopulateWrite(page))
        case .glibc:
            // The process's own malloc: the first definition in global scope.
            guard let a = dlsym(nil, "aligned_alloc"),
                  let f = dlsym(nil, "free") else {
                throw PeerError(message: "glibc: aligned_alloc/free not found in this process")
            }
            return PeerAllocator(name: name, library: "libc", version: glibcVersion(),
                                 pageSize: page, pageShift: shift, alignedAlloc: unsafeBitCast(a, to: AlignedAlloc.self),
                                 freeFn: unsafeBitCast(f, to: Free.self), isKernel: false, populateWrite: false)
        case .jemalloc, .mimalloc, .tcmalloc:
            let file = path ?? name.pathVariable.flatMap { ProcessInfo.processInfo.environment[$0] } ?? name.soname!
            // RTLD_LOCAL: the library's malloc does not replace the process's; we call its entry points only.
            guard let h = dlopen(file, RTLD_NOW | RTLD_LOCAL) else {
                let why = dlerror().map { String(cString: $0) } ?? "dlopen failed"
                if why.contains("static TLS") {
                    // jemalloc's thread-local state uses the initial-exec model
                    // (2.6 KB), more than glibc keeps spare for dlopen (512 B).
                    // The tool starts itself again with more; a library user must set it.
                    if reexecForStaticTLS && !staticTLSTunableSet { reexecWithStaticTLS() }
                    throw PeerError(message: "\(name.rawValue): cannot load \(file) (\(why)); start the process with \(staticTLSTunable) in the environment (`make test` and the pagestorm tool do this)")
                }
                throw PeerError(message: "\(name.rawValue): cannot load \(file) (\(why)); install the Debian package \(name.debianPackage!) (scripts/ensure-deps.sh as root, or apt-get install \(name.debianPackage!))")
            }
            let (allocSym, freeSym): (String, String) = switch name {
            case .mimalloc: ("mi_malloc_aligned", "mi_free")
            case .tcmalloc: ("tc_memalign", "tc_free")
            default: ("aligned_alloc", "free")
            }
            guard let a = dlsym(h, allocSym), let f = dlsym(h, freeSym) else {
                throw PeerError(message: "\(name.rawValue): \(file) has no \(allocSym)/\(freeSym); is it the right library? (Debian package \(name.debianPackage!))")
            }
            return PeerAllocator(name: name, library: file, version: version(of: name, handle: h), pageSize: page, pageShift: shift,
                                 alignedAlloc: unsafeBitCast(a, to: AlignedAlloc.self), freeFn: unsafeBitCast(f, to: Free.self),
                                 isKernel: false, populateWrite: false)
        }
    }

    /// The glibc tunable that leaves room for jemalloc's static TLS.
    public static let staticTLSTunable = "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384"
    /// The command-line tool sets this: a peer that needs more static TLS
    /// than glibc keeps spare makes the process exec itself again, with the
    /// same arguments, and the tunable set (only before any work has started).
    nonisolated(unsafe) public static var reexecForStaticTLS = false

    static var staticTLSTunableSet: Bool {
        ProcessInfo.processInfo.environment["GLIBC_TUNABLES"]?.contains("optional_static_tls") ?? false
    }

    static func reexecWithStaticTLS() {
        let value = String(staticTLSTunable.dropFirst("GLIBC_TUNABLES=".count))
        let old = ProcessInfo.processInfo.environment["GLIBC_TUNABLES"]
        setenv("GLIBC_TUNABLES", old.map { $0 + ":" + value } ?? value, 1)
        fflush(nil)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: it failed; the caller reports the load error.
    }

    /// Which peers load on this machine, and why the others do not.
    public static func installed() -> (loaded: [PeerAllocator], missing: [PeerError]) {
        var ok: [PeerAllocator] = [], missing: [PeerError] = []
        for n in AllocatorName.peers {
            do { ok.append(try load(n)) } catch { missing.append(error) }
        }
        return (ok, missing)
    }

    static func version(of name: AllocatorName, handle h: UnsafeMutableRawPointer) -> String {
        switch name {
        case .jemalloc:
            typealias Mallctl = @convention(c) (UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?, UnsafeMutableRawPointer?, Int) -> Int32
            guard let s = dlsym(h, "mallctl") else { return "jemalloc" }
            var p: UnsafePointer<CChar>? = nil
            var len = MemoryLayout<UnsafePointer<CChar>?>.size
            let rc = withUnsafeMutablePointer(to: &p) { unsafeBitCast(s, to: Mallctl.self)("version", $0, &len, nil, 0) }
            guard rc == 0, let v = p else { return "jemalloc" }
            return "jemalloc " + String(String(cString: v).prefix { $0 != "-" })
        case .mimalloc:
            typealias V = @convention(c) () -> Int32
            guard let s = dlsym(h, "mi_version") else { return "mimalloc" }
            let v = Int(unsafeBitCast(s, to: V.self)())
            return "mimalloc \(v / 100).\(v / 10 % 10).\(v % 10)"
        case .tcmalloc:
            typealias V = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> UnsafePointer<CChar>?
            guard let s = dlsym(h, "tc_version"), let v = unsafeBitCast(s, to: V.self)(nil, nil, nil) else { return "tcmalloc_minimal" }
            return "tcmalloc_minimal " + String(String(cString: v).split(separator: " ").last ?? "")
        default: return name.rawValue
        }
    }

    static func glibcVersion() -> String {
        typealias V = @convention(c) () -> UnsafePointer<CChar>?
        guard let s = dlsym(nil, "gnu_get_libc_version"), let v = unsafeBitCast(s, to: V.self)() else { return "glibc" }
        return "glibc " + String(cString: v)
    }

    static func kernelRelease() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    /// Whether madvise(MADV_POPULATE_WRITE) works here (EINVAL before Linux 5.14).
    static func probePopulateWrite(_ page: Int) -> Bool {
        guard let p = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else { return false }
        defer { munmap(p, page) }
        return madvise(p, page, madvPopulateWrite) == 0
    }
}
