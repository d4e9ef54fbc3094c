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
# test/parity installs and starts the real Pulp (scripts/start-pulp.sh; PULPGO_PARITY=0
# leaves it out, for a machine that cannot reach PyPI).
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

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

if [[ -z "${PULPGO_TEST_DATABASE_URL:-}" || -z "${PULPGO_TEST_REDIS_URL:-}" ]]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-test.XXXXXX")
	# The postgres user must be able to reach its directory inside.
	chmod 0755 "$tmp"
fi

if [[ -z "${PULPGO_TEST_DATABASE_URL:-}" ]]; then
	out=$(start_service postgres) || exit 1
	pg_dir=${out%% *}
	PULPGO_TEST_DATABASE_URL=${out#* }
	export PULPGO_TEST_DATABASE_URL
	echo "test.sh: PostgreSQL at $PULPGO_TEST_DATABASE_URL"
fi

if [[ -z "${PULPGO_TEST_REDIS_URL:-}" ]]; then
	out=$(start_service redis) || exit 1
	redis_dir=${out%% *}
	PULPGO_TEST_REDIS_URL=${out#* }
	export PULPGO_TEST_REDIS_URL
	echo "test.sh: Redis at $PULPGO_TEST_REDIS_URL"
fi

export PULPGO_PARITY=${PULPGO_PARITY:-1}

set +e
go test -count=1 -timeout 25m ./... "$@"
status=$?
set -e
exit "$status"
