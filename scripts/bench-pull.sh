#!/usr/bin/env bash
# bench-pull.sh: pull-through cache benchmark of pulpgo against a local Docker Hub and against
# CNCF Distribution's proxy mode (make bench-pull).
#
#   bash scripts/bench-pull.sh
#   bash scripts/bench-pull.sh farm     (or ONLY=farm): only the CI farm run (below)
#
# Environment (all optional):
#   LARGE_MIB=300        size of the large image (random, incompressible), in MiB
#   LARGE_LAYERS=4       its number of layers
#   CONCURRENCY="8 50"   the concurrent pull rounds (cold and warm)
#   COLD_REPEAT=3        single cold pulls (direct, and each cache on a new server), median kept
#   SKOPEO_REPEAT=3      cold skopeo copies into dir: (direct, and each cache on a new server),
#                        best kept (skopeo's own disk writes hide part of a cache's cost); 0: none
#   WARM_REPEAT=5        single warm pulls one after the other, median kept
#   DIRECT_CONCURRENT=0  1 also pulls with each CONCURRENCY straight from the upstream (slow)
#   WRK_DURATION=10s     wrk run of warm tag-manifest GETs (-t4 -c16)
#   BLOB_DURATION=5s     warm blob load (16 workers on the biggest layer), BLOB_ROUNDS=2 times,
#                        taking turns with the other cache
#   LOG_LEVEL=debug      pulpgo's --log-level
#   KEEP_LOGS=0          1 keeps the logs (they are kept anyway when something failed)
#   PULPGO_BIN=          a prebuilt pulpgo to test instead of building ./cmd/pulpgo
#   STORAGE=fs           s3: pulpgo keeps blobs in SeaweedFS's S3 gateway (--storage s3://...,
#                        a bucket per server) started by the script from the binary the tests
#                        build (go test -run TestBinary ./test/s3server/); its RSS is not counted
#   FARM=1               0 leaves out the CI farm run at the end
#   FARM_CLIENTS=20      CI farm: clients, each pulling the FARM_IMAGES images in turn in a loop
#   FARM_IMAGES=10       images library/farm-0:latest to library/farm-9:latest
#   FARM_DURATION=60s    how long the clients start pulls
#   FARM_BUDGET=100      the upstream's pull budget: manifest GETs per FARM_WINDOW (rolling)
#   FARM_WINDOW=60s      Docker Hub's is 21600 s; 60 s makes the run one whole window, in which
#                        the tags' moves (60 s / FARM_MOVE x FARM_IMAGES = 120 new digests) are
#                        more than the budget: a cache that GETs every new digest runs out
#   FARM_MOVE=5s         every tag moves to a new digest this often
#   FARM_TAG_FRESHNESS="30s 0s"  one pulpgo run per --tag-freshness (30 s is its default)
#   FARM_LOG_LEVEL=info  pulpgo's --log-level in the farm
#   FARM_DIST3=/var/cache/pulpgo/distribution-v3.1.2/registry  Distribution v3 for the farm too,
#                        when that file exists (bench-push.sh builds it)
#
# What it does, everything on 127.0.0.1:
#  1. builds pulpgo, fakehub (test/upstream/cmd/fakehub: registry + Docker Hub token front + CDN
#     with request counters) and the load client pullbench (test/bench/cmd/pullbench) into a
#     temporary directory, and starts fakehub with library/busybox and library/large;
#  2. direct: pulls library/large from fakehub's front with Docker Hub's token flow and the
#     307 to the CDN (COLD_REPEAT single pulls; with DIRECT_CONCURRENT=1 also CONCURRENCY
#     pulls at once), and loads the biggest layer;
#  3. pulpgo (embedded defaults, pull-through remote + distribution "docker-cache") and
#     docker-registry (Distribution 2.8, proxy.remoteurl = fakehub), taking turns at every step
#     so that other load on the machine weighs on both alike: COLD_REPEAT single cold pulls,
#     each on a new server with fresh storage, then WARM_REPEAT single warm pulls on the last of
#     them; each concurrent cold round on new servers; the concurrent warm rounds and the warm
#     blob throughput on the servers of the last cold round; warm tag-manifest GETs with wrk on
#     new servers, right after one GET of the manifest (a short burst, then the steady run,
#     both inside pulpgo's tag freshness window) with the upstream requests each caused. For
#     every run: the upstream's front GETs (and CDN GETs) of each blob and the server's CPU
#     time (user + system, per GiB served: a figure other load on the machine hardly moves);
#     for every server instance its peak RSS (VmHWM);
#  4. prints a table (direct / pulpgo / distribution) and the ratios with their goals;
#  5. the CI farm (FARM=1): for each server, a new fakehub with FARM_IMAGES small images whose
#     tags move every FARM_MOVE and Docker Hub's pull budget (RateLimit headers, 429 past
#     FARM_BUDGET manifest GETs per rolling FARM_WINDOW), a new server (pulpgo per
#     FARM_TAG_FRESHNESS, docker-registry 2.8, Distribution v3 if built), and pullbench -farm:
#     FARM_CLIENTS clients pulling the images in turn for FARM_DURATION; a table of pulls served
#     and failed, pulls served stale (an older digest than the upstream's tag had when the pull
#     started), pull latency, and the upstream's manifest GETs, HEADs, 429s and blob GETs.
# Every pull verifies every digest (pullbench); failures are counted and reported in the table;
# a failure of a direct or pulpgo run makes the script exit 1 (after the table); Distribution's
# are only reported. It stops every process it started and deletes its temporary directory on
# exit; logs are kept (path printed) when something failed or KEEP_LOGS=1. It takes 3 to 6
# minutes on 2 CPUs with the defaults, most of it in Distribution's cold rounds, and the CI farm
# 5 more (FARM_DURATION for each of its 4 servers).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

LARGE_MIB=${LARGE_MIB:-300}
LARGE_LAYERS=${LARGE_LAYERS:-4}
CONCURRENCY=${CONCURRENCY:-"8 50"}
DIRECT_CONCURRENT=${DIRECT_CONCURRENT:-0}
COLD_REPEAT=${COLD_REPEAT:-3}
SKOPEO_REPEAT=${SKOPEO_REPEAT:-3}
WARM_REPEAT=${WARM_REPEAT:-5}
BURST_DURATION=2s
WRK_DURATION=${WRK_DURATION:-10s}
BLOB_DURATION=${BLOB_DURATION:-5s}
BLOB_ROUNDS=${BLOB_ROUNDS:-2}
BLOB_WORKERS=16
LOG_LEVEL=${LOG_LEVEL:-debug}
STORAGE=${STORAGE:-fs}
WEED=${WEED:-/var/cache/pulpgo/seaweedfs-v0.0.0-20261109003541-7506e5f91cd6/weed}
S3_KEY=bench S3_SECRET=bench-secret
KEEP_LOGS=${KEEP_LOGS:-0}
TAG_FRESHNESS=30s
ONLY=${ONLY:-${1:-}}
FARM=${FARM:-1}
FARM_CLIENTS=${FARM_CLIENTS:-20}
FARM_IMAGES=${FARM_IMAGES:-10}
FARM_DURATION=${FARM_DURATION:-60s}
FARM_BUDGET=${FARM_BUDGET:-100}
FARM_WINDOW=${FARM_WINDOW:-60s}
FARM_MOVE=${FARM_MOVE:-5s}
FARM_TAG_FRESHNESS=${FARM_TAG_FRESHNESS:-"30s 0s"}
FARM_LOG_LEVEL=${FARM_LOG_LEVEL:-info}
FARM_DIST3=${FARM_DIST3:-/var/cache/pulpgo/distribution-v3.1.2/registry}
IMAGE=library/large
TAG=latest
ACCEPT="application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

say() { echo "bench-pull.sh: $*" >&2; }
die() {
	say "$*"
	exit 1
}

case $ONLY in
"") tools="go curl jq wrk docker-registry skopeo busybox column awk" ;;
farm) tools="go curl jq docker-registry column awk" ;;
*) die "unknown argument $ONLY (want nothing, or farm for the CI farm run alone)" ;;
esac
for tool in $tools; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install -y wrk docker-registry skopeo busybox-static jq curl)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-bench-pull.XXXXXX")
logs="$tmp/logs"
res="$tmp/results"
mkdir -p "$logs" "$res"
fakehub_pid=""
farmhub_pid=""
pulpgo_pid=""
dist_pid=""
weed_pid=""
failures=0     # runs with errors, of any column
own_failures=0 # of those, runs against the upstream directly or against pulpgo
t_start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$pulpgo_pid"
	stop_pid "$dist_pid"
	stop_pid "$fakehub_pid"
	stop_pid "$farmhub_pid"
	stop_pid "$weed_pid"
	if ((rc != 0 || failures > 0)) || [[ "$KEEP_LOGS" == 1 ]]; then
		local kept
		kept=$(mktemp -d "${TMPDIR:-/tmp}/pulpgo-bench-pull-logs.XXXXXX")
		cp -r "$logs" "$res" "$kept/" 2>/dev/null || true
		say "logs and raw results kept in $kept"
	fi
	rm -rf "$tmp" 2>/dev/null || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# hwm_mib PID prints the peak resident set size of PID in MiB (VmHWM), or nothing.
hwm_mib() {
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Build and start the upstream.

# What is measured: the commit, and a hash of the uncommitted changes of the working tree.
src_state=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] || [[ -n "$(git ls-files --others --exclude-standard 2>/dev/null | head -1)" ]]; then
	src_state="$src_state + uncommitted changes (diff $( { git diff HEAD 2>/dev/null; git ls-files --others --exclude-standard -z 2>/dev/null | xargs -0 -r cat 2>/dev/null; } | sha256sum | cut -c1-12))"
fi
[[ -z "${PULPGO_BIN:-}" ]] || src_state="$PULPGO_BIN"
say "building pulpgo, fakehub and pullbench in $tmp (pulpgo source: $src_state)"
build_pulpgo_and_fakehub
go build -o "$tmp/pullbench" ./test/bench/cmd/pullbench
pullbench="$tmp/pullbench"

if [[ $ONLY != farm ]]; then
	say "starting fakehub with $IMAGE ($LARGE_MIB MiB in $LARGE_LAYERS layers) and library/busybox"
	mkdir -p "$tmp/fakehub-tmp"
	TMPDIR="$tmp/fakehub-tmp" "$tmp/fakehub" -images small,large -large-mib "$LARGE_MIB" -large-layers "$LARGE_LAYERS" \
		>"$tmp/fakehub.json" 2>"$logs/fakehub.log" &
	fakehub_pid=$!
	wait_ready fakehub "$fakehub_pid" "$tmp/fakehub.json" "$logs/fakehub.log" 300
	hub_url=$(jq -r .url "$tmp/fakehub.json")
	counts_url=$(jq -r '.counts // empty' "$tmp/fakehub.json")
	[[ -n "$counts_url" ]] || die "fakehub prints no counts URL (test/upstream/cmd/fakehub/counts.go)"
	jq -c --arg n "$IMAGE" '[.images[] | select(.name == $n) | (.config // empty), .layers[]] | map({digest, size})' \
		"$tmp/fakehub.json" >"$tmp/blobs.json"
	image_bytes=$(jq '[.[].size] | add' "$tmp/blobs.json")
	nblobs=$(jq length "$tmp/blobs.json")
	say "fakehub at $hub_url (counters $counts_url); $IMAGE has $nblobs blobs, $image_bytes bytes; setup took $((SECONDS - t_start)) s"
fi

# failed KEY MESSAGE: count a failed run and say why.
failed() {
	failures=$((failures + 1))
	[[ $1 == dist-* || $1 == rep-dist-* || $1 == skopeo-dist || $1 == farm-dist* ]] || own_failures=$((own_failures + 1))
	say "FAILED: $1: $2"
}

# cpu_ticks PID prints the user + system CPU time PID has used, in clock ticks (0 without PID).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
	[[ -n "$1" ]] || {
		echo 0
		return
	}
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# server_pid KEY prints the pid of the cache server a run's key is about (none for direct).
server_pid() {
	case $1 in
	pulpgo-* | rep-pulpgo-* | farm-pulpgo-*) echo "$pulpgo_pid" ;;
	dist-* | rep-dist-* | farm-dist*) echo "$dist_pid" ;;
	esac
}

# add_cpu KEY TICKS0 TICKS1: put the server CPU seconds of a run into its JSON (CPU time is
# much less disturbed by other load on the machine than wall time).
add_cpu() {
	local f="$res/$1.json"
	[[ -n "$(server_pid "$1")" && -s "$f" ]] || return 0
	jq -c --argjson c "$(awk -v a="$2" -v b="$3" -v t="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / t }')" \
		'. + {server_cpu_s: $c}' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
}

# counts FILE saves the upstream counters.
counts() { curl -fsS "$counts_url" >"$1"; }

# blob_gets BEFORE AFTER FIELD [REPEAT] prints "min..max" (or the one value) over the image's
# blobs of the growth of FIELD (blob_gets_by_digest or cdn_gets_by_digest), per repetition.
blob_gets() {
	jq -rn --slurpfile b "$1" --slurpfile a "$2" --slurpfile blobs "$tmp/blobs.json" --arg f "$3" --argjson r "${4:-1}" '
		def fmt: if . == floor then "\(.)" else "\(. * 100 | round / 100)" end;
		[$blobs[0][].digest | ((($a[0][$f][.] // 0) - ($b[0][$f][.] // 0)) / $r)] as $d
		| ($d | min) as $lo | ($d | max) as $hi
		| if $lo == $hi then ($lo | fmt) else "\($lo | fmt)..\($hi | fmt)" end'
}

# delta BEFORE AFTER JQEXPR prints the growth of a counter expression.
delta() {
	jq -rn --slurpfile b "$1" --slurpfile a "$2" "(\$a[0] | $3) - (\$b[0] | $3)"
}

# pull KEY REGISTRY IMAGE N [pullbench flags...]: run pullbench, save its JSON line and the
# upstream counters around it under $res/KEY.*.
pull() {
	local key=$1 reg=$2 image=$3 n=$4 rc=0 c0 c1
	shift 4
	counts "$res/$key.before"
	c0=$(cpu_ticks "$(server_pid "$key")")
	"$pullbench" -registry "$reg" -image "$image" -n "$n" -label "$key" -timeout 300s -auth-token-flow "$@" \
		>"$res/$key.json" 2>"$logs/pullbench-$key.log" || rc=$?
	c1=$(cpu_ticks "$(server_pid "$key")")
	counts "$res/$key.after"
	add_cpu "$key" "$c0" "$c1"
	if ((rc != 0)) || [[ ! -s "$res/$key.json" ]]; then
		failed "$key" "pullbench exit $rc: $(head -c 600 "$logs/pullbench-$key.log")"
		[[ -s "$res/$key.json" ]] || echo '{"errors":1}' >"$res/$key.json"
	fi
	say "$key: $(jq -r '"\(.seconds // "?") s (rounds \(.rounds_seconds // [])), \(.mib_per_s // "?") MiB/s, \(.errors) errors"' "$res/$key.json"); upstream front GETs per blob $(blob_gets "$res/$key.before" "$res/$key.after" blob_gets_by_digest "$(jq '.repeat // 1' "$res/$key.json")")"
}

# blobload KEY REGISTRY IMAGE [flags...]: warm blob throughput on the biggest layer.
blobload() {
	local key=$1 reg=$2 image=$3 rc=0 c0 c1
	shift 3
	counts "$res/$key.before"
	c0=$(cpu_ticks "$(server_pid "$key")")
	"$pullbench" -registry "$reg" -image "$image" -blob largest -workers "$BLOB_WORKERS" -duration "$BLOB_DURATION" \
		-label "$key" -timeout 120s -auth-token-flow "$@" >"$res/$key.json" 2>"$logs/pullbench-$key.log" || rc=$?
	c1=$(cpu_ticks "$(server_pid "$key")")
	counts "$res/$key.after"
	add_cpu "$key" "$c0" "$c1"
	if ((rc != 0)) || [[ ! -s "$res/$key.json" ]]; then
		failed "$key" "pullbench exit $rc: $(head -c 600 "$logs/pullbench-$key.log")"
		[[ -s "$res/$key.json" ]] || echo '{"errors":1}' >"$res/$key.json"
	fi
	say "$key: $(jq -r '"\(.mib_per_s // "?") MiB/s, \(.completed // "?") blobs, \(.errors) errors"' "$res/$key.json")"
}

# bearer URL: the Authorization header an anonymous client gets for URL through the registry's
# token flow (pulpgo's token authentication), or nothing when URL answers without a challenge.
bearer() {
	local chal realm service scope tok
	chal=$(curl -sS -o /dev/null -D - "$1" | tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: Bearer //p')
	[[ -n "$chal" ]] || return 0
	realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$chal")
	service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$chal")
	scope=$(sed -n 's/.*scope="\([^"]*\)".*/\1/p' <<<"$chal")
	tok=$(curl -fsS -G --data-urlencode "service=$service" --data-urlencode "scope=$scope" "$realm" | jq -r .token) ||
		die "no token from $realm for $scope"
	echo "Authorization: Bearer $tok"
}

# wrkblob KEY URL: wrk -t4 -c16 GETs of the biggest layer for BLOB_DURATION, bytes thrown away
# (no digest check, so the client's hashing does not bound the figure); saves {mib_per_s}.
wrkblob() {
	local key=$1 url=$2 rate auth
	auth=$(bearer "$url")
	wrk -t4 -c16 -d"$BLOB_DURATION" ${auth:+-H "$auth"} "$url" >"$logs/wrk-$key.txt" 2>&1 || true
	rate=$(awk '/^Transfer\/sec:/ { v = $2; u = substr(v, length(v) - 1); n = substr(v, 1, length(v) - 2) + 0;
		if (u == "GB") n *= 1024; else if (u == "KB") n /= 1024; else if (u != "MB") n = 0; print n }' "$logs/wrk-$key.txt")
	jq -nc --arg r "${rate:-0}" '{mib_per_s: ($r | tonumber)}' >"$res/$key.json"
	say "$key: ${rate:-?} MiB/s (wrk)"
}

# wrkrun KEY URL DURATION [AUTH-HEADER]: wrk GETs of URL (with the manifest Accept list); saves the JSON of
# its rate and non-2xx answers as $res/KEY.wrk. A run that fails counts as a failure.
wrkrun() {
	local key=$1 url=$2 d=$3 auth=${4:-} rps non2xx
	wrk -t4 -c16 -d"$d" -H "Accept: $ACCEPT" ${auth:+-H "$auth"} "$url" >"$logs/wrk-$key.txt" 2>&1 || true
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$logs/wrk-$key.txt")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$logs/wrk-$key.txt")
	non2xx=${non2xx:-0}
	if [[ -z "$rps" ]] || ((non2xx > 0)); then
		failed "$key" "wrk: $(tr '\n' ' ' <"$logs/wrk-$key.txt")"
	fi
	jq -nc --arg rps "${rps:-0}" --argjson non2xx "$non2xx" '{rps: ($rps | tonumber), errors: $non2xx}' >"$res/$key.wrk"
}

# tagload KEY URL, on a new server: one GET of the tag (the cold one), then wrk for
# BURST_DURATION right away, then wrk for WRK_DURATION (the steady warm rate); saves each
# phase's rate and the upstream requests it caused. The first GET refreshes the tag, so both
# phases are inside the tag freshness window (--tag-freshness 30s).
tagload() {
	local key=$1 url=$2 auth
	auth=$(bearer "$url")
	curl -fsS -o /dev/null -H "Accept: $ACCEPT" ${auth:+-H "$auth"} "$url" || failed "$key" "the first GET $url"
	counts "$res/$key.burst.before"
	wrkrun "$key-burst" "$url" "$BURST_DURATION" "$auth"
	counts "$res/$key.before"
	wrkrun "$key" "$url" "$WRK_DURATION" "$auth"
	counts "$res/$key.after"
	jq -n --slurpfile b "$res/$key-burst.wrk" --slurpfile s "$res/$key.wrk" \
		--argjson bup "$(delta "$res/$key.burst.before" "$res/$key.before" .requests)" \
		--argjson bmh "$(delta "$res/$key.burst.before" "$res/$key.before" '.manifest_heads + .manifest_gets')" \
		--argjson up "$(delta "$res/$key.before" "$res/$key.after" .requests)" \
		--argjson mh "$(delta "$res/$key.before" "$res/$key.after" '.manifest_heads + .manifest_gets')" \
		'{rps: $s[0].rps, errors: ($s[0].errors + $b[0].errors), upstream_requests: $up, upstream_manifest_requests: $mh,
		  burst_rps: $b[0].rps, burst_upstream_requests: $bup, burst_upstream_manifest_requests: $bmh}' >"$res/$key.json"
	say "$key: $(jq -c . "$res/$key.json")"
}

# ---------------------------------------------------------------------------------------------
# pulpgo and Distribution.

declare -A rss # instance -> peak RSS in MiB

# api CURL-ARGS...: a request to pulpgo's API as admin.
api() { curl -fsS -u admin:password -H 'Content-Type: application/json' "$@"; }

# start_weed: SeaweedFS with its S3 gateway (STORAGE=s3), one identity S3_KEY/S3_SECRET;
# sets s3_url.
start_weed() {
	local i dir=$tmp/weed port=()
	[[ -x "$WEED" ]] || die "no SeaweedFS at $WEED: build it with go test -count=1 -timeout 30m -run TestBinary ./test/s3server/"
	mkdir -p "$dir"
	printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}]}' \
		"$S3_KEY" "$S3_SECRET" >"$tmp/s3.json"
	for i in 0 1 2 3 4 5 6 7; do port[i]=$(free_port); done
	"$WEED" server -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -volume.max=0 -master.volumeSizeLimitMB=256 \
		-master.port="${port[0]}" -master.port.grpc="${port[1]}" -volume.port="${port[2]}" -volume.port.grpc="${port[3]}" \
		-filer.port="${port[4]}" -filer.port.grpc="${port[5]}" -s3 -s3.port="${port[6]}" -s3.port.grpc="${port[7]}" \
		-s3.config="$tmp/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 >"$logs/weed.log" 2>&1 &
	weed_pid=$!
	s3_url="http://127.0.0.1:${port[6]}"
	for ((i = 0; i < 600; i++)); do
		[[ "$(curl -s -o /dev/null -w '%{http_code}' "$s3_url/")" =~ ^(200|403)$ ]] && break
		sleep 0.1
	done
	say "SeaweedFS S3 at $s3_url, pid $weed_pid, log $logs/weed.log"
}

# storage_args NAME prints pulpgo's storage arguments: nothing for the filesystem; for S3 a new
# bucket (created here) per server, so each cold run starts empty.
storage_args() {
	[[ "$STORAGE" == s3 ]] || return 0
	local bucket i
	bucket="bench-$(tr -cd 'a-z0-9' <<<"$1" | head -c 40)-$RANDOM"
	for ((i = 0; i < 100; i++)); do
		curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" -u "$S3_KEY:$S3_SECRET" -X PUT "$s3_url/$bucket" >/dev/null 2>&1 && break
		sleep 0.2
	done
	echo "--storage s3://$bucket/pulp --s3-endpoint $s3_url --s3-region us-east-1"
}

# start_pulpgo NAME: a server with a fresh data dir and the docker-cache pull-through
# distribution; sets pulpgo_url.
start_pulpgo() {
	local name=$1 port data log i r remote task state storage
	port=$(free_port)
	data="$tmp/pulpgo-$name"
	log="$logs/pulpgo-$name.log"
	mkdir -p "$data"
	pulpgo_url="http://127.0.0.1:$port"
	storage=$(storage_args "$name")
	# shellcheck disable=SC2086 # storage holds several words and no spaces within them
	AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
		"$pulpgo" serve --listen "127.0.0.1:$port" --data-dir "$data" --tag-freshness "$TAG_FRESHNESS" \
		--log-level "$LOG_LEVEL" $storage >"$log" 2>&1 &
	pulpgo_pid=$!
	for ((i = 0; i < 300; i++)); do
		curl -fsS -o /dev/null "$pulpgo_url/pulp/api/v3/status/" 2>/dev/null && break
		kill -0 "$pulpgo_pid" 2>/dev/null || {
			tail -n 30 "$log" >&2
			die "pulpgo ($name) exited before it was ready; log $log"
		}
		sleep 0.1
	done
	curl -fsS -o /dev/null "$pulpgo_url/pulp/api/v3/status/" || die "pulpgo ($name) did not answer within 30 s; log $log"
	r=$(api -d "{\"name\":\"docker-cache\",\"url\":\"$hub_url\"}" "$pulpgo_url/pulp/api/v3/remotes/container/pull-through/") ||
		die "creating the pull-through remote failed"
	remote=$(jq -r .pulp_href <<<"$r")
	r=$(api -d "{\"name\":\"docker-cache\",\"base_path\":\"docker-cache\",\"remote\":\"$remote\"}" \
		"$pulpgo_url/pulp/api/v3/distributions/container/pull-through/") || die "creating the pull-through distribution failed"
	task=$(jq -r .task <<<"$r")
	for ((i = 0; i < 600; i++)); do
		state=$(api "$pulpgo_url$task" | jq -r .state)
		case $state in
		completed) break ;;
		failed | canceled) die "the distribution task $task $state: $(api "$pulpgo_url$task")" ;;
		esac
		sleep 0.05
	done
	[[ "$state" == completed ]] || die "the distribution task $task is still $state after 30 s"
	say "pulpgo ($name) at $pulpgo_url, pid $pulpgo_pid, log $log"
}

stop_pulpgo() {
	local name=$1
	rss["pulpgo-$name"]=$(hwm_mib "$pulpgo_pid")
	say "pulpgo ($name) peak RSS ${rss["pulpgo-$name"]} MiB"
	stop_pid "$pulpgo_pid"
	pulpgo_pid=""
	rm -rf "$tmp/pulpgo-$name"
}

if [[ "$STORAGE" == s3 ]]; then
	start_weed
elif [[ "$STORAGE" != fs ]]; then
	die "STORAGE=$STORAGE: want fs or s3"
fi

# start_dist NAME [BINARY]: docker-registry (or BINARY, another Distribution) in proxy mode with
# fresh storage; sets dist_url.
start_dist() {
	local name=$1 bin=${2:-docker-registry} port dir i
	port=$(free_port)
	dir="$tmp/dist-$name"
	mkdir -p "$dir/storage"
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
proxy:
  remoteurl: $hub_url
EOF
	dist_url="http://127.0.0.1:$port"
	"$bin" serve "$dir/config.yml" >"$logs/dist-$name.log" 2>&1 &
	dist_pid=$!
	for ((i = 0; i < 300; i++)); do
		curl -fsS -o /dev/null "$dist_url/v2/" 2>/dev/null && break
		kill -0 "$dist_pid" 2>/dev/null || {
			tail -n 30 "$logs/dist-$name.log" >&2
			die "docker-registry ($name) exited before it was ready"
		}
		sleep 0.1
	done
	curl -fsS -o /dev/null "$dist_url/v2/" || die "docker-registry ($name) did not answer within 30 s"
	say "distribution ($name) at $dist_url, pid $dist_pid, log $logs/dist-$name.log"
}

stop_dist() {
	local name=$1
	rss["dist-$name"]=$(hwm_mib "$dist_pid")
	say "distribution ($name) peak RSS ${rss["dist-$name"]} MiB"
	stop_pid "$dist_pid"
	dist_pid=""
	rm -rf "$tmp/dist-$name"
}

# ---------------------------------------------------------------------------------------------
# The CI farm.

# start_farm_hub NAME: a new fakehub with FARM_IMAGES moving images (library/farm-<i>:latest,
# moving every FARM_MOVE) and a pull budget of FARM_BUDGET manifest GETs per FARM_WINDOW; points
# hub_url and counts_url at it, for the next server and the counters.
start_farm_hub() {
	local name=$1
	mkdir -p "$tmp/fakehub-tmp"
	TMPDIR="$tmp/fakehub-tmp" "$tmp/fakehub" -images "" -moving "$FARM_IMAGES" -move-every "$FARM_MOVE" \
		-budget "$FARM_BUDGET" -budget-window "$FARM_WINDOW" >"$tmp/farmhub-$name.json" 2>"$logs/farmhub-$name.log" &
	farmhub_pid=$!
	wait_ready fakehub "$farmhub_pid" "$tmp/farmhub-$name.json" "$logs/farmhub-$name.log" 60
	hub_url=$(jq -r .url "$tmp/farmhub-$name.json")
	counts_url=$(jq -r .counts "$tmp/farmhub-$name.json")
}

stop_farm_hub() {
	stop_pid "$farmhub_pid"
	farmhub_pid=""
}

# farm KEY REGISTRY PREFIX: pullbench -farm against one server (FARM_CLIENTS clients pulling
# PREFIXlibrary/farm-<i>:latest for FARM_DURATION); saves $res/KEY.json with the upstream's
# counts during the run and the server's CPU time. Failed pulls are reported, and count as a
# failed run.
farm() {
	local key=$1 reg=$2 prefix=$3 images="" i rc=0 c0 c1 up
	for ((i = 0; i < FARM_IMAGES; i++)); do
		images+="${images:+,}${prefix}library/farm-$i:latest"
	done
	counts "$res/$key.before"
	c0=$(cpu_ticks "$(server_pid "$key")")
	"$pullbench" -farm -registry "$reg" -images "$images" -clients "$FARM_CLIENTS" -duration "$FARM_DURATION" \
		-upstream-counts "$counts_url" -label "$key" -timeout 600s -auth-token-flow >"$res/$key.json" 2>"$logs/pullbench-$key.log" || rc=$?
	c1=$(cpu_ticks "$(server_pid "$key")")
	counts "$res/$key.after"
	if [[ ! -s "$res/$key.json" ]]; then
		failed "$key" "pullbench exit $rc: $(head -c 600 "$logs/pullbench-$key.log")"
		echo '{"errors":1,"pulls_failed":1}' >"$res/$key.json"
	elif ((rc != 0)); then
		failed "$key" "$(jq -r '"\(.pulls_failed) of \(.pulls) pulls failed (\(.error_kinds)), first: \(.error_samples[0] // "")"' "$res/$key.json" | head -c 600)"
	fi
	add_cpu "$key" "$c0" "$c1"
	up=$(jq -n --slurpfile b "$res/$key.before" --slurpfile a "$res/$key.after" '
		def d(f): ($a[0] | f // 0) - ($b[0] | f // 0);
		{manifest_gets: d(.manifest_gets), manifest_heads: d(.manifest_heads), too_many: d(.too_many_requests),
		 blob_gets: d(.blob_gets), tokens: d(.token_requests), requests: d(.requests),
		 moves: d(.moving_generation), budget_left: $a[0].budget_remaining}')
	jq -c --argjson up "$up" '. + {upstream: $up}' "$res/$key.json" >"$res/$key.json.tmp" && mv "$res/$key.json.tmp" "$res/$key.json"
	say "$key: $(jq -c '{pulls, pulls_ok, pulls_failed, error_kinds, pull_seconds_p50, pull_seconds_p99, freshness, upstream}' "$res/$key.json")"
}

# run_farm: the CI farm against each server, each with a new fakehub (a full budget, the tags
# at their first digest) and a new server; fills farm_keys and farm_labels.
farm_keys=()
farm_labels=()
run_farm() {
	local f key
	say "== CI farm: $FARM_CLIENTS clients pulling $FARM_IMAGES images for $FARM_DURATION; tags move every $FARM_MOVE; budget $FARM_BUDGET manifest GETs per $FARM_WINDOW"
	if [[ -n "$fakehub_pid" ]]; then
		stop_pid "$fakehub_pid" # the large image's hub is done with
		fakehub_pid=""
	fi
	for f in $FARM_TAG_FRESHNESS; do
		key="farm-pulpgo-$f"
		start_farm_hub "$key"
		TAG_FRESHNESS=$f LOG_LEVEL=$FARM_LOG_LEVEL start_pulpgo "$key"
		farm "$key" "$pulpgo_url" docker-cache/
		stop_pulpgo "$key"
		stop_farm_hub
		farm_keys+=("$key")
		farm_labels+=("pulpgo, tag freshness $f")
	done
	start_farm_hub farm-dist2
	start_dist farm2
	farm farm-dist2 "$dist_url" ""
	stop_dist farm2
	stop_farm_hub
	farm_keys+=(farm-dist2)
	farm_labels+=("docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $NF }')")
	if [[ -x "$FARM_DIST3" ]]; then
		start_farm_hub farm-dist3
		start_dist farm3 "$FARM_DIST3"
		farm farm-dist3 "$dist_url" ""
		stop_dist farm3
		stop_farm_hub
		farm_keys+=(farm-dist3)
		farm_labels+=("distribution $("$FARM_DIST3" --version 2>/dev/null | awk '{ print $NF }')")
	else
		say "no Distribution v3 at $FARM_DIST3 (FARM_DIST3): the farm runs without it"
	fi
}

# farm_table: the CI farm's figures, one column per server.
farm_table() {
	local k row
	# frow LABEL JQEXPR: one row, the figure of each farm run.
	frow() {
		row=$1
		for k in "${farm_keys[@]}"; do
			row+=$'\t'$(jq -r "($2) // \"-\"" "$res/$k.json" 2>/dev/null || echo -)
		done
		printf '%s\n' "$row"
	}
	echo
	echo "CI farm: $FARM_CLIENTS clients, each pulling library/farm-0..$((FARM_IMAGES - 1)):latest in turn (3 small blobs each, digests checked,"
	echo "a new token per pull) for $FARM_DURATION; every tag moves to a new digest every $FARM_MOVE. Upstream: fakehub with Docker Hub's"
	echo "pull budget, $FARM_BUDGET manifest GETs per rolling $FARM_WINDOW window (HEADs free, 429 past it). A new upstream and server per column."
	echo "pulpgo: $src_state. Load average now: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	{
		row="metric"
		for k in "${farm_labels[@]}"; do row+=$'\t'$k; done
		printf '%s\n' "$row"
		frow "pulls served" '.pulls_ok'
		frow "failed pulls (goal 0)" '.pulls_failed'
		frow "  failed by" 'if (.error_kinds // {}) == {} then "-" else (.error_kinds | to_entries | map("\(.key): \(.value)") | join(", ")) end'
		frow "pull seconds p50 / p99 / max" '"\(.pull_seconds_p50) / \(.pull_seconds_p99) / \(.pull_seconds_max)"'
		frow "pulls served stale (most moves behind)" 'if .freshness then "\(.freshness.stale) (\(.freshness.max_behind))" + (if .freshness.unknown > 0 then " [\(.freshness.unknown) unknown]" else "" end) else null end'
		frow "digests served per tag (avg; tag moves in the run)" 'if .digests_served then "\((.digests_served | add) / (.digests_served | length) * 10 | round / 10) (\(.upstream.moves))" else null end'
		frow "upstream manifest GETs (budget $FARM_BUDGET per $FARM_WINDOW)" '.upstream.manifest_gets'
		frow "upstream manifest HEADs" '.upstream.manifest_heads'
		frow "upstream 429s" '.upstream.too_many'
		frow "upstream blob GETs" '.upstream.blob_gets'
		frow "upstream token requests" '.upstream.tokens'
		frow "budget left at the end" '.upstream.budget_left'
		frow "server CPU s" '.server_cpu_s'
	} | column -t -s $'\t'
	echo
}

if [[ $ONLY == farm ]]; then
	run_farm
	farm_table
	((failures == 0)) || say "$failures farm run(s) had failed pulls ($own_failures of them pulpgo's): see the FAILED lines above and the kept logs"
	((own_failures == 0)) || exit 1
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# The runs.

read -r -a conc <<<"$CONCURRENCY"
last=${conc[${#conc[@]} - 1]}

# merge KEY: make $res/KEY.json (and KEY.before/.after) from the repetitions $res/rep-KEY-*:
# the repetition of median seconds stands for KEY, with every repetition's seconds listed, the
# errors added up, and the upstream counters summed over the repetitions (so per-blob figures
# divide by "repeat"). Blob loads (mode blob) add up bytes and seconds instead.
merge() {
	local key=$1 f b a acc
	jq -s 'if .[0].mode == "blob" then
			.[0] + {seconds: (map(.seconds // 0) | add), bytes: (map(.bytes // 0) | add),
				completed: (map(.completed // 0) | add), verified: (map(.verified // 0) | add),
				errors: (map(.errors // 0) | add), repeat: length, rounds_mib_per_s: map(.mib_per_s)}
			+ (if .[0].server_cpu_s then {server_cpu_s: (map(.server_cpu_s // 0) | add * 100 | round / 100)} else {} end)
			| .mib_per_s = (if .seconds > 0 then (.bytes / 1048576 / .seconds * 1000 | round / 1000) else 0 end)
		else
			sort_by(.seconds // 1e9) as $s | $s[(length - 1) / 2 | floor]
			+ {repeat: length, rounds_seconds: map(.seconds), errors: (map(.errors // 0) | add), pulls_ok: (map(.pulls_ok // 0) | add)}
		end' "$res/rep-$key-"*.json >"$res/$key.json"
	acc='{"requests":0,"manifest_heads":0,"manifest_gets":0,"blob_gets_by_digest":{},"cdn_gets_by_digest":{}}'
	echo "$acc" >"$res/$key.before"
	for f in "$res/rep-$key-"*.json; do
		b=${f%.json}.before
		a=${f%.json}.after
		acc=$(jq -c -n --argjson acc "$acc" --slurpfile b "$b" --slurpfile a "$a" '
			def d(f): ($a[0] | f // 0) - ($b[0] | f // 0);
			def dm(f): reduce (($a[0] | f // {}) | keys[]) as $k ({}; .[$k] = (($a[0] | f)[$k] - (($b[0] | f // {})[$k] // 0)));
			def addm(x; y): reduce (y | to_entries[]) as $e (x; .[$e.key] = ((.[$e.key] // 0) + $e.value));
			{requests: ($acc.requests + d(.requests)),
			 manifest_heads: ($acc.manifest_heads + d(.manifest_heads)),
			 manifest_gets: ($acc.manifest_gets + d(.manifest_gets)),
			 blob_gets_by_digest: addm($acc.blob_gets_by_digest; dm(.blob_gets_by_digest)),
			 cdn_gets_by_digest: addm($acc.cdn_gets_by_digest; dm(.cdn_gets_by_digest))}')
	done
	echo "$acc" >"$res/$key.after"
}

say "== direct from the upstream"
pull direct-1 "$hub_url" "$IMAGE:$TAG" 1 -auth-token-flow -repeat "$COLD_REPEAT"
if [[ "$DIRECT_CONCURRENT" == 1 ]]; then
	for n in "${conc[@]}"; do
		pull "direct-$n" "$hub_url" "$IMAGE:$TAG" "$n" -auth-token-flow
	done
fi
for ((i = 1; i <= BLOB_ROUNDS; i++)); do
	blobload "rep-direct-blob-$i" "$hub_url" "$IMAGE:$TAG" -auth-token-flow
done
merge direct-blob

P_IMAGE="docker-cache/$IMAGE:$TAG"
D_IMAGE="$IMAGE:$TAG"
# pulpgo and Distribution take turns at every step, so that the other work on the machine, which
# comes and goes, weighs on both alike.
say "== single cold pulls (each on a new server), then single warm pulls"
for ((r = 1; r <= COLD_REPEAT; r++)); do
	start_pulpgo "single$r"
	pull "rep-pulpgo-cold-1-$r" "$pulpgo_url" "$P_IMAGE" 1
	start_dist "single$r"
	pull "rep-dist-cold-1-$r" "$dist_url" "$D_IMAGE" 1
	if ((r == COLD_REPEAT)); then
		for ((i = 1; i <= WARM_REPEAT; i++)); do
			pull "rep-pulpgo-warm-1-$i" "$pulpgo_url" "$P_IMAGE" 1
			pull "rep-dist-warm-1-$i" "$dist_url" "$D_IMAGE" 1
		done
	fi
	stop_pulpgo "single$r"
	stop_dist "single$r"
done
for key in pulpgo-cold-1 dist-cold-1 pulpgo-warm-1 dist-warm-1; do
	merge "$key"
done

# skopeo_copy KEY REF: one timed skopeo copy of REF (docker://...) into a new dir:, its seconds
# appended to $res/KEY.times.
skopeo_copy() {
	local key=$1 ref=$2 dir t0 t1
	dir=$(mktemp -d "$tmp/skopeo.XXXXXX")
	t0=$(date +%s.%N)
	if ! skopeo copy --quiet --src-tls-verify=false "$ref" "dir:$dir" >>"$logs/skopeo-$key.log" 2>&1; then
		failed "$key" "skopeo copy $ref: $(tail -c 600 "$logs/skopeo-$key.log")"
		rm -rf "$dir"
		return
	fi
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$res/$key.times"
	say "$key: $(tail -n 1 "$res/$key.times") s"
	rm -rf "$dir"
}

if ((SKOPEO_REPEAT > 0)); then
	say "== cold skopeo copies into dir: (each cache on a new server)"
	for ((r = 1; r <= SKOPEO_REPEAT; r++)); do
		skopeo_copy skopeo-direct "docker://${hub_url#http://}/$IMAGE:$TAG"
		start_pulpgo "skopeo$r"
		skopeo_copy skopeo-pulpgo "docker://${pulpgo_url#http://}/$P_IMAGE"
		stop_pulpgo "skopeo$r"
		start_dist "skopeo$r"
		skopeo_copy skopeo-dist "docker://${dist_url#http://}/$D_IMAGE"
		stop_dist "skopeo$r"
	done
fi

say "== concurrent cold pulls (each round on a new server)"
for n in "${conc[@]}"; do
	start_pulpgo "cold$n"
	pull "pulpgo-cold-$n" "$pulpgo_url" "$P_IMAGE" "$n"
	[[ $n == "$last" ]] || stop_pulpgo "cold$n"
	start_dist "cold$n"
	pull "dist-cold-$n" "$dist_url" "$D_IMAGE" "$n"
	[[ $n == "$last" ]] || stop_dist "cold$n"
done

say "== concurrent warm pulls and the warm blob load, on the servers of the last cold round"
for n in "${conc[@]}"; do
	pull "pulpgo-warm-$n" "$pulpgo_url" "$P_IMAGE" "$n"
	pull "dist-warm-$n" "$dist_url" "$D_IMAGE" "$n"
done
for ((i = 1; i <= BLOB_ROUNDS; i++)); do
	blobload "rep-pulpgo-blob-$i" "$pulpgo_url" "$P_IMAGE"
	blobload "rep-dist-blob-$i" "$dist_url" "$D_IMAGE"
done
merge pulpgo-blob
merge dist-blob
big=$(jq -r 'max_by(.size) | .digest' "$tmp/blobs.json")
wrkblob pulpgo-wrkblob "$pulpgo_url/v2/docker-cache/$IMAGE/blobs/$big"
wrkblob dist-wrkblob "$dist_url/v2/$IMAGE/blobs/$big"
stop_pulpgo "cold$last"
stop_dist "cold$last"

say "== warm tag GETs (each on a new server)"
start_pulpgo tags
tagload pulpgo-tags "$pulpgo_url/v2/docker-cache/$IMAGE/manifests/$TAG"
stop_pulpgo tags
start_dist tags
tagload dist-tags "$dist_url/v2/$IMAGE/manifests/$TAG"
stop_dist tags

# ---------------------------------------------------------------------------------------------
# The table.

# best KEY prints the shortest time of $res/KEY.times, or "-".
best() {
	[[ -s "$res/$1.times" ]] || {
		echo "-"
		return
	}
	sort -n "$res/$1.times" | head -n 1
}

# get KEY JQEXPR prints a figure of a result, or "-" when there is none.
get() {
	local f="$res/$1.json"
	[[ -s "$f" ]] || {
		echo "-"
		return
	}
	jq -r "($2) // \"-\"" "$f"
}

# pullcell KEY: "seconds s (MiB/s MiB/s)" plus the errors, if any.
pullcell() {
	local f="$res/$1.json"
	[[ -s "$f" ]] || {
		echo "-"
		return
	}
	jq -r 'if .seconds then "\(.seconds) s (\(.mib_per_s | floor) MiB/s)" else "-" end
		+ (if (.errors // 0) > 0 then " [\(.errors) ERRORS]" else "" end)' "$f"
}

# getscell KEY: upstream front blob GETs per blob (and CDN GETs).
getscell() {
	[[ -s "$res/$1.before" ]] || {
		echo "-"
		return
	}
	local r
	r=$(jq '.repeat // 1' "$res/$1.json" 2>/dev/null || echo 1)
	echo "$(blob_gets "$res/$1.before" "$res/$1.after" blob_gets_by_digest "$r") (cdn $(blob_gets "$res/$1.before" "$res/$1.after" cdn_gets_by_digest "$r"))"
}

# upcell KEY: all upstream requests during a run (front + token + CDN).
upcell() {
	[[ -s "$res/$1.before" ]] || {
		echo "-"
		return
	}
	delta "$res/$1.before" "$res/$1.after" .requests
}

# cpugib KEY: the server's CPU seconds per GiB it served in that run.
cpugib() {
	get "$1" 'if .server_cpu_s and (.bytes // 0) > 0 then (.server_cpu_s / (.bytes / 1073741824) * 100 | round / 100) else null end'
}

# ratio A B prints A/B with two decimals, or "-".
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# verdict VALUE OP GOAL prints ok or MISSED.
verdict() {
	awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN {
		if (v == "-" || v == "") { print "n/a"; exit }
		ok = (op == "<=" && v + 0 <= g + 0) || (op == ">=" && v + 0 >= g + 0) || (op == "==" && v + 0 == g + 0) || (op == "<" && v + 0 < g + 0)
		print (ok ? "ok" : "MISSED") }'
}

peak() { # peak PREFIX: the largest peak RSS of the instances of PREFIX
	local k m="-"
	for k in "${!rss[@]}"; do
		[[ $k == "$1"-* && -n "${rss[$k]}" ]] || continue
		if [[ $m == "-" ]] || awk -v a="${rss[$k]}" -v b="$m" 'BEGIN { exit !(a > b) }'; then
			m=${rss[$k]}
		fi
	done
	echo "$m"
}

maxgets() { # maxgets KEY: the largest front GET count of any blob in that run
	[[ -s "$res/$1.before" ]] || {
		echo "-"
		return
	}
	blob_gets "$res/$1.before" "$res/$1.after" blob_gets_by_digest | awk -F'[.][.]' '{ print $NF }'
}

total_errors() { # total_errors PREFIX: errors of all runs of PREFIX
	local f n=0 e
	for f in "$res/$1"-*.json; do
		[[ -s "$f" ]] || continue
		e=$(jq -r '.errors // 0' "$f")
		n=$((n + e))
	done
	echo "$n"
}

dash() { [[ "$DIRECT_CONCURRENT" == 1 ]] && "$@" || echo "-"; }

echo
echo "Pull-through benchmark: $IMAGE:$TAG = $nblobs blobs, $((image_bytes / 1048576)) MiB ($image_bytes bytes, $LARGE_LAYERS layers); $(nproc) CPUs; total $((SECONDS - t_start)) s"
echo "direct = fakehub front with token auth + 307 to its CDN; pulpgo ($src_state) = embedded defaults, --tag-freshness $TAG_FRESHNESS;"
echo "distribution = docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $NF }') proxy mode. Each pull verifies every digest; 3 blobs at a time per pull."
echo "pulpgo and distribution take turns at every step. Every cold round (each single cold pull too) starts fresh servers and"
echo "storage; the warm single pulls follow the last single cold pull, the concurrent warm rounds and the blob load the last"
echo "cold round, on its servers; the tag GETs run on new servers right after one GET of the manifest. Upstream GETs per blob:"
echo "front GETs (CDN GETs) per pull, min..max over the blobs, averaged over the repetitions."
echo "Load average (other work on this machine skews every figure): at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
echo
{
	printf 'metric\tdirect\tpulpgo\tdistribution\n'
	printf 'pull, 1 cold (median of %s)\t%s\t%s\t%s\n' "$COLD_REPEAT" "$(pullcell direct-1)" "$(pullcell pulpgo-cold-1)" "$(pullcell dist-cold-1)"
	printf 'pull, 1 warm (median of %s)\t%s\t%s\t%s\n' "$WARM_REPEAT" "-" "$(pullcell pulpgo-warm-1)" "$(pullcell dist-warm-1)"
	if ((SKOPEO_REPEAT > 0)); then
		printf 'skopeo copy to dir:, 1 cold (best of %s)\t%s s\t%s s\t%s s\n' "$SKOPEO_REPEAT" "$(best skopeo-direct)" "$(best skopeo-pulpgo)" "$(best skopeo-dist)"
	fi
	for n in "${conc[@]}"; do
		printf 'pull, %s cold at once\t%s\t%s\t%s\n' "$n" "$(dash pullcell "direct-$n")" "$(pullcell "pulpgo-cold-$n")" "$(pullcell "dist-cold-$n")"
	done
	for n in "${conc[@]}"; do
		printf 'pull, %s warm at once\t%s\t%s\t%s\n' "$n" "-" "$(pullcell "pulpgo-warm-$n")" "$(pullcell "dist-warm-$n")"
	done
	printf 'upstream GETs per blob, 1 cold\t%s\t%s\t%s\n' "$(getscell direct-1)" "$(getscell pulpgo-cold-1)" "$(getscell dist-cold-1)"
	printf 'upstream GETs per blob, 1 warm\t%s\t%s\t%s\n' "-" "$(getscell pulpgo-warm-1)" "$(getscell dist-warm-1)"
	for n in "${conc[@]}"; do
		printf 'upstream GETs per blob, %s cold\t%s\t%s\t%s\n' "$n" "$(dash getscell "direct-$n")" "$(getscell "pulpgo-cold-$n")" "$(getscell "dist-cold-$n")"
	done
	for n in "${conc[@]}"; do
		printf 'upstream GETs per blob, %s warm\t%s\t%s\t%s\n' "$n" "-" "$(getscell "pulpgo-warm-$n")" "$(getscell "dist-warm-$n")"
	done
	printf 'upstream requests, %s cold (all)\t%s\t%s\t%s\n' "$last" "$(dash upcell "direct-$last")" "$(upcell "pulpgo-cold-$last")" "$(upcell "dist-cold-$last")"
	printf 'upstream requests, %s warm (all)\t%s\t%s\t%s\n' "$last" "-" "$(upcell "pulpgo-warm-$last")" "$(upcell "dist-warm-$last")"
	printf 'warm tag GETs/s (wrk -t4 -c16 %s)\t%s\t%s\t%s\n' "$WRK_DURATION" "-" "$(get pulpgo-tags '.rps | floor')" "$(get dist-tags '.rps | floor')"
	printf '  upstream requests during it (manifest)\t%s\t%s\t%s\n' "-" \
		"$(get pulpgo-tags '"\(.upstream_requests) (\(.upstream_manifest_requests))"')" \
		"$(get dist-tags '"\(.upstream_requests) (\(.upstream_manifest_requests))"')"
	printf 'tag GETs/s in the %s right after the first GET\t%s\t%s\t%s\n' "$BURST_DURATION" "-" \
		"$(get pulpgo-tags '.burst_rps | floor')" "$(get dist-tags '.burst_rps | floor')"
	printf '  upstream requests during it (manifest)\t%s\t%s\t%s\n' "-" \
		"$(get pulpgo-tags '"\(.burst_upstream_requests) (\(.burst_upstream_manifest_requests))"')" \
		"$(get dist-tags '"\(.burst_upstream_requests) (\(.burst_upstream_manifest_requests))"')"
	printf 'warm blob MiB/s (%s GET loops, biggest layer, %s x %s)\t%s\t%s\t%s\n' "$BLOB_WORKERS" "$BLOB_ROUNDS" "$BLOB_DURATION" \
		"$(get direct-blob '.mib_per_s | floor')" "$(get pulpgo-blob '.mib_per_s | floor')" "$(get dist-blob '.mib_per_s | floor')"
	printf 'warm blob MiB/s (wrk -t4 -c16 %s, biggest layer, no digest check)\t%s\t%s\t%s\n' "$BLOB_DURATION" "-" \
		"$(get pulpgo-wrkblob '.mib_per_s | floor')" "$(get dist-wrkblob '.mib_per_s | floor')"
	for k in "cold-$last:$last cold pulls" "warm-$last:$last warm pulls" "blob:warm blob load"; do
		printf 'server CPU s per GiB served, %s\t%s\t%s\t%s\n' "${k#*:}" "-" "$(cpugib "pulpgo-${k%%:*}")" "$(cpugib "dist-${k%%:*}")"
	done
	printf 'peak RSS MiB (max VmHWM of the instances)\t%s\t%s\t%s\n' "-" "$(peak pulpgo)" "$(peak dist)"
	printf 'errors (pulls, blob loads, wrk non-2xx)\t%s\t%s\t%s\n' "$(total_errors direct)" "$(total_errors pulpgo)" "$(total_errors dist)"
} | column -t -s $'\t'

cold_r=$(ratio "$(get pulpgo-cold-1 .seconds)" "$(get direct-1 .seconds)")
warm_r=$(ratio "$(get pulpgo-warm-1 .seconds)" "$(get dist-warm-1 .seconds)")
warmN_r=$(ratio "$(get "pulpgo-warm-$last" .seconds)" "$(get "dist-warm-$last" .seconds)")
coldN_r=$(ratio "$(get "pulpgo-cold-$last" .seconds)" "$(get "direct-$last" .seconds)")
gets=$(maxgets "pulpgo-cold-$last")
dgets=$(maxgets "dist-cold-$last")
prss=$(peak pulpgo)
tag_r=$(ratio "$(get pulpgo-tags .rps)" "$(get dist-tags .rps)")
blob_r=$(ratio "$(get pulpgo-blob .mib_per_s)" "$(get dist-blob .mib_per_s)")
wrkblob_r=$(ratio "$(get pulpgo-wrkblob .mib_per_s)" "$(get dist-wrkblob .mib_per_s)")
echo
{
	printf 'ratio\tvalue\tgoal\tverdict\n'
	printf 'cold pull time, pulpgo / direct (1 pull)\t%s\t<= 1.3\t%s\n' "$cold_r" "$(verdict "$cold_r" "<=" 1.3)"
	skopeo_r=$(ratio "$(best skopeo-pulpgo)" "$(best skopeo-direct)")
	printf 'cold skopeo copy time, pulpgo / direct\t%s\t<= 1.25\t%s\n' "$skopeo_r" "$(verdict "$skopeo_r" "<=" 1.25)"
	printf 'warm pull time, pulpgo / distribution (1 pull)\t%s\t<= 0.8\t%s\n' "$warm_r" "$(verdict "$warm_r" "<=" 0.8)"
	printf 'warm pull time, pulpgo / distribution (%s at once)\t%s\t(<= 0.8)\t%s\n' "$last" "$warmN_r" "$(verdict "$warmN_r" "<=" 0.8)"
	printf 'cold pull time, pulpgo / direct (%s at once)\t%s\t(info)\t-\n' "$last" "$coldN_r"
	printf 'upstream GETs per blob, pulpgo, %s cold at once (max)\t%s\t== 1\t%s\n' "$last" "$gets" "$(verdict "$gets" "==" 1)"
	printf 'upstream GETs per blob, distribution, %s cold (max)\t%s\t(info)\t-\n' "$last" "$dgets"
	printf 'peak RSS pulpgo, MiB\t%s\t< 100\t%s\n' "$prss" "$(verdict "$prss" "<" 100)"
	printf 'warm tag GETs/s, pulpgo / distribution\t%s\t>= 10\t%s\n' "$tag_r" "$(verdict "$tag_r" ">=" 10)"
	printf 'warm blob throughput (wrk), pulpgo / distribution\t%s\t>= 1.5\t%s\n' "$wrkblob_r" "$(verdict "$wrkblob_r" ">=" 1.5)"
	printf 'warm blob throughput (digest-checking client), pulpgo / distribution\t%s\t(info)\t-\n' "$blob_r"
	printf 'server CPU per GiB, warm blob load, pulpgo / distribution\t%s\t(info)\t-\n' "$(ratio "$(cpugib pulpgo-blob)" "$(cpugib dist-blob)")"
	printf 'server CPU per GiB, %s warm pulls, pulpgo / distribution\t%s\t(info)\t-\n' "$last" "$(ratio "$(cpugib "pulpgo-warm-$last")" "$(cpugib "dist-warm-$last")")"
} | column -t -s $'\t'
echo
if [[ "$FARM" == 1 ]]; then
	run_farm
	farm_table
fi
if ((failures > 0)); then
	say "$failures run(s) had errors ($own_failures of them direct or pulpgo): see the FAILED lines above and the kept logs"
fi
# Errors of the peer (Distribution) are reported, not fatal; ours are.
((own_failures == 0)) || exit 1
