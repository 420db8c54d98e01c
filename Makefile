# EthHook. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/ethhook/ethhook/app.Version=$(VERSION) -X github.com/ethhook/ethhook/app.Commit=$(COMMIT)
BIN := bin/ethhook

# Local development settings for `make run` (override any of them in the environment).
export ETHHOOK_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/ethhook?sslmode=disable
export ETHHOOK_REDIS_URL ?= redis://127.0.0.1:6379/0
export ETHHOOK_TEST_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable
export ETHHOOK_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
RUN_ENV := ETHHOOK_LOG_FORMAT=console
# `make run`'s secrets (ETHHOOK_SECRET_KEY, ETHHOOK_JWT_SECRET) are generated
# on the first run by `ethhook secrets init` into this git-ignored file (mode
# 0600) and kept for the next runs; a value set in the environment wins.
# Nothing is allowed through the delivery SSRF guard but the demo's own
# receiver (devnet.demo_addr, that address and port only).
SECRETS_FILE ?= .ethhook/secrets.env
LOAD_SECRETS = while IFS='=' read -r k v; do if [[ $$k == ETHHOOK_* && -z "$${!k:-}" ]]; then export "$$k=$$v"; fi; done < $(SECRETS_FILE)

# promtool for test/ops, built once from the Go module proxy into a cache
# outside the tree (a big build: minutes the first time, nothing after).
PROMTOOL_VERSION ?= v0.316.0
TOOLS_DIR ?= $(HOME)/.cache/ethhook
PROMTOOL := $(TOOLS_DIR)/promtool-$(PROMTOOL_VERSION)/promtool

.PHONY: help build run services test test/unit test/browser test/faults test/cluster test/contract test/ops lint bench soak demo-soak fresh-check clean

help: ## list the targets
	@grep -hE '^[a-zA-Z/_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/ethhook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

services: ## make sure Postgres and Redis run (installs them from Debian packages when missing)
	@scripts/services.sh

# services.sh runs before the build: on a fresh machine it installs the CA
# certificates Go needs to download the modules.
run: ## run the whole pipeline on the built-in devnet (installs Postgres/Redis if needed)
	@ETHHOOK_TEST_DATABASE_URL=$$ETHHOOK_DATABASE_URL ETHHOOK_TEST_REDIS_URL=$$ETHHOOK_REDIS_URL scripts/services.sh --create-db $$(basename "$${ETHHOOK_DATABASE_URL%%\?*}")
	@$(MAKE) --no-print-directory build
	@$(BIN) secrets init --file $(SECRETS_FILE)
	@$(LOAD_SECRETS) && $(RUN_ENV) $(BIN) migrate up && $(RUN_ENV) $(BIN) serve --all

test: services lint test/unit test/clean ## the full check: gofmt, go vet, staticcheck, every Go test against real Postgres and Redis

# staticcheck's default checks (bugs, dead code, simplifications, style),
# pinned, from the Go module proxy (built once into Go's cache).
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet and staticcheck (also over the faults, soak and browser build tags)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags 'faults soak' ./faults/
	$(GO) vet -tags browser ./modules/admin/ui/
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags 'faults soak' ./faults/
	$(STATICCHECK) -tags browser ./modules/admin/ui/

test/unit: ## go test ./... (Postgres and Redis must be up: see make services)
	$(GO) test -count=1 -timeout 25m ./...

test/browser: services ## the web UI in a real headless Chromium
	@scripts/chromium.sh
	$(GO) test -count=1 -timeout 15m -tags browser -p 1 ./modules/admin/ui/...
	@$(MAKE) --no-print-directory test/clean

test/faults: services ## kill, restart and cut every part of the pipeline under load; account every webhook against the chain
	$(GO) test -tags faults -count=1 -p 1 -timeout 25m -v -run '^TestFaults$$' ./faults/ | grep --line-buffered -v "^=== "; exit $${PIPESTATUS[0]}

test/cluster: services ## the pipeline split by roles on a 3-master, 3-replica Redis Cluster; kill -9 a master mid-load, account every webhook
	$(GO) test -tags faults -count=1 -p 1 -timeout 15m -v -run '^TestCluster$$' ./faults/ | grep --line-buffered -v "^=== "; exit $${PIPESTATUS[0]}

soak: ## serve --all on the devnet at SOAK_RATE events/s (1000) for SOAK_DURATION (1h); writes docs/soak/soak.{csv,png}; fails if anything keeps growing (not in CI)
	SOAK_OUT=$${SOAK_OUT:-docs/soak} $(GO) test -tags 'faults soak' -count=1 -p 1 -timeout 0 -v -run '^TestSoak$$' ./faults/ | grep --line-buffered -v "^=== "; exit $${PIPESTATUS[0]}

demo-soak: ## the demo exactly as `make run` runs it, for DEMO_DURATION (1h), on its own ports, database and Redis prefix; writes DEMO_OUT (docs/demo-soak)/demo-soak.csv; fails on a stall (not in CI)
	DEMO_OUT=$${DEMO_OUT:-docs/demo-soak} $(GO) test -tags 'faults soak' -count=1 -p 1 -timeout 0 -v -run '^TestDemoSoak$$' ./faults/ | grep --line-buffered -v "^=== "; exit $${PIPESTATUS[0]}

fresh-check: ## prove the quick start on a debootstrapped Debian bookworm root (root, network, ~30 min; not in CI)
	@scripts/fresh-check.sh

test/contract: services ## the OpenAPI document against Redocly lint and a generated TypeScript client (needs node and npm; installs them when missing)
	@scripts/contract.sh
$(PROMTOOL):
	mkdir -p $(dir $@)
	GOBIN=$(abspath $(dir $@)) GOFLAGS= $(GO) install -trimpath github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

test/ops: services $(PROMTOOL) ## check and unit-test deploy/prometheus/alerts.yml with promtool; deploy/ queries against a real /metrics scrape
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml
	$(GO) test -count=1 -p 1 ./deploy/

test/clean:
	@$(GO) run ./internal/testenv/cleanup

bench: services ## Go benchmarks of every module (figures go to BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

clean: ## remove build output
	rm -rf bin artifacts
