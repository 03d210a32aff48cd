#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The dashboard's light requests while heavy ones run (not part of meson test): on the store of
# bench-dashboard.py (TERMINALS terminals, PER events each over 30 days, its seeding reused),
# for each collector build given, in one run:
#  1. each heavy request alone, one after the other: the log review of the month (/v1/review),
#     the monthly self-inspection report (/r/selfcheck) and the signed evidence bundle of 30
#     days (/v1/evidence): seconds per call;
#  2. the light requests (/v1/terminals first screen with the summary cards, /v1/events newest
#     100, one terminal) N times each, p50/p99/max, on an idle collector;
#  3. the same while HEAVY client threads ask for review, report and evidence in turn without
#     pause: p50/p99/max again, and how many heavy requests were answered 200 and 503 (busy).
#
#   tests/bench/collector/bench-heavy.py [WORKDIR] --build NAME=BUILDDIR [--build ...]
#       [--terminals 1000] [--per 1000] [-n 200] [--heavy 3] [--seconds 30] [--checks]
#
# --checks: the compliance snapshots carry the 7 checks of bench-dashboard.py's checks table
# (its seeding's snapshots carry none), failing as there plus time.synchronized in every 13th
# snapshot and usb.default_deny not_applicable in every 17th, so that the report's compliance
# per clause has something to count (a seed of its own, "-checks").
#
# The seeded store is kept in WORKDIR (default /var/tmp/mynaguard-bench-heavy) and copied for
# each build. A light request that waits behind heavy ones is called fewer than n times (at most
# --seconds per request and phase); the table says how many calls then.
import argparse
import datetime
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import ssl
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "collector"))
from collectorlib import PKI, Collector, TOKEN  # noqa: E402
from fleetlib import keygen  # noqa: E402

spec = importlib.util.spec_from_file_location("bench_dashboard",
                                              os.path.join(HERE, "bench-dashboard.py"))
bench_dashboard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_dashboard)
DAY = bench_dashboard.DAY


# --checks: each snapshot's data from the checks table (bench-dashboard.py's seeding)
CHECKS = """
BEGIN;
UPDATE events SET data = (SELECT json_object('policy_hash', 'sha256:' || hex(zeroblob(32)),
  'checks', json_group_array(json_object('id', c.check_id, 'clause', json(c.clause), 'status',
  CASE WHEN c.check_id = 'time.synchronized' AND events.seq % 13 = 0 THEN 'fail'
       WHEN c.check_id = 'usb.default_deny' AND events.seq % 17 = 0 THEN 'not_applicable'
       ELSE c.status END, 'detail', 'bench')))
  FROM checks c WHERE c.tid = events.tid)
WHERE kind = 'compliance';
COMMIT;
"""


class Client:
    def __init__(self, addr, cafile):
        self.addr, self.ctx = addr, ssl.create_default_context(cafile=cafile)
        self.conn = None

    def get(self, path):
        """(status, body); reconnects after an answer that closed the connection."""
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(*self.addr, context=self.ctx, timeout=600)
        self.conn.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
        r = self.conn.getresponse()
        body = r.read()
        if r.will_close:
            self.conn.close()
            self.conn = None
        return r.status, body


def pct(times, p):
    times = sorted(times)
    return times[min(len(times) - 1, max(0, int(round(p * len(times))) - 1))]


def light_run(cl, paths, n, seconds):
    """{label: (p50, p99, max, calls)}: n calls of each path, or as many as fit in seconds."""
    out = {}
    for label, path in paths:
        for _ in range(3):
            st, body = cl.get(path)
            assert st == 200, (path, st, body[:200])
        times = []
        end = time.perf_counter() + seconds
        dropped = 0
        while len(times) < n and time.perf_counter() < end:
            t = time.perf_counter()
            try:
                st, body = cl.get(path)
            except (OSError, http.client.HTTPException):
                # the collector closed the kept-alive connection: its request deadline passed
                # while the dashboard thread was busy (counted, not timed)
                dropped += 1
                cl.conn = None
                continue
            times.append((time.perf_counter() - t) * 1000)
            assert st == 200, (path, st, body[:200])
        times = times or [float("nan")]
        out[label] = (statistics.median(times), pct(times, 0.99), max(times), len(times),
                      dropped)
    return out


def bench(name, build, a, workdir, db, pki, extra):
    os.environ["COLLECTOR"] = os.path.abspath(os.path.join(build, "collector",
                                                           "mynaguard-collector"))
    d = os.path.join(workdir, "run-" + name)
    os.makedirs(d, exist_ok=True)
    c = Collector(d, pki, extra=extra)
    c.db = db
    with open(c.conf) as f:
        conf = f.read().replace(os.path.join(d, "collector.db"), c.db)
    with open(c.conf, "w") as f:
        f.write(conf + "retention = 0\n")
    c.start(timeout=1800)
    now = time.time()
    jst = lambda t: datetime.datetime.utcfromtimestamp(t + 9 * 3600)  # noqa: E731
    month = jst(now - 15 * 86400).strftime("%Y-%m")
    heavy = [
        ("log review of %s" % month, "/v1/review?period=" + month),
        ("self-inspection report of %s" % month, "/r/selfcheck?month=" + month),
        ("evidence bundle, 30 days", "/v1/evidence?from=%s&to=%s" % (
            jst(now - 30 * 86400).strftime("%Y-%m-%d"), jst(now - 86400).strftime("%Y-%m-%d"))),
    ]
    mid = "term-%05d" % (a.terminals // 2)
    light = [
        ("/v1/terminals?limit=50 (first screen, summary cards)", "/v1/terminals?limit=50"),
        ("/v1/events?order=newest&limit=100", "/v1/events?order=newest&limit=100"),
        ("/v1/terminals/term-MID", "/v1/terminals/" + mid),
    ]
    res = {"heavy": {}, "idle": None, "loaded": None}
    cl = Client(c.dashboard, pki.p("server-ca.pem"))
    try:
        for label, path in heavy:
            hc = Client(c.dashboard, pki.p("server-ca.pem"))  # a connection of its own
            t = time.perf_counter()
            st, body = hc.get(path)
            # the bundle is signed with its time: its lines are counted; the report's time of
            # making (<dt>作成 ...</dt><dd>TIME</dd>) is left out
            same = re.sub(rb"(generated</span></dt><dd>)[^<]*", rb"\1", body)
            lines = body.count(b"\n") if "evidence" in label else hashlib.sha256(same).hexdigest()
            res["heavy"][label] = ((time.perf_counter() - t), st, len(body), lines)
            assert st == 200, (path, st, body[:300])
        res["idle"] = light_run(cl, light, a.n, a.seconds)
        stop = threading.Event()
        counts = {"200": 0, "503": 0, "other": 0}
        durations = []
        errors = set()
        lock = threading.Lock()

        def hammer(k):
            hc = Client(c.dashboard, pki.p("server-ca.pem"))
            i = k
            while not stop.is_set():
                label, path = heavy[i % len(heavy)]
                i += 1
                t = time.perf_counter()
                try:
                    st, _ = hc.get(path)
                except (OSError, http.client.HTTPException) as e:
                    st = repr(e)[:80]
                    hc.conn = None
                with lock:
                    key = str(st) if st in (200, 503) else "other"
                    counts[key] += 1
                    if key == "other":
                        errors.add(str(st))
                    if st == 200:
                        durations.append(time.perf_counter() - t)
                if st == 503:
                    time.sleep(0.2)

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(a.heavy)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the heavy requests are in progress
        res["loaded"] = light_run(cl, light, a.n, a.seconds)
        stop.set()
        for t in threads:
            t.join()
        res["counts"] = counts
        res["errors"] = sorted(errors)
        res["heavy_loaded"] = (statistics.median(durations) if durations else 0,
                               max(durations) if durations else 0)
    finally:
        c.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", nargs="?", default="/var/tmp/mynaguard-bench-heavy")
    ap.add_argument("--build", action="append", required=True, help="NAME=BUILDDIR")
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--per", type=int, default=1000, help="events per terminal (30 days)")
    ap.add_argument("-n", type=int, default=200, help="calls per light request")
    ap.add_argument("--heavy", type=int, default=3, help="client threads asking heavy requests")
    ap.add_argument("--seconds", type=float, default=30,
                    help="at most this long per light request and phase (fewer calls then)")
    ap.add_argument("--checks", action="store_true",
                    help="compliance snapshots with checks (the report's per-clause table)")
    a = ap.parse_args()
    builds = [b.split("=", 1) for b in a.build]
    os.makedirs(a.workdir, exist_ok=True)
    os.makedirs(os.path.join(a.workdir, "pki"), exist_ok=True)
    pki = PKI(os.path.join(a.workdir, "pki"))
    ev_key, _, _ = keygen(a.workdir, "evidence")
    extra = "\n[evidence]\nkey = %s\n" % ev_key
    # the seeded store, made once by the first build (its schema) and copied for each build so
    # that no build sees what another one migrated or wrote
    seed = os.path.join(a.workdir, "seed-%d-%d%s.db" % (a.terminals, a.per,
                                                        "-checks" if a.checks else ""))
    if not os.path.exists(seed + ".done"):
        for sfx in ("", "-wal", "-shm"):
            if os.path.exists(seed + sfx):
                os.unlink(seed + sfx)
        os.environ["COLLECTOR"] = os.path.abspath(os.path.join(builds[0][1], "collector",
                                                               "mynaguard-collector"))
        d = os.path.join(a.workdir, "schema")
        os.makedirs(d, exist_ok=True)
        c = Collector(d, pki)
        c.start()
        c.stop()
        shutil.copy(c.db, seed)
        secs = bench_dashboard.generate(seed, a.terminals, a.per)
        if a.checks:
            con = sqlite3.connect(seed, isolation_level=None)
            con.executescript(CHECKS)
            con.close()
        print("generated %d terminals x %d events in %.0f s: %.2f GB" % (
            a.terminals, a.per, secs, os.path.getsize(seed) / 1e9), flush=True)
        open(seed + ".done", "w").close()
    results = {}
    for name, build in builds:
        db = os.path.join(a.workdir, "run-%s.db" % name)
        for sfx in ("", "-wal", "-shm"):
            if os.path.exists(db + sfx):
                os.unlink(db + sfx)
        shutil.copy(seed, db)
        results[name] = bench(name, build, a, a.workdir, db, pki, extra)
        print("%s done" % name, file=sys.stderr, flush=True)
    names = [n for n, _ in builds]
    print("\n%d terminals x %d events (30 days); light requests %d calls each (or %g s); %d "
          "client threads asking heavy requests without pause\n" % (
              a.terminals, a.per, a.n, a.seconds, a.heavy))
    print("| heavy request, alone | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for label in results[names[0]]["heavy"]:
        print("| %s | " % label + " | ".join(
            "%.2f s (%d kB)" % (results[n]["heavy"][label][0], results[n]["heavy"][label][2] // 1024)
            for n in names) + " |")
    for label in results[names[0]]["heavy"]:
        same = len({results[n]["heavy"][label][3] for n in names}) == 1
        print("%s: %s in every build" % (label, "the same answer" if same else "DIFFERENT answers"))
    print("\n| light request: p50 / p99 / max | " + " | ".join(
        "%s idle | %s under heavy load" % (n, n) for n in names) + " |")
    print("| --- |" + " --- | --- |" * len(names))
    for label in results[names[0]]["idle"]:
        cells = []
        for n in names:
            for k in ("idle", "loaded"):
                p50, p99, mx, calls, dropped = results[n][k][label]
                cells.append("%.1f / %.1f / %.1f ms%s%s" % (
                    p50, p99, mx, "" if calls == a.n else " (%d calls)" % calls,
                    " (%d dropped)" % dropped if dropped else ""))
        print("| %s | %s |" % (label, " | ".join(cells)))
    print()
    for n in names:
        r = results[n]
        print("%s under load: heavy answered 200: %d (median %.2f s, max %.2f s), 503 busy: %d, "
              "other: %d" % (n, r["counts"]["200"], r["heavy_loaded"][0], r["heavy_loaded"][1],
                             r["counts"]["503"], r["counts"]["other"]))
        if r["errors"]:
            print("  other: %s" % "; ".join(r["errors"]))
    print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
