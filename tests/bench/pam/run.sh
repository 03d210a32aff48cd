#!/bin/sh
# SPDX-License-Identifier: MIT
# PAM benchmark: pam_mynaguard vs pam_oath vs pam_google_authenticator (DISALLOW_REUSE).
# Not part of `meson test`. Needs root (the peers check file ownership against the user, root
# here), libpam-oath and libpam-google-authenticator (scripts/setup-deps.sh --bench).
# Usage: tests/bench/pam/run.sh [BUILD_DIR] [N] [ROUNDS] [RACERS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
n=${2:-200}
rounds=${3:-20}
racers=${4:-32}
module=$build/pam_module/pam_mynaguard.so
[ -f "$module" ] || { echo "no $module: meson compile -C $build first" >&2; exit 1; }
for m in pam_oath.so pam_google_authenticator.so; do
	[ -f /usr/lib/x86_64-linux-gnu/security/$m ] || { echo "missing $m (run scripts/setup-deps.sh --bench)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/mg-bench-pam.XXXXXX)
tmpfs=$(mktemp -d /dev/shm/mg-bench-pam.XXXXXX)
disk=$(mktemp -d /var/tmp/mg-bench-pam.XXXXXX)
trap 'rm -rf "$work" "$tmpfs" "$disk"' EXIT
cc -O2 -Wall -o "$work/bench-pam" "$here/bench-pam.c" -lpam -loath -lz
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r), $(nproc) CPUs; $(findmnt -no FSTYPE -T "$disk") at $disk; tmpfs at $tmpfs"
echo "# pam_mynaguard $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), libpam-oath $(dpkg-query -W -f='${Version}' libpam-oath), libpam-google-authenticator $(dpkg-query -W -f='${Version}' libpam-google-authenticator)"
echo
env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME="2026-01-15 10:00:10" \
	FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 TZ=UTC \
	"$work/bench-pam" "$module" "$tmpfs" "$disk" "$n" "$rounds" "$racers"
