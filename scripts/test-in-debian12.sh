#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's test command on a fresh Debian 12 (bookworm): builds a bookworm root with
# mmdebstrap (Debian's "important" package set, nothing else), copies a clone of this tree's
# HEAD into it and runs `./scripts/test.sh [ARGS]` there as root through chroot, with /proc,
# /sys and /dev from the host. So a test that needs anything beyond Debian 12's own packages
# (scripts/setup-deps.sh) fails here, whatever the host has installed. Run by .ci/run.
# Usage (root): scripts/test-in-debian12.sh [--root DIR] [--keep] [test.sh args]
#   --root DIR  where the root is built (default build-debian12/root); an existing root made by
#               this script is reused (its clone refreshed), so a second run skips mmdebstrap
#   --keep      leave the root in place afterwards (default: removed when the tests passed)
# MYNAGUARD_DEBIAN_MIRROR (default http://deb.debian.org/debian) and
# MYNAGUARD_DEBIAN_SECURITY (default http://deb.debian.org/debian-security) pick the archive.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)

root=$src/build-debian12/root
keep=""
while [ $# -gt 0 ]; do
	case "$1" in
	--root) root=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) break ;;
	esac
done
if [ "$(id -u)" -ne 0 ]; then
	echo "test-in-debian12: must run as root (mmdebstrap, chroot, mounts)" >&2
	exit 2
fi
for tool in mmdebstrap chroot git; do
	command -v "$tool" >/dev/null 2>&1 || { echo "test-in-debian12: $tool missing (scripts/setup-deps.sh)" >&2; exit 2; }
done
mirror=${MYNAGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${MYNAGUARD_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

if [ ! -f "$root/etc/mynaguard-test-root" ]; then
	if [ -e "$root" ] && [ -n "$(ls -A "$root" 2>/dev/null)" ]; then
		echo "test-in-debian12: $root exists and was not made by this script" >&2
		exit 2
	fi
	mkdir -p "$(dirname "$root")"
	echo "== test-in-debian12: building a Debian 12 root in $root from $mirror"
	mmdebstrap --variant=important --components=main bookworm "$root" \
		"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
		"deb $security bookworm-security main"
	echo "made by scripts/test-in-debian12.sh" >"$root/etc/mynaguard-test-root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"

# a clone of HEAD (committed work only, as a fresh checkout would have it)
rm -rf "$root/root/mynaguard"
git clone -q --no-hardlinks "$src" "$root/root/mynaguard"
git -C "$root/root/mynaguard" checkout -q "$(git rev-parse HEAD)"

mounted=""
cleanup() {
	for m in $mounted; do
		umount -R "$m" 2>/dev/null || umount -lR "$m" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM
# The root bound onto itself first, so that / inside is a mount point (as in a container): tests
# that make / private in their own mount namespace need that.
mount --bind "$root" "$root"
mount --make-private "$root"
mounted="$root"
for m in proc sys dev; do
	mkdir -p "$root/$m"
	case "$m" in
	proc) mount -t proc proc "$root/proc" ;;
	*) mount --rbind "/$m" "$root/$m"; mount --make-rslave "$root/$m" ;;
	esac
	# unmount in reverse order
	mounted="$root/$m $mounted"
done

echo "== test-in-debian12: $(chroot "$root" sh -c '. /etc/os-release; echo "$PRETTY_NAME, Debian $(cat /etc/debian_version)"')"
echo "== test-in-debian12: ./scripts/test.sh $*"
rc=0
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	MYNAGUARD_EXPECTED_SKIPS="${MYNAGUARD_EXPECTED_SKIPS:-}" \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	sh -c 'cd /root/mynaguard && exec ./scripts/test.sh "$@"' test.sh "$@" || rc=$?
cleanup
mounted=""
if [ "$rc" -eq 0 ] && [ -z "$keep" ]; then
	# never remove through a mount that is still there (the host's /dev or /sys)
	if awk -v r="$root/" 'index($5 "/", r) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		echo "test-in-debian12: something is still mounted under $root; left in place" >&2
	else
		rm -rf --one-file-system "$root"
	fi
fi
echo "== test-in-debian12: exit $rc"
exit "$rc"
