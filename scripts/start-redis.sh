#!/usr/bin/env bash
# start-redis.sh: a throwaway Redis server for tests.
#
#   scripts/start-redis.sh DIR PORT   start redis-server on 127.0.0.1:PORT with its files in DIR,
#                                     wait until it answers PING, print its URL
#   scripts/start-redis.sh stop DIR   stop the server started in DIR
#
# The server keeps nothing on disk and has 1024 databases, so that parallel test processes can
# each take their own (see test/testenv). The URL printed is redis://127.0.0.1:PORT/0
set -euo pipefail

die() {
	echo "start-redis.sh: $*" >&2
	exit 1
}

# ping succeeds when the server on port $1 answers PONG.
ping() {
	[[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

stop() {
	local dir=$1
	[[ -f "$dir/redis.pid" ]] || die "no redis.pid in $dir"
	local pid
	pid=$(<"$dir/redis.pid")
	[[ "$pid" =~ ^[0-9]+$ ]] || die "bad pid in $dir/redis.pid"
	kill -TERM "$pid" 2>/dev/null || return 0
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

start() {
	local dir=$1 port=$2
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
	command -v redis-server >/dev/null 2>&1 || die "redis-server not found (apt-get install redis-server)"
	command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (apt-get install redis-server)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if ping "$port"; then
		die "something already answers on 127.0.0.1:$port"
	fi

	rm -f "$dir/redis.pid"
	if ! redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize yes --databases 1024 --dir "$dir" --pidfile "$dir/redis.pid" \
		--logfile "$dir/redis.log" >"$dir/start.log" 2>&1; then
		cat "$dir/start.log" "$dir/redis.log" >&2 2>/dev/null || true
		die "redis-server failed to start on 127.0.0.1:$port"
	fi

	local i
	for ((i = 0; i < 300; i++)); do
		if ping "$port"; then
			echo "redis://127.0.0.1:$port/0"
			return
		fi
		sleep 0.1
	done
	tail -n 30 "$dir/redis.log" >&2 2>/dev/null || true
	die "Redis does not answer on 127.0.0.1:$port"
}

case "${1:-}" in
stop)
	[[ $# -eq 2 ]] || die "usage: $0 stop DIR"
	stop "$2"
	;;
"" | -h | --help)
	echo "usage: $0 DIR PORT | $0 stop DIR" >&2
	exit 2
	;;
*)
	[[ $# -eq 2 ]] || die "usage: $0 DIR PORT"
	start "$1" "$2"
	;;
esac
