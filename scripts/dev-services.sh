#!/usr/bin/env bash
# dev-services.sh makes sure a PostgreSQL and a Redis answer for `make run` and `make test`.
#
#   scripts/dev-services.sh env    print `export NAME=value` lines for DATABASE_URL, REDIS_URL,
#                                  TEST_DATABASE_URL (admin database "postgres" on the same server)
#                                  and TEST_REDIS_URL, starting private servers first if needed
#   scripts/dev-services.sh stop   stop the private servers (their data stays in .dev/)
#   scripts/dev-services.sh cluster-env
#                                  start (or reuse) a private six-node Redis Cluster: three masters,
#                                  three replicas, appendonly, cluster-node-timeout 2 s, on ports
#                                  DEV_CLUSTER_PORT (default 27001) to +5 (bus ports 10000 lower, so
#                                  all stay below Linux's ephemeral range), data in .dev/cluster;
#                                  print `export REDIS_CLUSTER_URL=...` in the form REDIS_URL takes
#   scripts/dev-services.sh cluster-stop
#                                  stop it (its data stays; cluster-env starts the same cluster again)
#
# A server that already answers at DATABASE_URL / REDIS_URL (default: the usual local ports) is used
# as it is. Otherwise a private, throwaway server is started from the installed binaries, with its
# data, socket and log under .dev/ (gitignored) and its own port (DEV_PG_PORT, default 55432;
# DEV_REDIS_PORT, default 56379), so it never clashes with a system one. A second run reuses the
# running private servers. Missing Debian packages are installed when running as root; otherwise
# the script says what to install and fails.
#
# Only the export lines go to stdout, so `eval "$(scripts/dev-services.sh env)"` works; the rest
# goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev="$root/.dev"
pg_port=${DEV_PG_PORT:-55432}
redis_port=${DEV_REDIS_PORT:-56379}
cluster_port=${DEV_CLUSTER_PORT:-27001}
database_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/flashsale?sslmode=disable}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}

log() { printf 'dev-services: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

apt_updated=false

# install_packages installs Debian packages as root, or says what to install and fails.
install_packages() {
	(($# > 0)) || return 0
	if ((EUID != 0)) || ! have apt-get; then
		die "missing software; install it and run again: sudo apt-get install $*"
	fi
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! $apt_updated; then
		apt-get update -qq >&2
		apt_updated=true
	fi
	apt-get install -y -qq --no-install-recommends "$@" >&2
}

# url_with_db prints a postgres:// URL with its database replaced by $2.
url_with_db() { sed -E "s#^([a-z]+://[^/?]*)(/[^?]*)?#\1/$2#" <<<"$1"; }
# url_path prints the path of a URL without its leading slash (a database name or number).
url_path() { sed -E 's#^[a-z]+://[^/?]*/?([^?]*).*#\1#' <<<"$1"; }
# url_host prints host:port of a URL, without user or password, for messages.
url_host() { sed -E 's#^[a-z]+://([^@/?]*@)?([^/?]*).*#\2#' <<<"$1"; }

pg_usable() {
	pg_isready -q -t 3 -d "$1" && psql "$(url_with_db "$1" postgres)" -XAtqc 'select 1' >/dev/null 2>&1
}

redis_usable() {
	[[ $(timeout 5 redis-cli -u "$1" ping 2>/dev/null) == PONG ]]
}

# pg_bin prints the newest installed PostgreSQL's program folder.
pg_bin() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	[[ -n $bin && -x $bin/initdb ]] && echo "$bin"
}

# run_pg runs one of PostgreSQL's own programs. They refuse to run as root, so root runs them as
# the postgres user, from / in case that user cannot reach the current folder.
run_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# pg_dir prints the private cluster's folder, .dev/pg, creating it. When the server's user cannot
# reach it (a repository under /root, say), .dev/pg becomes a link to a folder in /tmp.
pg_dir() {
	mkdir -p "$dev"
	if [[ -L $dev/pg && ! -d $dev/pg ]]; then
		rm -f "$dev/pg" # its /tmp folder is gone
	fi
	mkdir -p "$dev/pg"
	if ((EUID == 0)); then
		id -u postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run a private PostgreSQL server as"
		chown postgres: "$(readlink -f "$dev/pg")"
		if ! runuser -u postgres -- test -w "$(readlink -f "$dev/pg")"; then
			local tmp
			tmp=$(mktemp -d /tmp/flashsale-dev-pg.XXXXXX)
			chown postgres: "$tmp"
			rm -rf "$dev/pg"
			ln -s "$tmp" "$dev/pg"
			log "user postgres cannot reach $dev; the private cluster lives in $tmp"
		fi
	fi
	readlink -f "$dev/pg"
}

# start_pg starts (or finds running) the private PostgreSQL server and sets pg_port to its port.
start_pg() {
	local bin dir sock
	bin=$(pg_bin) || {
		install_packages postgresql
		bin=$(pg_bin) || die "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"
	}
	dir=$(pg_dir)

	if [[ ! -f $dir/data/PG_VERSION ]]; then
		rm -rf "$dir/data" # left by an interrupted initdb
		log "creating a private PostgreSQL cluster in $dir/data"
		run_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
			tail -n 20 "$dir/initdb.log" >&2
			die "initdb failed; see $dir/initdb.log"
		}
	fi

	if run_pg "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
		pg_port=$(sed -n 4p "$dir/data/postmaster.pid")
		log "reusing the private PostgreSQL server on 127.0.0.1:$pg_port"
		return
	fi

	# Unix socket paths are limited to about 100 bytes; the URLs use TCP anyway.
	sock=$dir
	((${#sock} < 80)) || sock=''
	log "starting a private PostgreSQL server on 127.0.0.1:$pg_port (log: $dir/postgres.log)"
	# A throwaway server: durability is traded for speed (fsync off), and tests that run
	# packages in parallel get room for their connection pools.
	run_pg "$bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
		-o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sock' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 || {
		tail -n 20 "$dir/postgres.log" >&2
		die "the private PostgreSQL server did not start; see $dir/postgres.log"
	}
}

# start_redis starts (or finds running) the private Redis server and sets redis_port to its port.
start_redis() {
	local dir="$dev/redis" pid i
	have redis-server || install_packages redis-server
	have redis-server || die "redis-server still missing"
	mkdir -p "$dir"

	if [[ -f $dir/redis.pid && -f $dir/port ]]; then
		pid=$(cat "$dir/redis.pid")
		if kill -0 "$pid" 2>/dev/null && redis_usable "redis://127.0.0.1:$(cat "$dir/port")"; then
			redis_port=$(cat "$dir/port")
			log "reusing the private Redis server on 127.0.0.1:$redis_port"
			return
		fi
	fi

	log "starting a private Redis server on 127.0.0.1:$redis_port (log: $dir/redis.log)"
	redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
	echo "$redis_port" >"$dir/port"
	for ((i = 0; i < 100; i++)); do
		redis_usable "redis://127.0.0.1:$redis_port" && return
		sleep 0.1
	done
	tail -n 20 "$dir/redis.log" >&2
	die "the private Redis server did not answer; see $dir/redis.log"
}

# ensure_database creates the database named in the URL when it is missing.
ensure_database() {
	local db
	db=$(url_path "$1")
	[[ -n $db ]] || return 0
	if [[ $(psql "$(url_with_db "$1" postgres)" -XAtq -v db="$db" <<<"select 1 from pg_database where datname = :'db'") != 1 ]]; then
		log "creating database $db"
		psql "$(url_with_db "$1" postgres)" -Xq -v ON_ERROR_STOP=1 -v db="$db" <<<'create database :"db"' >&2
	fi
}

cmd_env() {
	[[ $database_url == postgres://* || $database_url == postgresql://* ]] ||
		die "DATABASE_URL must be a postgres:// URL"
	[[ $redis_url == redis://* ]] || die "REDIS_URL must be a redis:// URL"

	local pkgs=()
	have pg_isready && have psql || pkgs+=(postgresql-client)
	have redis-cli || pkgs+=(redis-tools)
	install_packages "${pkgs[@]}"
	have pg_isready && have psql && have redis-cli || die "pg_isready, psql or redis-cli still missing"

	if pg_usable "$database_url"; then
		log "using PostgreSQL at $(url_host "$database_url")"
	else
		log "no usable PostgreSQL at $(url_host "$database_url")"
		start_pg
		local db
		db=$(url_path "$database_url")
		database_url="postgres://postgres@127.0.0.1:$pg_port/${db:-flashsale}?sslmode=disable"
		pg_usable "$database_url" || die "the private PostgreSQL server on port $pg_port does not answer"
	fi
	ensure_database "$database_url"

	if redis_usable "$redis_url"; then
		log "using Redis at $(url_host "$redis_url")"
	else
		log "no Redis answers at $(url_host "$redis_url")"
		start_redis
		local n
		n=$(url_path "$redis_url")
		redis_url="redis://127.0.0.1:$redis_port/${n:-0}"
	fi

	emit DATABASE_URL "$database_url"
	emit REDIS_URL "$redis_url"
	emit TEST_DATABASE_URL "$(url_with_db "$database_url" postgres)"
	emit TEST_REDIS_URL "$redis_url"
}

# emit prints an export line, the value in single quotes for any POSIX shell.
emit() {
	local q="'\\''"
	printf "export %s='%s'\n" "$1" "${2//\'/$q}"
}

cmd_stop() {
	local dir bin pid i
	if [[ -f $dev/pg/data/postmaster.pid ]]; then
		dir=$(readlink -f "$dev/pg")
		bin=$(pg_bin) || die "no pg_ctl under /usr/lib/postgresql/*/bin"
		if run_pg "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
			log "stopping the private PostgreSQL server"
			run_pg "$bin/pg_ctl" stop -D "$dir/data" -m fast -w >&2
		fi
	fi
	if [[ -f $dev/redis/redis.pid ]]; then
		pid=$(cat "$dev/redis/redis.pid")
		if kill -0 "$pid" 2>/dev/null; then
			log "stopping the private Redis server"
			kill -TERM "$pid"
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			! kill -0 "$pid" 2>/dev/null || die "the private Redis server (pid $pid) did not stop"
		fi
		rm -f "$dev/redis/redis.pid"
	fi
}

# cluster_ports prints the six ports of the private cluster.
cluster_ports() { seq "$cluster_port" $((cluster_port + 5)); }

# cluster_url prints the cluster's address in the form REDIS_URL takes: every node, so a client
# gets in through whichever answers.
cluster_url() {
	local url="redis://127.0.0.1:$cluster_port" sep='?' p
	for p in $(cluster_ports | tail -n +2); do
		url+="${sep}addr=127.0.0.1:$p"
		sep='&'
	done
	echo "$url"
}

cluster_ok() {
	[[ $(timeout 5 redis-cli -p "$cluster_port" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p') == ok ]]
}

cmd_cluster_env() {
	local dir="$dev/cluster" p i fresh=false
	have redis-server || install_packages redis-server
	have redis-cli || install_packages redis-tools
	have redis-server && have redis-cli || die "redis-server or redis-cli still missing"
	for p in $(cluster_ports); do
		mkdir -p "$dir/$p"
		[[ -f $dir/$p/nodes.conf ]] || fresh=true
		if redis_usable "redis://127.0.0.1:$p"; then
			continue
		fi
		log "starting Redis Cluster node 127.0.0.1:$p (log: $dir/$p/redis.log)"
		# repl-diskless-sync-delay 0: a replica that rejoins after a failover is synced at once,
		# not 5 s later; queue mode with a replica required waits for it.
		redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
			--cluster-node-timeout 2000 --cluster-port $((p - 10000)) --appendonly yes --save '' \
			--repl-diskless-sync-delay 0 --dir "$dir/$p" --daemonize yes --pidfile "$dir/$p/redis.pid" \
			--logfile "$dir/$p/redis.log" >&2
		for ((i = 0; i < 100; i++)); do
			redis_usable "redis://127.0.0.1:$p" && break
			sleep 0.1
		done
		redis_usable "redis://127.0.0.1:$p" || die "Redis Cluster node $p did not answer; see $dir/$p/redis.log"
	done
	if $fresh && ! cluster_ok; then
		log "creating the cluster: 3 masters, 3 replicas"
		local addrs=()
		for p in $(cluster_ports); do addrs+=("127.0.0.1:$p"); done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >&2 ||
			die "redis-cli --cluster create failed"
	fi
	for ((i = 0; i < 300; i++)); do
		cluster_ok && break
		sleep 0.1
	done
	cluster_ok || die "the private Redis Cluster is not ok; see $dir/*/redis.log"
	log "Redis Cluster on 127.0.0.1:$cluster_port-$((cluster_port + 5))"
	emit REDIS_CLUSTER_URL "$(cluster_url)"
}

cmd_cluster_stop() {
	local dir="$dev/cluster" p pid i
	for p in $(cluster_ports); do
		[[ -f $dir/$p/redis.pid ]] || continue
		pid=$(cat "$dir/$p/redis.pid")
		if kill -0 "$pid" 2>/dev/null; then
			log "stopping Redis Cluster node 127.0.0.1:$p"
			kill -TERM "$pid"
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		rm -f "$dir/$p/redis.pid"
	done
}

case ${1:-} in
env) cmd_env ;;
stop) cmd_stop ;;
cluster-env) cmd_cluster_env ;;
cluster-stop) cmd_cluster_stop ;;
*)
	echo "usage: $0 env|stop|cluster-env|cluster-stop" >&2
	exit 2
	;;
esac
