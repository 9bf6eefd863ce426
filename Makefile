# The two commands: `make run` (the main job) and `make test` (the tests).
SWIFT ?= swift
ARGS ?=
SHELL := /bin/bash

# The suites that run the debate's scenario workloads and check their
# verdicts (part of `make test`; `make test-scenarios` runs only them).
SCENARIO_SUITES = SlowPathScenarioTests|RemedyScenarioTests|DebateTests

.PHONY: run test test-scenarios test-slurm test-tsan build bench deps clean check-baselines refresh-baselines test-numa-lab test-report

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -c release --product pagestorm

# The main job: release build, then the default smoke workload plus zoneinfo.
run: build
	.build/release/pagestorm $(ARGS)

# The peer tests also run the tool itself (bad input, exit codes): build it
# first. jemalloc needs more static TLS than glibc keeps spare for dlopen; the
# tunable lets the test process load it (the tool sets it for itself).
PEER_TLS = GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384

test: deps
	$(SWIFT) build --product pagestorm
	$(PEER_TLS) $(SWIFT) test

test-scenarios: deps
	$(SWIFT) test --filter '$(SCENARIO_SUITES)'

# Sweeps on a real one-node Slurm cluster (as root; docs/sweeps.md): the sweep
# and merge command-line checks, then an 8-run sweep as a 4-task job array,
# merged and compared with the unsharded sweep. Uses .build/release/pagestorm
# (`make build`, which `make run` has done in CI); does not build.
test-slurm:
	scripts/test-sweep-cli.sh
	scripts/slurm-lab.sh test

# `pagestorm report` in a real browser (docs/report.md): installs Debian's
# chromium if missing (as root), makes a small sweep, a run, a load curve, a
# NUMA matrix and a debate with .build/release/pagestorm (`make build`; does
# not build), renders their report in headless Chromium (DOM dump and a PNG
# under .ci-artifacts/report/) and checks the charts are there.
test-report:
	scripts/report-check.sh

# The regression gate against results/baselines/gate/ (exact counters of
# deterministic runs, instructions per op under callgrind). Reuses the release
# binary of `make build` (an up-to-date build is a no-op); `make refresh-baselines` records new ones.
check-baselines: build
	@scripts/ensure-deps.sh --valgrind
	scripts/check-baselines.sh

refresh-baselines: build
	@scripts/ensure-deps.sh --valgrind
	scripts/check-baselines.sh --refresh

bench: build
	.build/release/pagestorm bench $(ARGS)

clean:
	rm -rf .build .build-*

# The NUMA tests that need a real multi-node kernel: a 2-node QEMU guest
# (scripts/numa-lab.sh, which installs QEMU and downloads a Debian kernel
# as root) runs scripts/numa-lab-checks.sh with the release binary of
# `make build` (no second build). .ci/run calls it (about 2.5 min on a fresh
# 2-core machine, the install included; docs/numa-lab.md). A second guest
# with a memory-only node and node numbers with a gap (--nodes memonly: nodes
# 0, 1 and 3 once the checks take CPU 2 offline) runs scripts/numa-lab-checks-memonly.sh
# (about 40 s more with the release binary). A third, short guest (memonly again) boots
# Debian's bookworm-backports kernel (6.12; `--kernel backports` fetches it with
# a private apt state, the machine's sources unchanged) for weighted interleave
# (Linux 6.9+): scripts/numa-lab-checks-weighted.sh.
test-numa-lab: build
	scripts/numa-lab.sh --bin .build/release/pagestorm --timeout 240 --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks.sh
	scripts/numa-lab.sh --nodes memonly --bin .build/release/pagestorm --timeout 300 --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks-memonly.sh
	scripts/numa-lab.sh --nodes memonly --kernel backports --bin .build/release/pagestorm --timeout 240 --sh-file scripts/numa-lab-checklib.sh --sh-file scripts/numa-lab-checks-weighted.sh

# ThreadSanitizer over the allocator's test suites (all but RseqTests: TSan
# cannot see restartable sequences), in a package of their own generated in
# .build-tsan/pkg so that only the allocator is built with TSan (about 70 s
# cold on a quiet 2-core machine). Zero reports allowed: the only suppressions
# are for data behind Synchronization.Mutex, which TSan cannot see on Linux
# (scripts/tsan-suppressions.txt says why, site by site). .ci/run calls it.
test-tsan: deps
	SWIFT=$(SWIFT) scripts/test-tsan.sh
