# The two commands: `make run` and `make test`. `make help` lists the rest.
#
# Both find PostgreSQL and Redis at DATABASE_URL / REDIS_URL, or start private throwaway servers
# under .dev/ (scripts/dev-services.sh); `make services-stop` stops those.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Code generators and linters are pinned in tools/go.mod.
TOOL := $(GO) tool -modfile=tools/go.mod
# grpc-gateway v1.16.0 ships the google/api protos that the API imports (see buf.yaml).
GOOGLEAPIS_MODULE := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
SQLC_OUT := internal/postgres/dbsqlc
GENERATED := gen $(SQLC_OUT)

# DEV_ENV exports DATABASE_URL, REDIS_URL, TEST_DATABASE_URL and TEST_REDIS_URL for one recipe,
# starting private servers first when none answer. The assignment makes a failing script fail the
# recipe, which `eval "$(...)"` alone would not.
DEV_ENV = dev_env=$$(scripts/dev-services.sh env) && eval "$$dev_env"

.PHONY: help run test chaos fleet cluster cluster-stop build services services-stop generate third_party verify breaking browser bench

help: ## Show this list
	@awk 'BEGIN { FS = ":.*## " } /^[a-z_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: ## Start PostgreSQL and Redis if needed, migrate, load demo data, serve on :8080 (REST) and :9090 (gRPC)
	@$(DEV_ENV); \
	export FLASHSALE_DEV="$${FLASHSALE_DEV:-true}" \
		ADMIN_EMAIL="$${ADMIN_EMAIL:-admin@example.com}" \
		ADMIN_PASSWORD="$${ADMIN_PASSWORD:-admin-password-123}"; \
	$(GO) run ./cmd/flashsale migrate; \
	$(GO) run ./cmd/flashsale demo; \
	exec $(GO) run ./cmd/flashsale serve

# Tests create their own databases on TEST_DATABASE_URL's server; CI=true (passed through from the
# environment) turns a missing service into a failure instead of a skip.
test: browser ## Start PostgreSQL and Redis if needed, run all tests with the race detector
	@$(DEV_ENV); \
	$(GO) test -race -count=1 -timeout 15m ./...

# The randomized history test (cmd/flashsale/chaos_test.go) alone: SEED picks the schedule of
# buyers and faults, DURATION (a Go duration: 90s, 10m, 1h) the buyers' time across the three
# order modes; set-up, settling and the checks add about 8 s per mode, and the go test timeout is
# twice DURATION plus 5 minutes. REDIS=cluster runs it on a private six-node Redis Cluster, where a
# Redis fault fails a master over. `make test` runs it too, with the defaults (seed 1, 45s).
SEED ?= 1
DURATION ?= 45s
REDIS ?=

chaos: ## Run the randomized history test alone: make chaos SEED=7 DURATION=10m [REDIS=cluster]
	@$(DEV_ENV); \
	seconds=$$(awk -v d="$(DURATION)" 'BEGIN { s = 0; \
		while (match(d, /^[0-9.]+(h|ms|m|s)/)) { t = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1); \
			n = t + 0; sub(/^[0-9.]+/, "", t); s += t == "h" ? n * 3600 : t == "m" ? n * 60 : t == "s" ? n : n / 1000 } \
		if (d != "") exit 1; print int(s) }') || { echo "chaos: DURATION=$(DURATION) is not a Go duration" >&2; exit 2; }; \
	CHAOS_SEED="$(SEED)" CHAOS_DURATION="$(DURATION)" CHAOS_REDIS="$(REDIS)" \
		$(GO) test -race -count=1 -v -run 'TestChaos$$' -timeout "$$(( 2 * seconds + 300 ))s" ./cmd/flashsale

# The fleet test (cmd/flashsale/fleet_test.go) alone: 3 serve and 2 workers on a private six-node Redis
# Cluster, a master killed mid-sale. KILLS=20 makes it the failover drill (one master kill every
# 8 s or so, each pause reported); MIN_REPLICAS sets ORDERS_QUEUE_MIN_REPLICAS (default auto).
KILLS ?= 1
MIN_REPLICAS ?=

fleet: ## Run the fleet test alone; KILLS=20 runs the failover drill
	@$(DEV_ENV); \
	FLEET_KILLS="$(KILLS)" FLEET_MIN_REPLICAS="$(MIN_REPLICAS)" \
		$(GO) test -count=1 -v -run 'TestFleet$$' -timeout "$$(( 10 * $(KILLS) + 600 ))s" ./cmd/flashsale

# The browser tests (cmd/flashsale/browser_test.go) drive Debian's chromium headless; without it
# they skip, or fail under CI=true.
browser: ## Install Chromium for the browser tests if missing (apt-get, as root)
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "browser: installing chromium with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "browser: /usr/bin/chromium is missing; the browser tests will skip (fail under CI=true)." >&2; \
		echo "browser: install it with: sudo apt-get install -y chromium" >&2; \
	fi

build: ## Build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

# Order modes the benchmark covers; fleet (3 serve + 2 workers in queue mode on the private Redis
# Cluster, ORDERS_QUEUE_MIN_REPLICAS=1) and fleet-r0 (the same without waiting for a replica) are
# the fleet rows.
BENCH_MODES ?= direct sync queue fleet fleet-r0

bench: ## Start the server on private PostgreSQL and Redis in each of BENCH_MODES, run the load scenarios, write docs/benchmarks.md
	BENCH_MODES="$(BENCH_MODES)" scripts/bench.sh

services: ## Start PostgreSQL and Redis if needed and print their settings as export lines
	@scripts/dev-services.sh env

services-stop: ## Stop the private PostgreSQL and Redis servers started under .dev/
	@scripts/dev-services.sh stop

cluster: ## Start a private six-node Redis Cluster (3 masters, 3 replicas) on ports 27001-27006; print REDIS_CLUSTER_URL
	@scripts/dev-services.sh cluster-env

cluster-stop: ## Stop the private Redis Cluster started under .dev/cluster
	@scripts/dev-services.sh cluster-stop

third_party: third_party/googleapis ## Link the google/api protos from the Go module cache

# A file target: make finds a dangling link missing and makes it again.
third_party/googleapis:
	$(GO) mod download $(GOOGLEAPIS_MODULE)
	mkdir -p third_party
	ln -sfn "$$($(GO) env GOMODCACHE)/$(GOOGLEAPIS_MODULE)/third_party/googleapis" $@

# Neither buf nor sqlc removes the files of a deleted proto or query file, so what they wrote goes
# first, and only that: hand-written files such as gen/openapiv2/embed.go stay.
generate: third_party ## Regenerate gen/ (buf) and internal/postgres/dbsqlc (sqlc)
	@[ ! -d gen ] || find gen -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
	$(TOOL) buf generate
	@[ ! -d $(SQLC_OUT) ] || find $(SQLC_OUT) -maxdepth 1 -name '*.go' -exec grep -q '^// Code generated by sqlc' {} ';' -delete
	$(TOOL) sqlc generate

# gofmt errors (a file deleted but still in the index) are shown but not fatal: go vet checks syntax.
verify: generate breaking ## Check generated code is committed and current, buf lint and breaking, go vet, gofmt, go mod tidy
	@if ! git diff --quiet -- $(GENERATED) || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
		echo "verify: generated code is stale; run make generate and commit the result:" >&2; \
		git status --short -- $(GENERATED) >&2; \
		git diff --stat -- $(GENERATED) >&2; \
		exit 1; \
	fi
	$(TOOL) buf lint
	$(GO) vet ./...
	@unformatted=$$(git ls-files -z --cached --others --exclude-standard -- '*.go' ':!gen' | xargs -0 -r gofmt -l || true); \
	if [ -n "$$unformatted" ]; then echo "verify: not gofmt-ed:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

# Compares proto/ with the main branch (or origin/main), checked out into a temporary folder with
# the same googleapis link, so it works in shallow clones; skipped while main has no proto/ yet.
breaking: third_party ## Check proto/ for breaking changes against the main branch
	@ref=$$(git rev-parse -q --verify main^{commit} || git rev-parse -q --verify origin/main^{commit} || true); \
	if [ -z "$$ref" ] || ! git cat-file -e "$$ref:proto" 2>/dev/null || ! git cat-file -e "$$ref:buf.yaml" 2>/dev/null; then \
		echo "breaking: no main branch with proto/ and buf.yaml yet; skipped"; \
		exit 0; \
	fi; \
	against=$$(mktemp -d); \
	trap 'rm -rf "$$against"' EXIT; \
	git archive "$$ref" buf.yaml proto | tar -x -C "$$against"; \
	mkdir -p "$$against/third_party"; \
	ln -s "$(CURDIR)/third_party/googleapis" "$$against/third_party/googleapis"; \
	echo "breaking: proto/ against $$(git rev-parse --short "$$ref")"; \
	$(TOOL) buf breaking --against "$$against"
