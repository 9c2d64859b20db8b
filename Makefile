# The Makefile is the contract: every target a developer or CI needs.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/graft
PKGS  := ./...

.PHONY: help build test test-short test-seaweed weed nginx chromium jepsen jepsen-planted lint wasm generate check-generate dev bench fuzz clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build bin/graft
	$(GO) build -o $(BIN) ./cmd/graft

# SeaweedFS's weed, the independent S3 server of the objstore integration
# tests (objstore/s3test.StartSeaweed), built from source by
# scripts/seaweedfs.sh: several minutes the first time, nothing after.
# GRAFT_REQUIRE_SEAWEED=1 makes a missing binary fail those tests, not skip.
WEED     := $(CURDIR)/bin/tools/weed
WEED_ENV := GRAFT_WEED_BIN=$(WEED) GRAFT_REQUIRE_SEAWEED=1
# The edge's HTTP-cache test needs nginx (apt-get install -y nginx); the
# test target makes its absence a failure, not a skip.
NGINX_ENV := GRAFT_REQUIRE_NGINX=1
# The status pages' browser test drives headless Chromium (apt-get install
# -y chromium); the test target makes its absence a failure, not a skip.
CHROMIUM_ENV := GRAFT_REQUIRE_CHROMIUM=1

weed: ## build SeaweedFS into bin/tools/weed (once; several minutes)
	bash scripts/seaweedfs.sh build

nginx: ## install Debian's nginx for the edge's HTTP-cache test, if missing (apt-get; needs root or sudo)
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "make: nginx is missing and this user cannot install it: apt-get install nginx, or run make test-short" >&2; exit 1; fi; \
	echo "make: installing nginx (apt-get) for the edge's HTTP-cache test"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx >/dev/null

chromium: ## install Debian's chromium for the status pages' browser test, if missing (apt-get; needs root or sudo)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "make: chromium is missing and this user cannot install it: apt-get install chromium, or run make test-short" >&2; exit 1; fi; \
	echo "make: installing chromium (apt-get) for the status pages' browser test"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

test: weed nginx chromium ## run every test with the race detector (unit, in-process cluster, real processes, SeaweedFS, nginx, Chromium)
	$(WEED_ENV) $(NGINX_ENV) $(CHROMIUM_ENV) $(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short: ## run the fast tests only (no SeaweedFS)
	$(GO) test -race -short -count=1 $(PKGS)

test-seaweed: weed ## run only the SeaweedFS integration tests (every test named *Seaweed*)
	$(WEED_ENV) $(GO) test -race -count=1 -timeout 10m -run Seaweed $(PKGS)

jepsen: build ## the standard consistency matrix (31 workload x nemesis runs, 60s each, seeds 1 2 3; SEEDS=, TIME_LIMIT=)
	bash scripts/jepsen-matrix.sh

jepsen-planted: ## every planted bug (jepsen/planted.go) on its matrix row, seeds 1 2 3: each must be caught in 2 of 3
	bash scripts/jepsen-planted.sh

STATICCHECK := bin/tools/staticcheck
STATICCHECK_VERSION := v0.8.2

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet, staticcheck (installed into bin/tools on first use)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

# The client core (every client package but the durable bbolt store) must
# build for browsers (js) and serverless runtimes (wasip1).
WASM_PKGS = $$($(GO) list ./client/... | grep -v /client/boltstore)

wasm: ## build the client core for GOOS=js and GOOS=wasip1 (GOARCH=wasm); with Node, run its js tests
	GOOS=js GOARCH=wasm $(GO) build $(WASM_PKGS)
	GOOS=wasip1 GOARCH=wasm $(GO) build $(WASM_PKGS)
	@if command -v node >/dev/null 2>&1; then \
		echo "GOOS=js GOARCH=wasm go test ./client/store/ ./client/wasmtest/ (Node)"; \
		GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$$($(GO) env GOROOT)/lib/wasm/go_js_wasm_exec" ./client/store/ ./client/wasmtest/; \
	else echo "wasm: node not found, js tests skipped (builds checked)"; fi

generate: ## regenerate protobuf + Connect code from api/
	bash scripts/gen.sh

check-generate: ## fail if generated code is stale
	bash scripts/gen.sh check

dev: build ## run a three-node cluster on 127.0.0.1:7001-7003 (state in ./graft-dev)
	$(BIN) dev --dir graft-dev

bench: build ## benchmark commit latency on a fresh three-node dev cluster
	bash scripts/bench.sh

fuzz: ## run every fuzz target for FUZZTIME (default 30s each)
	bash scripts/fuzz.sh $${FUZZTIME:-30s}

clean: ## remove build output and dev state
	rm -rf bin graft-dev
