#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The log review from its cache (docs/evidence.md "The list's cache"; not part of meson test): on
# the seeded store of bench-heavy.py (made there first: WORKDIR/seed-TERMINALS-PER.db), for each
# collector build given, in one run: the first GET /v1/review of last month (the list made), then
# N more (p50/p99/max), then the sign-off of the list shown (POST /v1/review/signoff); and
# whether the builds list the same items (the answer without as_of, changed, refreshing).
#
#   tests/bench/collector/bench-review.py [WORKDIR] --build NAME=BUILDDIR [--build ...]
#       [--terminals 1000] [--per 1000] [-n 100]
import argparse
import datetime
import hashlib
import http.client
import importlib.util
import json
import os
import shutil
import ssl
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "collector"))
from collectorlib import PKI, Collector, TOKEN  # noqa: E402

spec = importlib.util.spec_from_file_location("bench_heavy", os.path.join(HERE, "bench-heavy.py"))
bench_heavy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_heavy)


def run(name, build, workdir, seed, pki, month, n):
    os.environ["COLLECTOR"] = os.path.abspath(os.path.join(build, "collector",
                                                           "mynaguard-collector"))
    d = os.path.join(workdir, "review-" + name)
    os.makedirs(d, exist_ok=True)
    db = os.path.join(workdir, "review-%s.db" % name)
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(db + sfx):
            os.unlink(db + sfx)
    shutil.copy(seed, db)
    c = Collector(d, pki)
    c.db = db
    with open(c.conf) as f:
        conf = f.read().replace(os.path.join(d, "collector.db"), db)
    with open(c.conf, "w") as f:
        f.write(conf + "retention = 0\n")
    c.start(timeout=1800)
    try:
        cl = bench_heavy.Client(c.dashboard, pki.p("server-ca.pem"))
        path = "/v1/review?period=" + month
        t = time.perf_counter()
        st, body = cl.get(path)
        first = time.perf_counter() - t
        assert st == 200, (st, body[:300])
        rv = json.loads(body)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            st, _ = cl.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert st == 200, st
        conn = http.client.HTTPSConnection(*c.dashboard, timeout=600, context=ssl.create_default_context(
            cafile=pki.p("server-ca.pem")))
        t = time.perf_counter()
        conn.request("POST", "/v1/review/signoff", body=json.dumps({
            "period": month, "items_sha256": rv["items_sha256"], "comment": "bench"}),
            headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        signoff = time.perf_counter() - t
        assert r.status == 202, r.status
        same = {k: rv[k] for k in ("period", "from", "to", "settings", "categories", "items",
                                   "items_sha256")}
        digest = hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()
        return (first, statistics.median(times), bench_heavy.pct(times, 0.99), max(times),
                signoff, len(body), digest)
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", nargs="?", default="/var/tmp/mynaguard-bench-heavy")
    ap.add_argument("--build", action="append", required=True, help="NAME=BUILDDIR")
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--per", type=int, default=1000)
    ap.add_argument("-n", type=int, default=100, help="GETs after the first")
    a = ap.parse_args()
    seed = os.path.join(a.workdir, "seed-%d-%d.db" % (a.terminals, a.per))
    if not os.path.exists(seed + ".done"):
        sys.exit("%s: seed it with bench-heavy.py first (same WORKDIR, --terminals, --per)" % seed)
    pki = PKI(os.path.join(a.workdir, "pki"))
    month = datetime.datetime.utcfromtimestamp(time.time() - 15 * 86400 + 9 * 3600).strftime("%Y-%m")
    res = {name: run(name, build, a.workdir, seed, pki, month, a.n)
           for name, build in (b.split("=", 1) for b in a.build)}
    print("\n%d terminals x %d events (30 days), GET /v1/review?period=%s\n" % (
        a.terminals, a.per, month))
    print("| build | first GET | then %d GETs: p50 / p99 / max | sign-off | answer |" % a.n)
    print("| --- | --- | --- | --- | --- |")
    for name, r in res.items():
        print("| %s | %.2f s | %.1f / %.1f / %.1f ms | %.3f s | %d kB |" % (
            name, r[0], r[1], r[2], r[3], r[4], r[5] // 1024))
    print("\nthe same items in every build: %s" % (len({r[6] for r in res.values()}) == 1))
    print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
