# lib.sh: shell functions shared by the test and benchmark scripts (source it; it defines
# nothing else). The caller defines die MESSAGE and sets root (the repository) and tmp (a
# scratch directory readable by the postgres user).

# free_port prints a loopback port that nothing listens on, below the ephemeral range and away
# from the ports that packaged services or make run may hold.
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

# start_service KIND: start a throwaway PostgreSQL or Redis (KIND postgres or redis) in $tmp
# on a free port, trying again on another port if one is taken meanwhile, and print "DIR URL".
start_service() {
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
		echo "$(basename "$0"): $kind did not start on port $port (try $try of 5)" >&2
	done
	die "could not start $kind: see the errors above"
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# wait_ready NAME PID FILE LOG SECONDS: wait until the process PID (NAME) has written its ready
# line to FILE; die with the end of LOG if it exits first, or after SECONDS.
wait_ready() {
	local name=$1 pid=$2 file=$3 log=$4 secs=$5 i
	for ((i = 0; i < secs * 10; i++)); do
		[[ -s "$file" ]] && return 0
		kill -0 "$pid" 2>/dev/null || {
			tail -n 20 "$log" >&2
			die "$name exited before it was ready"
		}
		sleep 0.1
	done
	die "$name was not ready within $secs s"
}

# keep_logs NAME RC: copy $logs into a new directory named after the script NAME when RC is
# not 0, $failed is above 0 or KEEP_LOGS=1, and say where.
keep_logs() {
	local kept
	if (($2 != 0 || ${failed:-0} > 0)) || [[ "${KEEP_LOGS:-0}" == 1 ]]; then
		kept=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-$1-logs.XXXXXX")
		cp -r "$logs" "$kept/" 2>/dev/null || true
		echo "$1.sh: logs kept in $kept" >&2
	fi
}

# build_pulpgo_and_fakehub: set pulpgo to $PULPGO_BIN or a build of ./cmd/pulpgo in $tmp, and
# build fakehub (test/upstream/cmd/fakehub) into $tmp/fakehub.
build_pulpgo_and_fakehub() {
	if [[ -n "${PULPGO_BIN:-}" ]]; then
		pulpgo=$PULPGO_BIN
	else
		pulpgo="$tmp/pulpgo"
		go build -o "$pulpgo" ./cmd/pulpgo
	fi
	go build -o "$tmp/fakehub" ./test/upstream/cmd/fakehub
}
