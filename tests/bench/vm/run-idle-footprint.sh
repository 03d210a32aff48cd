#!/bin/sh
# SPDX-License-Identifier: MIT
# Idle footprint of mynaguardd and usbguard-daemon in the real kernel (QEMU, TCG). Not part of
# meson test. usbguard is downloaded with apt-get and unpacked into a temp dir, not installed.
# Usage: tests/bench/vm/run-idle-footprint.sh BUILD_DIR
set -eu
build=${1:-build}
src=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q usbguard libusbguard1 libqb100 >/dev/null 2>&1)
for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/root"; done
python3 "$src/tests/vm/vmtest.py" \
	--scenario "$src/tests/bench/vm/idle-footprint.sh" \
	--rules "$src/installer/udev/70-mynaguard.rules" \
	--agent "$build/agent/mynaguardd" \
	--binary "$tmp/root/usr/sbin/usbguard-daemon=/usr/sbin/usbguard-daemon" \
	--libdir "$tmp/root/usr/lib/x86_64-linux-gnu"
