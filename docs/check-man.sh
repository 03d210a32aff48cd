#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails when groff warns about any of the man pages given (run by `meson test --suite docs`).
set -u
rc=0
for page in "$@"; do
	out=$(groff -k -man -ww -z -Tutf8 "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "$page:" >&2
		echo "$out" >&2
		rc=1
	fi
done
exit $rc
