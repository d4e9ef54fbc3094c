#!/usr/bin/env bash
# fuzz.sh: run every go test -fuzz target for FUZZTIME each (make test-fuzz).
#
#   FUZZTIME=60s FUZZ_WORKERS=2 scripts/fuzz.sh
#
# go test -fuzz takes one target of one package per run, so the targets are listed here as
# package:target; a target added to the code must be added below (the script fails when a
# listed one is gone). Each run starts from the target's seeds and testdata/fuzz/<target>,
# where go test writes a failing input: keep that file as a regression seed once fixed. The
# API target runs on the embedded engine (SQLite, in-process Redis), needing no services. A
# run that fails only with Go's fuzztime deadline race (golang/go#75804, fixed in Go 1.27)
# and writes no input is reported and not counted as a failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

fuzztime=${FUZZTIME:-60s}
workers=${FUZZ_WORKERS:-2}
targets=(
	./content/oci:FuzzParseManifest
	./content/oci:FuzzReference
	./content/registry:FuzzParseRange
	./content/registry:FuzzPushedManifest
	./server:FuzzAPIJSON
)

for t in "${targets[@]}"; do
	pkg=${t%%:*}
	name=${t##*:}
	if ! grep -q "^func $name(f \*testing.F)" "$pkg"/*_test.go; then
		echo "fuzz.sh: $name is not a fuzz target of $pkg" >&2
		exit 1
	fi
	echo "== $pkg $name ($fuzztime, $workers workers)"
	corpus="$pkg/testdata/fuzz/$name"
	before=$(ls "$corpus" 2>/dev/null | sort || true)
	out=$(mktemp)
	status=0
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -parallel "$workers" "$pkg" 2>&1 | tee "$out" || status=$?
	after=$(ls "$corpus" 2>/dev/null | sort || true)
	# Go before 1.27 can end a duration-bounded run with a bare "context deadline exceeded"
	# and no failing input (golang/go#75804, a race in its fuzzing coordinator at -fuzztime):
	# that is not a finding. Any other failure, or one that wrote an input, is.
	if [[ $status -ne 0 && "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$out" &&
		! grep -q 'Failing input written' "$out"; then
		echo "fuzz.sh: $name: the fuzztime deadline race of Go's coordinator (golang/go#75804), no failing input: not a finding"
		status=0
	fi
	rm -f "$out"
	if [[ $status -ne 0 ]]; then
		exit "$status"
	fi
done
