import Foundation
import PageAllocator

/// A resolved workload: what a workload file says, with every default filled
/// in. Results files store it whole, so a run can be repeated from its
/// results alone. Read from TOML by `Workload.load(...)` (Workload+Decode.swift);
/// the file format is documented in Workloads/README.md.
public struct Workload: Codable, Sendable, Equatable {
    /// Names the workload (default: the file's base name).
    public var name: String
    /// What drives the workers. Only `ops` (the closed/open-loop operation mix)
    /// exists now; trace replay adds a kind of its own.
    public var kind: WorkloadKind
    public var description: String
    /// Where the pattern comes from (a benchmark suite, a paper), if anywhere.
    public var source: String
    public var topology: TopologySpec
    public var memory: MemorySpec
    public var run: RunSpec
    /// The `[policy]` table: every SlowPathPolicy key with its value in force (see Policy.swift).
    public var policy: [String: String]
    /// The `[harness]` table: the callers' side (caller NOFAIL loop), stalls, the watchdog.
    public var harness: HarnessSpec
    /// The `[reclaim]` table: simulated I/O costs of reclaim.
    public var reclaim: ReclaimSpec
    /// The `[fail_page_alloc]` table (disabled unless probability > 0 and times != 0).
    public var failPageAlloc: FaultInjectionSettings
    /// The `[[memory_group]]` tables: memory-cgroup-like page limits (ids 1...n in this order).
    public var memoryGroups: [MemoryGroupSpec]
    public var locks: [LockSpec]
    public var groups: [GroupSpec]

    /// Workers over all groups.
    public var workerCount: Int { groups.reduce(0) { $0 + $1.workers } }
}

/// What a workload runs. Extensible: a new kind adds a case here, its
/// decoding in Workload+Decode.swift, and its engine in StressRun.
public enum WorkloadKind: String, Codable, Sendable, CaseIterable {
    /// Worker groups drawing operations from a weighted mix, closed or open loop.
    case ops
}

public struct TopologySpec: Codable, Sendable, Equatable {
    /// "machine" (discovered with libnuma) or "declared".
    public var kind: String
    public var nodes: Int
    /// CPUs of each node.
    public var cpusPerNode: [Int]
    /// numa_distance matrix, 10 on the diagonal.
    public var distances: [[Int]]
    /// The nodes' numbers when they are not 0..<nodes (`node_ids`, e.g. [0, 2];
    /// a discovered machine's numbers with gaps). Nil: 0..<nodes.
    public var nodeIDs: [Int]? = nil

    /// The node numbers users write (ascending): `nodeIDs`, or 0..<nodes.
    public var numbers: [Int] { nodeIDs ?? Array(0..<nodes) }
}

public struct ZoneRecord: Codable, Sendable, Equatable {
    /// DMA, DMA32, Normal or Movable.
    public var type: String
    public var pages: Int
}

public struct MemorySpec: Codable, Sendable, Equatable {
    public var pageSize: Int
    /// Zones of every node, lowest first.
    public var zones: [ZoneRecord]
    /// vm.min_free_kbytes in force (the kernel formula when not given).
    public var minFreeKbytes: Int
    /// Whether min_free_kbytes came from the file (false: the kernel formula).
    public var minFreeKbytesGiven: Bool
    public var watermarkScaleFactor: Int
    public var lowmemReserveRatio: [Int]
    /// Highest order the per-CPU lists cache (-1: none).
    public var pcpMaxOrder: Int
    public var percpuPagelistHighFraction: Int
    public var bindMemory: Bool
    /// Swap slots, in pages (0: anonymous memory cannot be reclaimed).
    public var swapPages: Int
    /// warn_alloc's rate limit: one printed warning per this many ms (the kernel: 10 s).
    public var warnRatelimitMs: Int
    /// The workload runs out of memory on purpose (`[memory] pressure = true`):
    /// its held sets may exceed the arena, and the run is not refused for that
    /// (see `Workload.arenaFit`). nil: false (results written before it still read).
    public var pressure: Bool? = nil
    /// `[memory] weighted_interleave_hit`: whether weighted-interleave
    /// allocations count as interleave_hit (Linux 6.13+, the default) or not
    /// (6.9-6.12). nil: true (and results written before it still read).
    public var weightedInterleaveHit: Bool? = nil

    public var pagesPerNode: Int { zones.reduce(0) { $0 + $1.pages } }
}

public struct RunSpec: Codable, Sendable, Equatable {
    /// "duration" or "ops".
    public var mode: String
    /// Measured time (after warm-up), in ms; set when mode is "duration".
    public var durationMs: Int?
    /// Operations per worker (draws from its mix); set when mode is "ops".
    public var ops: Int?
    public var warmupMs: Int
    public var seed: UInt64
    /// Time 1 in this many allocator calls (a power of two) in closed loop.
    public var sampleEvery: Int
    /// An ops-count run is stopped (partial) after this long.
    public var timeoutMs: Int
    /// Width of a time-series bucket.
    public var bucketMs: Int
    /// What is measured (`[run] allocator`, `--allocator`): an AllocatorName's
    /// raw value, "pagestorm" by default. Optional so that results files
    /// written before peers existed still read (nil: pagestorm).
    public var allocator: String? = nil
}

public struct LockSpec: Codable, Sendable, Equatable {
    public var name: String
}

public struct GroupSpec: Codable, Sendable, Equatable {
    public var name: String
    public var workers: Int
    /// "cpu": each worker pinned to one CPU of `cpus`, round-robin;
    /// "node": each worker pinned to all CPUs of one node of `nodes`, round-robin;
    /// "none": not pinned.
    public var pin: String
    public var cpus: [Int]
    public var nodes: [Int]
    /// "closed" (as fast as possible) or "open" (at `rate` ops/s per worker).
    public var loop: String
    public var rate: Double?
    /// oom_score_adj of every worker of the group (-1000: never chosen by the OOM killer).
    public var oomScoreAdj: Int
    /// A worker killed by the OOM killer starts again as a new task.
    public var restart: Bool
    /// How long a killed worker waits before it restarts (a service manager's restart delay).
    public var restartDelayMs: Int
    /// The `[[memory_group]]` the group's workers are charged to, if any.
    public var memoryGroup: String?
    public var ops: [OpSpec]
    /// The group's memory policy in numactl's spelling (`bind=1`, `interleave=0-1`, ...;
    /// nil: local, the default). A per-operation `node` overrides it (alloc_pages_node()).
    public var mempolicy: String? = nil
}

public enum OpKind: String, Codable, Sendable, CaseIterable {
    /// Allocate `count` blocks (under `lock` if given), then treat each by `free`.
    case alloc
    /// Free up to `batch` blocks that other workers handed to this one.
    case consume
}

/// When an allocated block is freed.
public enum Lifetime: String, Codable, Sendable, CaseIterable {
    /// Freed right after it was allocated.
    case immediate
    /// Held; with `batch` N, once N are held all are freed newest first;
    /// with `live` N, once more than N are held the newest older one is freed.
    case lifo
    /// As lifo, oldest first.
    case fifo
    /// As lifo, a random one (a random order for a whole batch).
    case random
    /// The first `live` blocks are held until the run ends (ballast); later
    /// ones are freed at once.
    case keep
}

public struct OrderWeight: Codable, Sendable, Equatable {
    public var order: Int
    public var weight: Int
}

public struct OpSpec: Codable, Sendable, Equatable {
    public var name: String
    public var kind: OpKind
    public var weight: Int
    /// alloc: the order distribution.
    public var orders: [OrderWeight]
    /// alloc: GFP flags in the kernel's spelling.
    public var flags: String
    /// alloc: Ts'o's level of need, 0...3.
    public var need: Int
    /// alloc: allocations per operation.
    public var count: Int
    /// alloc: a declared lock held around the `count` allocations.
    public var lock: String?
    public var free: Lifetime
    /// lifo/fifo/random: free all at once after this many (alloc); blocks freed per operation at most (consume).
    public var batch: Int?
    /// lifo/fifo/random/keep: blocks held live.
    public var live: Int?
    /// Fill the pool to `live` before the start barrier (not measured).
    public var prefill: Bool
    /// Hand the freed blocks to this group's workers, who free them (nil: free here).
    public var freeOn: String?
    /// Bytes written (and checked before the free) at the start of every page.
    public var touch: Int
    /// Not read from workload files: set only by `pagestorm gate-eval`'s
    /// variants (`GateEval.variant`), so that an injected slowdown can be any
    /// number of bytes, not only whole 8-byte words. A fraction f (0 < f < 1)
    /// of one more 8-byte word, on average over this op's allocations: each
    /// allocation touches `touch / 8` or `touch / 8 + 1` words (every page of
    /// the block the same), chosen without a random draw by an accumulator
    /// per worker and op (allocation k gets the extra word when
    /// floor((k + 1) f) > floor(k f), f in 2^-32 steps), so that over N
    /// allocations the extra words number floor(N f) exactly. nil or 0: off
    /// (the default; results files then carry no such key).
    public var touchFraction: Double? = nil
    /// Preferred node (nil: the node of the worker's CPU).
    public var node: Int?
    /// Prefer the node this many after the worker's own node, modulo the
    /// node count (`node = "next"`: 1); each worker's plan resolves it into `node`.
    public var nodeOffset: Int? = nil
    /// alloc: hand each block to the allocator's LRU as reclaimable memory
    /// charged to the worker: "clean" or "dirty" page cache, or "anon"
    /// (nil: the worker holds and frees its blocks).
    public var reclaimable: String?
    /// alloc with `reclaimable`: blocks created before the start (and again
    /// after an OOM restart): the worker's initial page cache or working set.
    public var initial: Int
    /// alloc: pages reserved before the operation's allocations (Chinner's
    /// transaction reservation; the estimate, next to `count`, what it really allocates).
    public var reserve: Int?
    /// alloc: a label keying this op's latency and failures (results'
    /// `latencyByLabel`); ops with the same label, in any group, share a row.
    public var label: String? = nil
}

/// Changes applied to a decoded workload (CLI flags, tests): a way to run a
/// workload shorter or with another seed without editing it.
public struct WorkloadOverrides: Sendable, Equatable {
    public var durationMs: Int?
    public var ops: Int?
    public var warmupMs: Int?
    public var seed: UInt64?
    public var sampleEvery: Int?
    public var timeoutMs: Int?
    /// Multiplies every prefill/live/batch size and lowers nothing else (0 < scale <= 1 shrinks).
    public var sizeScale: Double?
    /// `[policy]` keys to replace (`--policy`), validated by `Workload.overriding`.
    public var policy: [String: String] = [:]
    /// `[harness]` keys to replace (`--harness`).
    public var harness: [String: String] = [:]
    /// fail_page_alloc knobs replacing the workload's table (`--fail-page-alloc`).
    public var failPageAlloc: String?
    /// Replaces the `rate` of every open-loop group (`pagestorm loadcurve`).
    public var rate: Double?
    /// The allocator to measure (`--allocator`), checked by `overriding`.
    public var allocator: String?

    public init(durationMs: Int? = nil, ops: Int? = nil, warmupMs: Int? = nil, seed: UInt64? = nil,
                sampleEvery: Int? = nil, timeoutMs: Int? = nil, sizeScale: Double? = nil,
                policy: [String: String] = [:], harness: [String: String] = [:], failPageAlloc: String? = nil, allocator: String? = nil) {
        self.allocator = allocator
        self.policy = policy
        self.harness = harness
        self.failPageAlloc = failPageAlloc
        self.durationMs = durationMs
        self.ops = ops
        self.warmupMs = warmupMs
        self.seed = seed
        self.sampleEvery = sampleEvery
        self.timeoutMs = timeoutMs
        self.sizeScale = sizeScale
    }

    public var isEmpty: Bool { self == WorkloadOverrides() }
}

extension Workload {
    /// Returns the workload with `o` applied. A duration replaces an op count and vice versa.
    public func applying(_ o: WorkloadOverrides) -> Workload {
        var w = self
        if let d = o.durationMs {
            w.run.mode = "duration"
            w.run.durationMs = d
            w.run.ops = nil
        }
        if let n = o.ops {
            w.run.mode = "ops"
            w.run.ops = n
            w.run.durationMs = nil
        }
        if let r = o.rate { for g in w.groups.indices where w.groups[g].loop == "open" { w.groups[g].rate = r } }
        if let x = o.warmupMs { w.run.warmupMs = x }
        if let s = o.seed { w.run.seed = s }
        if let s = o.sampleEvery { w.run.sampleEvery = s }
        if let t = o.timeoutMs { w.run.timeoutMs = t }
        if let f = o.sizeScale {
            func scaled(_ v: Int?) -> Int? { v.map { max(1, Int((Double($0) * f).rounded())) } }
            for g in w.groups.indices {
                for i in w.groups[g].ops.indices {
                    w.groups[g].ops[i].live = scaled(w.groups[g].ops[i].live)
                    if w.groups[g].ops[i].kind == .alloc { w.groups[g].ops[i].batch = scaled(w.groups[g].ops[i].batch) }
                    if w.groups[g].ops[i].initial > 0 { w.groups[g].ops[i].initial = scaled(w.groups[g].ops[i].initial)! }
                }
            }
        }
        return w
    }

    /// `applying(o)`, then the `[policy]`, `[harness]` and `[fail_page_alloc]`
    /// replacements of `o`, each checked (a bad one names the key and what it accepts).
    public func overriding(_ o: WorkloadOverrides) throws(OverrideError) -> Workload {
        var w = applying(o)
        if !o.policy.isEmpty {
            var table = w.policy
            for (k, v) in o.policy { table[k] = v }
            do { w.policy = Policy.canonical(try Policy.resolve(table)) } catch { throw OverrideError(message: "--policy: \(error)") }
        }
        for k in o.harness.keys.sorted() {
            do { try w.harness.set(k, o.harness[k]!) } catch { throw OverrideError(message: "--harness: \(error)") }
        }
        if let f = o.failPageAlloc {
            do { w.failPageAlloc = try FaultInjectionSettings.parse(f) } catch { throw OverrideError(message: "--fail-page-alloc: \(error)") }
        }
        if o.rate != nil && !w.groups.contains(where: { $0.loop == "open" }) {
            throw OverrideError(message: "--rate: \(w.name) has no open-loop group (loop = \"open\"); a closed loop runs as fast as it can")
        }
        // A new rate or run length must still schedule an operation.
        for g in w.groups where g.loop == "open" {
            if let r = g.rate, let problem = Workload.rateProblem(r, run: w.run) {
                throw OverrideError(message: "\(o.rate != nil ? "--rate" : "--duration-ms/--ops/--timeout-ms"): group \(g.name): rate = \(r): \(problem)")
            }
        }
        if let a = o.allocator {
            guard let n = AllocatorName(parsing: a) else { throw OverrideError(message: PeerError.unknown(a).message) }
            w.run.allocator = n.rawValue
        }
        return w
    }

    /// Why an open loop's `rate` (operations per second per worker) cannot
    /// run with `run`, or nil. It must be a number above 0, at most 1e9, and
    /// schedule at least one operation in the run: rate x duration >= 1
    /// (a timed run), rate x timeout_ms >= 1 (an op-count run, which is
    /// stopped at timeout_ms).
    public static func rateProblem(_ rate: Double, run: RunSpec) -> String? {
        guard rate.isFinite, rate > 0, rate <= 1e9 else {
            return "must be more than 0 and at most 1e9 operations per second per worker, got \(rate)"
        }
        if run.mode == "ops" {
            let ms = Double(run.timeoutMs)
            if rate * ms / 1000 < 1 {
                return "schedules no operation before the op-count run's timeout_ms = \(run.timeoutMs) (one every \(fmtNs(1e9 / rate))); raise the rate or timeout_ms"
            }
        } else if let d = run.durationMs, rate * Double(d) / 1000 < 1 {
            return "schedules less than one operation per run: one every \(fmtNs(1e9 / rate)), the run measures \(d) ms; raise the rate or duration_ms"
        }
        return nil
    }
}
