# numa-lab-checks-weighted.sh: weighted interleave (MPOL_WEIGHTED_INTERLEAVE,
# set_mempolicy mode 6, Linux 6.9+) against the real kernel. Runs INSIDE the
# memonly guest booted with a newer kernel, as `make test-numa-lab` does:
#   scripts/numa-lab.sh --nodes memonly --kernel backports --bin .build/release/pagestorm --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks-weighted.sh
# (Debian 12's own kernel is 6.1: no weighted interleave; bookworm-backports has 6.12.)
# It takes CPU 2 offline first (as numa-lab-checks-memonly.sh does): nodes 0 and 1
# (a CPU each) and 3 (memory only). In the plain 2-node guest the node-3 check is skipped.
# Each check prints PASS or FAIL with its output; the exit code is the number of failures.
# check, has, hasnt and $fails: scripts/numa-lab-checklib.sh, run before this file.
W=/sys/kernel/mm/mempolicy/weighted_interleave
weights() { echo "$(cat $W/node0) $(cat $W/node1)"; }
check "kernel $(uname -r) has weighted interleave ($W)" ls $W
before=$(weights 2>/dev/null)
if [ -e /sys/devices/system/cpu/cpu2/online ]; then
    check "cpu2 offline: nodes 0, 1 with a CPU each, memory-only node 3" \
        sh -c 'echo 0 > /sys/devices/system/cpu/cpu2/online && cat /sys/devices/system/node/has_cpu /sys/devices/system/node/has_memory'
    has "^0-1$" && has "^0-1,3$" || fails=$((fails + 1))
fi

# 0:3,1:1 from CPU 0 with set_mempolicy: 3/4 of the pages on node 0 (local_node),
# 1/4 on node 1 (other_node), kernel and model within 5% of the pages on every counter.
check "fault-pages weighted-interleave=0:3,1:1 from cpu0 (set_mempolicy)" \
    pagestorm fault-pages --policy weighted-interleave=0:3,1:1 --pages 8192 --cpu 0 --check
has "kernel placement (move_pages): node0: 6144, node1: 2048" || fails=$((fails + 1))
check "the weights are put back after the run (before: $before)" \
    sh -c "now=\"\$(cat $W/node0) \$(cat $W/node1)\"; echo \"weights node0 node1 now: \$now\"; [ \"\$now\" = \"$before\" ]"

# The weights the other way round, from CPU 1, with mbind on the mapping only.
check "fault-pages weighted-interleave=0:1,1:3 from cpu1 (mbind)" \
    pagestorm fault-pages --policy weighted-interleave=0:1,1:3 --pages 8192 --cpu 1 --mbind --check
has "kernel placement (move_pages): node0: 2048, node1: 6144" || fails=$((fails + 1))

# Weights over a node-number gap onto the memory-only node 3 (the CXL case weighted
# interleave was made for), from CPU 1: every page other_node, 3/4 on node 0.
if [ -d /sys/devices/system/node/node3 ]; then
    check "fault-pages weighted-interleave=0:3,3:1 from cpu1 (memory-only node 3)" \
        pagestorm fault-pages --policy weighted-interleave=0:3,3:1 --pages 8192 --cpu 1 --check
    has "kernel placement (move_pages): node0: 6144, node1: 0, node2: 0, node3: 2048" || fails=$((fails + 1))
fi

# Plain interleave on the same kernel: counted as interleave_hit (the contrast).
check "fault-pages interleave=0,1 from cpu0 on $(uname -r)" pagestorm fault-pages --policy interleave=0,1 --pages 8192 --cpu 0 --check

# Linux 6.9-6.12 count no interleave_hit for weighted interleave (6.13+ do):
# the model with 6.13's rule must disagree here, on interleave_hit only.
case "$(uname -r)" in
6.9.* | 6.1[0-2].*)
    check "6.13's rule (--weighted-interleave-hit yes) disagrees with $(uname -r) on interleave_hit" \
        sh -c '! pagestorm fault-pages --policy weighted-interleave=0:3,1:1 --pages 8192 --cpu 0 --weighted-interleave-hit yes --check'
    has "DISAGREE node0 interleave_hit: kernel 0 " && has "DISAGREE node1 interleave_hit: kernel 0 " && hasnt "DISAGREE node[01] numa_hit" ||
        fails=$((fails + 1))
    ;;
esac

echo "numa-lab checks: $fails failed"
exit $fails
