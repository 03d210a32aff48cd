#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's first shell code block, before the second heading, holds exactly the two commands
# (main job, test suite), one per line, and each names an executable script of this tree.
set -eu
readme="$1/README.md"
root="$1"

block=$(awk '
	/^## / { exit }
	/^```/ { if (inblock) { exit } else { inblock = 1; next } }
	inblock { print }
' "$readme")

n=$(printf '%s\n' "$block" | grep -c . || true)
if [ "$n" -ne 2 ]; then
	echo "README: expected 2 commands in the first code block, found $n:" >&2
	printf '%s\n' "$block" >&2
	exit 1
fi
printf '%s\n' "$block" | while read -r line; do
	script=$(printf '%s\n' "$line" | sed -e 's/^sudo //' -e 's/ .*//')
	case "$script" in
	./*) ;;
	*) echo "README: '$line' does not run a script of this tree" >&2; exit 1 ;;
	esac
	if [ ! -x "$root/$script" ]; then
		echo "README: $script is not an executable file" >&2
		exit 1
	fi
	echo "ok: $line"
done
first=$(printf '%s\n' "$block" | sed -n 1p)
second=$(printf '%s\n' "$block" | sed -n 2p)
case "$first" in *demo.sh*) ;; *) echo "README: the first command must run the demo" >&2; exit 1 ;; esac
case "$second" in *test.sh*) ;; *) echo "README: the second command must run the tests" >&2; exit 1 ;; esac
# scripts/test.sh calls meson test, and the demo script parses --once and --help.
grep -q 'meson test' "$root/scripts/test.sh"
echo "1 passed, 0 failed"
