#!/bin/sh
# ab --co-run on a real A/B (docs/gate.md "Co-run rounds"): BIN against a wrapper of BIN that runs
# Workloads/gate-timing.toml with EXTRA more bytes touched per page (default 24: about +10% here), then BIN
# against itself. Prints the two verdict lines and exit codes (10 regressed, 0 unchanged are expected).
# usage: scripts/co-run/ab-demo.sh BIN [EXTRA] [ROUNDS]    (run from the repository root; release build)
set -u
BIN=$(readlink -f "$1"); EXTRA=${2:-24}; ROUNDS=${3:-5}
W=Workloads/gate-timing.toml
[ -x "$BIN" ] || { echo "ab-demo: $1 is not an executable" >&2; exit 2; }
[ -f "$W" ] || { echo "ab-demo: run it from the repository root ($W not found)" >&2; exit 2; }
T=$(mktemp -d /tmp/ab-demo.XXXXXX)
TOUCH=$(sed -n 's/^touch = \([0-9]*\).*/\1/p' "$W")
sed "s/^touch = $TOUCH/touch = $((TOUCH + EXTRA))/" "$W" > "$T/slower.toml"
cat > "$T/b-slower.sh" <<EOS
#!/bin/sh
# The same binary on the same command, with the workload swapped for one that touches $EXTRA more bytes per page.
for a in "\$@"; do shift; [ "\$a" = "$W" ] && a="$T/slower.toml"; set -- "\$@" "\$a"; done
exec "$BIN" "\$@"
EOS
chmod +x "$T/b-slower.sh"
for b in "$T/b-slower.sh" "$BIN"; do
  out="$T/out-$(basename "$b").txt"
  "$BIN" ab --a "$BIN" --b "$b" --rounds "$ROUNDS" --co-run --thresholds results/baselines/gate/corun-thresholds.toml \
      --output-dir "$T/ab-$(basename "$b")" -- run "$W" --duration-ms 200 --warmup-ms 40 > "$out" 2> "$out.err"
  rc=$?
  echo "B = $(basename "$b"): exit $rc"
  grep -E "operations per CPU-second|regression of|^ab:" "$out"
done
echo "results in $T"
