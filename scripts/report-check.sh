#!/usr/bin/env bash
# report-check.sh: `pagestorm report` checked in a real browser (make test-report, run by .ci/run).
#
# 1. Installs Debian's chromium if it is missing (as root, apt-get update first).
# 2. Makes real inputs with the release binary (.build/release/pagestorm, from
#    `make build`; never builds): a small sweep (Workloads/sweeps/ci-small.toml,
#    8 runs) merged, a single run of scenario 1 (it stalls and OOM-kills), a run
#    of two worker groups (latency by group and label), a short load curve, the NUMA matrix of a declared 2-node topology, and a one-scenario
#    debate at a small scale.
# 3. `pagestorm report` of all of them -> .ci-artifacts/report/report.html.
# 4. Headless Chromium: --dump-dom (the page as the browser built it) and a PNG
#    screenshot (.ci-artifacts/report/report.png, git-ignored: the CI artifact).
# 5. Checks: the browser exited 0 and logged no page or console error; the
#    dumped DOM holds every chart the HTML file holds and every expected series
#    by name, each with data points; the PNG is mostly white with the series'
#    colours in it (not blank); bad input is refused with exit 2.
# Exit 0 when every check passes, 1 otherwise (each failure is printed).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${PAGESTORM:-$ROOT/.build/release/pagestorm}"
OUT="${REPORT_CHECK_OUT:-$ROOT/.ci-artifacts/report}"
cd "$ROOT"
[ -x "$BIN" ] || { echo "report-check: $BIN is missing: run 'make build' first" >&2; exit 1; }
fails=0
fail() { echo "report-check: FAIL: $*" >&2; fails=$((fails + 1)); }
step() { echo "report-check: $*"; }

# 1. Chromium (Debian's package).
CHROME="$(command -v chromium || true)"
if [ -z "$CHROME" ]; then
    if [ "$(id -u)" != 0 ]; then echo "report-check: chromium is not installed and this is not root (apt-get install chromium)" >&2; exit 1; fi
    step "installing chromium (apt-get update; apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || { echo "report-check: apt-get update failed" >&2; exit 1; }
    timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null || { echo "report-check: apt-get install chromium failed" >&2; exit 1; }
    CHROME="$(command -v chromium || true)"
    [ -n "$CHROME" ] || { echo "report-check: chromium is still missing after apt-get install" >&2; exit 1; }
fi
step "$("$CHROME" --version 2>/dev/null | head -1)"

# 2. Real inputs (a fresh folder each time: results are never overwritten).
rm -rf "$OUT"
mkdir -p "$OUT"
expect_rc() { # expect_rc "allowed codes" what -- command...
    local allowed=$1 what=$2; shift 3
    "$@" > "$OUT/$what.log" 2>&1
    local rc=$?
    case " $allowed " in *" $rc "*) ;; *) fail "$what exited $rc (expected one of $allowed); its output: $(tail -5 "$OUT/$what.log")";; esac
}
step "inputs: sweep ci-small (8 runs), scenario 1, load curve, NUMA matrix, debate"
expect_rc "0" sweep -- "$BIN" sweep Workloads/sweeps/ci-small.toml --results-dir "$OUT/sweeps"
expect_rc "0" merge -- "$BIN" merge "$OUT/sweeps/ci-small"
# Scenario 1 deadlocks (exit 5) after a stall and OOM kills: a run with events to draw.
expect_rc "0 1 4 5" run -- "$BIN" run Workloads/scenario1-oom-victim-lock.toml --duration-ms 600 --no-overhead --output "$OUT/run.json"
# Two groups, local and remote, and a label: latency keyed by group and label.
expect_rc "0" keyed -- "$BIN" run Workloads/numa-local-remote.toml --duration-ms 150 --warmup-ms 20 --no-overhead --output "$OUT/keyed.json"
expect_rc "0" loadcurve -- "$BIN" loadcurve Workloads/open-loop-latency.toml --rates 2k,20k,200k --p99-bound 100us --duration-ms 150 --warmup-ms 20 --quiet --output "$OUT/loadcurve.json"
expect_rc "0" numa -- "$BIN" numa --nodes 2 --cpus-per-node 1 --duration-ms 40 --touch-pages 64 --no-fallback --policies local --output "$OUT/numa.json"
expect_rc "0" debate -- "$BIN" debate --only scenario1-oom-victim-lock --scale 0.1 --seeds 1 --output-dir "$OUT/debate" --quiet
DEBATE="$(ls "$OUT"/debate/*.json 2>/dev/null | head -1)"
[ -n "$DEBATE" ] || fail "the debate wrote no JSON file"

# 3. The report.
expect_rc "0" report -- "$BIN" report "$OUT/sweeps/ci-small" "$OUT/run.json" "$OUT/keyed.json" "$OUT/loadcurve.json" "$OUT/numa.json" ${DEBATE:+"$DEBATE"} --output "$OUT/report.html"
[ -s "$OUT/report.html" ] || { fail "no report.html"; echo "report-check: $fails check(s) failed" >&2; exit 1; }
grep -qiE "<script|https?://[a-z]" <(grep -v 'xmlns="http://www.w3.org/2000/svg"' "$OUT/report.html") && fail "report.html has a script or a network address"
# Bad input: one error, exit 2, nothing written.
echo '{"schema": "pagestorm.nothing/1"}' > "$OUT/bad.json"
"$BIN" report "$OUT/bad.json" --output "$OUT/bad.html" > /dev/null 2> "$OUT/bad.err"; rc=$?
[ "$rc" = 2 ] || fail "a file of an unknown schema exited $rc, expected 2"
grep -q "bad.json: schema \"pagestorm.nothing/1\" is not one the report draws" "$OUT/bad.err" || fail "unclear error for an unknown schema: $(cat "$OUT/bad.err")"
[ -e "$OUT/bad.html" ] && fail "a report was written despite bad input"

# 4. The browser: the DOM it built, its log, and a screenshot.
FLAGS=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions --mute-audio
       --user-data-dir="$OUT/chrome-profile" --enable-logging=stderr --v=0)
URL="file://$OUT/report.html"
step "chromium --dump-dom"
timeout 120 "$CHROME" "${FLAGS[@]}" --dump-dom "$URL" > "$OUT/dom.html" 2> "$OUT/chrome-dom.log"; rc=$?
[ "$rc" = 0 ] || fail "chromium --dump-dom exited $rc: $(tail -3 "$OUT/chrome-dom.log")"
step "chromium --screenshot"
timeout 120 "$CHROME" "${FLAGS[@]}" --window-size=1100,4000 --screenshot="$OUT/report.png" "$URL" > /dev/null 2> "$OUT/chrome-shot.log"; rc=$?
[ "$rc" = 0 ] || fail "chromium --screenshot exited $rc: $(tail -3 "$OUT/chrome-shot.log")"

# 5. Checks.
# The page's own errors: console messages (the page has no script, so any is
# a fault), failed loads, and renderer crashes. (dbus/GPU noise of a headless machine is not the page's.)
if grep -hE "CONSOLE\(|Uncaught|net::ERR_|Failed to load resource|renderer.*crash|Aw, Snap" "$OUT/chrome-dom.log" "$OUT/chrome-shot.log" > "$OUT/page-errors.txt"; then
    fail "the browser logged page errors: $(head -5 "$OUT/page-errors.txt")"
fi
grep -q "<h1>pagestorm report</h1>" "$OUT/dom.html" || fail "the dumped DOM lacks the report's heading: the page did not load"
charts_file=$(grep -o 'data-chart="[^"]*"' "$OUT/report.html" | sort -u | wc -l)
charts_dom=$(grep -o 'data-chart="[^"]*"' "$OUT/dom.html" | sort -u | wc -l)
svgs_dom=$(grep -o '<svg [^>]*class="chart' "$OUT/dom.html" | wc -l)
[ "$charts_file" -ge 12 ] || fail "only $charts_file charts in report.html"
[ "$charts_dom" = "$charts_file" ] || fail "the browser's DOM has $charts_dom charts, the file $charts_file"
[ "$svgs_dom" -ge 11 ] || fail "only $svgs_dom SVG charts in the browser's DOM"
# Every expected series, by name, with data points (non-blank charts).
need_series() { # name: present with data-points > 0
    grep -qE "data-series=\"$1\" data-points=\"[1-9][0-9]*\"" "$OUT/dom.html" || fail "series '$1' is missing or empty in the browser's DOM"
}
for s in "oom=async" "oom=sync" "workers=1,oom=async" "workers=2,oom=sync" \
         "allocations" "calls" "free pages" "min watermark" "low watermark" "high watermark" "OOM kill" \
         "alloc o0 GFP_KERNEL" "p50" "p99" "p99.9" "achieved" "allocations/s" "ns" "GB/s" "local" "remote" "big"; do
    need_series "$s"
done
# Scenario 1's stuck allocation is a stall on a quiet machine; under heavy load the watchdog may end the run
# first (ReportTests checks the stall times exactly): the series must be there, possibly empty.
grep -qE 'data-series="stall \(start, length\)" data-points="[0-9]+"' "$OUT/dom.html" || fail "the stalls series is missing"
grep -q '<h3 data-keyed="group">Latency by worker group</h3>' "$OUT/dom.html" || fail "no latency-by-group table in the browser's DOM"
grep -q '<h3 data-keyed="label">Latency by op label</h3>' "$OUT/dom.html" || fail "no latency-by-label table in the browser's DOM"
grep -q 'class="band"' "$OUT/dom.html" || fail "no min-max band in the sweep's chart"
grep -q '<polyline points="[0-9]' "$OUT/dom.html" || fail "no line drawn"
grep -qE 'class="[^"]*v-(ok|deadlock|livelock|failures)' "$OUT/dom.html" || fail "the debate table has no verdict colours"
n_cells=$(grep -o '<rect class="cell"' "$OUT/dom.html" | wc -l)
[ "$n_cells" = 12 ] || fail "the NUMA heat maps have $n_cells cells, expected 3 maps x 4"
# The screenshot: a real PNG, mostly the white page, with the series' colours in it.
python3 - "$OUT/report.png" <<'EOF' || fail "the screenshot check failed"
import struct, sys, zlib
path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n": sys.exit("not a PNG")
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR": w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT": idat += body
if depth != 8 or ctype not in (2, 6) or interlace: sys.exit(f"unexpected PNG format depth {depth} type {ctype}")
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
rows, prev, i = [], bytearray(stride), 0
for _ in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
total = white = 0
colours = {}
for line in rows[::2]:
    for x in range(0, stride, bpp * 2):
        px = line[x:x + 3]; total += 1
        if px == b"\xff\xff\xff": white += 1
        else: colours[px] = colours.get(px, 0) + 1
ink = 1 - white / total
def near(rgb):
    return sum(c for p, c in colours.items() if all(abs(p[k] - rgb[k]) <= 24 for k in range(3)))
blue, orange = near((0x4e, 0x79, 0xa7)), near((0xf2, 0x8e, 0x2b))
print(f"report-check: screenshot {w}x{h}: {ink:.1%} of pixels not white, {len(colours)} colours; series blue {blue}, orange {orange} sampled pixels")
if not (0.02 <= ink <= 0.6): sys.exit(f"the screenshot is {'blank' if ink < 0.02 else 'mostly ink'}: {ink:.1%} not white")
if blue < 20 or orange < 20: sys.exit("the series' colours are not in the screenshot")
EOF

if [ "$fails" = 0 ]; then
    step "ok: $charts_dom charts in the browser's DOM, every expected series there; screenshot $OUT/report.png"
    exit 0
fi
echo "report-check: $fails check(s) failed; artifacts in $OUT" >&2
exit 1
