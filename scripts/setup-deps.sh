#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs every Debian package that building, testing and the demo need. Idempotent,
# non-interactive; run as root on Debian 12 (bookworm) or Ubuntu 22.04+.
# Everything the tests run comes from these packages, as Debian 12 ships them: no npm, pip or
# other download, no tool from another archive. On Debian 12 the script checks that each
# package's installed version is one that Debian 12's own archive (bookworm, -updates,
# -security) carries, and fails when one came from elsewhere (say a newer nodejs from a third
# party repository): a test that needs a tool newer than Debian 12 ships is a bug.
# Usage: scripts/setup-deps.sh [--bench]   (--bench adds the peers the benchmarks measure)
set -eu

BUILD="gcc libc6-dev make meson ninja-build pkg-config git ca-certificates
 clang llvm libclang-rt-14-dev clang-format
 libseccomp-dev libudev-dev libpam0g-dev liboath-dev libssl-dev libcurl4-openssl-dev libjansson-dev
 libinih-dev libevent-dev libsqlite3-dev libqrencode-dev libpng-dev zlib1g-dev libcmocka-dev
 libsystemd-dev libpq-dev"
TEST="libpam-wrapper libpamtest0-dev libnss-wrapper pamtester oathtool faketime libpam-modules
 umockdev libumockdev-dev gir1.2-umockdev-1.0 python3-gi python3-dbus dbus-daemon sqlite3 postgresql openssl curl python3 procps psmisc iproute2 util-linux
 qemu-system-x86 busybox-static mmdebstrap kmod udev cpio dosfstools fakeroot groff-base
 debhelper dpkg-dev build-essential lintian apt-utils gnupg"
# BENCH: the peers measured by tests/bench/pam/ and tests/bench/collector/ (docs/benchmarks.md);
# not used by any test, so installed only with --bench (or MYNAGUARD_BENCH=1). The collector benchmark runs its own rsyslogd on 127.0.0.1, never the
# system's rsyslog service.
BENCH="libpam-oath libpam-google-authenticator rsyslog rsyslog-openssl"
# The browser test drives chromium through chromium-driver with python3-selenium: all Debian's.
BROWSER="chromium chromium-driver python3-selenium fonts-ipafont-gothic"

[ "${1:-}" = "--bench" ] && MYNAGUARD_BENCH=1
[ -n "${MYNAGUARD_BENCH:-}" ] || BENCH=""

all="$BUILD $TEST $BENCH $([ -n "${MYNAGUARD_NO_BROWSER:-}" ] || echo "$BROWSER")"
want=""
for p in $all; do
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
# Debian 12 only: no package above may be newer than what Debian 12's archive carries (an older
# point release is fine; a newer nodejs from a third party archive is not). apt-cache policy
# lists the archives (o=Debian, n=bookworm*) and, per package, which archives carry which version.
if grep -qs '^VERSION_ID="12"' /etc/os-release && grep -qs '^ID=debian' /etc/os-release; then
	debian_archives=$(apt-cache policy | awk '
		/^ *[0-9]+ / { src = $2 " " $3 }
		/release / && /o=Debian,/ && /n=bookworm(-updates|-security)?,/ { print src }')
	# "package version" for every version a Debian 12 archive carries, one apt-cache call
	carried=$(echo "$all" | xargs apt-cache policy | awk -v archives="$debian_archives" '
		BEGIN { n = split(archives, a, "\n"); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
		/^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1); sub(/:amd64$|:i386$|:all$/, "", pkg) }
		/^ (\*\*\*|   ) [^ ]+ [0-9]+$/ { v = ($1 == "***") ? $2 : $1; next }
		/^ +[0-9]+ / && ok[$2 " " $3] { print pkg, v }')
	foreign=""
	for p in $all; do
		inst=$(dpkg-query -W -f='${Version}' "$p")
		newest=""
		for v in $(echo "$carried" | awk -v p="$p" '$1 == p { print $2 }'); do
			if [ -z "$newest" ] || dpkg --compare-versions "$v" gt "$newest"; then
				newest=$v
			fi
		done
		if [ -z "$newest" ] || dpkg --compare-versions "$inst" gt "$newest"; then
			foreign="$foreign $p=$inst(Debian 12: ${newest:-none})"
		fi
	done
	if [ -n "$foreign" ]; then
		echo "setup-deps: newer than Debian 12 ships, or not from Debian 12:$foreign" >&2
		echo "setup-deps: the tests must run with Debian 12's own packages; install Debian's" >&2
		echo "  version (apt-get install --allow-downgrades PKG=VERSION, see apt-cache policy PKG)" >&2
		exit 1
	fi
	echo "setup-deps: no package is newer than Debian 12 ships"
fi
echo "setup-deps: all packages present"
