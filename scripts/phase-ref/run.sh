#!/usr/bin/env bash
# Does a memory-bound reference loop see this VM's speed phases? (docs/gate.md, "Where the run-to-run spread
# comes from"). Times scripts/phase-ref/ref.c (20 ms of thread CPU time writing 64 B to each page of a 64 MiB
# buffer in random page order, pinned to CPU 1) before and after each of N gate-timing runs of 100 ms, then prints
# the correlation of the run's speed (ops per CPU-second) with the reference's, and the adjacent-run spread raw and
# normalised by the reference. usage: scripts/phase-ref/run.sh [PAGESTORM] [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
P=${1:-.build/release/pagestorm}; N=${2:-70}
[ -x "$P" ] || { echo "phase-ref: no pagestorm binary at $P (make build)" >&2; exit 2; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cc -O2 -o "$T/ref" scripts/phase-ref/ref.c
for i in $(seq 1 "$N"); do
  r1=$("$T/ref" | cut -d' ' -f1)
  "$P" run Workloads/gate-timing.toml --duration-ms 100 --quiet --output "$T/r$i.json" > /dev/null
  r2=$("$T/ref" | cut -d' ' -f1)
  python3 -c "
import json; d = json.load(open('$T/r$i.json'))
print($i, $r1, d['throughput']['operations'] / (sum(w['cpuNs'] for w in d['noise']['workers']) / 1e9), $r2)"
done > "$T/out.txt"
python3 - "$T/out.txt" <<'PY'
import math, statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
v = [float(r[2]) for r in rows]; ref = [(float(r[1]) + float(r[3])) / 2 for r in rows]
def corr(a, b):
    ma, mb = st.mean(a), st.mean(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
print(f"{len(v)} runs: {min(v)/1e6:.2f}-{max(v)/1e6:.2f}M ops per CPU-second; reference {min(ref):.2f}-{max(ref):.2f} ns per page")
print(f"correlation of log run speed with log reference speed: {corr([math.log(x) for x in v], [-math.log(x) for x in ref]):.2f}")
for name, s in (("raw", v), ("normalised by the reference", [x * y for x, y in zip(v, ref)])):
    d = [math.log(s[i + 1] / s[i]) for i in range(len(s) - 1)]
    print(f"adjacent runs, {name}: sd {st.pstdev(d):.3f}, split by >15% {sum(abs(x) > 0.15 for x in d) / len(d):.0%}, by >5% {sum(abs(x) > 0.05 for x in d) / len(d):.0%}")
PY
