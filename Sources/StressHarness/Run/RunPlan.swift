import PageAllocator
import Topology

/// What kind of allocator call an operation class times.
public enum CallKind: String, Codable, Sendable {
    case alloc
    /// A free by the worker that allocated the block.
    case free
    /// A free of a block handed over by another worker.
    case freeRemote = "free-remote"
}

/// An operation class: one latency histogram each. Allocations are classed
/// by order and GFP flags, frees by order (and by whether the block came
/// from another worker).
public struct OpClass: Codable, Sendable, Hashable {
    public var call: CallKind
    public var order: Int
    /// Kernel spelling; empty for frees.
    public var flags: String

    /// "alloc o0 GFP_KERNEL", "free o3", "free-remote o0".
    public var name: String { call == .alloc ? "alloc o\(order) \(flags)" : "\(call.rawValue) o\(order)" }
}

/// Where a worker runs.
enum PinTarget: Equatable {
    case cpu(Int)
    case node(Int)
    case none

    var description: String {
        switch self {
        case .cpu(let c): return "cpu\(c)"
        case .node(let n): return "node\(n)"
        case .none: return "unpinned"
        }
    }
}

/// One operation of a worker, resolved against the whole run.
struct OpPlan {
    var spec: OpSpec
    var gfp: GFP
    /// Local class index of an allocation of each order (-1: never drawn).
    var allocClassByOrder: [Int]
    var lockIndex: Int
    /// Global ring this op hands blocks to, or -1.
    var ring: Int
    /// [harness] nofail = "caller-loop" and the flags had __GFP_NOFAIL: the
    /// flag is dropped (gfp has it no more) and the worker retries itself.
    var callerLoop: Bool = false
    /// Pages to reserve before the operation (0: none, or [harness] reservations = false).
    var reserve: Int = 0
}

/// Everything one worker needs, decided before the threads start.
struct WorkerPlan {
    var index: Int
    var group: Int
    var indexInGroup: Int
    var pin: PinTarget
    /// The CPU passed to the allocator (nil: the CPU the thread runs on).
    var allocatorCPU: Int?
    var ops: [OpPlan]
    /// Global class ids, in local order. A labelled alloc op has slots of its
    /// own (it records apart from other ops of its class), so latency can be
    /// keyed by label; unlabelled ops of one class share a slot.
    var classes: [Int]
    /// The labelled op (index in the group's ops) each local class records for; -1: shared, or a free.
    var classOps: [Int] = []
    var freeClassByOrder: [Int]
    var remoteFreeClassByOrder: [Int]
    /// Global rings this worker consumes from, and the workers that fill them.
    var inbound: [Int]
    var producers: [Int]
    /// Every operation is a consume.
    var consumeOnly: Bool
    /// Open loop: ns between intended starts.
    var intervalNs: Double?
    /// The allocator task the worker registers as (the worker holds it as it is).
    var task = TaskSpec()
    /// The group's memory policy (nil: local).
    var policy: MemPolicy? = nil
    /// How the pin reads in results: "node2" with the node's number (nil: `pin.description`).
    var pinLabel: String? = nil
}

/// The allocator task a worker registers as: its name ("<group>.<k>"), its
/// oom_score_adj, whether it restarts after an OOM kill (after a delay), and
/// its memory group id (0: none). Planned once, held by the worker as it is.
struct TaskSpec {
    var name: String = ""
    var oomScoreAdj: Int = 0
    var restart: Bool = false
    var restartDelayMs: Int = 0
    var memoryGroup: Int = 0
}

/// The compiled run: classes, workers and hand-off rings.
struct RunPlan {
    var classes: [OpClass] = []
    var workers: [WorkerPlan] = []
    /// (producer worker, consumer worker) of each ring.
    var rings: [(producer: Int, consumer: Int)] = []

    init(_ w: Workload, topology: Topology) {
        var classIndex: [OpClass: Int] = [:]
        func classID(_ c: OpClass) -> Int {
            if let i = classIndex[c] { return i }
            classes.append(c)
            classIndex[c] = classes.count - 1
            return classes.count - 1
        }
        // Worker numbering: groups in order, workers in order.
        var firstWorker: [Int] = []
        var n = 0
        for g in w.groups { firstWorker.append(n); n += g.workers }
        let groupIndex = Dictionary(uniqueKeysWithValues: w.groups.enumerated().map { ($1.name, $0) })
        let lockIndex = Dictionary(uniqueKeysWithValues: w.locks.enumerated().map { ($1.name, $0) })

        // Rings: worker k of a producing group hands to worker k mod C of the
        // target group (to k+1 mod C when the target is its own group).
        var ringOf: [Int: [Int: Int]] = [:] // producer -> consumer -> ring
        func ring(_ p: Int, _ c: Int) -> Int {
            if let r = ringOf[p]?[c] { return r }
            rings.append((p, c))
            ringOf[p, default: [:]][c] = rings.count - 1
            return rings.count - 1
        }
        func target(of gi: Int, k: Int, to tg: Int) -> Int {
            let c = w.groups[tg].workers
            return firstWorker[tg] + (gi == tg ? (k + 1) % c : k % c)
        }

        for (gi, g) in w.groups.enumerated() {
            for k in 0..<g.workers {
                let wi = firstWorker[gi] + k
                let pin: PinTarget
                var cpu: Int? = nil
                switch g.pin {
                case "cpu":
                    let c = g.cpus[k % g.cpus.count]
                    pin = .cpu(c)
                    cpu = c
                case "node":
                    let node = g.nodes[(k) % g.nodes.count]
                    pin = .node(node)
                    if topology.isDeclared {
                        let cs = topology.nodes[node].cpus
                        cpu = cs[(k / g.nodes.count) % cs.count].rawValue
                    }
                default:
                    pin = .none
                }
                // The worker's own node, for node = "next".
                let ownNode: Int? = switch pin {
                case .cpu(let c): topology.node(of: CPUID(c)).rawValue
                case .node(let n): n
                default: nil
                }
                var local: [Int] = []
                var localOps: [Int] = []
                func localID(_ global: Int) -> Int {
                    if let i = local.indices.first(where: { local[$0] == global && localOps[$0] < 0 }) { return i }
                    local.append(global)
                    localOps.append(-1)
                    return local.count - 1
                }
                func opSlot(_ global: Int, op: Int) -> Int {
                    local.append(global)
                    localOps.append(op)
                    return local.count - 1
                }
                var free = [Int](repeating: -1, count: Order.count)
                var ops: [OpPlan] = []
                for (oi, op) in g.ops.enumerated() {
                    let gfp = (try? GFP(parsing: op.flags)) ?? .kernel
                    var byOrder = [Int](repeating: -1, count: Order.count)
                    var r = -1
                    if op.kind == .alloc {
                        for ow in op.orders where ow.weight > 0 {
                            let global = classID(OpClass(call: .alloc, order: ow.order, flags: op.flags))
                            byOrder[ow.order] = op.label != nil ? opSlot(global, op: oi) : localID(global)
                            if op.freeOn == nil && free[ow.order] < 0 {
                                free[ow.order] = localID(classID(OpClass(call: .free, order: ow.order, flags: "")))
                            }
                        }
                        if let t = op.freeOn, let tg = groupIndex[t] {
                            r = ring(wi, target(of: gi, k: k, to: tg))
                        }
                    }
                    var spec = op
                    if let offset = op.nodeOffset, let own = ownNode {
                        spec.node = (own + offset) % topology.nodeCount
                    }
                    // The dithered extra word (gate-eval's variants) must fit in the page: else no fraction.
                    if (spec.touchFraction ?? 0) > 0 && spec.touch + 8 > w.memory.pageSize { spec.touchFraction = nil }
                    var plan = OpPlan(spec: spec, gfp: gfp, allocClassByOrder: byOrder, lockIndex: op.lock.flatMap { lockIndex[$0] } ?? -1, ring: r)
                    if op.kind == .alloc && w.harness.callerLoop && gfp.contains(.noFail) {
                        plan.callerLoop = true
                        plan.gfp.remove(.noFail)
                    }
                    if w.harness.reservations, let n = op.reserve { plan.reserve = max(1, Int((Double(n) * w.harness.reserveScale).rounded())) }
                    ops.append(plan)
                }
                let interval = g.rate.map { 1e9 / $0 }
                workers.append(WorkerPlan(index: wi, group: gi, indexInGroup: k, pin: pin, allocatorCPU: cpu, ops: ops,
                                          classes: local, freeClassByOrder: free,
                                          remoteFreeClassByOrder: [Int](repeating: -1, count: Order.count),
                                          inbound: [], producers: [], consumeOnly: g.ops.allSatisfy { $0.kind == .consume },
                                          intervalNs: interval,
                                          task: TaskSpec(name: "\(g.name).\(k)", oomScoreAdj: g.oomScoreAdj, restart: g.restart, restartDelayMs: g.restartDelayMs,
                                                         memoryGroup: g.memoryGroup.flatMap { m in w.memoryGroups.firstIndex { $0.name == m }.map { $0 + 1 } } ?? 0)))
                workers[workers.count - 1].policy = g.memPolicy(topology: topology)
                if case .node(let n) = pin { workers[workers.count - 1].pinLabel = "node\(topology.number(of: n))" }
                workers[workers.count - 1].classOps = localOps
            }
        }
        // Consumers: their inbound rings, and a free-remote class for each order they may receive.
        for (ri, (p, c)) in rings.enumerated() {
            workers[c].inbound.append(ri)
            if !workers[c].producers.contains(p) { workers[c].producers.append(p) }
            for op in workers[p].ops where op.ring == ri {
                for ow in op.spec.orders where ow.weight > 0 && workers[c].remoteFreeClassByOrder[ow.order] < 0 {
                    let g = classID(OpClass(call: .freeRemote, order: ow.order, flags: ""))
                    workers[c].classes.append(g)
                    workers[c].classOps.append(-1)
                    workers[c].remoteFreeClassByOrder[ow.order] = workers[c].classes.count - 1
                }
            }
        }
    }
}
