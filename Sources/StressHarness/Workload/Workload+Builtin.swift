/// The built-in default workload: what `pagestorm run` runs with no file and
/// what `pagestorm smoke` runs. Workloads/default.toml holds the same text (a
/// test keeps them equal).
extension Workload {
    public static let builtinDefaultText = """
# Source: pagestorm's built-in default (`pagestorm run` with no file, and `pagestorm smoke`): a kernel-like mix, not a published suite.
# One pinned worker per CPU: mostly order-0 GFP_KERNEL churn over a pool of
# live blocks, some GFP_ATOMIC pairs, small journal transactions under a lock,
# and order-0 blocks handed to the next worker to free (freed on another CPU).
name = "default"
description = "kernel-like mix: order 0-3 churn, atomic pairs, journal-lock transactions, frees on another CPU"
source = "pagestorm built-in default"

[memory]
arena_mib = 256

[run]
duration_ms = 1000
warmup_ms = 100
seed = 1
sample_every = 16

[[lock]]
name = "journal"

[[group]]
name = "workers"            # one worker per CPU, each pinned to its CPU (the defaults)

[[group.op]]
name = "churn"              # hold up to 256 blocks; free a random one
weight = 70
orders = { 0 = 85, 1 = 5, 2 = 5, 3 = 5 }
flags = "GFP_KERNEL"
free = "random"
live = 256
prefill = true
touch = 64

[[group.op]]
name = "atomic-pair"        # allocate and free at once, as an interrupt handler would
weight = 15
order = 0
flags = "GFP_ATOMIC"
need = 2

[[group.op]]
name = "journal"            # 4 allocations under the journal lock, freed 16 at a time, oldest first
weight = 3
count = 4
lock = "journal"
flags = "GFP_NOFS"
need = 3
free = "fifo"
batch = 16

[[group.op]]
name = "to-neighbour"       # freed by the next worker (on another CPU)
weight = 8
order = 0
flags = "GFP_KERNEL"
free_on = "workers"
touch = 64

[[group.op]]
name = "from-neighbour"     # free what the previous worker handed over
kind = "consume"
weight = 4
batch = 8

"""

    /// The built-in default, resolved against `machine`.
    public static func builtinDefault(machine: Topology = Topology.discover()) -> Workload {
        do { return try parse(builtinDefaultText, file: "<built-in default>", defaultName: "default", machine: machine) } catch {
            preconditionFailure("the built-in default workload does not parse: \(error)")
        }
    }
}

import Topology
