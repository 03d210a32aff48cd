#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Grant to usable stick: the time from `mynaguardctl fleet request grant` returning to the
# stick's interface being authorized=1, on an online, idle terminal (the shipped [report]
# interval, 15m, so no compliance upload helps). Everything real as in tests/fleet/
# test-fleet-e2e.py (whose setup it reuses): collector with [fleet], uplink, mynaguardd --fleet-key
# on a umockdev bus. Runs N grants with the uplink's default poll and N with --poll 1, prints
# p50/max and, with --write, puts the result into docs/benchmarks.md ("Grant to usable stick").
# Not part of `meson test`.
# Usage: bench-grant-latency.py [--build DIR] [-n N] [--write]
import argparse
import importlib.util
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
spec = importlib.util.spec_from_file_location(
    "fleet_e2e", os.path.join(SRC, "tests", "fleet", "test-fleet-e2e.py"))
e2e = importlib.util.module_from_spec(spec)
spec.loader.exec_module(e2e)


def measure(a, n, poll):
    """n grant→usable latencies (seconds) with uplink --poll poll (0 = its default)."""
    out = []

    def body(a, c, t, ctl, events, wait_event, ingest_port):
        wait_event("bundle.applied", timeout=60)
        for i in range(n):
            serial = "BENCH%d%02d" % (poll, i)
            name = "stick-" + serial
            t.send("stick " + serial)
            ev = wait_event("usb.blocked", lambda e: e["data"].get("serial") == serial)
            code = ev["data"]["request_code"]
            e2e.wait("request %s pending" % code,
                     lambda: code in ctl("request", "list", "--state", "pending"), 60)
            assert t.authorized(name) == "0"
            ctl("request", "grant", code, "--until", e2e.rfc3339(time.time() + 3600),
                "--purpose", "bench")
            t0 = time.monotonic()
            t.wait_authorized(name, "1", 120)
            dt = time.monotonic() - t0
            out.append(dt)
            e2e.log("poll=%s grant %d/%d: %.2f s" % (poll or "default", i + 1, n, dt))

    a.poll = poll
    with e2e.TestDir("bench-grant") as d:
        os.chmod(d, 0o755)
        e2e.run(a, d, body, interval="15m")
    return out


def p50(xs):
    return statistics.median(xs)


def write_doc(section):
    path = os.path.join(SRC, "docs", "benchmarks.md")
    with open(path) as f:
        text = f.read()
    head = "## Grant to usable stick"
    if head in text:
        text = re.sub(r"(?s)\n## Grant to usable stick\n.*?(?=\n## |\Z)", "\n" + section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text.rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    o = ap.parse_args()
    b = os.path.abspath(o.build)
    a = argparse.Namespace(ctl=b + "/ctl/mynaguardctl", collector=b + "/collector/mynaguard-collector",
                           agent=b + "/agent/mynaguardd", uplink=b + "/uplink/mynaguard-uplink",
                           poll=0)
    os.environ["COLLECTOR"] = a.collector
    rows = []
    for poll, label in ((0, "default (30 s)"), (1, "`--poll 1`")):
        xs = measure(a, o.n, poll)
        rows.append((label, xs))
        print("uplink poll %s: n=%d p50 %.2f s, max %.2f s" % (label, len(xs), p50(xs), max(xs)),
              flush=True)
    cmd = "tests/bench/fleet/bench-grant-latency.py -n %d --write" % o.n
    lines = [
        "## Grant to usable stick",
        "",
        "The time from `mynaguardctl fleet request grant` returning to the stick's interface being",
        "authorized (`authorized=1`) on an online, idle terminal: the real collector with `[fleet]`,",
        "mynaguard-uplink, mynaguardd `--fleet-key` on a umockdev USB bus, 127.0.0.1, the shipped",
        "`[report] interval` (15m, so no compliance upload triggers a fetch). Each grant is for a",
        "newly plugged stick (its own request), granted as soon as the request is pending: the",
        "stick's `usb.blocked` upload has just made the uplink fetch, so the grant waits nearly a",
        "whole poll period (the worst case). The bound asked for: under a minute. Path:",
        "uplink's next `GET /v1/policy` (every 30 s by default, docs/fleet.md \"The uplink\"),",
        "SPOOL/inbox/bundle, the agent's checks, the monitor's install, the policy reload.",
        "",
        "| uplink poll | grants | p50 | max |",
        "|---|---|---|---|",
    ]
    for label, xs in rows:
        lines.append("| %s | %d | %.2f s | %.2f s |" % (label, len(xs), p50(xs), max(xs)))
    lines += ["", "Measured %s on this project's 2-core build machine (shared with other builds), " %
              time.strftime("%Y-%m-%d") + "with", "`%s`." % cmd, ""]
    section = "\n".join(lines)
    print(section)
    if o.write:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
