#!/usr/bin/env bash
# test-sweep-cli.sh: checks `pagestorm sweep` and `pagestorm merge` from the
# outside, with the release binary (.build/release/pagestorm; `make build`):
# every bad input of issue 12 gets one error naming the file and line or the
# argument, and exit code 2; a sweep resumes, refuses a changed sweep file,
# moves old results aside with --restart (nothing deleted); a run whose
# process is killed is recorded as failed and the sweep goes on (exit 3),
# and the next invocation runs it again; Ctrl-C (SIGINT) stops the sweep with
# 130, SIGTERM with 143, and the next invocation resumes. Part of `make test-slurm` (about 15 s).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${PAGESTORM:-$ROOT/.build/release/pagestorm}"
[ -x "$BIN" ] || { echo "test-sweep-cli: $BIN is missing: run 'make build' first" >&2; exit 1; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
cd "$ROOT"
fails=0
fail() { echo "test-sweep-cli: FAIL: $*" >&2; fails=$((fails + 1)); }

# expect_error CODE PATTERN -- ARGS...: the command exits with CODE and its stderr has one line matching PATTERN.
expect_error() {
    local code=$1 pattern=$2; shift 3
    local err rc
    err=$("$BIN" "$@" 2>&1 >/dev/null); rc=$?
    [ "$rc" = "$code" ] || fail "$* exited $rc, expected $code: $err"
    [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] || fail "$*: expected one error line, got: $err"
    printf '%s\n' "$err" | grep -qE -- "$pattern" || fail "$*: error does not match /$pattern/: $err"
}

base='workload = "default"
[set]
"run.duration_ms" = 30
"run.warmup_ms" = 0
"memory.arena_mib" = 16
'
w() { printf '%s\n' "$2" > "$T/$1"; }
w unknown.toml "$base
[[axis]]
key = \"policy.retyr\"
values = [\"kernel\"]"
expect_error 2 "unknown.toml:9: .*retyr" -- sweep "$T/unknown.toml" --dry-run
w type.toml "$base
[[axis]]
key = \"group[0].workers\"
values = [1, \"two\"]"
expect_error 2 "type.toml:9: .*integer" -- sweep "$T/type.toml" --dry-run
w empty.toml "$base
[[axis]]
key = \"policy.oom\"
values = []"
expect_error 2 "empty.toml:9: .*empty" -- sweep "$T/empty.toml" --dry-run
w contra.toml "$base
[[axis]]
key = \"memory.swap_pages\"
values = [0, 64]
[[axis]]
key = \"memory.swap_mib\"
values = [1]"
expect_error 2 "contra.toml:10: .*contradictory" -- sweep "$T/contra.toml" --dry-run
w good.toml "repetitions = 1
$base
[[axis]]
key = \"policy.oom\"
values = [\"async\", \"sync\"]"
for s in 0/0 3/2 x; do expect_error 2 "^pagestorm: --shard: '$s'" -- sweep "$T/good.toml" --dry-run --shard "$s"; done
SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_COUNT=4 expect_error 2 "SLURM_ARRAY_TASK_ID" -- sweep "$T/good.toml" --dry-run
JOB_COMPLETION_INDEX=1 expect_error 2 "JOB_COMPLETION_INDEX.*--shard-count" -- sweep "$T/good.toml" --dry-run
[ "$(JOB_COMPLETION_INDEX=1 "$BIN" sweep "$T/good.toml" --dry-run --shard-count 2 | grep -c '^run ')" = 1 ] || fail "JOB_COMPLETION_INDEX=1 --shard-count 2 should list 1 of 2 runs"
[ "$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 "$BIN" sweep "$T/good.toml" --dry-run | grep -c '^run ')" = 1 ] || fail "the Slurm shard should list 1 of 2 runs"

# Run, resume, refuse a changed file, --restart.
R="$T/results"
"$BIN" sweep "$T/good.toml" --results-dir "$R" > "$T/out1" || fail "the sweep failed: $(cat "$T/out1")"
[ "$(find "$R/good" -name 'rep-1.json' | wc -l)" = 2 ] || fail "expected 2 results: $(find "$R")"
grep -q "0 run(s) completed now, 2 already complete" <("$BIN" sweep "$T/good.toml" --results-dir "$R") || fail "a second run did not resume"
w good.toml "repetitions = 2
$base
[[axis]]
key = \"policy.oom\"
values = [\"async\", \"sync\"]"
expect_error 2 "good.toml: .*different version of this sweep.*--restart" -- sweep "$T/good.toml" --results-dir "$R"
"$BIN" sweep "$T/good.toml" --results-dir "$R" --restart > "$T/out2" || fail "--restart failed: $(cat "$T/out2")"
[ "$(find "$R"/good.replaced-* -name 'rep-1.json' | wc -l)" = 2 ] || fail "--restart did not keep the old results aside"
[ "$(find "$R/good" -name 'rep-*.json' | wc -l)" = 4 ] || fail "--restart did not run the new sweep"
"$BIN" merge "$R/good" > "$T/m1" || fail "merge failed: $(cat "$T/m1")"
[ "$(wc -l < "$R/good/summary.csv")" = 3 ] || fail "summary.csv: expected a header and 2 rows"
expect_error 2 "is from another sweep" -- merge "$R/good" "$R"/good.replaced-* --output "$T/mm"
expect_error 2 "not a sweep results folder" -- merge "$T" --output "$T/mm"

# A run whose process dies is recorded as failed; the sweep goes on and exits 3; the next invocation runs it again.
w slow.toml 'workload = "default"
seed = 3
[set]
"run.duration_ms" = 2500
"run.warmup_ms" = 0
[[axis]]
key = "policy.oom"
values = ["async", "sync"]'
"$BIN" sweep "$T/slow.toml" --results-dir "$R" > "$T/out3" 2>&1 &
sp=$!
child=""
for _ in $(seq 100); do child=$(pgrep -P $sp | head -1); [ -n "$child" ] && break; sleep 0.05; done
[ -n "$child" ] && kill -KILL "$child"
wait $sp; rc=$?
[ "$rc" = 3 ] || fail "a sweep with a killed run exited $rc, expected 3: $(cat "$T/out3")"
[ "$(find "$R/slow" -name 'rep-1.failed.json' | wc -l)" = 1 ] || fail "the killed run has no failure record"
grep -q '"kind" : "crashed"' "$R"/slow/*/rep-1.failed.json || fail "the failure record does not say crashed"
[ "$(find "$R/slow" -name 'rep-1.json' | wc -l)" = 1 ] || fail "the sweep did not go on after the killed run"
"$BIN" merge "$R/slow" > "$T/m2"; rc=$?
[ "$rc" = 1 ] && grep -q 'crashed' "$T/m2" || fail "merge of a sweep with a failed run: exit $rc (expected 1) or no reason: $(cat "$T/m2")"

# Ctrl-C: the sweep stops with 130, keeps no result for the interrupted run, and resumes.
"$BIN" sweep "$T/slow.toml" --results-dir "$R" > "$T/out4" 2>&1 &
sp=$!
for _ in $(seq 100); do pgrep -P $sp >/dev/null && break; sleep 0.05; done
sleep 0.5; kill -INT $sp
wait $sp; rc=$?
[ "$rc" = 130 ] || fail "an interrupted sweep exited $rc, expected 130: $(cat "$T/out4")"
"$BIN" sweep "$T/slow.toml" --results-dir "$R" > "$T/out5" 2>&1 || fail "resuming after Ctrl-C failed: $(cat "$T/out5")"
[ "$(find "$R/slow" -name 'rep-1.json' | wc -l)" = 2 ] || fail "after resuming, both runs should be complete"
[ "$(find "$R/slow" -name 'rep-1.partial-*.json' | wc -l)" = 1 ] || fail "the interrupted run's partial results were not kept aside"
"$BIN" merge "$R/slow" > /dev/null || fail "merge after resuming should find every run"

# SIGTERM (scancel, timeout): the same stop (partial results kept aside), exit 143 as `pagestorm run`.
"$BIN" sweep "$T/slow.toml" --results-dir "$T/term" > "$T/out6" 2>&1 &
sp=$!
for _ in $(seq 100); do pgrep -P $sp >/dev/null && break; sleep 0.05; done
sleep 0.5; kill -TERM $sp
wait $sp; rc=$?
[ "$rc" = 143 ] || fail "a sweep sent SIGTERM exited $rc, expected 143: $(cat "$T/out6")"
[ "$(find "$T/term/slow" -name 'rep-1.partial-*.json' | wc -l)" = 1 ] || fail "the terminated run's partial results were not kept aside"

if [ $fails -gt 0 ]; then echo "test-sweep-cli: $fails check(s) failed" >&2; exit 1; fi
echo "test-sweep-cli: ok"
