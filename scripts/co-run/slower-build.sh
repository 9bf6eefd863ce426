# Sourced by ab-demo.sh and ab-rate.sh (POSIX sh): checks BIN, then makes a temporary folder $T with a "build" that
# is BIN on a slower workload: $T/slower.sh runs BIN with every argument Workloads/gate-timing.toml replaced by
# $T/slower.toml, the same workload with EXTRA more bytes touched per page. Needs NAME (for messages), BIN_ARG
# (as given), EXTRA; sets BIN (absolute), W, T.
W=Workloads/gate-timing.toml
[ -x "$BIN_ARG" ] || { echo "$NAME: $BIN_ARG is not an executable" >&2; exit 2; }
[ -f "$W" ] || { echo "$NAME: run it from the repository root ($W not found)" >&2; exit 2; }
BIN=$(readlink -f "$BIN_ARG")
T=$(mktemp -d "/tmp/$NAME.XXXXXX")
TOUCH=$(sed -n 's/^touch = \([0-9]*\).*/\1/p' "$W")
sed "s/^touch = $TOUCH/touch = $((TOUCH + EXTRA))/" "$W" > "$T/slower.toml"
cat > "$T/slower.sh" <<EOS
#!/bin/sh
# The same binary on the same command, with the workload swapped for one that touches $EXTRA more bytes per page.
for a in "\$@"; do shift; [ "\$a" = "$W" ] && a="$T/slower.toml"; set -- "\$@" "\$a"; done
exec "$BIN" "\$@"
EOS
chmod +x "$T/slower.sh"
