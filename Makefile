# The two commands: `make run` (the main job) and `make test` (the tests).
SWIFT ?= swift
ARGS ?=

.PHONY: run test build bench deps clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -c release --product pagestorm

# The main job: release build, then the default smoke workload plus zoneinfo.
run: build
	.build/release/pagestorm $(ARGS)

test: deps
	$(SWIFT) test --parallel

bench: build
	.build/release/pagestorm bench $(ARGS)

clean:
	rm -rf .build .build-*
