#!/usr/bin/env bash
# bench-sync.sh: repository sync benchmark of pulpgo against a local Docker Hub, with skopeo
# sync of the same tags as the reference.
#
#   bash scripts/bench-sync.sh
#
# Environment (all optional):
#   TAGS=50          tags of library/tags upstream; each image has a layer all tags share, a
#                    random layer of its own and its own config
#   TAG_MIB=1        size of each tag's random layer, in MiB
#   REPEAT=3         first syncs (immediate, on_demand) each on a new server with empty
#                    storage, and skopeo syncs into a new directory: the best of each is kept
#   CONCURRENCY=     the remotes' download_concurrency (default: unset, Pulp's 10)
#   KEEP_LOGS=0      1 keeps the logs (they are kept anyway when something failed)
#   PULPGO_BIN=      a prebuilt pulpgo to test instead of building ./cmd/pulpgo
#   ENGINES="embedded postgres"  the engines pulpgo runs on: embedded (SQLite + in-process
#                    Redis) and postgres (a throwaway PostgreSQL + Redis this script starts)
#
# What it does, everything on 127.0.0.1: builds pulpgo and fakehub (test/upstream/cmd/fakehub)
# and starts fakehub with library/tags; then times, from the POST to the task's end, with the
# upstream requests each caused, on pulpgo serve, for each engine of ENGINES:
#   immediate   a first sync of every tag into a new repository (policy immediate)
#   unchanged   a second sync of the same repository (nothing changed upstream)
#   on_demand   a first sync from an on_demand remote, on a second server with empty storage
#   skopeo      skopeo sync of library/tags into a new dir:
# in REPEAT interleaved rounds, and prints a table (each row the best of its REPEAT runs) and the ratio immediate / skopeo
# against its goal (<= 0.5).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

TAGS=${TAGS:-50}
TAG_MIB=${TAG_MIB:-1}
REPEAT=${REPEAT:-${SKOPEO_REPEAT:-3}}
CONCURRENCY=${CONCURRENCY:-}
KEEP_LOGS=${KEEP_LOGS:-0}
ENGINES=${ENGINES:-embedded postgres}
IMAGE=library/tags
AUTH=(-u admin:password)

say() { echo "bench-sync.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

for tool in go curl jq docker-registry skopeo awk column; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install -y docker-registry skopeo jq curl)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-bench-sync.XXXXXX")
chmod 755 "$tmp" # PostgreSQL runs as its own user and must reach its directory in here
logs="$tmp/logs"
mkdir -p "$logs"
fakehub_pid=""
pulpgo_pid=""
failed=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$pulpgo_pid"
	stop_pid "$fakehub_pid"
	[[ -n "${pg_dir:-}" ]] && bash "$root/scripts/start-postgres.sh" stop "$pg_dir" >/dev/null 2>&1
	[[ -n "${redis_dir:-}" ]] && bash "$root/scripts/start-redis.sh" stop "$redis_dir" >/dev/null 2>&1
	keep_logs bench-sync "$rc"
	rm -rf "$tmp" 2>/dev/null || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

say "building pulpgo and fakehub in $tmp"
build_pulpgo_and_fakehub

say "starting fakehub with $IMAGE: $TAGS tags, each a shared layer + $TAG_MIB MiB of its own + a config"
mkdir -p "$tmp/fakehub-tmp"
TMPDIR="$tmp/fakehub-tmp" "$tmp/fakehub" -images tags -tags "$TAGS" -tag-mib "$TAG_MIB" \
	>"$tmp/fakehub.json" 2>"$logs/fakehub.log" &
fakehub_pid=$!
wait_ready fakehub "$fakehub_pid" "$tmp/fakehub.json" "$logs/fakehub.log" 600
hub_url=$(jq -r .url "$tmp/fakehub.json")
counts_url=$(jq -r .counts "$tmp/fakehub.json")
nblobs=$(jq '[.images[] | .config.digest, .layers[].digest] | unique | length' "$tmp/fakehub.json")
bytes=$(jq '[.images[] | .config, .layers[]] | unique_by(.digest) | map(.size) | add' "$tmp/fakehub.json")
say "fakehub at $hub_url: $TAGS tags, $nblobs distinct blobs, $bytes bytes"

# start_pulpgo NAME: start pulpgo serve with a data directory of its own and set base to its
# URL (the previous one is stopped).
start_pulpgo() {
	local port
	stop_pid "$pulpgo_pid"
	port=$(free_port)
	base="http://127.0.0.1:$port"
	local -a engine_args=()
	if [[ $engine == postgres ]]; then
		# A database and a Redis database of its own for each server.
		db_n=$((db_n + 1))
		psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE bench_$db_n" >/dev/null ||
			die "creating database bench_$db_n failed"
		engine_args=(--database-url "postgres://postgres@127.0.0.1:$pg_port/bench_$db_n?sslmode=disable"
			--redis-url "${redis_url%/*}/$db_n")
	fi
	"$pulpgo" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data-$1" "${engine_args[@]}" >"$logs/pulpgo-$1.log" 2>&1 &
	pulpgo_pid=$!
	for ((i = 0; i < 300; i++)); do
		curl -fs "$base/pulp/api/v3/status/" >/dev/null 2>&1 && return 0
		kill -0 "$pulpgo_pid" 2>/dev/null || die "pulpgo exited: $(tail -n 5 "$logs/pulpgo-$1.log")"
		sleep 0.1
	done
	die "pulpgo did not start within 30 s"
}

api() { # METHOD PATH [JSON]
	if [[ $# -ge 3 ]]; then
		curl -fsS "${AUTH[@]}" -X "$1" -H 'Content-Type: application/json' -d "$3" "$base$2"
	else
		curl -fsS "${AUTH[@]}" -X "$1" "$base$2"
	fi
}

# now_ms prints the time in milliseconds.
now_ms() { date +%s%3N; }

# counts prints the upstream counters as JSON.
counts() { curl -fsS "$counts_url"; }

results="$tmp/results.tsv"
printf 'run\tseconds\tversion\ttag lists\tmanifest HEADs\tmanifest GETs\tblob GETs\n' >"$results"
base=""

# sync_run NAME REPO_HREF REMOTE_HREF: time one sync and record its row.
sync_run() {
	local name=$1 repo=$2 remote=$3 before after t0 t1 task state href
	sleep 1 # the server has settled after its start and the previous run
	before=$(counts)
	t0=$(now_ms)
	href=$(api POST "${repo}sync/" "{\"remote\": \"$remote\"}" | jq -r .task)
	# Polled every 50 ms; the end is the task's own finished_at (same clock, same machine), not
	# the moment a poll saw it: polling every 10 ms with curl and jq took about 0.1 s of this
	# two-core machine's CPU from the sync it measured (task 0.71 s against 0.59 s).
	for ((i = 0; i < 12000; i++)); do
		task=$(api GET "$href")
		state=$(jq -r .state <<<"$task")
		[[ "$state" == completed || "$state" == failed || "$state" == canceled ]] && break
		sleep 0.05
	done
	t1=$(date -d "$(jq -r '.finished_at // empty' <<<"$task")" +%s%3N 2>/dev/null) || t1=$(now_ms)
	after=$(counts)
	if [[ "$state" != completed ]]; then
		failed=$((failed + 1))
		say "FAILED: $name: $state: $(jq -c .error <<<"$task")"
	fi
	jq -r -n --arg name "$name" --argjson a "$after" --argjson b "$before" --arg s "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1000 }')" \
		--arg v "$(jq -r '.created_resources[0] // "none" | sub(".*/versions/"; "") | rtrimstr("/")' <<<"$task")" \
		'[$name, $s, $v, ($a.tag_lists - $b.tag_lists), ($a.manifest_heads - $b.manifest_heads), ($a.manifest_gets - $b.manifest_gets), ($a.blob_gets - $b.blob_gets)] | @tsv' >"$tmp/row"
	keep_best "$name" $((t1 - t0))
}

# create_remote NAME POLICY: create a container remote of library/tags and print its href.
create_remote() {
	local body
	body=$(jq -c -n --arg n "$1" --arg u "$hub_url" --arg i "$IMAGE" --arg p "$2" --arg c "$CONCURRENCY" \
		'{name: $n, url: $u, upstream_name: $i, policy: $p} + (if $c == "" then {} else {download_concurrency: ($c | tonumber)} end)')
	api POST /pulp/api/v3/remotes/container/container/ "$body" | jq -r .pulp_href
}

if [[ " $ENGINES " == *" postgres "* ]]; then
	say "starting PostgreSQL and Redis"
	read -r pg_dir pg_url < <(start_service postgres)
	read -r redis_dir redis_url < <(start_service redis)
	pg_port=${pg_url##*:}
	pg_port=${pg_port%%/*}
fi
db_n=0
order=() # row names, in the order the table prints them

# keep_best NAME MS: keep $tmp/row as NAME's row when MS is its best time so far.
keep_best() {
	local key="${1// /_}"
	[[ " ${order[*]} " == *" $key "* ]] || order+=("$key")
	if [[ ! -f "$tmp/ms-$key" ]] || (($2 < $(cat "$tmp/ms-$key"))); then
		echo "$2" >"$tmp/ms-$key"
		cp "$tmp/row" "$tmp/row-$key"
	fi
}

# skopeo_run R: time skopeo sync of the repository into a new directory.
hub_host=${hub_url#http://}
skopeo_run() {
	local before after t0 t1 dest="$tmp/skopeo-$1"
	before=$(counts)
	mkdir -p "$dest"
	t0=$(now_ms)
	if ! skopeo sync --src docker --dest dir --src-tls-verify=false "$hub_host/$IMAGE" "$dest" >"$logs/skopeo-$1.log" 2>&1; then
		failed=$((failed + 1))
		say "FAILED: skopeo sync: $(tail -n 3 "$logs/skopeo-$1.log")"
		return
	fi
	t1=$(now_ms)
	after=$(counts)
	jq -r -n --argjson a "$after" --argjson b "$before" --arg s "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1000 }')" \
		'["skopeo sync (dir:)", $s, "-", ($a.tag_lists - $b.tag_lists), ($a.manifest_heads - $b.manifest_heads), ($a.manifest_gets - $b.manifest_gets), ($a.blob_gets - $b.blob_gets)] | @tsv' >"$tmp/row"
	keep_best "skopeo sync (dir:)" $((t1 - t0))
	rm -rf "$dest"
}

for ((round = 1; round <= REPEAT; round++)); do
	for engine in $ENGINES; do
		start_pulpgo "immediate-$engine-$round"
		remote=$(create_remote tags immediate)
		repo=$(api POST /pulp/api/v3/repositories/container/container/ '{"name": "tags"}' | jq -r .pulp_href)
		say "round $round of $REPEAT, $engine: immediate sync"
		sync_run "immediate ($engine)" "$repo" "$remote"
		say "round $round of $REPEAT, $engine: unchanged re-sync"
		sync_run "unchanged ($engine)" "$repo" "$remote"
		start_pulpgo "on_demand-$engine-$round"
		od_remote=$(create_remote tags-od on_demand)
		od_repo=$(api POST /pulp/api/v3/repositories/container/container/ '{"name": "tags-od"}' | jq -r .pulp_href)
		say "round $round of $REPEAT, $engine: on_demand sync"
		sync_run "on_demand ($engine)" "$od_repo" "$od_remote"
		stop_pid "$pulpgo_pid"
		pulpgo_pid=""
		rm -rf "$tmp/data-immediate-$engine-$round" "$tmp/data-on_demand-$engine-$round"
	done
	say "round $round of $REPEAT: skopeo sync"
	skopeo_run "$round"
done
for key in "${order[@]}"; do
	cat "$tmp/row-$key" >>"$results"
done
best=""
[[ -f "$tmp/ms-skopeo_sync_(dir:)" ]] && best=$(cat "$tmp/ms-skopeo_sync_(dir:)")

echo
echo "repository sync of $IMAGE: $TAGS tags, $nblobs distinct blobs, $bytes bytes (pulpgo $("$pulpgo" --version 2>/dev/null || git rev-parse --short HEAD))"
column -t -s $'\t' "$results"
if [[ -n "$best" ]]; then
	for engine in $ENGINES; do
		awk -v e="$engine" -v p="$(cat "$tmp/ms-immediate_($engine)")" -v s="$best" \
			'BEGIN { r = p / s; printf "immediate (%s) / skopeo: %.2fx (goal <= 0.5x): %s\n", e, r, (r <= 0.5 ? "met" : "NOT met") }'
	done
fi
((failed == 0)) || exit 1
