#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the Debian packages (mynaguard-terminal, mynaguard-collector) from this tree with
# `dpkg-buildpackage -us -uc -b` in a copy of it (dpkg-buildpackage writes next to the source),
# and puts the .deb, .buildinfo and .changes files into OUTDIR.
# Usage: scripts/build-debs.sh OUTDIR [--version VERSION]
#   --version VERSION  a local version for this build only (a changelog entry in the copy, as
#                      `dch --local` would add; the tree is not changed), e.g. 0.1.0+local1
# Needs: scripts/setup-deps.sh's packages (debhelper, dpkg-dev, the build dependencies).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [--version VERSION]" >&2; exit 2; }
out=$1
shift
version=""
while [ $# -gt 0 ]; do
	case $1 in
	--version) version=${2:?--version needs a version}; shift 2 ;;
	*) echo "build-debs: unknown option $1" >&2; exit 2 ;;
	esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mynaguard-debs.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The tree's files (tracked and new ones, not ignored or build output), as a checkout has them.
mkdir "$work/mynaguard"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard | sort -zu |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		cpio -0 -pdm --quiet "$work/mynaguard")
else
	(cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -C "$work/mynaguard" -xf -
fi
if [ -n "$version" ]; then
	case $version in
	*[!A-Za-z0-9.+~-]* | "") echo "build-debs: bad version '$version'" >&2; exit 2 ;;
	esac
	{
		printf 'mynaguard (%s) bookworm; urgency=medium\n\n' "$version"
		printf '  * Local build %s (scripts/build-debs.sh --version).\n\n' "$version"
		printf ' -- mynaguard developers <mynaguard@example.lg.jp>  %s\n\n' "$(date -R)"
		cat "$work/mynaguard/debian/changelog"
	} >"$work/changelog.new"
	mv "$work/changelog.new" "$work/mynaguard/debian/changelog"
fi
(cd "$work/mynaguard" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} nocheck parallel=2" \
	dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -60 "$work/build.log" >&2
	echo "build-debs: dpkg-buildpackage failed (last 60 lines above)" >&2
	exit 1
}
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do
	[ -f "$f" ] && cp "$f" "$out/"
done
ls "$out"
