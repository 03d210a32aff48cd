#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs every Debian package that building, testing and the demo need. Idempotent,
# non-interactive; run as root on Debian 12 (bookworm) or Ubuntu 22.04+.
# Usage: scripts/setup-deps.sh [--bench]   (--bench adds the peers the benchmarks measure)
set -eu

BUILD="gcc libc6-dev make meson ninja-build pkg-config git ca-certificates
 clang llvm libclang-rt-14-dev clang-format
 libseccomp-dev libudev-dev libpam0g-dev liboath-dev libssl-dev libcurl4-openssl-dev libjansson-dev
 libinih-dev libevent-dev libsqlite3-dev libqrencode-dev libpng-dev zlib1g-dev libcmocka-dev
 libsystemd-dev"
TEST="libpam-wrapper libpamtest0-dev libnss-wrapper pamtester oathtool faketime libpam-modules
 umockdev libumockdev-dev gir1.2-umockdev-1.0 python3-gi sqlite3 openssl curl python3 procps psmisc iproute2 util-linux
 qemu-system-x86 busybox-static mmdebstrap kmod udev cpio dosfstools fakeroot"
# BENCH: the peers measured by tests/bench/pam/ and tests/bench/collector/ (docs/benchmarks.md);
# not used by any test, so installed only with --bench (or MYNAGUARD_BENCH=1). The collector benchmark runs its own rsyslogd on 127.0.0.1, never the
# system's rsyslog service.
BENCH="libpam-oath libpam-google-authenticator rsyslog rsyslog-openssl"
BROWSER="chromium chromium-driver nodejs fonts-ipafont-gothic"
# npm runs `npm ci` for the browser test; a nodejs from elsewhere may bundle its own.
command -v npm >/dev/null 2>&1 || BROWSER="$BROWSER npm"

[ "${1:-}" = "--bench" ] && MYNAGUARD_BENCH=1
[ -n "${MYNAGUARD_BENCH:-}" ] || BENCH=""

want=""
for p in $BUILD $TEST $BENCH ${MYNAGUARD_NO_BROWSER:+} $([ -n "${MYNAGUARD_NO_BROWSER:-}" ] || echo "$BROWSER"); do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		want="$want $p"
	fi
done

if [ -n "$want" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup-deps: need root to install:$want" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $want
fi
echo "setup-deps: all packages present"
