#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails when any tracked C file differs from what clang-format (.clang-format) would write.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files; then
	echo "check-format: run 'clang-format -i' on the files above" >&2
	exit 1
fi
echo "check-format: ok"
