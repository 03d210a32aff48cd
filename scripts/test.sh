#!/bin/sh
# SPDX-License-Identifier: MIT
# The whole test suite: installs what it needs, builds, runs every test (unit, integration,
# fuzz corpus replay, real kernel in QEMU, browser). Usage: scripts/test.sh [--asan] [meson test args]
# A test that cannot run here fails the run instead of passing unseen: a missing test
# dependency stops `meson setup` (-Dtest_deps=enabled), and a test that skips (exit 77) fails
# it unless named in MYNAGUARD_EXPECTED_SKIPS (scripts/check-skips.py prints every skip).
set -eu
cd "$(dirname "$0")/.."

builddir=build
setup_args=""
if [ "${1:-}" = "--asan" ]; then
	shift
	builddir=build-asan
	setup_args="-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug"
fi

if [ "$(id -u)" -eq 0 ]; then
	scripts/setup-deps.sh
fi

if [ ! -f "$builddir/build.ninja" ]; then
	# shellcheck disable=SC2086
	meson setup "$builddir" $setup_args -Dtest_deps=enabled
else
	meson setup --reconfigure "$builddir" -Dtest_deps=enabled >/dev/null
fi
meson compile -C "$builddir"
if [ -n "${setup_args}" ]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:verify_asan_link_order=0}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi
rc=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || rc=$?
scripts/check-skips.py "$builddir/meson-logs/testlog.json" || [ "$rc" -ne 0 ] || rc=1
exit "$rc"
