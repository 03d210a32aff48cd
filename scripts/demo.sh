#!/bin/sh
# SPDX-License-Identifier: MIT
# README command 1 (interim): installs what it needs, builds, and runs what exists so far.
# The full demonstration (collector, agent, PAM login, USB) replaces this script (issue 7).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
	scripts/setup-deps.sh
fi
[ -f build/build.ninja ] || meson setup build
meson compile -C build
build/ctl/mynaguardctl --policy policy/policy.conf policy check
