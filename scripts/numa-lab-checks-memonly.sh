# numa-lab-checks-memonly.sh: NUMA checks that need a real kernel with a
# memory-only node (node 2: memory, no CPUs; nodes 0 and 1 have a CPU each).
# Runs INSIDE the guest of
#   scripts/numa-lab.sh --nodes memonly --bin .build/release/pagestorm --sh-file scripts/numa-lab-checks-memonly.sh
# as `make test-numa-lab` does. Prints PASS or FAIL per check with its output;
# the exit code is the number of failures.
fails=0
check() {
    name="$1"; shift
    if "$@" >/tmp/check.out 2>&1; then echo "PASS $name"; else echo "FAIL $name (exit $?)"; fails=$((fails + 1)); fi
    sed 's/^/    /' /tmp/check.out
}
has() { grep -q "$1" /tmp/check.out || { echo "    missing: $1"; return 1; }; }
hasnt() { ! grep -q "$1" /tmp/check.out || { echo "    unexpected: $1"; return 1; }; }

# Discovery keeps the memory-only node and libnuma's numbers; zonelists by the real distances;
# every arena (the memory-only node's too) bound to its node and verified by move_pages.
check "zoneinfo: nodes 0,1,2 (2 memory-only), zonelists, arenas verified" pagestorm zoneinfo --arena-mib 8 --extras
has "node0: cpus 0; node1: cpus 1; node2: memory only" && has "machine nodes 0,1,2" &&
    has "^# zonelist of node0: 0(Normal) 2(Normal) 1(Normal)" && has "^# zonelist of node2: 2(Normal) 0(Normal) 1(Normal)" &&
    has "^Node 2, zone   Normal" &&
    { [ "$(grep -c '^# placement: .*(verified)' /tmp/check.out)" = 3 ] || { echo "    missing: 3 lines '# placement: ... (verified)'"; false; }; } ||
    { echo "FAIL zoneinfo content"; fails=$((fails + 1)); }

# The real kernel against the model: bind to the memory-only node (other_node there).
check "fault-pages bind=2 from cpu0 (memory-only node 2)" pagestorm fault-pages --policy bind=2 --pages 8192 --cpu 0 --check
# numa_miss / numa_foreign: node 2 runs short. The model starts with the kernel's headroom on every node
# (free pages above LOW), so both serve node 2 to LOW and then fall back to node 0 (distance 17).
check "fault-pages preferred=2 beyond node 2's headroom: numa_miss on node0, numa_foreign on node2" \
    pagestorm fault-pages --policy preferred=2 --pages 32768 --cpu 0 --headroom --check

# The matrix: CPU rows node0 and node1, memory columns node0 node1 node2.
check "pagestorm numa (memory-only node: a column, no row)" pagestorm numa --duration-ms 50 --touch-pages 256 --arena-mib 8 --no-fallback --policies 'local;bind=2'
has "cpu.mem           node0       node1       node2" && hasnt "^node2 " || fails=$((fails + 1))

echo "numa-lab checks: $fails failed"
exit $fails
