#!/usr/bin/env bash
# fuzz.sh: run every go test -fuzz target for FUZZTIME each (make test-fuzz).
#
#   FUZZTIME=60s FUZZ_WORKERS=2 scripts/fuzz.sh
#
# go test -fuzz takes one target of one package per run, so the targets are listed here as
# package:target; a target added to the code must be added below (the script fails when a
# listed one is gone). Each run starts from the target's seeds and testdata/fuzz/<target>,
# where go test writes a failing input: keep that file as a regression seed once fixed. The
# API target runs on the embedded engine (SQLite, in-process Redis), needing no services.
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
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -parallel "$workers" "$pkg"
done
