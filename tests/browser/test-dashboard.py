#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Browser test of the collector's web dashboard: seeds a real collector through the real ingest
# API (mTLS), then drives headless Chromium with dashboard.mjs. Exit 77 (skip) when chromium or
# node are missing; runs `npm ci` when node_modules is missing.
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "collector"))
from collectorlib import PKI, Collector, TestDir, TOKEN, batch, compliance, event  # noqa: E402


def main():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    node = shutil.which("node")
    if not os.access(chromium, os.X_OK) or not node:
        print("skip: chromium or node missing")
        return 77
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        npm = shutil.which("npm")
        if not npm:
            print("skip: npm missing")
            return 77
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)
    outdir = os.environ.get("ARTEFACT_DIR", HERE)
    os.makedirs(outdir, exist_ok=True)

    with TestDir("browser") as d:
        pki = PKI(d)
        c = Collector(d, pki).start()
        try:
            for i in (1, 2, 3):
                name = "term-ok-%02d" % i
                cert = pki.terminal(name)
                st, _, _ = c.post(cert, {"v": 1, "terminal": name, "events": [
                    compliance(name, 1),
                    event(name, 2, kind="auth.success", data={"user": "clerk%d" % i, "service": "login"}),
                ]})
                assert st == 200
            ng = pki.terminal("term-ng-01")
            st, _, _ = c.post(ng, {"v": 1, "terminal": "term-ng-01", "events": [
                compliance("term-ng-01", 1, failing=["mfa.pam_stack"]),
                event("term-ng-01", 2, kind="usb.blocked",
                      data={"vendor": "0781", "product": "<script>window.__pwned=1</script>",
                            "serial": "<img src=x onerror=window.__pwned=2>"}),
                event("term-ng-01", 3, kind="auth.failure", data={"user": "taro", "service": "login",
                                                                   "reason": "bad_code"}),
                # a local user's claim about root, marked by the agent (docs/spool.md)
                event("term-ng-01", 4, kind="auth.failure",
                      data={"user": "root", "service": "login",
                            "sender": {"uid": 1000, "pid": 7, "unprivileged": True}}),
            ]})
            assert st == 200
            # stale: reports every second, then falls silent
            stale = pki.terminal("term-stale")
            st, _, _ = c.post(stale, {"v": 1, "terminal": "term-stale",
                                      "events": [compliance("term-stale", 1, interval_s=1)]})
            assert st == 200
            # never sent a compliance report
            fresh = pki.terminal("term-new")
            st, _, _ = c.post(fresh, batch("term-new", [1], kind="agent.started", data={"version": "0.1.0"}))
            assert st == 200
            time.sleep(2.5)

            env = dict(os.environ, CHROMIUM=chromium)
            p = subprocess.run([node, os.path.join(HERE, "dashboard.mjs"),
                                "https://127.0.0.1:%d" % c.dashboard[1], TOKEN, outdir],
                               cwd=HERE, env=env, timeout=240)
            if p.returncode != 0:
                print("dashboard.mjs failed; collector log:\n" + c.logtext())
                return 1
            print("screenshots in", outdir)
        finally:
            c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
