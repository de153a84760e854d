#!/usr/bin/env bash
# bench.sh is `make bench`: for each order mode in BENCH_MODES (default: direct sync queue) it starts
# bin/flashsale on a fresh database (flashsale_bench_<mode>) on the dev PostgreSQL, runs the standard
# scenarios with bin/flashload over gRPC and over REST, stops the server, and renders
# docs/benchmarks.md from the JSON summaries (kept under .bench/, with a CSV of every non-success
# response per run), with SVG charts beside it (docs/benchmarks-*.svg, drawn with gonum/plot). That
# overwrites the committed docs/benchmarks.md and its charts: commit them, or
# `git checkout docs/benchmarks.md docs/benchmarks-*.svg` to keep the published run.
#
#   BENCH_MODES="direct sync queue" scripts/bench.sh
#   BENCH_DURATION=20s  caps each timed scenario (rush and write-bound stop earlier when every user tried)
#   BENCH_OUT, BENCH_DOC, BENCH_NOTES  the results folder (.bench), the page written
#                       (docs/benchmarks.md) and the hand-written notes appended to it
#
# Two more "modes" are fleets, on the private six-node Redis Cluster of `scripts/dev-services.sh
# cluster-env` (or REDIS_CLUSTER_URL): three `flashsale serve` in queue mode with no workers of their
# own and two `flashsale worker`, the load spread over the three (flashload --target). fleet waits for
# a replica before each 202 (ORDERS_QUEUE_MIN_REPLICAS=1), fleet-r0 does not (0): the difference is
# what the replica costs. They run BENCH_FLEET_SCENARIOS (default: rush write-bound ceiling). On one
# machine the fleet shares the same cores, so its rows show correctness and overhead, not scaling.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
modes=${BENCH_MODES:-direct sync queue}
duration=${BENCH_DURATION:-20s}
short=${BENCH_SHORT_DURATION:-10s}
concurrency=${BENCH_CONCURRENCY:-100}
out=${BENCH_OUT:-.bench}
doc=${BENCH_DOC:-docs/benchmarks.md}
notes=${BENCH_NOTES:-docs/benchmarks-notes.md}
secret=flashload-bench-secret-0123456789abcdef0123
admin_email=bench-admin@example.com
admin_password=bench-admin-password
scenarios=(rush same-user write-bound status ceiling)
read -r -a fleet_scenarios <<<"${BENCH_FLEET_SCENARIOS:-rush write-bound ceiling}"
is_fleet() { [[ $1 == fleet || $1 == fleet-r0 ]]; }
# The rush: buyers keep pressing the button, each of the 20,000 users trying
# again in turn (round robin) until the time is up.
rush=(--mode distinct --stock 1000 --users 20000 --times 1000)

log() { printf 'bench: %s\n' "$*" >&2; }

# render writes docs/benchmarks.md from the summaries and profiles in .bench/
# and the hand-written docs/benchmarks-notes.md.
render() {
	mkdir -p docs
	{
		bin/flashload render --dir "$out" --charts "$(dirname "$doc")"
		cat "$notes"
		for mode in direct sync queue; do
			for transport in grpc rest; do
				suffix=
				[[ $transport == grpc ]] || suffix=-$transport
				[[ -s $out/$mode/rush$suffix-profile.txt ]] || continue
				printf '\n### CPU profile of the server under the rush over %s, %s mode\n\n' "$transport" "$mode"
				printf 'Cumulative time of the frames that matter, over 5 s of the rush (`go tool pprof -top -cum`).\n\n```\n'
				cat "$out/$mode/rush$suffix-profile.txt"
				printf '```\n'
			done
		done
	} >"$doc"
}

# `scripts/bench.sh render` only rewrites docs/benchmarks.md from the last run
# (after editing the notes, say).
if [[ ${1:-} == render ]]; then
	go build -o bin/ ./cmd/flashload
	render
	exit 0
fi

dev_env=$(scripts/dev-services.sh env)
eval "$dev_env"
admin_url=$TEST_DATABASE_URL
url_with_db() { sed -E "s#^([a-z]+://[^/?]*)(/[^?]*)?#\1/$2#" <<<"$1"; }

log "building bin/flashsale and bin/flashload"
go build -o bin/ ./cmd/flashsale ./cmd/flashload

# Each mode run starts afresh; the results of modes not run this time stay, and are rendered too.
mkdir -p "$out"

server_pids=()
stop_server() {
	local pid
	for pid in "${server_pids[@]}"; do
		kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
	done
	for pid in "${server_pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	server_pids=()
}
trap stop_server EXIT

# await_ready waits for http://$1/readyz while process $2 runs (its log: $3).
await_ready() {
	local t
	for ((t = 0; t < 300; t++)); do
		curl -fsS "http://$1/readyz" >/dev/null 2>&1 && return
		kill -0 "$2" 2>/dev/null || {
			cat "$3" >&2
			log "the server exited"
			exit 1
		}
		sleep 0.1
	done
	log "the server on $1 was not ready after 30 s"
	exit 1
}

i=0
failed=0
for mode in $modes; do
	rm -rf "${out:?}/$mode"
	db=flashsale_bench_${mode//-/_}
	database_url=$(url_with_db "$DATABASE_URL" "$db")
	grpc_addr=127.0.0.1:$((19090 + i))
	http_addr=127.0.0.1:$((18080 + i))
	i=$((i + 1))

	log "mode $mode: fresh database $db"
	psql "$admin_url" -Xq -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >&2
	DATABASE_URL=$database_url AUTH_JWT_SECRET=$secret bin/flashsale migrate >&2

	mkdir -p "$out/$mode"
	grpc_targets=(--target "$grpc_addr")
	http_targets=(--target "$http_addr")
	run_scenarios=("${scenarios[@]}")
	if ! is_fleet "$mode"; then
		log "mode $mode: serving gRPC on $grpc_addr, REST on $http_addr (log: $out/$mode/server.log)"
		# Rate limits off and only errors logged: the figures are the order path, not the access log.
		# The dev Redis may run without an AOF (the prestarted one does); queue mode would refuse it, so
		# the benchmark says it knows (ORDERS_QUEUE_ALLOW_VOLATILE). With appendfsync everysec the AOF
		# costs Redis a write() per event loop, not an fsync per order.
		DATABASE_URL=$database_url REDIS_URL=$REDIS_URL REDIS_KEY_PREFIX=bench-$mode-$$ ORDER_MODE=$mode \
			ORDERS_QUEUE_ALLOW_VOLATILE=true \
			RL_DISABLED=true LOG_LEVEL=${BENCH_LOG_LEVEL:-error} DEBUG_PPROF=true \
			AUTH_JWT_SECRET=$secret ADMIN_EMAIL=$admin_email ADMIN_PASSWORD=$admin_password \
			GRPC_ADDR=$grpc_addr HTTP_ADDR=$http_addr \
			bin/flashsale serve >"$out/$mode/server.log" 2>&1 &
		server_pids=($!)
		await_ready "$http_addr" "${server_pids[0]}" "$out/$mode/server.log"
	else
		[[ -n ${REDIS_CLUSTER_URL:-} ]] || eval "$(scripts/dev-services.sh cluster-env)"
		replicas=1
		[[ $mode == fleet-r0 ]] && replicas=0
		run_scenarios=("${fleet_scenarios[@]}")
		grpc_targets=() http_targets=()
		printf 'fleet: ORDER_MODE=queue, 3 serve (no in-process workers) + 2 `flashsale worker`, six-node Redis Cluster (3 masters, 3 replicas, appendonly), ORDERS_QUEUE_MIN_REPLICAS=%s\n' \
			"$replicas" >"$out/$mode/title"
		fleet_env=(DATABASE_URL="$database_url" REDIS_URL="$REDIS_CLUSTER_URL" REDIS_KEY_PREFIX="bench-$mode-$$"
			ORDER_MODE=queue ORDERS_WORKER_CONCURRENCY=0 ORDERS_QUEUE_MIN_REPLICAS=$replicas
			RL_DISABLED=true LOG_LEVEL="${BENCH_LOG_LEVEL:-error}"
			AUTH_JWT_SECRET="$secret" ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password")
		for k in 0 1 2; do
			g=127.0.0.1:$((19190 + 10 * i + k)) h=127.0.0.1:$((18180 + 10 * i + k))
			log "mode $mode: serve $k on gRPC $g, REST $h (log: $out/$mode/server-$k.log)"
			env "${fleet_env[@]}" GRPC_ADDR="$g" HTTP_ADDR="$h" bin/flashsale serve >"$out/$mode/server-$k.log" 2>&1 &
			server_pids+=($!)
			await_ready "$h" "$!" "$out/$mode/server-$k.log"
			grpc_targets+=(--target "$g")
			http_targets+=(--target "$h")
			((k > 0)) || grpc_addr=$g http_addr=$h
		done
		# Redis's own account of its time (usec per call of each command), from this mode's load only.
		for p in $(seq "${DEV_CLUSTER_PORT:-27001}" $((${DEV_CLUSTER_PORT:-27001} + 5))); do
			redis-cli -p "$p" config resetstat >/dev/null
		done
		for k in 0 1; do
			log "mode $mode: worker $k (log: $out/$mode/worker-$k.log)"
			env "${fleet_env[@]}" ORDERS_WORKER_CONCURRENCY=1 bin/flashsale worker >"$out/$mode/worker-$k.log" 2>&1 &
			server_pids+=($!)
		done
	fi

	common=(--grpc "$grpc_addr" --http "$http_addr" --database-url "$database_url"
		--admin-email "$admin_email" --admin-password "$admin_password" --jwt-secret "$secret"
		--concurrency "$concurrency" --progress 5s)
	for transport in grpc rest; do
		targets=("${grpc_targets[@]}")
		[[ $transport == grpc ]] || targets=("${http_targets[@]}")
		for scenario in "${run_scenarios[@]}"; do
			case $scenario in
			rush) args=("${rush[@]}" --duration "$duration") ;;
			same-user) args=(--mode same-user --stock 1000 --duration "$duration") ;;
			write-bound) args=(--mode distinct --stock 100000 --users 100000 --duration "$duration") ;;
			status) args=(--mode status --stock 1000 --duration "$short") ;;
			ceiling) args=(--mode ceiling --duration "$short") ;;
			esac
			log "mode $mode: $scenario over $transport"
			bin/flashload "${common[@]}" "${targets[@]}" "${args[@]}" --transport "$transport" --name "$scenario" \
				--out "$out/$mode/$scenario-$transport.json" || failed=1
		done
	done
	if is_fleet "$mode"; then
		for p in $(seq "${DEV_CLUSTER_PORT:-27001}" $((${DEV_CLUSTER_PORT:-27001} + 5))); do
			role=$(redis-cli -p "$p" role | head -n1)
			printf '# 127.0.0.1:%s (%s)\n' "$p" "$role"
			redis-cli -p "$p" info commandstats | tr -d '\r' | grep -E '^cmdstat_(evalsha|eval|wait|xreadgroup|xautoclaim|get|hget|xack|xdel|client)' || true
			redis-cli -p "$p" info cpu | tr -d '\r' | grep -E '^used_cpu_(sys|user):' || true
		done >"$out/$mode/redis-commandstats.txt"
		stop_server
		continue
	fi
	# Where the time goes: a CPU profile of the server under the rush, over each transport.
	for transport in grpc rest; do
		suffix=
		[[ $transport == grpc ]] || suffix=-$transport
		log "mode $mode: CPU profile under a rush over $transport"
		mkdir -p "$out/$mode/profile"
		bin/flashload "${common[@]}" "${rush[@]}" --duration 10s --transport "$transport" \
			--name rush-profile --ceiling 0 --progress 0 --out "$out/$mode/profile/rush$suffix.json" >/dev/null &
		load_pid=$!
		sleep 3
		curl -fsS -o "$out/$mode/rush$suffix.pprof" "http://$http_addr/debug/pprof/profile?seconds=5" || true
		wait "$load_pid" || failed=1
		if [[ -s $out/$mode/rush$suffix.pprof ]]; then
			go tool pprof -top -cum -nodecount=400 bin/flashsale "$out/$mode/rush$suffix.pprof" 2>/dev/null |
				awk 'n < 45 && (NR <= 6 || /flashsale\/internal|flashsale\/gen|grpc-gateway|net\/http\.\(\*conn\)|protojson|jackc|rueidis|golang-jwt|encoding\/json|syscall.Syscall$|runtime.mallocgc$|runtime.gcBgMarkWorker$|logging.UnaryServer|ServerMetrics/) { print; n++ }' \
				>"$out/$mode/rush$suffix-profile.txt" || true
		fi
	done
	stop_server
done

pg_version=$(psql "$admin_url" -XAtqc 'show server_version' 2>/dev/null || echo unknown)
redis_version=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | sed -n 's/^redis_version:\(.*\)\r*$/\1/p' | tr -d '\r')
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem_gb=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
# The commit, read from .git without running git.
commit=unknown
if [[ -f .git/HEAD ]]; then
	head=$(cat .git/HEAD)
	if [[ $head == ref:* ]]; then
		ref=${head#ref: }
		head=$(cat ".git/$ref" 2>/dev/null || sed -n "s# $ref\$##p" .git/packed-refs 2>/dev/null || true)
	fi
	[[ -n $head ]] && commit=${head:0:12}
fi
os_name=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -sr)
# Every mode with results in $out, in the usual order, this run's or an earlier one's.
shown=()
for m in direct sync queue fleet fleet-r0 $modes; do
	[[ -d $out/$m ]] && [[ " ${shown[*]} " != *" $m "* ]] && shown+=("$m")
done
modes_json=$(printf '"%s",' "${shown[@]}")
scen_json=$(printf '"%s",' "${scenarios[@]}")
cat >"$out/meta.json" <<JSON
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "cpuModel": "${cpu_model:-unknown}",
  "cores": "$(nproc)",
  "memoryGb": "$mem_gb",
  "os": "$os_name, $(uname -r)",
  "go": "$(go version | cut -d' ' -f3-)",
  "postgres": "$pg_version",
  "redis": "${redis_version:-unknown}",
  "commit": "$commit",
  "modes": [${modes_json%,}],
  "scenarios": [${scen_json%,}],
  "notes": "Timed scenarios capped at $duration (status and ceiling $short); $concurrency concurrent callers; gRPC over one connection (ghz runner), REST with a net/http client keeping $concurrency connections."
}
JSON
render
log "wrote $doc"
if ((failed)); then
	log "a run failed or broke an invariant; see above and docs/benchmarks.md"
	exit 1
fi
