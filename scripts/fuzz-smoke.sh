#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds every fuzz target for libFuzzer with clang (-Dfuzzing=true) and runs each for a short
# while from its seed corpus, under ASan+UBSan. Usage: scripts/fuzz-smoke.sh [RUNS]
# New inputs go to a scratch directory, never into tests/fuzz/corpus/.
set -eu
cd "$(dirname "$0")/.."
runs="${1:-3000}"
builddir=build-fuzz
if [ ! -f "$builddir/build.ninja" ]; then
	CC=clang meson setup "$builddir" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C "$builddir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
n=0
for f in "$builddir"/tests/fuzz/fuzz-*-libfuzzer; do
	name=$(basename "$f" -libfuzzer)
	name=${name#fuzz-}
	mkdir -p "$scratch/$name"
	echo "fuzz-smoke: $name ($runs runs)"
	"$f" -runs="$runs" -max_len=65536 -timeout=10 "$scratch/$name" "tests/fuzz/corpus/$name" \
		>"$scratch/$name.log" 2>&1 || {
		tail -40 "$scratch/$name.log" >&2
		echo "fuzz-smoke: $name FAILED" >&2
		exit 1
	}
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "fuzz-smoke: no targets built" >&2; exit 1; }
echo "fuzz-smoke: $n targets ok"
