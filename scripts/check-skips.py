#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A test that cannot run must not pass by skipping. Reads meson's testlog.json and fails (exit 1)
# when a test was skipped (meson's SKIP: exit 77) unless that test is named in
# $MYNAGUARD_EXPECTED_SKIPS (names separated by spaces or commas; "suite / name", "name" or the
# full "project:suite / name"), the skips this machine is known to need. Every skip, expected or
# not, is printed with the reason the test gave, so the log says what did not run and why.
# Usage: scripts/check-skips.py BUILD/meson-logs/testlog.json   (run by scripts/test.sh)
import json
import os
import re
import sys


def reason(out):
    lines = [l.strip() for l in (out or "").splitlines() if l.strip()]
    hits = [l for l in lines if re.search(r"skip", l, re.I)]
    return (hits or lines or ["(the test printed no reason)"])[-1][:300]


def names(full):
    """The names a test answers to: project:suite / name, suite / name, name."""
    out = {full}
    short = full.split(":", 1)[-1]
    out.add(short)
    out.add(short.split(" / ", 1)[-1])
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: check-skips.py TESTLOG.json", file=sys.stderr)
        return 2
    expected = {n for n in re.split(r"[\s,]+", os.environ.get("MYNAGUARD_EXPECTED_SKIPS", "")) if n}
    skipped = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            if t.get("result") == "SKIP":
                skipped.append((t["name"], reason(t.get("stdout"))))
    bad = []
    for name, why in skipped:
        if names(name) & expected:
            print("check-skips: expected skip on this machine (MYNAGUARD_EXPECTED_SKIPS): %s: %s"
                  % (name, why))
        else:
            bad.append(name)
            print("check-skips: UNEXPECTED SKIP: %s: %s" % (name, why))
    seen = set().union(*(names(n) for n, _ in skipped)) if skipped else set()
    for n in sorted(expected - seen):
        print("check-skips: note: %s was expected to skip but did not (or did not run)" % n)
    if bad:
        print("check-skips: %d test(s) skipped that must run here; install what they need "
              "(scripts/setup-deps.sh) or, if this machine cannot run them, name them in "
              "MYNAGUARD_EXPECTED_SKIPS" % len(bad))
        return 1
    print("check-skips: %d skipped, all expected" % len(skipped) if skipped
          else "check-skips: no test skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
