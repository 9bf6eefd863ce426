#!/bin/sh
# ab --co-run on a real A/B (docs/gate.md "Co-run rounds"): BIN against a wrapper of BIN that runs
# Workloads/gate-timing.toml with EXTRA more bytes touched per page (default 24: about +8% here; 40: about +10%),
# then BIN against itself. Prints the two verdict lines and exit codes; exits 0 when they are the expected ones
# (10 regressed, then 0 unchanged), 1 when not, 2 on bad arguments.
# usage: scripts/co-run/ab-demo.sh BIN [EXTRA] [ROUNDS]    (run from the repository root; release build)
set -u
[ $# -ge 1 ] || { echo "usage: scripts/co-run/ab-demo.sh BIN [EXTRA] [ROUNDS]" >&2; exit 2; }
BIN_ARG=$1; EXTRA=${2:-24}; ROUNDS=${3:-5}; NAME=ab-demo
case "$EXTRA$ROUNDS" in *[!0-9]*) echo "ab-demo: EXTRA and ROUNDS must be whole numbers" >&2; exit 2;; esac
. "$(dirname "$0")/slower-build.sh"
got=""
for b in "$T/slower.sh" "$BIN"; do
  out="$T/out-$(basename "$b").txt"
  "$BIN" ab --a "$BIN" --b "$b" --rounds "$ROUNDS" --co-run --thresholds results/baselines/gate/corun-thresholds.toml \
      --output-dir "$T/ab-$(basename "$b")" -- run "$W" --duration-ms 200 --warmup-ms 40 > "$out" 2> "$out.err"
  rc=$?
  echo "B = $(basename "$b"): exit $rc"
  grep -E "operations per CPU-second|regression of|^ab:" "$out"
  got="$got $rc"
done
echo "results in $T"
[ "$got" = " 10 0" ] || { echo "ab-demo: expected exit 10 then 0, got$got" >&2; exit 1; }
