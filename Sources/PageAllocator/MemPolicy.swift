import Topology

/// A set of nodes as a bitmask (the kernel's nodemask_t, up to 64 nodes here).
public struct NodeMask: Hashable, Sendable, CustomStringConvertible {
    public var bits: UInt64
    @inlinable public init(bits: UInt64) { self.bits = bits }
    public init<S: Sequence>(_ nodes: S) where S.Element == Int {
        var b: UInt64 = 0
        for n in nodes where n >= 0 && n < 64 { b |= 1 << UInt64(n) }
        bits = b
    }
    /// Every node.
    public static var all: NodeMask { NodeMask(bits: ~0) }
    @inlinable public func contains(_ node: Int) -> Bool { node >= 0 && node < 64 && bits & (1 << UInt64(node)) != 0 }
    public var nodes: [Int] { (0..<64).filter { contains($0) } }
    public var isAll: Bool { bits == ~0 }
    /// numactl's spelling: "0-2,5".
    public var description: String { isAll ? "all" : NodeList.format(nodes) }
}

/// numactl's node (and CPU) lists: `0,2`, `0-3`, `1,3-5`, `all`, and `!LIST`
/// (every node but those), as libnuma's numa_parse_nodestring reads them.
public enum NodeList {
    /// Parses `text` against the valid ids `valid` (ascending). `what` names
    /// the kind in errors ("node", "cpu"). Returns the ids, ascending, each once.
    public static func parse(_ text: String, valid: [Int], what: String = "node") throws(MemPolicyError) -> [Int] {
        let t = text.trimmedSpaces
        func bad(_ why: String) -> MemPolicyError { .badList(text: text, what: what, reason: why) }
        guard !t.isEmpty else { throw bad("the \(what) list is empty") }
        if t == "all" { return valid }
        var invert = false
        var body = Substring(t)
        if body.hasPrefix("!") { invert = true; body = body.dropFirst() }
        guard !body.isEmpty else { throw bad("'!' needs a \(what) list after it") }
        var set = Set<Int>()
        for item in body.split(separator: ",", omittingEmptySubsequences: false) {
            let s = item.trimmedSpaces
            guard !s.isEmpty else { throw bad("an empty item between commas") }
            let ends = s.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2, let lo = Int(ends[0]), lo >= 0, ends.count == 1 || Int(ends[1]) != nil else {
                throw bad("'\(s)' is not a \(what) number or a range like 0-3")
            }
            let hi = ends.count == 2 ? Int(ends[1])! : lo
            guard hi >= lo else { throw bad("the range '\(s)' runs backwards") }
            for n in lo...hi {
                guard valid.contains(n) else {
                    throw .noSuchID(what: what, id: n, valid: valid, text: text)
                }
                set.insert(n)
            }
        }
        let out = invert ? valid.filter { !set.contains($0) } : set.sorted()
        guard !out.isEmpty else { throw bad("'\(text)' leaves no \(what)") }
        return out
    }

    /// The shortest numactl spelling of ascending ids: `0-2,5`.
    public static func format(_ ids: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        let s = ids.sorted()
        while i < s.count {
            var j = i
            while j + 1 < s.count && s[j + 1] == s[j] + 1 { j += 1 }
            parts.append(j > i ? "\(s[i])-\(s[j])" : "\(s[i])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}

/// Why a memory policy or a node/CPU list was refused. Each names the value.
public enum MemPolicyError: Error, Equatable, CustomStringConvertible {
    case badList(text: String, what: String, reason: String)
    case noSuchID(what: String, id: Int, valid: [Int], text: String)
    case unknownMode(String)
    case needsNodes(mode: String)
    case takesNoNodes(mode: String)
    case preferredOneNode(text: String)
    case badWeight(text: String, reason: String)
    case tooManyNodes(Int)

    public var description: String {
        switch self {
        case .badList(let t, _, let why): return "'\(t)': \(why)"
        case .noSuchID(let what, let id, let valid, let t):
            return "'\(t)': \(what) \(id) does not exist (\(what)s: \(valid.isEmpty ? "none" : NodeList.format(valid)))"
        case .unknownMode(let m):
            return "unknown memory policy '\(m)': expected local, bind=NODES, interleave=NODES, preferred=NODE, preferred-many=NODES or weighted-interleave=NODE:WEIGHT,... (numactl's spellings; membind= and localalloc too)"
        case .needsNodes(let m): return "'\(m)' needs a node list: \(m)=NODES (e.g. \(m)=0,1 or \(m)=all)"
        case .takesNoNodes(let m): return "'\(m)' takes no node list"
        case .preferredOneNode(let t): return "'preferred=\(t)': preferred takes one node (preferred-many=NODES takes several)"
        case .badWeight(let t, let why): return "'weighted-interleave=\(t)': \(why)"
        case .tooManyNodes(let n): return "node \(n): node masks hold nodes 0...63"
        }
    }
}

/// A memory policy as set_mempolicy(2)/numactl spell it, with the kernel's
/// semantics (mm/mempolicy.c). Which nodes an allocation may use, and in
/// which order, is decided by `target(cpuNode:cursor:)`: a preferred node
/// (whose zonelist is walked, nearest first) and a nodemask (zones of nodes
/// outside it are skipped).
public struct MemPolicy: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// MPOL_LOCAL (numactl --localalloc; the default policy): the CPU's node first, then the zonelist.
        case local
        /// MPOL_BIND (--membind): only these nodes, nearest to the CPU first; no fallback outside them.
        case bind
        /// MPOL_INTERLEAVE (--interleave): node after node, one allocation each; the whole zonelist
        /// of that node as fallback; interleave_hit counts allocations that got the node chosen.
        case interleave
        /// MPOL_PREFERRED (--preferred): that node first, then its whole zonelist.
        case preferred
        /// MPOL_PREFERRED_MANY (--preferred-many): these nodes first (without direct reclaim), then everything.
        case preferredMany = "preferred-many"
        /// MPOL_WEIGHTED_INTERLEAVE (Linux 6.9): interleave, `weight` consecutive allocations per node.
        case weightedInterleave = "weighted-interleave"
    }

    public var mode: Mode
    /// The policy's nodes, ascending (empty for local).
    public var nodes: [Int]
    /// weighted-interleave: one weight (1...255) per node of `nodes`; otherwise empty.
    public var weights: [Int]

    public init(mode: Mode, nodes: [Int] = [], weights: [Int] = []) {
        self.mode = mode
        self.nodes = nodes
        self.weights = weights
    }

    public static let local = MemPolicy(mode: .local)

    @inlinable public var mask: NodeMask { mode == .local ? .all : NodeMask(nodes) }

    /// The canonical spelling, which `parse` reads back: `interleave=0-1`, `weighted-interleave=0:3,1:1`.
    public var description: String {
        switch mode {
        case .local: return "local"
        case .weightedInterleave:
            return "weighted-interleave=" + zip(nodes, weights).map { "\($0):\($1)" }.joined(separator: ",")
        default: return "\(mode.rawValue)=\(NodeList.format(nodes))"
        }
    }

    /// Parses numactl's spellings: `local` (`localalloc`), `bind=NODES` (`membind=`),
    /// `interleave=NODES`, `preferred=NODE`, `preferred-many=NODES`,
    /// `weighted-interleave=NODE[:WEIGHT],...` (weight 1...255, default 1; a
    /// range `0-3:2` gives each node that weight). `nodes` are the valid node ids.
    public static func parse(_ text: String, nodes valid: [Int]) throws(MemPolicyError) -> MemPolicy {
        let t = text.trimmedSpaces
        let eq = t.firstIndex(of: "=")
        let name = eq.map { String(t[..<$0]) } ?? t
        let arg = eq.map { String(t[t.index(after: $0)...]) }
        let mode: Mode
        switch name {
        case "local", "localalloc", "default": mode = .local
        case "bind", "membind": mode = .bind
        case "interleave": mode = .interleave
        case "preferred": mode = .preferred
        case "preferred-many", "preferred_many": mode = .preferredMany
        case "weighted-interleave", "weighted_interleave": mode = .weightedInterleave
        default: throw .unknownMode(t)
        }
        if mode == .local {
            guard arg == nil else { throw .takesNoNodes(mode: name) }
            return .local
        }
        guard let arg else { throw .needsNodes(mode: name) }
        if mode == .weightedInterleave {
            var ns: [Int] = [], ws: [Int] = []
            for item in arg.split(separator: ",", omittingEmptySubsequences: false) {
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count <= 2 else { throw .badWeight(text: arg, reason: "'\(item)' has more than one ':'") }
                let w: Int
                if parts.count == 2 {
                    guard let x = Int(parts[1].trimmedSpaces) else {
                        throw .badWeight(text: arg, reason: "'\(parts[1])' is not a weight (1...255)")
                    }
                    guard x >= 1, x <= 255 else { throw .badWeight(text: arg, reason: "weight \(x) of node(s) \(parts[0]) is outside 1...255 (a weight of 0 would never allocate there)") }
                    w = x
                } else { w = 1 }
                for n in try NodeList.parse(String(parts[0]), valid: valid) {
                    guard !ns.contains(n) else { throw .badWeight(text: arg, reason: "node \(n) is given twice") }
                    ns.append(n); ws.append(w)
                }
            }
            let order = ns.indices.sorted { ns[$0] < ns[$1] }
            return try checked(MemPolicy(mode: mode, nodes: order.map { ns[$0] }, weights: order.map { ws[$0] }))
        }
        let ns = try NodeList.parse(arg, valid: valid)
        if mode == .preferred && ns.count != 1 { throw .preferredOneNode(text: arg) }
        return try checked(MemPolicy(mode: mode, nodes: ns))
    }

    static func checked(_ p: MemPolicy) throws(MemPolicyError) -> MemPolicy {
        if let big = p.nodes.first(where: { $0 >= 64 }) { throw .tooManyNodes(big) }
        return p
    }
}

/// A task's interleave position (the kernel's task->il_prev and il_weight).
public struct InterleaveCursor: Sendable {
    /// Index into the policy's nodes of the node last used.
    public var index: Int = -1
    /// Allocations left on that node before moving on (weighted interleave).
    public var left: Int = 0
    public init() {}
}

/// Where one allocation under a policy goes: the preferred node whose zonelist
/// is walked, the nodemask that filters it, and how the kernel treats it.
public struct PolicyTarget: Sendable, Equatable {
    public var node: Int
    public var mask: NodeMask
    /// preferred-many: try `mask` without direct reclaim first, then every node.
    public var thenAnywhere: Bool
    /// interleave: count interleave_hit when the block lands on `node`.
    public var interleave: Bool
    @inlinable public init(node: Int, mask: NodeMask, thenAnywhere: Bool, interleave: Bool) {
        self.node = node; self.mask = mask; self.thenAnywhere = thenAnywhere; self.interleave = interleave
    }
}

extension MemPolicy {
    /// policy_node() and policy_nodemask() of mm/mempolicy.c for a task on
    /// `cpuNode`: local and preferred walk one node's whole zonelist; bind and
    /// preferred-many walk the CPU's node's zonelist filtered by the nodes
    /// (so the nearest allowed node comes first, and the first allowed zone is
    /// the preferred zone of the NUMA counters); interleave picks the next node
    /// (weighted: `weight` times in a row) and walks its whole zonelist.
    @inlinable
    public func target(cpuNode: Int, cursor: inout InterleaveCursor) -> PolicyTarget {
        switch mode {
        case .local: return PolicyTarget(node: cpuNode, mask: .all, thenAnywhere: false, interleave: false)
        case .preferred: return PolicyTarget(node: nodes[0], mask: .all, thenAnywhere: false, interleave: false)
        case .bind: return PolicyTarget(node: cpuNode, mask: mask, thenAnywhere: false, interleave: false)
        case .preferredMany: return PolicyTarget(node: cpuNode, mask: mask, thenAnywhere: true, interleave: false)
        case .interleave:
            cursor.index = cursor.index + 1 >= nodes.count ? 0 : cursor.index + 1
            return PolicyTarget(node: nodes[cursor.index], mask: .all, thenAnywhere: false, interleave: true)
        case .weightedInterleave:
            if cursor.left <= 0 || cursor.index < 0 || cursor.index >= nodes.count {
                cursor.index = cursor.index + 1 >= nodes.count ? 0 : cursor.index + 1
                cursor.left = weights[cursor.index]
            }
            cursor.left -= 1
            return PolicyTarget(node: nodes[cursor.index], mask: .all, thenAnywhere: false, interleave: true)
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (no Foundation here).
    var trimmedSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
