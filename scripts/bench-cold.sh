#!/usr/bin/env bash
# bench-cold.sh: A/B of cold pulls through pulpgo builds, interleaved with direct pulls, with
# the server CPU each cold pull took. Quicker than bench-pull.sh (no Distribution, no warm or
# concurrent rounds) and meant for comparing builds of the cold path:
#
#   bash scripts/bench-cold.sh [PULPGO_BINARY ...]     (default: a build of ./cmd/pulpgo)
#
# Environment: REPEAT=5 rounds; LARGE_MIB=300 and LARGE_LAYERS=4 (the image). Every round pulls
# library/large directly from fakehub (token flow, CDN redirects), then through each binary on a
# new server with empty storage; each line prints the seconds of each pull, the server's CPU
# (user + system, from /proc/<pid>/stat) during its pull, and the ratio to that round's direct
# pull. Every pull verifies every digest (pullbench). Everything listens on 127.0.0.1.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
die() {
	echo "bench-cold.sh: $*" >&2
	exit 1
}
source scripts/lib.sh

REPEAT=${REPEAT:-5}
LARGE_MIB=${LARGE_MIB:-300}
LARGE_LAYERS=${LARGE_LAYERS:-4}
tmp=$(mktemp -d)
fakehub_pid=""
cleanup() {
	[[ -n "$fakehub_pid" ]] && stop_pid "$fakehub_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT

bins=("$@")
if ((${#bins[@]} == 0)); then
	go build -o "$tmp/pulpgo" ./cmd/pulpgo
	bins=("$tmp/pulpgo")
fi
go build -o "$tmp/fakehub" ./test/upstream/cmd/fakehub
go build -o "$tmp/pullbench" ./test/bench/cmd/pullbench

mkdir -p "$tmp/fakehub-tmp"
TMPDIR="$tmp/fakehub-tmp" "$tmp/fakehub" -images large -large-mib "$LARGE_MIB" -large-layers "$LARGE_LAYERS" \
	>"$tmp/fakehub.json" 2>"$tmp/fakehub.log" &
fakehub_pid=$!
for ((i = 0; i < 300; i++)); do
	[[ -s "$tmp/fakehub.json" ]] && break
	kill -0 "$fakehub_pid" 2>/dev/null || die "fakehub exited: $(tail -n 5 "$tmp/fakehub.log")"
	sleep 1
done
hub=$(jq -r .url "$tmp/fakehub.json")

api() { curl -fsS -u admin:password -H 'Content-Type: application/json' "$@"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cold BINARY: a new server with a pull-through distribution, one cold pull; prints
# "SECONDS CPU_MS".
cold() {
	local bin=$1 port data pid r task i secs c0 c1 url
	port=$(free_port)
	data=$(mktemp -d "$tmp/data.XXXX")
	url=http://127.0.0.1:$port
	"$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --log-level warn >"$data/log" 2>&1 &
	pid=$!
	for ((i = 0; i < 300; i++)); do
		curl -fsS -o /dev/null "$url/pulp/api/v3/status/" 2>/dev/null && break
		sleep 0.1
	done
	r=$(api -d "{\"name\":\"dc\",\"url\":\"$hub\"}" "$url/pulp/api/v3/remotes/container/pull-through/")
	r=$(api -d "{\"name\":\"dc\",\"base_path\":\"docker-cache\",\"remote\":\"$(jq -r .pulp_href <<<"$r")\"}" \
		"$url/pulp/api/v3/distributions/container/pull-through/")
	task=$(jq -r .task <<<"$r")
	for ((i = 0; i < 600; i++)); do
		[[ $(api "$url$task" | jq -r .state) == completed ]] && break
		sleep 0.05
	done
	c0=$(cpu_ticks "$pid")
	secs=$("$tmp/pullbench" -registry "$url" -image docker-cache/library/large:latest -n 1 -auth-token-flow | jq -r .seconds)
	c1=$(cpu_ticks "$pid")
	stop_pid "$pid"
	rm -rf "$data"
	echo "$secs $(((c1 - c0) * 1000 / $(getconf CLK_TCK)))"
}

for ((r = 1; r <= REPEAT; r++)); do
	direct=$("$tmp/pullbench" -registry "$hub" -image library/large:latest -n 1 -auth-token-flow | jq -r .seconds)
	line="direct ${direct} s"
	for b in "${bins[@]}"; do
		read -r secs cpu < <(cold "$b")
		line+="  $(basename "$b") ${secs} s, cpu ${cpu} ms ($(jq -n "$secs / $direct * 100 | round / 100")x)"
	done
	echo "$line"
done
