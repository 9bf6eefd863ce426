/// Allocation flags, one member per bit of include/linux/gfp_types.h, with
/// the kernel's presets. `GFP(parsing:)` and `description` use the kernel's
/// spelling (`GFP_NOFS|__GFP_NOFAIL`).
@frozen public struct GFP: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static var dma: GFP { GFP(rawValue: 0x1) }
    @inlinable public static var highmem: GFP { GFP(rawValue: 0x2) }
    @inlinable public static var dma32: GFP { GFP(rawValue: 0x4) }
    @inlinable public static var movable: GFP { GFP(rawValue: 0x8) }
    @inlinable public static var reclaimable: GFP { GFP(rawValue: 0x10) }
    @inlinable public static var high: GFP { GFP(rawValue: 0x20) }
    @inlinable public static var io: GFP { GFP(rawValue: 0x40) }
    @inlinable public static var fs: GFP { GFP(rawValue: 0x80) }
    @inlinable public static var zero: GFP { GFP(rawValue: 0x100) }
    @inlinable public static var directReclaim: GFP { GFP(rawValue: 0x400) }
    @inlinable public static var kswapdReclaim: GFP { GFP(rawValue: 0x800) }
    @inlinable public static var write: GFP { GFP(rawValue: 0x1000) }
    @inlinable public static var noWarn: GFP { GFP(rawValue: 0x2000) }
    @inlinable public static var retryMayFail: GFP { GFP(rawValue: 0x4000) }
    @inlinable public static var noFail: GFP { GFP(rawValue: 0x8000) }
    @inlinable public static var noRetry: GFP { GFP(rawValue: 0x10000) }
    @inlinable public static var memalloc: GFP { GFP(rawValue: 0x20000) }
    @inlinable public static var comp: GFP { GFP(rawValue: 0x40000) }
    @inlinable public static var noMemalloc: GFP { GFP(rawValue: 0x80000) }
    @inlinable public static var hardwall: GFP { GFP(rawValue: 0x100000) }
    @inlinable public static var thisNode: GFP { GFP(rawValue: 0x200000) }
    @inlinable public static var account: GFP { GFP(rawValue: 0x400000) }

    // Presets (include/linux/gfp_types.h).
    /// __GFP_RECLAIM = DIRECT_RECLAIM|KSWAPD_RECLAIM (0xc00).
    @inlinable public static var reclaim: GFP { GFP(rawValue: 0xc00) }
    /// GFP_ATOMIC = HIGH|KSWAPD_RECLAIM (0x820).
    @inlinable public static var atomic: GFP { GFP(rawValue: 0x820) }
    /// GFP_KERNEL = RECLAIM|IO|FS (0xcc0).
    @inlinable public static var kernel: GFP { GFP(rawValue: 0xcc0) }
    /// GFP_KERNEL_ACCOUNT = GFP_KERNEL|__GFP_ACCOUNT.
    @inlinable public static var kernelAccount: GFP { GFP(rawValue: 0x400cc0) }
    /// GFP_NOWAIT = KSWAPD_RECLAIM (0x800).
    @inlinable public static var noWait: GFP { GFP(rawValue: 0x800) }
    /// GFP_NOIO = RECLAIM (0xc00).
    @inlinable public static var noIO: GFP { GFP(rawValue: 0xc00) }
    /// GFP_NOFS = RECLAIM|IO (0xc40).
    @inlinable public static var noFS: GFP { GFP(rawValue: 0xc40) }
    /// GFP_USER = RECLAIM|IO|FS|HARDWALL.
    @inlinable public static var user: GFP { GFP(rawValue: 0x100cc0) }
    /// GFP_HIGHUSER = GFP_USER|__GFP_HIGHMEM.
    @inlinable public static var highUser: GFP { GFP(rawValue: 0x100cc2) }
    /// GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER|__GFP_MOVABLE.
    @inlinable public static var highUserMovable: GFP { GFP(rawValue: 0x100cca) }
    /// GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE|COMP|NOMEMALLOC|NOWARN) & ~RECLAIM.
    @inlinable public static var transhugeLight: GFP { GFP(rawValue: 0x1c20ca) }
    /// GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT|DIRECT_RECLAIM.
    @inlinable public static var transhuge: GFP { GFP(rawValue: 0x1c24ca) }

    /// Can the caller sleep and reclaim (gfpflags_allow_blocking)?
    @inlinable public var allowsBlocking: Bool { contains(.directReclaim) }
}

/// A GFP string that does not parse.
public struct GFPParseError: Error, Equatable, CustomStringConvertible {
    public let input: String
    public let token: String
    public var description: String {
        "unknown GFP flag '\(token)' in '\(input)' (expected names like GFP_KERNEL, GFP_NOFS, __GFP_NOFAIL or a hex mask like 0x8000, joined with '|')"
    }
}

extension GFP: CustomStringConvertible {
    /// Names in the order the kernel's show_gfp_flags() tries them
    /// (include/trace/events/mmflags.h): composite presets first, then single
    /// bits in bit order (TRACE_GFP_FLAGS). Printing is greedy, as in
    /// trace_print_flags_seq: a name is printed when all its bits remain set.
    static let names: [(String, GFP)] = [
        ("GFP_TRANSHUGE", .transhuge),
        ("GFP_TRANSHUGE_LIGHT", .transhugeLight),
        ("GFP_HIGHUSER_MOVABLE", .highUserMovable),
        ("GFP_HIGHUSER", .highUser),
        ("GFP_USER", .user),
        ("GFP_KERNEL_ACCOUNT", .kernelAccount),
        ("GFP_KERNEL", .kernel),
        ("GFP_NOFS", .noFS),
        ("GFP_ATOMIC", .atomic),
        ("GFP_NOIO", .noIO),
        ("GFP_NOWAIT", .noWait),
        ("GFP_DMA", .dma),
        ("GFP_DMA32", .dma32),
        ("__GFP_RECLAIM", .reclaim),
        ("__GFP_HIGHMEM", .highmem),
        ("__GFP_MOVABLE", .movable),
        ("__GFP_RECLAIMABLE", .reclaimable),
        ("__GFP_HIGH", .high),
        ("__GFP_IO", .io),
        ("__GFP_FS", .fs),
        ("__GFP_ZERO", .zero),
        ("__GFP_DIRECT_RECLAIM", .directReclaim),
        ("__GFP_KSWAPD_RECLAIM", .kswapdReclaim),
        ("__GFP_WRITE", .write),
        ("__GFP_NOWARN", .noWarn),
        ("__GFP_RETRY_MAYFAIL", .retryMayFail),
        ("__GFP_NOFAIL", .noFail),
        ("__GFP_NORETRY", .noRetry),
        ("__GFP_MEMALLOC", .memalloc),
        ("__GFP_COMP", .comp),
        ("__GFP_NOMEMALLOC", .noMemalloc),
        ("__GFP_HARDWALL", .hardwall),
        ("__GFP_THISNODE", .thisNode),
        ("__GFP_ACCOUNT", .account),
    ]
    static let byName: [String: GFP] = {
        var d: [String: GFP] = [:]
        for (n, v) in names { d[n] = v }
        d["__GFP_DMA"] = .dma
        d["__GFP_DMA32"] = .dma32
        return d
    }()

    /// Parses the kernel spelling: names joined with `|`, hex masks allowed,
    /// `0` or an empty string for no flags. Whitespace around names is ignored.
    public init(parsing text: String) throws(GFPParseError) {
        var v: UInt32 = 0
        let trimmed = text.trimmingSpaces
        if trimmed.isEmpty || trimmed == "0" || trimmed == "none" { self.init(rawValue: 0); return }
        for raw in trimmed.split(separator: "|", omittingEmptySubsequences: false) {
            let tok = String(raw).trimmingSpaces
            if let f = GFP.byName[tok] { v |= f.rawValue; continue }
            if tok.hasPrefix("0x") || tok.hasPrefix("0X"), let x = UInt32(tok.dropFirst(2), radix: 16) { v |= x; continue }
            throw GFPParseError(input: text, token: tok)
        }
        self.init(rawValue: v)
    }

    /// The kernel spelling, e.g. `GFP_NOFS|__GFP_NOFAIL`; unknown bits as hex.
    public var description: String {
        var left = rawValue
        var parts: [String] = []
        for (n, f) in GFP.names where f.rawValue != 0 && left & f.rawValue == f.rawValue {
            parts.append(n)
            left &= ~f.rawValue
        }
        if left != 0 { parts.append("0x" + String(left, radix: 16)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }

    /// `0x...` as the kernel's warn_alloc prints the mode.
    public var hex: String { "0x" + String(rawValue, radix: 16) }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
