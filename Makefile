# The two commands: `make run` (the main job) and `make test` (the tests).
SWIFT ?= swift
ARGS ?=

# The suites that run the debate's scenario workloads and check their
# verdicts (part of `make test`; `make test-scenarios` runs only them).
SCENARIO_SUITES = SlowPathScenarioTests|RemedyScenarioTests|DebateTests

.PHONY: run test test-scenarios build bench deps clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -c release --product pagestorm

# The main job: release build, then the default smoke workload plus zoneinfo.
run: build
	.build/release/pagestorm $(ARGS)

test: deps
	$(SWIFT) test

test-scenarios: deps
	$(SWIFT) test --filter '$(SCENARIO_SUITES)'

bench: build
	.build/release/pagestorm bench $(ARGS)

clean:
	rm -rf .build .build-*
