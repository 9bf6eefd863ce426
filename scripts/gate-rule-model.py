#!/usr/bin/env python3
"""Paired-rule candidates on the pair changes of a gate-eval report (docs/gate.md,
"How the paired rule was chosen"). Reads one or more pagestorm.gate-eval/2 to /5
JSON reports (every run is in them), takes the A/A kind's pair log-ratios
new/base on operations per CPU-second as the noise, and estimates by resampling
(5 pairs drawn with replacement, shifted by the step) each rule's A/A
false-alarm rate and its detection of an exact 10% slowdown (rate -9.1%).
A model, not a measurement: the measurement is `pagestorm gate-eval`.

usage: scripts/gate-rule-model.py REPORT.json [REPORT.json ...] [--draws 20000] [--seed 7]
"""
import json, math, random, statistics as st, sys

def aa_pairs(path, metric=1):
    d = json.load(open(path))
    k = next(k for k in d["kinds"] if k["name"] == "A/A")
    return [math.log(y / x) for b, n in zip(k["base"][metric], k["new"][metric]) for x, y in zip(b, n) if x > 0 and y > 0]

def med(c): return sorted(c)[len(c) // 2]
def agree(c):
    m = med(c)
    return sum(1 for x in c if (x < 0) == (m < 0) and x != 0)
T, S = math.log(1.05), math.log(1.08)
RULES = {
    "session 4: median beyond 5%, 4 of 5 agree": lambda c: abs(med(c)) > T and agree(c) >= len(c) - 1,
    "median beyond 5% alone": lambda c: abs(med(c)) > T,
    "trimmed mean (middle 3) beyond 5%": lambda c: abs(st.mean(sorted(c)[1:-1])) > T,
    "Hodges-Lehmann beyond 5%": lambda c: abs(st.median([(c[i] + c[j]) / 2 for i in range(len(c)) for j in range(i, len(c))])) > T,
    "median beyond 5% and t on the middle 3": lambda c: abs(med(c)) > T and abs(st.mean(sorted(c)[1:-1])) / (st.stdev(sorted(c)[1:-1]) / math.sqrt(3) + 1e-12) > 4.303,
    "session 5: 4 of 5 agree beyond 5%, or beyond 8%": lambda c: abs(med(c)) > T and (agree(c) >= len(c) - 1 or abs(med(c)) > S),
}

def main():
    args = sys.argv[1:]
    draws, seed = 20000, 7
    if "--draws" in args: i = args.index("--draws"); draws = int(args[i + 1]); del args[i:i + 2]
    if "--seed" in args: i = args.index("--seed"); seed = int(args[i + 1]); del args[i:i + 2]
    if not args: sys.exit(__doc__)
    for path in args:
        rng = random.Random(seed)
        noise = aa_pairs(path)
        print(f"{path}: {len(noise)} A/A pairs; split (|log ratio| > 15%): {sum(abs(x) > 0.15 for x in noise) / len(noise):.0%}")
        print("| rule | A/A false alarms | detection at 10% |\n| --- | ---: | ---: |")
        for name, f in RULES.items():
            fa = sum(f([rng.choice(noise) for _ in range(5)]) for _ in range(draws)) / draws
            shift = math.log(1 / 1.10)
            det = 0
            for _ in range(draws):
                c = [rng.choice(noise) + shift for _ in range(5)]
                det += f(c) and med(c) < 0
            print(f"| {name} | {fa:.1%} | {det / draws:.1%} |")

main()
