# numa-lab-checks-memonly.sh: NUMA checks that need a real kernel with a
# memory-only node and node numbers with a gap. The guest boots nodes 0 (cpu 0),
# 1 (cpu 1), 2 (cpu 2, no memory) and 3 (memory, no CPUs); this script first takes
# CPU 2 offline, so node 2 has neither CPUs nor memory and the machine's nodes
# are 0, 1 and 3 (libnuma's numbers, not contiguous; node 3 memory-only).
# Runs INSIDE the guest of
#   scripts/numa-lab.sh --nodes memonly --bin .build/release/pagestorm --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks-memonly.sh
# as `make test-numa-lab` does. Prints PASS or FAIL per check with its output;
# the exit code is the number of failures.
# check, has, hasnt and $fails: scripts/numa-lab-checklib.sh, run before this file.

# CPU 2 offline: node 2 keeps neither CPUs nor memory (a gap in the node numbers).
offline_cpu2() {
    echo 0 > /sys/devices/system/cpu/cpu2/online || return 1
    echo "cpus online $(cat /sys/devices/system/cpu/online); nodes online $(cat /sys/devices/system/node/online)"
    echo "has_cpu $(cat /sys/devices/system/node/has_cpu); has_memory $(cat /sys/devices/system/node/has_memory)"
    [ "$(cat /sys/devices/system/node/has_cpu)" = "0-1" ] && [ "$(cat /sys/devices/system/node/has_memory)" = "0-1,3" ]
}
check "cpu2 offline: has_cpu 0-1, has_memory 0-1,3 (node 2 empty)" offline_cpu2

# Discovery keeps the memory-only node and libnuma's numbers (0, 1, 3: node 2 is a gap); zonelists by the
# real distances; every arena (the memory-only node's too) bound to its node and verified by move_pages.
check "zoneinfo: nodes 0,1,3 (gap at 2; 3 memory-only), zonelists, arenas verified" pagestorm zoneinfo --arena-mib 8 --extras
has "node0: cpus 0; node1: cpus 1; node3: memory only" && has "machine nodes 0,1,3" &&
    has "^# zonelist of node0: 0(Normal) 3(Normal) 1(Normal)" && has "^# zonelist of node1: 1(Normal) 0(Normal) 3(Normal)" &&
    has "^# zonelist of node3: 3(Normal) 0(Normal) 1(Normal)" &&
    has "^Node 3, zone   Normal" && hasnt "^Node 2, zone" &&
    { [ "$(grep -c '^# placement: .*(verified)' /tmp/check.out)" = 3 ] || { echo "    missing: 3 lines '# placement: ... (verified)'"; false; }; } ||
    { echo "FAIL zoneinfo content"; fails=$((fails + 1)); }

# The real kernel against the model: bind to the memory-only node (other_node there).
check "fault-pages bind=3 from cpu0 (memory-only node 3)" pagestorm fault-pages --policy bind=3 --pages 8192 --cpu 0 --check
# numa_miss / numa_foreign: node 3 runs short. The model starts with the kernel's headroom on every node
# (free pages above LOW), so both serve node 3 to LOW and then fall back to node 0 (distance 17).
check "fault-pages preferred=3 beyond node 3's headroom: numa_miss on node0, numa_foreign on node3" \
    pagestorm fault-pages --policy preferred=3 --pages 32768 --cpu 0 --headroom --check
# Node numbers with a gap against the real kernel: interleave over 0 and 3 from CPU 1 (both remote to it).
check "fault-pages interleave=0,3 from cpu1 (node numbers 0,1,3)" pagestorm fault-pages --policy interleave=0,3 --pages 8192 --cpu 1 --check
# A node that is a gap is refused, naming it (exit 2).
refuse_node2() { pagestorm fault-pages --policy bind=2 --pages 16 --cpu 0; [ $? = 2 ]; }
check "fault-pages bind=2 refused (node 2 is a gap), exit 2" refuse_node2

# The matrix: CPU rows node0 and node1, memory columns node0 node1 node3.
check "pagestorm numa (memory-only node: a column, no row)" pagestorm numa --duration-ms 50 --touch-pages 256 --arena-mib 8 --no-fallback --policies 'local;bind=3'
has "cpu.mem           node0       node1       node3" && hasnt "^node3 " && hasnt "node2" || fails=$((fails + 1))

echo "numa-lab checks: $fails failed"
exit $fails
