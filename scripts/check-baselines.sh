#!/usr/bin/env bash
# The project's own regression gate (`make check-baselines`, run by .ci/run).
#
# Runs the noise-free metrics of the release build and checks them against the
# committed baselines in results/baselines/gate/:
#   - exact counters of deterministic runs (one worker, an op count, seed 1):
#     the built-in default workload, scenario 2 (OOM kills, scaled x3 so one
#     worker runs out of memory) and scenario 8 (fail_page_alloc at 10%);
#   - instructions per alloc+free pair of the single-threaded fast-path
#     benchmarks under valgrind --tool=callgrind.
# Any changed counter is a behaviour change and fails; instructions fail when
# they grow by more than 1% (the documented default thresholds).
#
#   scripts/check-baselines.sh            check (exit 0 ok; 1 a check failed; 2 bad setup)
#   scripts/check-baselines.sh --refresh  record new baselines from this build, then commit
#                                         them with the reason in the message, e.g.
#     git commit -m "baselines: refresh (pcp refill batch changed: fewer pcp_refill)" results/baselines/gate
#
# PAGESTORM=path/to/pagestorm selects the binary (default .build/release/pagestorm,
# built by `make build`; this script never builds).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${PAGESTORM:-.build/release/pagestorm}
base=results/baselines/gate
refresh=0
[ "${1:-}" = "--refresh" ] && refresh=1
[ -x "$bin" ] || { echo "check-baselines: $bin is missing; run make build first" >&2; exit 2; }
out=$(mktemp -d /tmp/pagestorm-check-XXXXXX)
trap 'rm -rf "$out"' EXIT

status=0
t0=$(date +%s)
# det NAME [WORKLOAD.toml] FLAGS...: one deterministic run into $out/NAME.json
det() {
    local name=$1; shift
    "$bin" run "$@" --deterministic --no-overhead --quiet --output "$out/$name.json" >/dev/null 2>"$out/$name.err"
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then   # 1 = verdict failures (scenario 8 fails allocations on purpose)
        echo "check-baselines: pagestorm run for $name exited $rc:" >&2; cat "$out/$name.err" >&2; status=1
    fi
}
det default --ops 200000
det scenario2-oom Workloads/scenario2-hocko-retries.toml --ops 20000 --scale 3
det scenario8-fault-injection Workloads/scenario8-fault-injection.toml --ops 50000 \
    --fail-page-alloc probability=10,interval=1,times=-1,min-order=0,ignore-gfp-wait=N
if command -v valgrind >/dev/null 2>&1; then
    "$bin" bench --instructions --iterations 200000 --output "$out/instructions.json" >/dev/null 2>"$out/instructions.err" \
        || { echo "check-baselines: bench --instructions failed:" >&2; cat "$out/instructions.err" >&2; status=1; }
else
    echo "check-baselines: valgrind is not installed (scripts/ensure-deps.sh --valgrind installs it); instructions not checked" >&2
    status=1
fi

if [ $refresh -eq 1 ]; then
    [ $status -eq 0 ] || { echo "check-baselines: not refreshing: a measurement failed" >&2; exit 1; }
    mkdir -p "$base"
    for f in "$out"/*.json; do cp "$f" "$base/"; done
    echo "check-baselines: wrote $(ls "$base"/*.json | wc -l) baselines to $base ($(git rev-parse --short HEAD 2>/dev/null || echo '?')); commit them with the reason for the change"
    exit 0
fi

for f in "$out"/*.json; do
    name=$(basename "$f" .json)
    echo "== $name"
    "$bin" check --baseline "$base/$name.json" "$f"
    rc=$?
    case $rc in
        0) ;;
        11) echo "check-baselines: $name improved; refresh the baselines (scripts/check-baselines.sh --refresh) to keep the gate tight" ;;
        *) status=1 ;;
    esac
done
echo "check-baselines: $(( $(date +%s) - t0 )) s; $([ $status -eq 0 ] && echo ok || echo FAILED)"
exit $status
