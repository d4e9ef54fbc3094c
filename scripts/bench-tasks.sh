#!/usr/bin/env bash
# bench-tasks.sh: task round trip and list throughput of pulpgo with each engine (make bench-tasks).
#
#   scripts/bench-tasks.sh [benchtasks flags...]
#
# It builds bin/pulpgo and the benchmark (test/e2e/cmd/benchtasks), then runs the server twice on
# a free loopback port, each time with a fresh data directory:
#   embedded   SQLite and in-process Redis (the defaults);
#   postgres   a throwaway PostgreSQL and Redis (scripts/start-postgres.sh, start-redis.sh).
# Against each it creates 200 container distributions one after the other, timing every round
# trip from the POST to the first poll of the task (every 2 ms) that says completed, then loads
# GET /pulp/api/v3/distributions/container/container/?limit=25 with 8 concurrent clients for
# 5 s. Extra arguments go to benchtasks (e.g. -creates 500 -duration 10s). It prints a table
# at the end and removes everything it started.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() {
	echo "bench-tasks.sh: $*" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-bench.XXXXXX")
# The postgres user must be able to reach its directory inside.
chmod 0755 "$tmp"
server_pid=""
pg_dir=""
redis_dir=""

stop_server() {
	if [[ -n "$server_pid" ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=""
	fi
}

cleanup() {
	stop_server
	if [[ -n "$pg_dir" ]]; then
		bash "$root/scripts/start-postgres.sh" stop "$pg_dir" >/dev/null 2>&1 || true
	fi
	if [[ -n "$redis_dir" ]]; then
		bash "$root/scripts/start-redis.sh" stop "$redis_dir" >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# start_server NAME [serve flags...]: run bin/pulpgo serve on a free port with a fresh data
# directory and wait (at most 30 s) until it answers; sets server_url.
start_server() {
	local name=$1
	shift
	local port data log i
	port=$(free_port)
	data="$tmp/data-$name"
	log="$tmp/pulpgo-$name.log"
	mkdir -p "$data"
	server_url="http://127.0.0.1:$port"
	"$root/bin/pulpgo" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" >"$log" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 300; i++)); do
		if curl -fsS -o /dev/null "$server_url/pulp/api/v3/status/" 2>/dev/null; then
			return
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			tail -n 30 "$log" >&2
			die "the $name server exited before it was ready"
		fi
		sleep 0.1
	done
	tail -n 30 "$log" >&2
	die "the $name server did not answer within 30 s"
}

command -v curl >/dev/null 2>&1 || die "curl is not installed"
echo "bench-tasks.sh: building bin/pulpgo and benchtasks" >&2
go build -o bin/pulpgo ./cmd/pulpgo
go build -o "$tmp/benchtasks" ./test/e2e/cmd/benchtasks

results=()

start_server embedded
echo "bench-tasks.sh: embedded server at $server_url" >&2
results+=("$("$tmp/benchtasks" -url "$server_url" -label embedded "$@")")
stop_server

out=$(start_service postgres)
pg_dir=${out%% *}
pg_url=${out#* }
out=$(start_service redis)
redis_dir=${out%% *}
redis_url=${out#* }
start_server postgres --database-url "$pg_url" --redis-url "$redis_url"
echo "bench-tasks.sh: postgres server at $server_url ($pg_url, $redis_url)" >&2
results+=("$("$tmp/benchtasks" -url "$server_url" -label postgres+redis "$@")")
stop_server

echo
echo "Task round trip: POST a container distribution -> first task poll (every 2 ms) that says completed"
echo "List load: GET /pulp/api/v3/distributions/container/container/?limit=25, 8 clients"
echo
{
	printf 'engine\tcreates\tp50 ms\tp90 ms\tp99 ms\tmax ms\tlist req/s\tlist p50 ms\tlist errors\n'
	printf '%s\n' "${results[@]}"
} | column -t -s $'\t'
