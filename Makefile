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
OPENAPIV2_MODULE := github.com/grpc-ecosystem/grpc-gateway/v2
SQLC_OUT := internal/postgres/dbsqlc
GENERATED := gen $(SQLC_OUT)

# DEV_ENV exports DATABASE_URL, REDIS_URL, TEST_DATABASE_URL and TEST_REDIS_URL for one recipe,
# starting private servers first when none answer. The assignment makes a failing script fail the
# recipe, which `eval "$(...)"` alone would not.
DEV_ENV = dev_env=$$(scripts/dev-services.sh env) && eval "$$dev_env"

.PHONY: help run run-bench-server bench-env tools test jq chaos fleet cluster cluster-stop build services services-stop generate third_party verify tracked breaking browser bench promtool rules

help: ## Show this list
	@awk 'BEGIN { FS = ":.*## " } /^[a-z_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# The admin `make run` and `make run-bench-server` create, unless ADMIN_EMAIL and ADMIN_PASSWORD are set.
DEV_ADMIN = export ADMIN_EMAIL="$${ADMIN_EMAIL:-admin@example.com}" ADMIN_PASSWORD="$${ADMIN_PASSWORD:-admin-password-123}"

# The fixed JWT key of `make run-bench-server`, so that flashload --jwt-secret can mint tokens for the
# users it inserts instead of registering them one by one. Published here: a laptop's key, never a
# deployment's.
BENCH_JWT_SECRET ?= flashsale-bench-only-not-a-secret-0123456789

# RUN_SERVER builds the binary, migrates, seeds the demo sale (once) and replaces the shell with the
# server, so Ctrl-C reaches the server itself, which drains and exits 0 (`go run` answered SIGINT with
# exit status 1, and make printed "Error 1" after a clean shutdown).
RUN_SERVER = $(GO) build -o bin/flashsale ./cmd/flashsale; bin/flashsale migrate; bin/flashsale demo; exec bin/flashsale serve

# BENCH_ENV prints export lines for a shell to reach the server of run-bench-server.
BENCH_ENV = printf 'export DATABASE_URL=%q REDIS_URL=%q AUTH_JWT_SECRET=%q ADMIN_EMAIL=%q ADMIN_PASSWORD=%q\n' \
	"$$DATABASE_URL" "$$REDIS_URL" "$(BENCH_JWT_SECRET)" "$$ADMIN_EMAIL" "$$ADMIN_PASSWORD"

run: ## Start PostgreSQL and Redis if needed, migrate, seed a demo sale once, serve on :8080 (REST) and :9090 (gRPC)
	@$(DEV_ENV); \
	$(DEV_ADMIN) FLASHSALE_DEV="$${FLASHSALE_DEV:-true}"; \
	$(RUN_SERVER)

run-bench-server: ## make run for load tools: rate limits off, LOG_LEVEL=error, a fixed AUTH_JWT_SECRET
	@$(DEV_ENV); \
	$(DEV_ADMIN) RL_DISABLED=true LOG_LEVEL="$${LOG_LEVEL:-error}" AUTH_JWT_SECRET="$(BENCH_JWT_SECRET)"; \
	echo "run-bench-server: RL_DISABLED=true (no rate limits), LOG_LEVEL=$$LOG_LEVEL, AUTH_JWT_SECRET=$$AUTH_JWT_SECRET"; \
	echo "run-bench-server: in another terminal, set what flashload needs with: eval \"\$$(make -s bench-env)\""; \
	echo "run-bench-server: or paste: $$($(BENCH_ENV))"; \
	$(RUN_SERVER)

bench-env: ## Print export lines for run-bench-server's database, Redis, JWT key and admin: eval "$(make -s bench-env)"
	@$(DEV_ENV); \
	$(DEV_ADMIN); \
	$(BENCH_ENV)

tools: bin/grpcurl bin/ghz ## Build the pinned grpcurl and ghz into bin/ (then: export PATH="$PWD/bin:$PATH")

bin/grpcurl bin/ghz &: tools/go.mod tools/go.sum
	$(GO) build -modfile=tools/go.mod -o bin/ github.com/fullstorydev/grpcurl/cmd/grpcurl github.com/bojand/ghz/cmd/ghz

# Tests create their own databases on TEST_DATABASE_URL's server; CI=true (passed through from the
# environment) turns a missing service into a failure instead of a skip.
test: browser jq ## Start PostgreSQL and Redis if needed, run all tests with the race detector
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

# promtool checks the alert rules (deploy/prometheus) in make verify. Debian ships it in the
# prometheus package, whose install would also start a Prometheus server on :9090 (GRPC_ADDR's
# default) on a host with systemd; so, as root, the package is downloaded with apt-get and only
# promtool is unpacked, into .dev/bin (gitignored).
PROMTOOL = $(shell command -v promtool || echo .dev/bin/promtool)

promtool: ## Get promtool for make verify if missing (apt-get download prometheus, as root)
	@if [ -x "$(PROMTOOL)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
		echo "promtool: downloading the prometheus package with apt-get to unpack promtool into .dev/bin"; \
		dir=$$(mktemp -d); chmod 755 "$$dir"; trap 'rm -rf "$$dir"' EXIT; \
		apt-get update -qq && (cd "$$dir" && apt-get download prometheus) && \
		dpkg-deb --fsys-tarfile "$$dir"/prometheus_*.deb | tar -x -C "$$dir" ./usr/bin/promtool && \
		mkdir -p .dev/bin && mv "$$dir/usr/bin/promtool" .dev/bin/promtool; \
	else \
		echo "promtool: missing; the alert rules will not be checked (a failure under CI=true)." >&2; \
		echo "promtool: install it with: sudo apt-get install -y prometheus" >&2; \
	fi

rules: promtool ## Check the alert rules and their unit tests with promtool
	@if [ ! -x "$(PROMTOOL)" ]; then \
		case "$${CI:-}" in ""|0|false|FALSE|False|no|NO|No) echo "rules: no promtool; skipped" >&2; exit 0;; esac; \
		echo "rules: no promtool, and CI is set" >&2; exit 1; \
	fi; \
	"$(PROMTOOL)" check rules deploy/prometheus/alerts.yml && \
	"$(PROMTOOL)" test rules deploy/prometheus/alerts_test.yml

# The README's walk-through uses jq, and so does its test (cmd/flashsale/readme_test.go); without jq
# that test skips, or fails under CI=true.
jq: ## Install jq for the README test if missing (apt-get, as root)
	@if command -v jq >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "jq: installing jq with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; \
	else \
		echo "jq: jq is missing; the README test will skip (fail under CI=true)." >&2; \
		echo "jq: install it with: sudo apt-get install -y jq" >&2; \
	fi

build: ## Build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

# Order modes the benchmark covers; fleet (3 serve + 2 workers in queue mode on the private Redis
# Cluster, ORDERS_QUEUE_MIN_REPLICAS=1) and fleet-r0 (the same without waiting for a replica) are
# the fleet rows.
BENCH_MODES ?= direct sync queue fleet fleet-r0

bench: ## Start the server on private PostgreSQL and Redis in each of BENCH_MODES, run the load scenarios, overwrite docs/benchmarks.md
	BENCH_MODES="$(BENCH_MODES)" scripts/bench.sh

services: ## Start PostgreSQL and Redis if needed and print their settings as export lines
	@scripts/dev-services.sh env

services-stop: ## Stop the private PostgreSQL and Redis servers started under .dev/
	@scripts/dev-services.sh stop

cluster: ## Start a private six-node Redis Cluster (3 masters, 3 replicas) on ports 27001-27006; print REDIS_CLUSTER_URL
	@scripts/dev-services.sh cluster-env

cluster-stop: ## Stop the private Redis Cluster started under .dev/cluster
	@scripts/dev-services.sh cluster-stop

third_party: third_party/googleapis third_party/openapiv2/protoc-gen-openapiv2/options ## Link the google/api and OpenAPI option protos from the Go module cache

# A file target: make finds a dangling link missing and makes it again.
third_party/googleapis:
	$(GO) mod download $(GOOGLEAPIS_MODULE)
	mkdir -p third_party
	ln -sfn "$$($(GO) env GOMODCACHE)/$(GOOGLEAPIS_MODULE)/third_party/googleapis" $@

# protoc-gen-openapiv2's options (the document's title, security, errors), from the grpc-gateway v2
# module go.mod requires, so the protos match the Go package the generated code imports.
third_party/openapiv2/protoc-gen-openapiv2/options:
	$(GO) mod download $(OPENAPIV2_MODULE)
	mkdir -p $(@D)
	ln -sfn "$$($(GO) list -m -f '{{.Dir}}' $(OPENAPIV2_MODULE))/protoc-gen-openapiv2/options" $@

# Neither buf nor sqlc removes the files of a deleted proto or query file, so what they wrote goes
# first, and only that: hand-written files such as gen/openapiv2/embed.go stay.
generate: third_party ## Regenerate gen/ (buf) and internal/postgres/dbsqlc (sqlc)
	@[ ! -d gen ] || find gen -type f \( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
	$(TOOL) buf generate
	@[ ! -d $(SQLC_OUT) ] || find $(SQLC_OUT) -maxdepth 1 -name '*.go' -exec grep -q '^// Code generated by sqlc' {} ';' -delete
	$(TOOL) sqlc generate

# gofmt errors (a file deleted but still in the index) are shown but not fatal: go vet checks syntax.
verify: tracked generate breaking rules ## Check no big or binary file is tracked, generated code is committed and current, buf lint and breaking, go vet, gofmt, go mod tidy, alert rules
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

# A binary that `go build` left at the top level was once committed (51 MB in every clone since):
# a tracked file over MAX_TRACKED_BYTES, or any ELF executable, fails verify.
MAX_TRACKED_BYTES := 1048576

tracked: ## Check that no tracked file is over 1 MiB or an ELF binary
	@big=$$(git ls-files -z | while IFS= read -r -d '' f; do \
		[ -f "$$f" ] && [ ! -L "$$f" ] || continue; \
		if [ "$$(stat -c %s -- "$$f")" -gt $(MAX_TRACKED_BYTES) ]; then echo "  $$f: over 1 MiB"; \
		elif [ "$$(head -c 4 -- "$$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then echo "  $$f: an ELF binary"; fi; \
	done); \
	if [ -n "$$big" ]; then \
		echo "tracked: files that belong outside git (build outputs, data); git rm --cached them:" >&2; \
		echo "$$big" >&2; exit 1; \
	fi

# Compares proto/ with the main branch (or origin/main), checked out into a temporary folder with
# the same third_party links, so it works in shallow clones; skipped while main has no proto/ yet.
# Only the proto module is compared: the third_party modules are not ours, and main may link fewer.
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
	ln -s "$(CURDIR)/third_party/"* "$$against/third_party/"; \
	echo "breaking: proto/ against $$(git rev-parse --short "$$ref")"; \
	$(TOOL) buf breaking proto --against "$$against/proto"
