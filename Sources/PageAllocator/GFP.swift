/// Allocation flags, one member per bit of include/linux/gfp_types.h, with
/// the kernel's presets. `GFP(parsing:)` and `description` use the kernel's
/// spelling (`GFP_NOFS|__GFP_NOFAIL`).
@frozen public struct GFP: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let dma = GFP(rawValue: 0x1)
    public static let highmem = GFP(rawValue: 0x2)
    public static let dma32 = GFP(rawValue: 0x4)
    public static let movable = GFP(rawValue: 0x8)
    public static let reclaimable = GFP(rawValue: 0x10)
    public static let high = GFP(rawValue: 0x20)
    public static let io = GFP(rawValue: 0x40)
    public static let fs = GFP(rawValue: 0x80)
    public static let zero = GFP(rawValue: 0x100)
    public static let directReclaim = GFP(rawValue: 0x400)
    public static let kswapdReclaim = GFP(rawValue: 0x800)
    public static let write = GFP(rawValue: 0x1000)
    public static let noWarn = GFP(rawValue: 0x2000)
    public static let retryMayFail = GFP(rawValue: 0x4000)
    public static let noFail = GFP(rawValue: 0x8000)
    public static let noRetry = GFP(rawValue: 0x10000)
    public static let memalloc = GFP(rawValue: 0x20000)
    public static let comp = GFP(rawValue: 0x40000)
    public static let noMemalloc = GFP(rawValue: 0x80000)
    public static let hardwall = GFP(rawValue: 0x100000)
    public static let thisNode = GFP(rawValue: 0x200000)
    public static let account = GFP(rawValue: 0x400000)

    // Presets (include/linux/gfp_types.h).
    /// __GFP_RECLAIM = DIRECT_RECLAIM|KSWAPD_RECLAIM (0xc00).
    public static let reclaim: GFP = [.directReclaim, .kswapdReclaim]
    /// GFP_ATOMIC = HIGH|KSWAPD_RECLAIM (0x820).
    public static let atomic: GFP = [.high, .kswapdReclaim]
    /// GFP_KERNEL = RECLAIM|IO|FS (0xcc0).
    public static let kernel: GFP = [.reclaim, .io, .fs]
    /// GFP_KERNEL_ACCOUNT = GFP_KERNEL|__GFP_ACCOUNT.
    public static let kernelAccount: GFP = [.kernel, .account]
    /// GFP_NOWAIT = KSWAPD_RECLAIM (0x800).
    public static let noWait: GFP = [.kswapdReclaim]
    /// GFP_NOIO = RECLAIM (0xc00).
    public static let noIO: GFP = [.reclaim]
    /// GFP_NOFS = RECLAIM|IO (0xc40).
    public static let noFS: GFP = [.reclaim, .io]
    /// GFP_USER = RECLAIM|IO|FS|HARDWALL.
    public static let user: GFP = [.reclaim, .io, .fs, .hardwall]
    /// GFP_HIGHUSER = GFP_USER|__GFP_HIGHMEM.
    public static let highUser: GFP = [.user, .highmem]
    /// GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER|__GFP_MOVABLE.
    public static let highUserMovable: GFP = [.highUser, .movable]
    /// GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE|COMP|NOMEMALLOC|NOWARN) & ~RECLAIM.
    public static let transhugeLight: GFP = GFP([.highUserMovable, .comp, .noMemalloc, .noWarn]).subtracting(.reclaim)
    /// GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT|DIRECT_RECLAIM.
    public static let transhuge: GFP = [.transhugeLight, .directReclaim]

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
