#!/usr/bin/env bash
# test.sh: run the whole test suite against real PostgreSQL and Redis servers (make test).
#
#   scripts/test.sh [go test flags...]
#
# Unless PULPGO_TEST_DATABASE_URL and PULPGO_TEST_REDIS_URL are already set, it starts a
# throwaway PostgreSQL and Redis on free loopback ports in a temporary directory (with
# scripts/start-postgres.sh and scripts/start-redis.sh), exports their URLs, runs
#   go test -count=1 -timeout 25m ./... "$@"
# and stops the servers on exit. It exits with go test's status, and prints nothing after
# go test's own summary. A server that cannot start fails the run; nothing is skipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() {
	echo "test.sh: $*" >&2
	exit 1
}

tmp=""
pg_dir=""
redis_dir=""

cleanup() {
	if [[ -n "$pg_dir" ]]; then
		bash "$root/scripts/start-postgres.sh" stop "$pg_dir" >/dev/null 2>&1 || true
	fi
	if [[ -n "$redis_dir" ]]; then
		bash "$root/scripts/start-redis.sh" stop "$redis_dir" >/dev/null 2>&1 || true
	fi
	if [[ -n "$tmp" ]]; then
		rm -rf "$tmp" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a loopback port that nothing listens on, below the ephemeral range and
# away from the ports that packaged services or make run may hold.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		case $p in
		5000 | 5432 | 6379 | 24816 | 24817) continue ;;
		esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "found no free loopback port"
}

# start_server KIND: start PostgreSQL or Redis (a few tries, in case a port is taken
# between the check and the start) and print its URL.
start_server() {
	local kind=$1 script dir port url try
	script="$root/scripts/start-$kind.sh"
	for ((try = 1; try <= 5; try++)); do
		dir="$tmp/$kind-$try"
		port=$(free_port)
		if url=$(bash "$script" "$dir" "$port"); then
			echo "$dir $url"
			return
		fi
		bash "$script" stop "$dir" >/dev/null 2>&1 || true
		echo "test.sh: $kind did not start on port $port (try $try of 5)" >&2
	done
	die "could not start $kind: see the errors above"
}

if [[ -z "${PULPGO_TEST_DATABASE_URL:-}" || -z "${PULPGO_TEST_REDIS_URL:-}" ]]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-test.XXXXXX")
	# The postgres user must be able to reach its directory inside.
	chmod 0755 "$tmp"
fi

if [[ -z "${PULPGO_TEST_DATABASE_URL:-}" ]]; then
	out=$(start_server postgres) || exit 1
	pg_dir=${out%% *}
	PULPGO_TEST_DATABASE_URL=${out#* }
	export PULPGO_TEST_DATABASE_URL
	echo "test.sh: PostgreSQL at $PULPGO_TEST_DATABASE_URL"
fi

if [[ -z "${PULPGO_TEST_REDIS_URL:-}" ]]; then
	out=$(start_server redis) || exit 1
	redis_dir=${out%% *}
	PULPGO_TEST_REDIS_URL=${out#* }
	export PULPGO_TEST_REDIS_URL
	echo "test.sh: Redis at $PULPGO_TEST_REDIS_URL"
fi

set +e
go test -count=1 -timeout 25m ./... "$@"
status=$?
set -e
exit "$status"
