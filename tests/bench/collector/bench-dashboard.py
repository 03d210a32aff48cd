#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Dashboard API latency at fleet scale (not part of meson test): generates a store of TERMINALS
# terminals and TERMINALS x PER events directly in SQLite (the collector's own schema: it is
# created by `mynaguard-collector --check`), starts the real collector on it and times every
# request the dashboard page makes, over one kept-alive HTTPS connection (so the figures are the
# collector's, not TLS handshakes'): p50 and p99 of N calls after a warm-up.
#
#   tests/bench/collector/bench-dashboard.py build [WORKDIR] [--terminals 10000] [--per 1000] [-n 100]
#
# The generated database is kept in WORKDIR (default /var/tmp/mynaguard-bench-dashboard) and
# reused by the next run with the same size.
import argparse
import http.client
import json
import os
import sqlite3
import ssl
import statistics
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "collector"))
from collectorlib import PKI, Collector, TOKEN  # noqa: E402

DAY = 86400000

GENERATE = """
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
BEGIN;
WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < {T} - 1)
INSERT INTO terminals (id, name, first_seen, last_seen, max_seq, policy_hash, report_interval,
                       compliance_seq, compliance_ts, drift_ms, description, n_failing)
SELECT i + 1, printf('term-%05d', i), {now} - 30 * {DAY},
       CASE WHEN i % 97 = 0 THEN {now} - {DAY} ELSE {now} - (i % 240) * 1000 END,
       {P}, 'sha256:' || hex(randomblob(32)), 300000, {P}, {now} - 60000,
       CASE WHEN i % 211 = 0 THEN 600000 ELSE 40 END,
       CASE i % 4 WHEN 0 THEN '市民課 窓口' WHEN 1 THEN '税務課 ' WHEN 2 THEN '福祉課 '
            ELSE '保険年金課 ' END || (i % 40 + 1) || '番',
       CASE WHEN (i + 1) % 37 = 0 THEN 1 ELSE 0 END + CASE WHEN (i + 1) % 53 = 0 THEN 1 ELSE 0 END
FROM t;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {P})
INSERT INTO events (tid, seq, ts, received_at, kind, clause, data)
SELECT t.id, s.n,
       {now} - 30 * {DAY} + s.n * (30 * {DAY} / {P}) + t.id * 10,
       {now} - 30 * {DAY} + s.n * (30 * {DAY} / {P}) + t.id * 10 + 50,
       CASE WHEN (s.n * 7 + t.id) % 1000 = 3 THEN 'auth.locked'
            ELSE CASE (s.n + t.id) % 10 WHEN 0 THEN 'usb.blocked' WHEN 1 THEN 'auth.failure'
            WHEN 2 THEN 'usb.allowed' WHEN 3 THEN 'usb.removed' WHEN 9 THEN 'compliance'
            ELSE 'auth.success' END END,
       '["2-6-3-a"]',
       '{{"user":"clerk' || (t.id % 7) || '","service":"login","vendor":"0781","product":"5567","serial":"4C53000123041411' || t.id || '","reason":"bench"}}'
FROM s CROSS JOIN terminals t;
WITH c(id, clause) AS (VALUES ('usb.default_deny', '["2-6-3-a","2-3-2"]'),
  ('usb.no_unapproved_storage', '["2-6-3-a","2-3-2"]'), ('mfa.pam_stack', '["2-6-3-a","2-6-6"]'),
  ('mfa.enrollment', '["2-6-3-a"]'), ('time.synchronized', '["2-6-6"]'),
  ('agent.integrity', '["2-2-7","2-6-7"]'), ('net.isolation', '["2-6-3-a"]'))
INSERT INTO checks (tid, check_id, status, clause, detail, since, updated_at, seq)
SELECT t.id, c.id,
       CASE WHEN (t.id % 37 = 0 AND c.id = 'mfa.pam_stack')
              OR (t.id % 53 = 0 AND c.id = 'time.synchronized') THEN 'fail' ELSE 'pass' END,
       c.clause, 'bench', {now} - {DAY}, {now} - 60000, {P}
FROM terminals t CROSS JOIN c;
INSERT INTO gaps (tid, first, last, detected_at, announced)
SELECT id, 500, 510, {now} - {DAY}, id % 3 = 0 FROM terminals WHERE id % 50 = 0;
UPDATE terminals SET n_gaps = (SELECT count(*) FROM gaps g WHERE g.tid = terminals.id),
  n_gaps_unannounced = (SELECT count(*) FROM gaps g WHERE g.tid = terminals.id AND g.announced = 0);
UPDATE terminals SET locked_at = l.ts FROM (SELECT tid, max(ts) AS ts FROM events
  WHERE kind = 'auth.locked' GROUP BY tid) l WHERE l.tid = terminals.id;
-- the daily history (schema 4) as the writer keeps it: 90 days of the 7 checks per terminal,
-- failing as in the checks table, and the per-day counts of the events above
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 89)
INSERT INTO check_days (tid, day, check_id, status)
SELECT c.tid, ({now} + 32400000) / {DAY} - d.n, c.check_id, CASE c.status WHEN 'pass' THEN 1 ELSE 2 END
FROM checks c CROSS JOIN d;
INSERT INTO clause_terminal_days (day, clause, tid, status)
SELECT cd.day, cl.value, cd.tid, max(cd.status) FROM check_days cd
  JOIN checks c ON c.tid = cd.tid AND c.check_id = cd.check_id, json_each(c.clause) cl
GROUP BY 1, 2, 3;
INSERT INTO clause_days (day, clause, reporting, failing)
SELECT day, clause, count(*), sum(status = 2) FROM clause_terminal_days GROUP BY 1, 2;
INSERT INTO kind_days (kind, day, tid, n)
SELECT kind, (ts + 32400000) / {DAY}, tid, count(*) FROM events
WHERE kind IN ('usb.blocked', 'auth.failure', 'auth.locked') GROUP BY 1, 2, 3;
INSERT INTO kind_totals (kind, day, n) SELECT kind, day, sum(n) FROM kind_days GROUP BY 1, 2;
-- a fleet group of 100 terminals (the events' group filter)
CREATE TABLE IF NOT EXISTS fleet_members (terminal TEXT PRIMARY KEY, grp TEXT NOT NULL,
  added_at INTEGER NOT NULL);
INSERT INTO fleet_members SELECT name, 'shimin', 0 FROM terminals WHERE id % 100 = 0;
COMMIT;
PRAGMA journal_mode = WAL;
"""


def generate(db, terminals, per):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, isolation_level=None)
    t0 = time.time()
    con.executescript(GENERATE.format(T=terminals, P=per, now=now, DAY=DAY))
    con.close()
    return time.time() - t0


class Client:
    def __init__(self, host, port, cafile):
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.conn = http.client.HTTPSConnection(host, port, context=self.ctx, timeout=120)

    def get(self, path):
        self.conn.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError("%s: %d %r" % (path, r.status, body[:200]))
        return body


def cpu_s(pid):
    """utime + stime of the collector (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def dashboard_requests(cl, terminals, events, now, group=True):
    """(label, path) of every request the dashboard page makes, for a store of `terminals`
    terminals named term-%05d and `events` events (ids 1..events) over the last 30+ days;
    group=False leaves out the fleet group filter (no fleet on PostgreSQL)."""
    mid = "term-%05d" % (terminals // 2)
    first = json.loads(cl.get("/v1/events?order=newest&limit=100"))
    q = urllib.parse.quote
    requests = [
        ("terminals: first screen (problems first, page 1 of 50)", "/v1/terminals?limit=50"),
        ("terminals: page 100 (offset 4,950)", "/v1/terminals?limit=50&page=100"),
        ("terminals: sort by id, descending", "/v1/terminals?limit=50&sort=id&dir=desc"),
        ("terminals: sort by last seen", "/v1/terminals?limit=50&sort=last_seen"),
        ("terminals: sort by failing checks", "/v1/terminals?limit=50&sort=failing&dir=desc"),
        ("terminals: non-compliant card", "/v1/terminals?limit=50&status=noncompliant"),
        ("terminals: stale card", "/v1/terminals?limit=50&status=stale"),
        ("terminals: problems card", "/v1/terminals?limit=50&status=problem"),
        ("terminals: search description 市民課", "/v1/terminals?limit=50&q=" + q("市民課")),
        ("terminals: search id term-0500", "/v1/terminals?limit=50&q=term-0500"),
        ("terminals: failing check time.synchronized", "/v1/terminals?limit=50&check=time.synchronized"),
        ("terminals: 1,000 rows in one page", "/v1/terminals?limit=1000"),
        ("one terminal (checks, gaps, 50 events)", "/v1/terminals/" + mid),
        ("events: newest 100", "/v1/events?order=newest&limit=100"),
        ("events: newest, next page (cursor)", "/v1/events?order=newest&limit=100&after=" + first["next"]),
        ("events: kind auth.locked", "/v1/events?order=newest&limit=100&kind=auth.locked"),
        ("events: kind usb.blocked, one day 10 days ago",
         "/v1/events?order=newest&limit=100&kind=usb.blocked&since=%s&until=%s" % (iso(now - 10 * DAY), iso(now - 9 * DAY))),
        ("events: one day 20 days ago", "/v1/events?order=newest&limit=100&since=%s&until=%s" % (iso(now - 20 * DAY), iso(now - 19 * DAY))),
        ("events: one terminal", "/v1/events?order=newest&limit=100&terminal=" + mid),
        ("events: one terminal, kind auth.failure", "/v1/events?order=newest&limit=100&kind=auth.failure&terminal=" + mid),
        ("events: id order (scripts), deep page", "/v1/events?limit=100&after=%d" % (events * 9 // 10)),
    ]
    if group:
        requests += [
            ("events: group of 100 terminals", "/v1/events?order=newest&limit=100&group=shimin"),
            ("events: group, kind usb.blocked, one day 10 days ago",
             "/v1/events?order=newest&limit=100&group=shimin&kind=usb.blocked&since=%s&until=%s" % (iso(now - 10 * DAY), iso(now - 9 * DAY))),
        ]
    requests += [
        ("history: one terminal's strip, 90 days", "/v1/terminals/" + mid + "/history?days=90"),
        ("history: per clause, 30 days", "/v1/clauses?days=30"),
        ("history: per clause, 90 days", "/v1/clauses?days=90"),
        ("history: activity and top terminals, 30 days", "/v1/activity?days=30"),
        ("history: activity and top terminals, 90 days", "/v1/activity?days=90"),
        ("terminals: failed clause 2-6-6 on a day (chart click)",
         "/v1/terminals?limit=50&clause=2-6-6&day=" + time.strftime("%Y-%m-%d", time.gmtime((now + 9 * 3600000 - 5 * DAY) // 1000))),
        ("metrics", "/metrics"),
    ]
    return requests


def csv_requests(terminals, group=True):
    """(label, path) of the CSV exports, timed to the last byte in one call each."""
    mid = "term-%05d" % (terminals // 2)
    r = [("CSV: problems list", "/v1/terminals.csv?status=problem"),
         ("CSV: one terminal's events", "/v1/export.csv?order=newest&terminal=" + mid)]
    if group:
        r.append(("CSV: a group's USB blocks, 30 days",
                  "/v1/export.csv?order=newest&kind=usb.blocked&group=shimin"))
    return r


def time_request(cl, pid, path, n, max_seconds=None):
    """n calls of path after 3 warm-up calls (fewer when max_seconds is spent): p50, p99, max in
    ms, the collector's CPU per call in ms, the answer's bytes and the calls made."""
    for _ in range(3):
        body = cl.get(path)
    times = []
    cpu0 = cpu_s(pid)
    t0 = time.time()
    for _ in range(n):
        t = time.perf_counter()
        cl.get(path)
        times.append((time.perf_counter() - t) * 1000)
        if max_seconds and time.time() - t0 > max_seconds and len(times) >= 5:
            break
    cpu = (cpu_s(pid) - cpu0) / len(times) * 1000
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * len(times))) - 1)]
    return {"p50": statistics.median(times), "p99": p99, "max": times[-1], "cpu": cpu,
            "bytes": len(body), "calls": len(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("workdir", nargs="?", default="/var/tmp/mynaguard-bench-dashboard")
    ap.add_argument("--terminals", type=int, default=10000)
    ap.add_argument("--per", type=int, default=1000, help="events per terminal")
    ap.add_argument("-n", type=int, default=100, help="calls per request")
    a = ap.parse_args()
    os.environ["COLLECTOR"] = os.path.abspath(os.path.join(a.build, "collector", "mynaguard-collector"))
    os.makedirs(a.workdir, exist_ok=True)
    d = os.path.join(a.workdir, "run")
    os.makedirs(d, exist_ok=True)
    pki = PKI(d)
    c = Collector(d, pki, extra="")
    # -v4: the daily history's tables (schema 4) are seeded too
    c.db = os.path.join(a.workdir, "collector-%d-%d-v4.db" % (a.terminals, a.per))
    with open(c.conf) as f:
        conf = f.read().replace(os.path.join(d, "collector.db"), c.db)
    with open(c.conf, "w") as f:
        f.write(conf + "retention = 0\n")
    if not os.path.exists(c.db + ".done"):
        for sfx in ("", "-wal", "-shm"):
            if os.path.exists(c.db + sfx):
                os.unlink(c.db + sfx)
        c.start()  # creates the schema
        c.stop()
        secs = generate(c.db, a.terminals, a.per)
        print("generated %d terminals x %d events in %.0f s: %.2f GB" % (
            a.terminals, a.per, secs, os.path.getsize(c.db) / 1e9), flush=True)
        open(c.db + ".done", "w").close()
    # as if every terminal had just reported (1 in 97 a day ago: stale), whenever it was generated
    now = int(time.time() * 1000)
    con = sqlite3.connect(c.db, isolation_level=None)
    con.execute("UPDATE terminals SET last_seen = CASE WHEN (id - 1) % 97 = 0 THEN ?1 - ?2"
                " ELSE ?1 - ((id - 1) % 240) * 1000 END", (now, DAY))
    con.close()
    t0 = time.time()
    c.start(timeout=1800)
    print("collector ready in %.1f s (schema migrations included)" % (time.time() - t0), flush=True)
    now = int(time.time() * 1000)
    cl = Client(*c.dashboard, pki.p("server-ca.pem"))
    mid = "term-%05d" % (a.terminals // 2)
    print("| request | p50 | p99 | max | collector CPU per call | bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    worst = 0
    for label, path in dashboard_requests(cl, a.terminals, a.terminals * a.per, now):
        r = time_request(cl, c.proc.pid, path, a.n)
        worst = max(worst, r["p99"])
        print("| %s `%s` | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d |" % (
            label, path.replace(mid, "term-MID"), r["p50"], r["p99"], r["max"], r["cpu"],
            r["bytes"]), flush=True)
    # the CSV export of one filter, streamed (time to the last byte)
    for label, path in csv_requests(a.terminals):
        t = time.perf_counter()
        body = cl.get(path)
        print("| %s `%s` (one call) | %.1f ms | | | | %d |" % (label, path.replace(mid, "term-MID"),
                                                            (time.perf_counter() - t) * 1000, len(body)))
    print("worst p99: %.1f ms; load average %s" % (worst, " ".join(open("/proc/loadavg").read().split()[:3])))
    cl.conn.close()
    c.stop()


if __name__ == "__main__":
    main()
