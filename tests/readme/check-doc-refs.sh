#!/bin/bash
# SPDX-License-Identifier: MIT
# The docs cite only what ships in the repository: README.md, docs/*.md and the man pages name
# no path on a development machine (/work/, /home/, notes kept outside the tree), and every
# repository path they quote (`tests/...`, `scripts/...`, a Markdown link) exists.
# Usage: check-doc-refs.sh SOURCE_ROOT
set -euo pipefail
cd "$1"
fails=0
n=0
bad() { fails=$((fails + 1)); echo "not ok: $*"; }

files=(README.md docs/*.md docs/man/*.[1-8])
# 1. no path on a development machine
if hits=$(grep -n -E '(^|[^A-Za-z0-9_.-])/(work|home|Users)/|shared/notes/' "${files[@]}"); then
	while IFS= read -r h; do bad "points outside the repository: $h"; done <<<"$hits"
fi

# 2. every quoted repository path exists (top-level directories of this tree, and .ci/)
tops=$(git ls-files 2>/dev/null | sed -n 's|^\([^/]*\)/.*|\1|p' | sort -u | tr '\n' '|' || true)
[ -n "$tops" ] || tops=$(find . -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name 'build*' -printf '%f|')
tops="${tops}.ci"
for f in README.md docs/*.md; do
	while IFS= read -r p; do
		[ -n "$p" ] || continue
		n=$((n + 1))
		p=${p%%[:,.;)]}
		[ -e "$p" ] || bad "$f quotes $p, which is not in the repository"
	done < <(grep -o -E '`('"$tops"')/[^` ]*' "$f" | tr -d '`' | sed -E 's/[*]+.*$//; s/(\.\.\.|…).*$//' | sort -u)
	while IFS= read -r p; do
		[ -n "$p" ] || continue
		n=$((n + 1))
		[ -e "$(dirname "$f")/$p" ] || bad "$f links to $p, which is not in the repository"
	done < <(grep -o -E '\]\([^)#]+' "$f" | sed 's/^](//' | grep -v -E '^[a-z]+:' | sort -u)
done
[ "$fails" -eq 0 ] || { echo "$fails problem(s)"; exit 1; }
echo "ok: $n repository paths quoted by the docs exist; no path outside the repository"
