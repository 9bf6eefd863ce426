# numa-lab-checks.sh: the NUMA tests that need a real multi-node kernel. Runs
# INSIDE the 2-node guest (busybox sh), as `make test-numa-lab` does:
#   scripts/numa-lab.sh --bin .build/release/pagestorm --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks.sh
# Each check prints PASS or FAIL with its output; the exit code is the number of failures.
# check, has, hasnt and $fails: scripts/numa-lab-checklib.sh, run before this file.

# Real zonelist order from numa_distance, real mbind of each arena, real move_pages placement.
check "zoneinfo: distances, zonelists, arenas bound and verified" pagestorm zoneinfo --arena-mib 8 --extras
has "^# distances: 10,21;21,10" && has "^# zonelist of node0: 0(Normal) 1(Normal)" &&
    has "^# zonelist of node1: 1(Normal) 0(Normal)" &&
    { [ "$(grep -c '^# placement: .*(verified)' /tmp/check.out)" = 2 ] || { echo "    missing: 2 lines '# placement: ... (verified)'"; false; }; } ||
    { echo "FAIL zoneinfo content"; fails=$((fails + 1)); }

# The real kernel's numastat against the model's, same topology and policy (tolerance 5% of the pages).
check "fault-pages interleave=0,1 from cpu0 (set_mempolicy)" pagestorm fault-pages --policy interleave=0,1 --pages 8192 --cpu 0 --check
check "fault-pages bind=1 from cpu0: other_node" pagestorm fault-pages --policy bind=1 --pages 8192 --cpu 0 --check
check "fault-pages bind=0 from cpu0: local" pagestorm fault-pages --policy bind=0 --pages 8192 --cpu 0 --check
check "fault-pages preferred=1 from cpu0" pagestorm fault-pages --policy preferred=1 --pages 8192 --cpu 0 --check
check "fault-pages preferred-many=1 from cpu0" pagestorm fault-pages --policy preferred-many=1 --pages 8192 --cpu 0 --check
check "fault-pages interleave=0,1 from cpu1 (mbind)" pagestorm fault-pages --policy interleave=0,1 --pages 8192 --cpu 1 --mbind --check
check "fault-pages local from cpu1" pagestorm fault-pages --policy local --pages 8192 --cpu 1 --check

# A run with a group policy on real bound arenas: placement verified, counters split.
check "run numa-machine.toml with --mempolicy node=interleave=0,1 --numastat" \
    pagestorm run Workloads/numa-machine.toml --no-results --no-overhead --mempolicy node=interleave=0,1 --numastat
has "verdict: ok" && has "interleave_hit" || fails=$((fails + 1))

# The matrix on the real 2-node kernel (TCG: numbers are emulation's).
check "pagestorm numa (matrix, fallback, policies)" pagestorm numa --duration-ms 100 --touch-pages 512 --arena-mib 16
has "allocations/s" && has "fallback order" && has "policy comparison" || fails=$((fails + 1))

echo "numa-lab checks: $fails failed"
exit $fails
