#!/usr/bin/env python3
"""Co-run pairs against back-to-back pairs, interleaved (docs/gate.md, "Co-run pairs").

For each of N rounds and each kind (A/A, then one variant per extra: touch bytes, or with --vary live
blocks held), one pair
co-run (the original and the kind's workload started at the same time, both workers pinned to
the workload's CPU, so the kernel time-slices them) and one pair back to back (the order flips
every round); per pair the change new/base - 1 of operations per CPU-second (operations over the
workers' own CPU time). Reports per kind and mode: the median change (the step as that mode reads
it), the spread of the pair log ratios, and how many pairs a speed phase split (a log ratio more than
15% from the kind's median one).
A benchmark script, not a test. Build in release first.

usage: scripts/co-run/steps.py BIN [N] [--extra 8,32,96] [--vary touch|live] [--workload Workloads/gate-timing.toml] [--modes co-run,back to back,cross]
       [--duration-ms 100] [--output FILE]
       scripts/co-run/steps.py --from FILE     (print the table of a saved --output again)
Co-run pairs get twice --duration-ms (each side has about half the CPU), so every pair costs the
same machine time in both modes.
"""
import argparse, atexit, json, math, os, re, shutil, statistics as st, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("bin", nargs="?"); ap.add_argument("n", nargs="?", type=int, default=30)
ap.add_argument("--from", dest="saved")
ap.add_argument("--extra", default="8,32,96"); ap.add_argument("--vary", default="touch", choices=["touch", "live"]); ap.add_argument("--workload", default="Workloads/gate-timing.toml")
ap.add_argument("--duration-ms", type=int, default=100); ap.add_argument("--output")
ap.add_argument("--modes", default="co-run,back to back",
                help="comma-separated: co-run, back to back, cross (both at once, one on CPU 0 and one on CPU 1, swapped every round)")
a = ap.parse_args()

ALL_MODES = ("co-run", "back to back", "cross")

def table(res):
    print("| kind | mode | step (median of base/new - 1) | sd of log(new/base) | pairs split (>15% from the median) |")
    print("| --- | --- | ---: | ---: | ---: |")
    names = []
    for key in res:
        name = next(key[len(m) + 1:] for m in ALL_MODES if key.startswith(m + " "))
        if name not in names: names.append(name)
    for name in names:
        for mode in ALL_MODES:
            l = res.get(f"{mode} {name}")
            if not l: continue
            logs = [math.log(n / b) for b, n in l]
            mid = st.median(logs)
            print(f"| {name} | {mode} | {100 * st.median([b / n - 1 for b, n in l]):+.1f}% | {st.pstdev(logs):.3f} | "
                  f"{sum(abs(x - mid) > math.log(1.15) for x in logs)}/{len(logs)} |")

if a.saved:
    table(json.load(open(a.saved))); sys.exit(0)
if not a.bin: sys.exit("give BIN (a release build of pagestorm), or --from FILE")
tmp = tempfile.mkdtemp(prefix="co-run-steps-")
started = []   # every run started: none is left running when the script stops, however it stops
def cleanup():
    for p in started:
        if p.poll() is None: p.kill(); p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
atexit.register(cleanup)
text = open(a.workload).read()
m = re.search(rf"^{a.vary} = (\d+)", text, re.M)
if not m: sys.exit(f"{a.workload}: no '{a.vary} = N' line to vary")
modes = [m.strip() for m in a.modes.split(",")]
if any(m not in ALL_MODES for m in modes): sys.exit(f"--modes: each of {', '.join(ALL_MODES)}")
if "cross" in modes and not re.search(r"^cpus = \[1\]", text, re.M): sys.exit(f"cross needs a workload pinned with 'cpus = [1]'")
def on_cpu0(path):
    p = path[:-5] + ".cpu0.toml" if path.startswith(tmp) else os.path.join(tmp, "base.cpu0.toml")
    open(p, "w").write(re.sub(r"^cpus = \[1\]", "cpus = [0]", open(path).read(), flags=re.M))
    return p
kinds = [("A/A", a.workload)]
for e in [int(x) for x in a.extra.split(",") if x.strip()]:
    p = os.path.join(tmp, f"extra{e}.toml")
    open(p, "w").write(text[:m.start()] + f"{a.vary} = {int(m.group(1)) + e}" + text[m.end():])
    kinds.append((f"+{e} B" if a.vary == "touch" else f"live +{e}", p))

def start(wl, dur, out):
    p = subprocess.Popen([a.bin, "run", wl, "--duration-ms", str(dur), "--warmup-ms", str(dur // 5), "--quiet",
                             "--no-overhead", "--output", out], stdout=subprocess.DEVNULL)
    started.append(p)
    return p

def finish(ps):
    """Waits for the runs of one pair (at most 10 minutes each); stops the script if one failed."""
    for p in ps:
        try: rc = p.wait(timeout=600)
        except subprocess.TimeoutExpired: sys.exit("a run took more than 10 minutes")
        if rc not in (0, 1): sys.exit(f"a run exited {rc}")
    started.clear()

def value(out):
    d = json.load(open(out)); os.remove(out)
    if d["status"]["verdict"] not in ("ok", "failures"): sys.exit(f"a run ended {d['status']['verdict']}")
    if not d.get("noise", {}).get("workers"): sys.exit(f"{out}: no noise.workers (CPU time) in the results: a pagestorm older than session 4?")
    cpu = sum(w["cpuNs"] for w in d["noise"]["workers"])
    return d["throughput"]["operations"] / (cpu / 1e9)

res = {}
k = 0
for i in range(a.n):
    for name, wl in kinds:
        for mode in modes:
            k += 1
            outs = [os.path.join(tmp, f"{k}-base.json"), os.path.join(tmp, f"{k}-new.json")]
            order = [(a.workload, outs[0]), (wl, outs[1])]
            if i % 2: order.reverse()
            if mode == "co-run":
                finish([start(w, 2 * a.duration_ms, o) for w, o in order])
            elif mode == "cross":
                # at the same time on different CPUs: the first of the round's order on CPU 0
                finish([start(on_cpu0(order[0][0]), a.duration_ms, order[0][1]), start(order[1][0], a.duration_ms, order[1][1])])
            else:
                for w, o in order: finish([start(w, a.duration_ms, o)])
            res.setdefault(f"{mode} {name}", []).append((value(outs[0]), value(outs[1])))
print(f"{a.n} rounds; {a.workload}; ops per CPU-second; co-run {2 * a.duration_ms} ms, back to back and cross {a.duration_ms} ms a run")
table(res)
if a.output: json.dump(res, open(a.output, "w"), indent=1)
