#!/usr/bin/env bash
# start-postgres.sh: a throwaway PostgreSQL server for tests.
#
#   scripts/start-postgres.sh DIR PORT   start a cluster in DIR listening on 127.0.0.1:PORT,
#                                        wait until it accepts connections, print its URL
#   scripts/start-postgres.sh stop DIR   stop the cluster started in DIR
#
# The cluster uses trust authentication for the superuser "postgres", fsync=off and its unix
# socket in DIR (in /tmp if DIR's path is too long for a socket). PostgreSQL refuses to run as root, so as root the server runs as the
# "postgres" user (DIR is made theirs). The URL printed is
#   postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
set -euo pipefail

die() {
	echo "start-postgres.sh: $*" >&2
	exit 1
}

# pg_bindir prints the directory holding initdb and pg_ctl (the newest installed version).
pg_bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return
		fi
	fi
	d=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n 1)
	if [[ -n "$d" && -x "$d/bin/initdb" && -x "$d/bin/pg_ctl" ]]; then
		echo "$d/bin"
		return
	fi
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return
	fi
	die "no PostgreSQL server found (apt-get install postgresql)"
}

# as_pg runs a command as the postgres user when we are root, else as ourselves.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

stop() {
	local dir=$1
	[[ -d "$dir/data" ]] || die "no cluster in $dir"
	local bin
	bin=$(pg_bindir)
	if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null
	fi
}

start() {
	local dir=$1 port=$2
	[[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
	local bin
	bin=$(pg_bindir)

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "user postgres does not exist (apt-get install postgresql)"
		chown postgres: "$dir"
		chmod 0700 "$dir"
		as_pg test -w "$dir" ||
			die "user postgres cannot write $dir: make its parent directories searchable (chmod o+x)"
	fi
	[[ ! -e "$dir/data" ]] || die "$dir/data already exists"
	# Unix socket paths are limited to 107 bytes: put a long DIR's socket in /tmp.
	local sockdir=$dir
	((${#dir} < 80)) || sockdir=/tmp

	if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		--no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi

	local opts="-p $port -k $sockdir -c listen_addresses=127.0.0.1 -c fsync=off"
	opts+=" -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
	if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w -t 60 \
		start >/dev/null 2>&1; then
		tail -n 30 "$dir/postgres.log" >&2 || true
		die "PostgreSQL did not start on 127.0.0.1:$port"
	fi

	# pg_ctl -w waits for the socket; check the TCP listener too, bounded to 30 s.
	local i
	for ((i = 0; i < 300; i++)); do
		if pg_isready_tcp "$bin" "$port"; then
			echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			return
		fi
		sleep 0.1
	done
	tail -n 30 "$dir/postgres.log" >&2 || true
	die "PostgreSQL does not accept connections on 127.0.0.1:$port"
}

pg_isready_tcp() {
	local bin=$1 port=$2
	if [[ -x "$bin/pg_isready" ]]; then
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
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
