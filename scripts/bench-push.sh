#!/usr/bin/env bash
# bench-push.sh: push benchmark of pulpgo beside CNCF Distribution v3, in one run.
#
#   bash scripts/bench-push.sh
#
# Environment (all optional):
#   LARGE_MIB=256    size of the single-layer image, in MiB
#   SMALL=50         number of small images (a shared layer, 1 MiB of its own and a config each)
#   REPEAT=3         rounds; pulpgo and Distribution take turns in each, and the best is kept
#   PULPGO_BIN=      a prebuilt pulpgo to test instead of building ./cmd/pulpgo
#   DIST_BIN=        a Distribution v3 registry binary (default: go install of v3.1.2 into
#                    /var/cache/pulpgo/distribution-v3.1.2, once per machine)
#   KEEP_LOGS=0      1 keeps the logs (they are kept anyway when something failed)
#
# What it does, everything on 127.0.0.1: builds pulpgo and fakehub, has fakehub build the
# images (one of LARGE_MIB in one layer, SMALL small ones) and copies them into dir: layouts
# with skopeo once. Then, in each round, for pulpgo serve (embedded defaults, token auth on,
# pushing as admin) and Distribution (filesystem storage, no auth), each started fresh with
# empty storage: times `skopeo copy dir:... docker://...` of the large image, then of the
# SMALL images one after the other, and reads the server's peak RSS (VmHWM) after the large
# push. Prints a table and the goals: push throughput >= Distribution's, RSS < 100 MiB.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

LARGE_MIB=${LARGE_MIB:-256}
SMALL=${SMALL:-50}
REPEAT=${REPEAT:-3}
KEEP_LOGS=${KEEP_LOGS:-0}
DIST_VERSION=v3.1.2

say() { echo "bench-push.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

for tool in go curl jq skopeo awk column; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install -y skopeo jq curl docker-registry)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-bench-push.XXXXXX")
logs="$tmp/logs"
mkdir -p "$logs"
fakehub_pid=""
server_pid=""
failed=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$server_pid"
	stop_pid "$fakehub_pid"
	keep_logs bench-push "$rc"
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

if [[ -n "${DIST_BIN:-}" ]]; then
	dist=$DIST_BIN
else
	dist_dir=/var/cache/pulpgo/distribution-$DIST_VERSION
	if ! mkdir -p "$dist_dir" 2>/dev/null || [[ ! -w "$dist_dir" ]]; then
		dist_dir=${XDG_CACHE_HOME:-$HOME/.cache}/pulpgo/distribution-$DIST_VERSION
		mkdir -p "$dist_dir"
	fi
	dist="$dist_dir/registry"
	if [[ ! -x "$dist" ]]; then
		say "building Distribution $DIST_VERSION into $dist_dir (once per machine, a few minutes)"
		GOBIN="$dist_dir" go install "github.com/distribution/distribution/v3/cmd/registry@$DIST_VERSION" ||
			die "go install of Distribution $DIST_VERSION failed"
	fi
fi

say "building the images: one of $LARGE_MIB MiB in one layer, $SMALL small ones"
mkdir -p "$tmp/fakehub-tmp"
TMPDIR="$tmp/fakehub-tmp" "$tmp/fakehub" -images large,tags -large-mib "$LARGE_MIB" -large-layers 1 \
	-tags "$SMALL" -tag-mib 1 >"$tmp/fakehub.json" 2>"$logs/fakehub.log" &
fakehub_pid=$!
wait_ready fakehub "$fakehub_pid" "$tmp/fakehub.json" "$logs/fakehub.log" 900
hub=$(jq -r .url "$tmp/fakehub.json")
hub=${hub#http://}
large_ref=$(jq -r '.images[] | select(.layers | length == 1) | select(.name != "library/tags") | "\(.name):\(.tag)"' "$tmp/fakehub.json" | head -n 1)
[[ -n "$large_ref" ]] || die "fakehub built no single-layer large image: $(jq -c '[.images[] | {name, tag}]' "$tmp/fakehub.json")"
mapfile -t small_tags < <(jq -r '.images[] | select(.name == "library/tags") | .tag' "$tmp/fakehub.json")
((${#small_tags[@]} == SMALL)) || die "fakehub built ${#small_tags[@]} small images, want $SMALL"
mkdir -p "$tmp/src"
skopeo copy -q --src-tls-verify=false "docker://$hub/$large_ref" "dir:$tmp/src/large" >/dev/null
for t in "${small_tags[@]}"; do
	skopeo copy -q --src-tls-verify=false "docker://$hub/library/tags:$t" "dir:$tmp/src/small-$t" >/dev/null
done
stop_pid "$fakehub_pid"
fakehub_pid=""
large_bytes=$(du -sb "$tmp/src/large" | awk '{ print $1 }')
say "images in $tmp/src ($large_bytes bytes in the large one)"

# start_server KIND: start pulpgo or Distribution with empty storage; sets server_pid and addr.
start_server() {
	local kind=$1 port i
	port=$(free_port)
	addr="127.0.0.1:$port"
	rm -rf "$tmp/data"
	mkdir -p "$tmp/data"
	case $kind in
	pulpgo)
		"$pulpgo" serve --listen "$addr" --data-dir "$tmp/data" >"$logs/pulpgo-$round.log" 2>&1 &
		server_pid=$!
		creds=(--dest-creds admin:password)
		;;
	distribution)
		cat >"$tmp/dist.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/data
  delete:
    enabled: true
http:
  addr: $addr
EOF
		"$dist" serve "$tmp/dist.yml" >"$logs/distribution-$round.log" 2>&1 &
		server_pid=$!
		creds=()
		;;
	esac
	for ((i = 0; i < 300; i++)); do
		curl -s -o /dev/null "http://$addr/v2/" 2>/dev/null && return 0
		kill -0 "$server_pid" 2>/dev/null || die "$kind exited: $(tail -n 5 "$logs/$kind-$round.log")"
		sleep 0.1
	done
	die "$kind did not start within 30 s"
}

now_ms() { date +%s%3N; }

# push SRC REF: skopeo copy of dir:SRC to the server.
push() {
	skopeo copy -q --dest-tls-verify=false "${creds[@]}" "dir:$1" "docker://$addr/$2" >>"$logs/skopeo.log" 2>&1
}

declare -A best
keep() { # KEY MS
	if [[ -z "${best[$1]:-}" ]] || (($2 < best[$1])); then best[$1]=$2; fi
}
declare -A rss

for ((round = 1; round <= REPEAT; round++)); do
	for kind in pulpgo distribution; do
		say "round $round of $REPEAT: $kind"
		start_server "$kind"
		sleep 1
		t0=$(now_ms)
		if ! push "$tmp/src/large" bench/large:latest; then
			failed=$((failed + 1))
			say "FAILED: push of the large image to $kind: $(tail -n 3 "$logs/skopeo.log")"
		fi
		t1=$(now_ms)
		keep "large-$kind" $((t1 - t0))
		hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status")
		if [[ -z "${rss[$kind]:-}" ]] || awk -v a="$hwm" -v b="${rss[$kind]}" 'BEGIN { exit !(a > b) }'; then
			rss[$kind]=$hwm
		fi
		t0=$(now_ms)
		for t in "${small_tags[@]}"; do
			if ! push "$tmp/src/small-$t" "bench/small:$t"; then
				failed=$((failed + 1))
				say "FAILED: push of small image $t to $kind: $(tail -n 3 "$logs/skopeo.log")"
				break
			fi
		done
		t1=$(now_ms)
		keep "small-$kind" $((t1 - t0))
		stop_pid "$server_pid"
		server_pid=""
	done
done

secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
mibs() { awk -v ms="$1" -v b="$large_bytes" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
echo
echo "push of one ${LARGE_MIB} MiB single-layer image and of $SMALL small images with skopeo, best of $REPEAT rounds"
echo "(pulpgo $("$pulpgo" --version 2>/dev/null || git rev-parse --short HEAD): serve, embedded defaults, token auth; Distribution $DIST_VERSION: filesystem storage, no auth)"
{
	printf 'server\tlarge push (s)\tMiB/s\tpeak RSS (MiB)\t%s small pushes (s)\n' "$SMALL"
	for kind in pulpgo distribution; do
		printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$(secs "${best[large-$kind]}")" "$(mibs "${best[large-$kind]}")" "${rss[$kind]}" "$(secs "${best[small-$kind]}")"
	done
} | column -t -s $'\t'
awk -v p="${best[large-pulpgo]}" -v d="${best[large-distribution]}" -v ps="${best[small-pulpgo]}" -v ds="${best[small-distribution]}" -v r="${rss[pulpgo]}" 'BEGIN {
	printf "large push throughput, pulpgo / Distribution: %.2fx (goal >= 1): %s\n", d / p, (d / p >= 1 ? "met" : "NOT met")
	printf "small pushes, pulpgo / Distribution throughput: %.2fx (goal >= 1): %s\n", ds / ps, (ds / ps >= 1 ? "met" : "NOT met")
	printf "pulpgo peak RSS during the large push: %.1f MiB (goal < 100): %s\n", r, (r < 100 ? "met" : "NOT met")
}'
((failed == 0)) || exit 1
