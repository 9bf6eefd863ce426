import Topology

/// The workload shapes `pagestorm bench --peers` runs on every allocator:
/// verbatim copies of their files in Workloads/ (a test checks that they
/// stay identical), embedded so that the tool runs from any directory.
public enum PeerShapes {
    /// (key, file name, text), in the order tables print them.
    public static let all: [(key: String, file: String, text: String)] = [
        ("nbbs-cached-allocation", "Workloads/nbbs-cached-allocation.toml", nbbs_cached_allocation),
        ("nbbs-constant-occupancy", "Workloads/nbbs-constant-occupancy.toml", nbbs_constant_occupancy),
        ("mimalloc-larson", "Workloads/mimalloc-larson.toml", mimalloc_larson),
        ("mimalloc-xmalloc-test", "Workloads/mimalloc-xmalloc-test.toml", mimalloc_xmalloc_test),
    ]

    public static func workload(_ key: String, machine: Topology = Topology.discover()) throws(WorkloadError) -> Workload {
        guard let s = all.first(where: { $0.key == key }) else {
            throw WorkloadError(file: "<bench --peers>", line: 0, field: "", message: "no shape \(key)")
        }
        return try Workload.parse(s.text, file: s.file, defaultName: key, machine: machine)
    }

    static let nbbs_cached_allocation = """
# Source: NBBS benchmark suite (Marotta, Ianni, Scarselli, Pellegrini, Quaglia, "A Non-blocking Buddy System for Scalable Memory Allocation on Multi-core Machines"; HPDCS/NBBS, benchmarks/TB_cached_allocation): each thread repeatedly allocates and releases one buffer.
# The best case for a per-CPU cache: every free refills the list the next
# allocation pops. One pinned worker per CPU, order 0, GFP_KERNEL.
name = "nbbs-cached-allocation"
description = "each worker allocates one order-0 block and frees it at once, as fast as it can"
source = "NBBS TB_cached_allocation"

[memory]
arena_mib = 64

[run]
duration_ms = 1000
warmup_ms = 100

[[group]]
name = "threads"

[[group.op]]
name = "alloc-free"
order = 0
flags = "GFP_KERNEL"
free = "immediate"
"""

    static let nbbs_constant_occupancy = """
# Source: NBBS benchmark suite, constant occupancy (Marotta et al., CCGrid 2019; HPDCS/NBBS): each thread pre-allocates blocks of different orders, then makes bursts of allocations followed by releases.
# The pre-allocated blocks (a ballast of orders 0-4, held for the whole run)
# keep memory occupied and fragmented, so the bursts split and merge around
# them. The ballast op has weight 0: it only runs as the prefill.
name = "nbbs-constant-occupancy"
description = "a held ballast of mixed orders per worker, plus bursts of 512 allocations of orders 0-2 freed oldest first"
source = "NBBS constant occupancy"

[memory]
arena_mib = 128

[run]
duration_ms = 1000
warmup_ms = 100

[[group]]
name = "threads"

[[group.op]]
name = "ballast"            # 2048 blocks of orders 0-4 per worker, allocated before the start
weight = 0
orders = { 0 = 8, 1 = 4, 2 = 2, 3 = 1, 4 = 1 }
flags = "GFP_KERNEL"
free = "keep"
live = 2048
prefill = true

[[group.op]]
name = "burst"
weight = 1
orders = { 0 = 4, 1 = 2, 2 = 1 }
flags = "GFP_KERNEL"
free = "fifo"
batch = 512
"""

    static let mimalloc_larson = """
# Source: mimalloc-bench's larson (Larson and Krishnan, "Memory Allocation for Long-Running Server Applications", ISMM 1998): server-like; each thread replaces random blocks of its set, and blocks are freed by threads other than the ones that allocated them.
# Larson hands a finished thread's blocks to a new thread. Here each worker
# keeps 1000 live blocks of orders 0-3, replaces a random one per operation,
# and hands the replaced block to the next worker, which frees it.
name = "mimalloc-larson"
description = "1000 live blocks per worker, random replacement, replaced blocks freed by the next worker"
source = "mimalloc-bench larson"

[memory]
arena_mib = 128

[run]
duration_ms = 1000
warmup_ms = 100

[[group]]
name = "servers"

[[group.op]]
name = "replace"
weight = 8
orders = { 0 = 6, 1 = 2, 2 = 1, 3 = 1 }
flags = "GFP_KERNEL"
free = "random"
live = 1000
prefill = true
touch = 8
free_on = "servers"

[[group.op]]
name = "free-others"
kind = "consume"
weight = 1
batch = 32
"""

    static let mimalloc_xmalloc_test = """
# Source: mimalloc-bench's xmalloc-test (Lever and Boreham, USENIX 2000; xmalloc-test.c by Lever, Boreham and Eder, run as xmalloc-testN): producer threads allocate objects and write up to 128 bytes of each, consumer threads free them.
# Producers hand every block to a consumer through a bounded queue (a full
# queue makes the producer wait, as xmalloc-test's batch queue does), so every
# block is freed on another CPU: network buffers freed on another core.
# Needs 2 CPUs as written (producer on cpu 0, consumer on cpu 1); on a larger
# machine give each group more workers and CPUs.
name = "mimalloc-xmalloc-test"
description = "producers allocate and write 128 bytes, consumers on another CPU free"
source = "mimalloc-bench xmalloc-test"

[memory]
arena_mib = 128

[run]
duration_ms = 1000
warmup_ms = 100

[[group]]
name = "producers"
workers = 1
cpus = [0]

[[group.op]]
name = "produce"
orders = { 0 = 6, 1 = 1 }
flags = "GFP_KERNEL"
touch = 128
free_on = "consumers"

[[group]]
name = "consumers"
workers = 1
cpus = [1]

[[group.op]]
name = "consume"
kind = "consume"
batch = 64
"""
}
