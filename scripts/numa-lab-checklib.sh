# numa-lab-checklib.sh: the helpers of the guest check scripts, run first in the
# same guest shell (busybox sh): `scripts/numa-lab.sh ... --sh-file scripts/numa-lab-checklib.sh
# --sh-file scripts/numa-lab-checks.sh` (more than one --sh-file runs them as one script).
# check NAME CMD...: runs CMD, prints PASS or FAIL with its output indented, counts failures in $fails.
# has / hasnt PATTERN: the last check's output holds (or does not hold) PATTERN.
fails=0
check() {
    name="$1"; shift
    if "$@" >/tmp/check.out 2>&1; then echo "PASS $name"; else echo "FAIL $name (exit $?)"; fails=$((fails + 1)); fi
    sed 's/^/    /' /tmp/check.out
}
has() { grep -q "$1" /tmp/check.out || { echo "    missing: $1"; return 1; }; }
hasnt() { ! grep -q "$1" /tmp/check.out || { echo "    unexpected: $1"; return 1; }; }
