#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# scripts/check-skips.py, which scripts/test.sh runs after meson test: a skipped test fails the
# run unless MYNAGUARD_EXPECTED_SKIPS names it; every skip is printed with its reason.
# Usage: test-check-skips.py SOURCE_ROOT
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(sys.argv[1], "scripts", "check-skips.py")


def run(entries, expected=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")
    env = dict(os.environ)
    env.pop("MYNAGUARD_EXPECTED_SKIPS", None)
    if expected is not None:
        env["MYNAGUARD_EXPECTED_SKIPS"] = expected
    try:
        p = subprocess.run([sys.executable, SCRIPT, f.name], env=env, capture_output=True,
                           text=True, timeout=30)
    finally:
        os.unlink(f.name)
    return p.returncode, p.stdout


def t(name, result, stdout=""):
    return {"name": name, "result": result, "stdout": stdout, "returncode": 77 if result == "SKIP" else 0}


def main():
    ok = [t("mynaguard:base / base", "OK"), t("mynaguard:collector / collector-log", "OK")]
    vm = t("mynaguard:vm / vm-usb-block", "SKIP", "booting...\nskip: no kernel package and no network\n")
    br = t("mynaguard:browser / browser-dashboard", "SKIP", "skip: missing chromium-driver\n")

    rc, out = run(ok)
    assert rc == 0 and "no test skipped" in out, (rc, out)

    rc, out = run(ok + [vm])
    assert rc == 1, (rc, out)
    assert "UNEXPECTED SKIP: mynaguard:vm / vm-usb-block: skip: no kernel package and no network" in out, out

    for name in ("vm-usb-block", "vm / vm-usb-block", "mynaguard:vm / vm-usb-block"):
        rc, out = run(ok + [vm], expected="x, " + name)
        assert rc == 0 and "expected skip on this machine" in out and "no network" in out, (name, rc, out)

    # one expected, one not: still a failure, and both are in the log
    rc, out = run(ok + [vm, br], expected="vm-usb-block")
    assert rc == 1 and "expected skip" in out and "UNEXPECTED SKIP: mynaguard:browser" in out, out

    # a name that did not skip is pointed out, not an error
    rc, out = run(ok, expected="browser-dashboard")
    assert rc == 0 and "was expected to skip but did not" in out, out

    # a skip that printed nothing still says so
    rc, out = run([t("mynaguard:x / quiet", "SKIP")])
    assert rc == 1 and "printed no reason" in out, out
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
