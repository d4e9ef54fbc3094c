#!/usr/bin/env bash
# start-pulp.sh: the real Pulp (pulpcore + pulp_container from PyPI) for the differential test.
#
#   scripts/start-pulp.sh DIR     install Pulp into a cached virtual environment if needed, start
#                                 a PostgreSQL of its own, pulpcore-api, pulpcore-content and
#                                 pulpcore-worker on free 127.0.0.1 ports with everything else in
#                                 DIR, wait until /pulp/api/v3/status/ shows a worker online, and
#                                 print the API's base URL (http://127.0.0.1:PORT)
#   scripts/start-pulp.sh stop DIR   stop everything started in DIR
#   scripts/start-pulp.sh install    only install (or find) the virtual environment; print its path
#
# The versions are PULP_VERSION / PULP_CONTAINER_VERSION (default 3.116.0 / 2.29.0, the ones
# pulpgo follows). The virtual environment is kept in $PULPGO_PULP_VENV, by default
# /var/cache/pulpgo/pulp-venv-<pulpcore>-<pulp_container>-py<python> (or
# ~/.cache/pulpgo/... when /var/cache is not writable), so later runs on the machine reuse it;
# it is built beside its final path and renamed into place when complete, so an interrupted
# install is never used. Commands run as "$venv/bin/python $venv/bin/<script>", which does not
# depend on the path the entry points were written with.
#
# Pulp's settings (DIR/settings.py): the database in DIR/postgres, CONTENT_ORIGIN the content
# app's URL, TOKEN_AUTH_DISABLED=True (Basic auth on the registry, as pulpgo with --token-auth=false),
# ANALYTICS=False, a DB_ENCRYPTION_KEY file, media, static and working directories in DIR. Redis
# is not used (pulpcore 3.116 needs it only for CACHE_ENABLED or WORKER_TYPE=redis). The admin
# user's password is "password". DIR/env holds PULP_URL, PULP_CONTENT_URL and PULP_DATABASE_URL;
# DIR/*.log the processes' logs; DIR/*.pid their ids, which stop uses (only those).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
	echo "start-pulp.sh: $*" >&2
	exit 1
}

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

PULP_VERSION=${PULP_VERSION:-3.116.0}
PULP_CONTAINER_VERSION=${PULP_CONTAINER_VERSION:-2.29.0}
python=${PULPGO_PULP_PYTHON:-python3}
# startup_timeout bounds the wait for the API and a worker after the processes start (s).
startup_timeout=${PULPGO_PULP_START_TIMEOUT:-180}

venv_path() {
	if [[ -n "${PULPGO_PULP_VENV:-}" ]]; then
		echo "$PULPGO_PULP_VENV"
		return
	fi
	local pyver base
	pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
		die "$python does not run"
	base=/var/cache/pulpgo
	if ! mkdir -p "$base" 2>/dev/null || [[ ! -w "$base" ]]; then
		base=${XDG_CACHE_HOME:-$HOME/.cache}/pulpgo
	fi
	echo "$base/pulp-venv-$PULP_VERSION-$PULP_CONTAINER_VERSION-py$pyver"
}

# install prints the path of a complete virtual environment, building it first if needed.
install() {
	local venv partial
	venv=$(venv_path)
	if [[ -x "$venv/bin/python" && -f "$venv/.complete" ]]; then
		echo "$venv"
		return
	fi
	mkdir -p "$(dirname "$venv")"
	partial="$venv.partial.$$"
	rm -rf "$partial"
	echo "start-pulp.sh: installing pulpcore==$PULP_VERSION pulp-container==$PULP_CONTAINER_VERSION into $venv (once; about two minutes)" >&2
	"$python" -m venv "$partial" >&2 || die "$python -m venv failed (apt-get install python3-venv)"
	if ! "$partial/bin/python" -m pip install -q --disable-pip-version-check \
		"pulpcore==$PULP_VERSION" "pulp-container==$PULP_CONTAINER_VERSION" >"$partial.log" 2>&1; then
		tail -n 40 "$partial.log" >&2
		rm -rf "$partial"
		die "pip install of Pulp failed (log above)"
	fi
	rm -f "$partial.log"
	touch "$partial/.complete"
	# Another run may have finished first: keep theirs.
	if ! mv -T "$partial" "$venv" 2>/dev/null; then
		rm -rf "$partial"
		[[ -f "$venv/.complete" ]] || die "could not move the new virtual environment to $venv"
	fi
	echo "$venv"
}

# run_bg NAME COMMAND...: start COMMAND detached (own session) with its output in DIR/NAME.log
# and its process id in DIR/NAME.pid.
run_bg() {
	local name=$1
	shift
	setsid "$@" </dev/null >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}

# pg_bin prints the directory of pg_dump and pg_restore (the newest installed PostgreSQL).
pg_bin() {
	local d
	d=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n 1)
	if [[ -n "$d" && -x "$d/bin/pg_dump" ]]; then
		echo "$d/bin"
	elif command -v pg_dump >/dev/null 2>&1; then
		dirname "$(command -v pg_dump)"
	else
		die "no pg_dump found (apt-get install postgresql)"
	fi
}

# http_get URL prints the body of a 200 answer, or fails.
http_get() {
	"$venv/bin/python" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.exit(1)
EOF
}

start() {
	dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[[ ! -e "$dir/settings.py" ]] || die "$dir already holds a Pulp (stop it and use a new DIR)"
	# On failure, stop whatever this start has started.
	trap 'status=$?; if ((status != 0)); then stop "$dir" >/dev/null 2>&1 || true; fi' EXIT
	# The postgres user needs to reach DIR/postgres.
	chmod 0755 "$dir"
	venv=$(install)

	local pg_port pg_url api_port content_port
	pg_port=$(free_port)
	pg_url=$(bash "$root/scripts/start-postgres.sh" "$dir/postgres" "$pg_port") ||
		die "PostgreSQL did not start"
	api_port=$(free_port)
	content_port=$(free_port)
	while [[ $content_port == "$api_port" || $content_port == "$pg_port" ]]; do
		content_port=$(free_port)
	done

	mkdir -p "$dir/media" "$dir/static" "$dir/tmp"
	"$venv/bin/python" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' \
		>"$dir/database_fields.symmetric.key"
	chmod 0600 "$dir/database_fields.symmetric.key"
	cat >"$dir/settings.py" <<EOF
# Written by scripts/start-pulp.sh for pulpgo's differential test.
SECRET_KEY = "$(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "$pg_port",
    }
}
CONTENT_ORIGIN = "http://127.0.0.1:$content_port"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
TOKEN_AUTH_DISABLED = True
ANALYTICS = False
DB_ENCRYPTION_KEY = "$dir/database_fields.symmetric.key"
MEDIA_ROOT = "$dir/media"
STATIC_ROOT = "$dir/static"
WORKING_DIRECTORY = "$dir/tmp"
FILE_UPLOAD_TEMP_DIR = "$dir/tmp"
EOF
	cat >"$dir/env" <<EOF
PULP_URL=http://127.0.0.1:$api_port
PULP_CONTENT_URL=http://127.0.0.1:$content_port
PULP_DATABASE_URL=$pg_url
EOF
	export PULP_SETTINGS="$dir/settings.py" DJANGO_SETTINGS_MODULE=pulpcore.app.settings

	# A fresh database takes pulpcore's migrations (about 90 s here): the first start keeps a dump
	# of the migrated database (admin password set) beside the virtual environment, and later
	# starts restore it (a few seconds).
	local dump="$venv/migrated-db.dump" pgbin
	pgbin=$(pg_bin)
	if [[ -f "$dump" ]]; then
		if ! "$pgbin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres --no-owner \
			"$dump" >"$dir/restore.log" 2>&1; then
			tail -n 40 "$dir/restore.log" >&2
			die "pg_restore of $dump failed (remove it to migrate afresh)"
		fi
	fi
	if ! "$venv/bin/python" "$venv/bin/pulpcore-manager" migrate --noinput >"$dir/migrate.log" 2>&1; then
		tail -n 40 "$dir/migrate.log" >&2
		die "pulpcore-manager migrate failed"
	fi
	if ! "$venv/bin/python" "$venv/bin/pulpcore-manager" reset-admin-password --password password \
		>"$dir/admin.log" 2>&1; then
		cat "$dir/admin.log" >&2
		die "pulpcore-manager reset-admin-password failed"
	fi
	if [[ ! -f "$dump" ]]; then
		if "$pgbin/pg_dump" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Fc \
			-f "$dump.$$" 2>"$dir/dump.log"; then
			mv -f "$dump.$$" "$dump"
		else
			rm -f "$dump.$$"
			echo "start-pulp.sh: warning: could not keep a dump of the migrated database (see $dir/dump.log)" >&2
		fi
	fi

	run_bg api "$venv/bin/python" "$venv/bin/pulpcore-api" --bind "127.0.0.1:$api_port" --workers 1 \
		--control-socket "$dir/gunicorn.ctl"
	run_bg content "$venv/bin/python" "$venv/bin/pulpcore-content" --bind "127.0.0.1:$content_port" --workers 1 \
		--control-socket "$dir/gunicorn-content.ctl"
	run_bg worker "$venv/bin/python" "$venv/bin/pulpcore-worker"

	local i status name
	for ((i = 0; i < startup_timeout * 2; i++)); do
		for name in api content worker; do
			if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
				tail -n 40 "$dir/$name.log" >&2
				die "pulpcore-$name exited (log above, $dir/$name.log)"
			fi
		done
		if status=$(http_get "http://127.0.0.1:$api_port/pulp/api/v3/status/") &&
			[[ $status == *'"online_workers":[{'* ]] &&
			http_get "http://127.0.0.1:$content_port/pulp/content/" >/dev/null; then
			trap - EXIT
			echo "http://127.0.0.1:$api_port"
			return
		fi
		sleep 0.5
	done
	for name in api content worker; do
		echo "--- $name.log" >&2
		tail -n 20 "$dir/$name.log" >&2
	done
	die "Pulp was not ready after ${startup_timeout}s (no online worker at http://127.0.0.1:$api_port/pulp/api/v3/status/)"
}

stop() {
	local dir=$1 name pid i
	[[ -d "$dir" ]] || die "no directory $dir"
	for name in worker content api; do
		[[ -f "$dir/$name.pid" ]] || continue
		pid=$(cat "$dir/$name.pid")
		# setsid made each a session and process group leader: signal the group.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	for name in worker content api; do
		[[ -f "$dir/$name.pid" ]] || continue
		pid=$(cat "$dir/$name.pid")
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		rm -f "$dir/$name.pid"
	done
	if [[ -d "$dir/postgres/data" ]]; then
		bash "$root/scripts/start-postgres.sh" stop "$dir/postgres"
	fi
}

case "${1:-}" in
stop)
	[[ $# -eq 2 ]] || die "usage: $0 stop DIR"
	stop "$2"
	;;
install)
	install
	;;
"" | -h | --help)
	echo "usage: $0 DIR | $0 stop DIR | $0 install" >&2
	exit 2
	;;
*)
	[[ $# -eq 1 ]] || die "usage: $0 DIR"
	start "$1"
	;;
esac
