#!/bin/sh
# SPDX-License-Identifier: MIT
# Benchmark of mynaguardd under umockdev (not part of `meson test`; results in docs/benchmarks.md).
# Usage: tests/bench/agent/run.sh [BUILD_DIR] [PLUGS] [IDLE_SECONDS]
set -eu
cd "$(dirname "$0")/../../.."
build=${1:-build}
plugs=${2:-10000}
idle=${3:-10}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2046
cc -O2 -Wall -Wextra -o "$out/bench-agent" tests/bench/agent/bench-agent.c \
	$(pkg-config --cflags --libs umockdev-1.0)
umockdev-wrapper "$out/bench-agent" "$build/agent/mynaguardd" "$plugs" "$idle"
