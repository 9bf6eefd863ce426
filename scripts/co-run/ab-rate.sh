#!/bin/sh
# How often does `ab --co-run` (two processes, the tool a CI job runs) alarm? N A/A A/Bs of BIN against itself and
# N of BIN against a wrapper that touches EXTRA more bytes per page on Workloads/gate-timing.toml (default 24, about
# +8% here; 40: about +10%), interleaved, 5 rounds each, corun-thresholds.toml. Prints per A/B its exit code and the paired median
# of operations per CPU-second, then the counts: A/A false alarms (exit 10 or 11) and detections (exit 10).
# usage: scripts/co-run/ab-rate.sh BIN [N] [EXTRA]     (run from the repository root; release build)
set -u
[ $# -ge 1 ] || { echo "usage: scripts/co-run/ab-rate.sh BIN [N] [EXTRA]" >&2; exit 2; }
BIN_ARG=$1; N=${2:-20}; EXTRA=${3:-24}; NAME=ab-rate
case "$N$EXTRA" in *[!0-9]*) echo "ab-rate: N and EXTRA must be whole numbers" >&2; exit 2;; esac
. "$(dirname "$0")/slower-build.sh"
aa=0; det=0
i=1
while [ $i -le "$N" ]; do
  for kind in aa slower; do
    b=$BIN; [ $kind = slower ] && b=$T/slower.sh
    out=$T/$kind-$i.txt
    "$BIN" ab --a "$BIN" --b "$b" --rounds 5 --co-run --thresholds results/baselines/gate/corun-thresholds.toml \
        --output-dir "$T/$kind-$i" -- run "$W" --duration-ms 200 --warmup-ms 40 > "$out" 2> "$out.err"
    rc=$?
    med=$(grep "^operations per CPU-second" "$out" | sed -n 's/.*paired: median \([^,]*\),.*/\1/p')
    echo "$kind $i: exit $rc, paired median $med"
    case "$kind:$rc" in aa:10|aa:11) aa=$((aa + 1));; slower:10) det=$((det + 1));; esac
    case "$rc" in 0|10|11) ;; *) echo "ab-rate: ab exited $rc (see $out.err)" >&2; exit 3;; esac
  done
  i=$((i + 1))
done
# The step as these A/Bs read it: the median over the slower A/Bs of their paired median change (a rate: -9.1% is +10% time).
step=$(for f in "$T"/slower-*.txt; do grep "^operations per CPU-second" "$f" | sed -n 's/.*paired: median +*\([-0-9.]*\)%,.*/\1/p'; done | sort -n | awk '{v[NR]=$1} END {if (NR) print (NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}')
echo "A/A false alarms: $aa/$N; detections at +$EXTRA B: $det/$N; median paired change of the slower A/Bs: $step% of operations per CPU-second (results in $T)"
