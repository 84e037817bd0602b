# tokencache — build, run and test targets. `make help` lists them.

SHELL := /bin/bash
GO ?= go
BIN := bin/tokencache
# tokencache-bench: `tokencache bench` with the baselines that need other
# systems' clients, and charts; built from the bench/baselines module.
BENCH_BIN := bin/tokencache-bench
BASELINES := bench/baselines
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# errorlint: fmt.Errorf wraps errors with %w (-errorf) and errors are
# compared with errors.Is (-comparison). Its type-assertion check is off:
# the config loader walks mapstructure's error tree node by node on purpose
# (decodeProblems), which errors.As would change.
ERRORLINT := github.com/polyfloyd/go-errorlint@v1.8.0
ERRORLINT_FLAGS := -errorf -comparison -asserts=false
# golangci-lint runs depguard alone (.golangci.yml): imports between the
# module's packages flow one way (docs/architecture.md).
GOLANGCI := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

# Packages with goroutines and shared state run under the race detector.
RACE_PKGS := ./cache/... ./replica/... ./tokens/... ./token/jwt/... ./httpapi/... ./cluster/...

.PHONY: help build run cluster cluster-tls test test-unit test-race check fuzz chaos bench bench-tools bench-compare clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/tokencache
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tokencache

run: build ## start one node on 127.0.0.1:8080 with SQLite under ./data
	$(BIN) serve --config configs/tokencache.yaml

cluster: build ## start three nodes on loopback (data under ./data/n1..n3); Ctrl-C stops them
	scripts/cluster.sh

cluster-tls: build ## make cluster with mutual TLS between the nodes and encrypted gossip (certificates under ./data/tls)
	CLUSTER_TLS=1 scripts/cluster.sh

test: ## every test: unit, race, SQLite + MariaDB conformance, cluster, end-to-end (starts MariaDB and nginx privately)
	scripts/test.sh

check: ## gofmt, go vet, staticcheck, errorlint (the module and bench/baselines), depguard (import direction)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(ERRORLINT) $(ERRORLINT_FLAGS) ./...
	$(GO) run $(GOLANGCI) run ./...
	cd $(BASELINES) && $(GO) vet ./...
	cd $(BASELINES) && $(GO) run $(STATICCHECK) ./...
	cd $(BASELINES) && $(GO) run $(ERRORLINT) $(ERRORLINT_FLAGS) ./...

bench-tools: ## build bin/tokencache-bench: tokencache bench with the baselines (Redis, etcd, MySQL, bare Raft) and charts
	cd $(BASELINES) && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(CURDIR)/$(BENCH_BIN) ./cmd/tokencache-bench

bench: build bench-tools ## standard load-test suite on one spawned node (~5 min): bench/results/latest.json + latest.png
	$(BENCH_BIN) suite standard --binary $(BIN) --out bench/results/latest.json --chart bench/results/latest.png

bench-compare: build bench-tools ## tokencache vs Redis GET, bare HTTP, etcd put, bare Raft, MariaDB SELECT (installs redis-server, etcd-server)
	TOKENCACHE_BIN=$(BIN) TOKENCACHE_BENCH_BIN=$(BENCH_BIN) bench/scripts/compare.sh

chaos: ## long fault runs: 12 rounds of partitions, leader isolation and crashes, 30 bootstrap races, repeated process-level kills, 5 min each of checked histories in process and across processes (~25 min)
	TOKENCACHE_CHAOS=1 $(GO) test -race -count=1 -timeout 60m -run 'TestChaos|TestBootstrapExpect|TestLinearizableHistories' ./cluster/
	$(GO) test -count=5 -timeout 60m -run 'TestClusterProcesses' ./e2e/
	TOKENCACHE_CHAOS=1 $(GO) test -count=1 -timeout 60m -run 'TestLinearizableHistoriesProcesses' ./e2e/

fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	scripts/fuzz.sh $(or $(FUZZTIME),60s)

clean: ## remove build output (not ./data)
	rm -rf bin
