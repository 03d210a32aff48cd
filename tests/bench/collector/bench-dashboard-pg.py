#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Dashboard API latency on PostgreSQL at prefecture scale (not part of meson test; issue 14):
# a PostgreSQL primary of the benchmark's own (pglib.py: initdb + pg_ctl in WORKDIR, unix socket
# only), the collector's schema created by starting the real collector once, then EVENTS events
# of TERMINALS terminals over DAYS days seeded directly in SQL (INSERT ... SELECT from
# generate_series into the collector's month partitions, the events' secondary indexes and
# unique key built after the load, foreign-key triggers off while loading), a streaming replica
# made with pg_basebackup -R, and the requests of bench-dashboard.py timed against a collector
# reading from the primary and then against one reading from the replica ([store] read_url).
#
#   tests/bench/collector/bench-dashboard-pg.py build [WORKDIR] [--events 1000000]
#       [--terminals 10000] [--days 365] [-n 100] [--max-seconds 20] [--keep]
#
# What is fake: the events' hash chain (each event's `chain` is 32 bytes made from its id, not a
# link of a real chain: --verify would fail) and the terminals' chain heads; the events are
# generated, not ingested (same columns, same partitions, same indexes as the collector's).
# WORKDIR (default /var/tmp/mg-bench-pg) is deleted at the end unless --keep; the servers' logs
# (auto_explain: plans of statements over 100 ms) are copied next to it first.
import argparse
import calendar
import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "collector"))
import collectorlib  # noqa: E402
import pglib  # noqa: E402
from collectorlib import PKI, Collector  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_dashboard",
                                               os.path.join(HERE, "bench-dashboard.py"))
bd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bd)

DAY = bd.DAY
HISTORY_DAYS = 90
KINDS_COUNTED = "('usb.blocked', 'auth.failure', 'auth.locked')"


class BenchPG(pglib.PostgreSQL):
    """pglib's server with settings for a bulk load and a benchmark, and auto_explain logging the
    plan of every statement over 100 ms."""

    def _pg_ctl_start(self):
        opts = ("-c listen_addresses='' -c unix_socket_directories=%s -c fsync=on"
                " -c shared_buffers=1GB -c max_wal_size=4GB -c checkpoint_timeout=30min"
                " -c maintenance_work_mem=1GB -c wal_compression=on"
                " -c shared_preload_libraries=auto_explain"
                " -c auto_explain.log_min_duration=100ms -c auto_explain.log_nested_statements=on"
                " -c log_min_duration_statement=100" % self.sock)
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-o",
                 opts, "-w", "-t", "120", "start")
        self.running = True

    def sql(self, db, text):
        """Runs a script (stdin) in database db; its output rows (tab-separated)."""
        p = self.run("psql", "-h", self.sock, "-U", self.role, "-d", db, "-X", "-q", "-A", "-t",
                     "-F", "\t", "-v", "ON_ERROR_STOP=1", input=text)
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]


LOAD = "SET synchronous_commit = off; SET work_mem = '256MB'; SET session_replication_role = replica;\n"

# One event per (s, t): seq s + 1 of terminal t, at start + s * step plus a per-terminal offset
# inside the step; id = s * T + t (receive order, 1..N). The kind mix per 100 events: 40
# auth.success, 8 auth.failure, 14 usb.allowed, 14 usb.removed, 8 usb.blocked, 12 compliance,
# 2 agent.started, 1 bundle.applied, 1 agent.stopped, and 1 in 1,000 auth.locked.
EVENTS_SQL = """
INSERT INTO {part} (id, tid, seq, ts, received_at, kind, clause, data, chain)
SELECT x.s * {T} + x.t, x.t, x.s + 1, x.ts, x.ts + 40 + x.t % 200, x.kind,
  CASE WHEN x.kind LIKE 'usb.%' THEN '["2-6-3-a","2-3-2"]'
       WHEN x.kind LIKE 'auth.%' THEN '["2-6-3-a","2-6-6"]'
       WHEN x.kind = 'compliance' THEN '["2-6-3-a"]' ELSE '["2-2-7","2-6-7"]' END,
  CASE WHEN x.kind LIKE 'usb.%' THEN
    '{{"device":"1-' || (x.t % 4 + 1) || '.' || (x.s % 3 + 1) || '","vendor":"0781","product":"5567",'
    || '"serial":"4C5300012304' || lpad(x.t::text, 5, '0') || lpad((x.s % 97)::text, 2, '0')
    || '","name":"SanDisk Cruzer Blade","interface_classes":["08"],'
    || CASE x.kind WHEN 'usb.blocked' THEN '"reason":"not in the allow list"'
                   WHEN 'usb.allowed' THEN '"rule":"allow 0781:5567 serial-bound","exception":null'
                   ELSE '"mounted":false' END || '}}'
  WHEN x.kind LIKE 'auth.%' THEN
    '{{"user":"clerk' || (x.t % 7) || '","service":"login","tty":"tty' || (x.s % 3 + 1)
    || '","method":"totp","rhost":null,"sender":{{"uid":0,"unprivileged":false,"pid":'
    || (1000 + x.s % 30000) || '}}'
    || CASE x.kind WHEN 'auth.failure' THEN ',"reason":"wrong code","failures":' || (x.s % 5 + 1)
                   WHEN 'auth.locked' THEN ',"reason":"too many failures","failures":5,"lock_s":900'
                   ELSE ',"session":"' || md5(x.s::text) || '"' END || '}}'
  WHEN x.kind = 'compliance' THEN
    '{{"policy_hash":"sha256:7d1f0c9a","checks":[{{"id":"usb.default_deny","status":"pass"}},'
    || '{{"id":"mfa.pam_stack","status":"' || CASE WHEN x.t % 37 = 0 THEN 'fail' ELSE 'pass' END
    || '"}},{{"id":"time.synchronized","status":"' || CASE WHEN x.t % 53 = 0 THEN 'fail' ELSE 'pass' END
    || '"}},{{"id":"agent.integrity","status":"pass"}},{{"id":"net.isolation","status":"pass"}}]}}'
  ELSE '{{"version":"1.4.2","boot_id":"' || md5(x.t::text || x.s::text) || '","reason":"boot"}}' END,
  decode(lpad(to_hex(x.s * {T} + x.t), 64, '0'), 'hex')
FROM (SELECT s, t, {start}::bigint + s * {step}::bigint + (t::bigint * 2654435761) % {step} AS ts,
        CASE WHEN ((s + 1) * 31 + t) % 1000 = 7 THEN 'auth.locked'
        ELSE CASE WHEN r < 40 THEN 'auth.success' WHEN r < 48 THEN 'auth.failure'
             WHEN r < 62 THEN 'usb.allowed' WHEN r < 76 THEN 'usb.removed'
             WHEN r < 84 THEN 'usb.blocked' WHEN r < 96 THEN 'compliance'
             WHEN r < 98 THEN 'agent.started' WHEN r < 99 THEN 'bundle.applied'
             ELSE 'agent.stopped' END END AS kind
      FROM generate_series({s_lo}, {s_hi}) s, generate_series(1, {T}) t,
           LATERAL (SELECT (s * 7 + t * 13) % 100 AS r) rr) x
WHERE x.ts >= {lo} AND x.ts < {hi};
INSERT INTO mg_kd_stage SELECT kind, mg_day(ts), tid, count(*) FROM {part}
  WHERE kind IN """ + KINDS_COUNTED + """ GROUP BY 1, 2, 3;
"""

TABLES_SQL = """
INSERT INTO terminals (id, name, first_seen, last_seen, max_seq, policy_hash, report_interval,
                       compliance_seq, compliance_ts, drift_ms, description, n_failing, chain_head)
SELECT i, 'term-' || lpad((i - 1)::text, 5, '0'), {start},
       CASE WHEN (i - 1) % 97 = 0 THEN {now} - {DAY} ELSE {now} - ((i - 1) % 240) * 1000 END,
       {P}, 'sha256:' || encode(sha256(int8send(i)), 'hex'), 300000, {P}, {now} - 60000,
       CASE WHEN (i - 1) % 211 = 0 THEN 600000 ELSE 40 END,
       CASE (i - 1) % 4 WHEN 0 THEN '市民課 窓口' WHEN 1 THEN '税務課 ' WHEN 2 THEN '福祉課 '
            ELSE '保険年金課 ' END || ((i - 1) % 40 + 1) || '番',
       CASE WHEN i % 37 = 0 THEN 1 ELSE 0 END + CASE WHEN i % 53 = 0 THEN 1 ELSE 0 END,
       decode(lpad(to_hex(i), 64, '0'), 'hex')
FROM generate_series(1, {T}) i;
SELECT setval(pg_get_serial_sequence('terminals', 'id'), {T});
INSERT INTO checks (tid, check_id, status, clause, detail, since, updated_at, seq)
SELECT t.id, c.id,
       CASE WHEN (t.id % 37 = 0 AND c.id = 'mfa.pam_stack')
              OR (t.id % 53 = 0 AND c.id = 'time.synchronized') THEN 'fail' ELSE 'pass' END,
       c.clause, 'bench', {now} - {DAY}, {now} - 60000, {P}
FROM terminals t CROSS JOIN (VALUES ('usb.default_deny', '["2-6-3-a","2-3-2"]'),
  ('usb.no_unapproved_storage', '["2-6-3-a","2-3-2"]'), ('mfa.pam_stack', '["2-6-3-a","2-6-6"]'),
  ('mfa.enrollment', '["2-6-3-a"]'), ('time.synchronized', '["2-6-6"]'),
  ('agent.integrity', '["2-2-7","2-6-7"]'), ('net.isolation', '["2-6-3-a"]')) c(id, clause);
INSERT INTO gaps (tid, first, last, detected_at, announced)
SELECT id, 500, 510, {now} - {DAY}, CASE WHEN id % 3 = 0 THEN 1 ELSE 0 END
FROM terminals WHERE id % 50 = 0;
UPDATE terminals t SET n_gaps = g.n, n_gaps_unannounced = g.un
FROM (SELECT tid, count(*) AS n, count(*) FILTER (WHERE announced = 0) AS un FROM gaps
      GROUP BY tid) g WHERE g.tid = t.id;
-- the daily history as the writer keeps it: {H} days of the 7 checks per terminal
INSERT INTO check_days (tid, day, check_id, status)
SELECT c.tid, mg_day({now}) - d, c.check_id, CASE c.status WHEN 'pass' THEN 1 ELSE 2 END
FROM checks c CROSS JOIN generate_series(0, {H} - 1) d;
INSERT INTO clause_terminal_days (day, clause, tid, status)
SELECT cd.day, cl, cd.tid, max(cd.status) FROM check_days cd
  JOIN checks c ON c.tid = cd.tid AND c.check_id = cd.check_id,
  json_array_elements_text(c.clause::json) cl
GROUP BY 1, 2, 3;
INSERT INTO clause_days (day, clause, reporting, failing)
SELECT day, clause, count(*), count(*) FILTER (WHERE status = 2) FROM clause_terminal_days
GROUP BY 1, 2;
"""


def months(start, end):
    """(name, from_ms, to_ms) of the collector's month partitions (UTC) covering [start, end]."""
    out = []
    y, m = time.gmtime(start // 1000)[:2]
    while True:
        lo = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
        if lo > end:
            return out
        y2, m2 = (y + 1, 1) if m == 12 else (y, m + 1)
        hi = calendar.timegm((y2, m2, 1, 0, 0, 0)) * 1000
        out.append(("events_p%04d%02d" % (y, m), lo, hi))
        y, m = y2, m2


def seed(pg, db, terminals, events, days, now, jobs):
    per = events // terminals
    start = now - days * DAY
    step = days * DAY // per
    phases = {}
    t0 = time.time()
    # the events' secondary indexes and unique key are dropped and built again after the load
    idx = pg.sql(db, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
                     " AND indexname NOT IN (SELECT conname FROM pg_constraint"
                     " WHERE conrelid = 'events'::regclass)")
    uniq = pg.sql(db, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                      " WHERE conrelid = 'events'::regclass AND contype = 'u'")
    assert idx and len(uniq) == 1, (idx, uniq)
    pg.sql(db, "".join("DROP INDEX %s;" % n for n, _ in idx) +
           "ALTER TABLE events DROP CONSTRAINT %s;" % uniq[0][0] +
           "CREATE UNLOGGED TABLE mg_kd_stage (kind text, day bigint, tid bigint, n bigint);" +
           TABLES_SQL.format(T=terminals, P=per, now=now, start=start, DAY=DAY, H=HISTORY_DAYS))
    parts = months(start, now)
    for name, lo, hi in parts:
        pg.sql(db, "CREATE TABLE %s PARTITION OF events FOR VALUES FROM (%d) TO (%d)"
                   " WITH (autovacuum_enabled = off)" % (name, lo, hi))
    phases["schema, terminals, checks, history"] = time.time() - t0

    def load(part):
        name, lo, hi = part
        s_lo = max(0, (lo - start - step) // step)
        s_hi = min(per - 1, (hi - start) // step + 1)
        if s_lo > s_hi:
            return
        pg.sql(db, LOAD + EVENTS_SQL.format(part=name, T=terminals, start=start, step=step,
                                            s_lo=s_lo, s_hi=s_hi, lo=lo, hi=hi))
        print("  %s loaded (%.0f s)" % (name, time.time() - t0), flush=True)

    t1 = time.time()
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        list(ex.map(load, parts))
    phases["events (INSERT ... SELECT)"] = time.time() - t1

    def index(part):
        name = part[0]
        stmts = ["SET maintenance_work_mem = '512MB';"]
        for n, d in idx:
            m = re.match(r"CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .*)$", d)
            stmts.append("CREATE %sINDEX %s_%s ON %s %s;" % (m.group(1) or "", name, n, name,
                                                            m.group(2)))
        stmts.append("ALTER TABLE %s ADD CONSTRAINT %s_%s %s;" % (name, name, uniq[0][0],
                                                                uniq[0][1]))
        pg.sql(db, "".join(stmts))
        print("  %s indexed (%.0f s)" % (name, time.time() - t0), flush=True)

    t1 = time.time()
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        list(ex.map(index, parts))
    # the partitioned indexes attach the partitions' (no build)
    pg.sql(db, "".join("%s;" % d.replace(" ON ONLY ", " ON ") for _, d in idx) +
           "ALTER TABLE events ADD CONSTRAINT %s %s;" % (uniq[0][0], uniq[0][1]))
    phases["indexes and unique key"] = time.time() - t1
    t1 = time.time()
    pg.sql(db, "SET work_mem = '1GB';"
               "INSERT INTO kind_days (kind, day, tid, n) SELECT kind, day, tid, sum(n)"
               " FROM mg_kd_stage GROUP BY 1, 2, 3;"
               "DROP TABLE mg_kd_stage;"
               "INSERT INTO kind_totals (kind, day, n) SELECT kind, day, sum(n) FROM kind_days"
               " GROUP BY 1, 2;"
               "UPDATE terminals t SET locked_at = l.ts FROM (SELECT tid, max(ts) AS ts"
               " FROM events WHERE kind = 'auth.locked' AND ts >= %d GROUP BY tid) l"
               " WHERE l.tid = t.id;"
               "SELECT setval(pg_get_serial_sequence('events', 'id'),"
               " (SELECT max(id) FROM events));" % (now - 60 * DAY))
    phases["day counts, lockouts"] = time.time() - t1
    t1 = time.time()

    def vacuum(part):
        pg.sql(db, "VACUUM (ANALYZE) %s; ALTER TABLE %s RESET (autovacuum_enabled);" % (
            part[0], part[0]))

    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        list(ex.map(vacuum, parts))
    pg.sql(db, "VACUUM (ANALYZE) terminals, checks, gaps, check_days, clause_terminal_days,"
               " clause_days, kind_days, kind_totals; ANALYZE events; CHECKPOINT;")
    phases["VACUUM ANALYZE, checkpoint"] = time.time() - t1
    return phases, len(parts)


def fresh(primary, replica, db, terminals):
    """As if every terminal had just reported (1 in 97 a day ago: stale), whenever it was
    seeded; waits until the replica has replayed it."""
    now = int(time.time() * 1000)
    primary.sql(db, "UPDATE terminals SET last_seen = CASE WHEN (id - 1) %% 97 = 0 THEN %d"
                    " ELSE %d - ((id - 1) %% 240) * 1000 END" % (now - DAY, now))
    lsn = primary.scalar("SELECT pg_current_wal_lsn()")
    while replica.scalar("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn) != "t":
        time.sleep(0.2)


def measure(c, pki, terminals, events, n, max_seconds):
    c.start(timeout=600)
    try:
        cl = bd.Client(*c.dashboard, pki.p("server-ca.pem"))
        now = int(time.time() * 1000)
        out = []
        for label, path in bd.dashboard_requests(cl, terminals, events, now, group=False):
            out.append((label, path, bd.time_request(cl, c.proc.pid, path, n, max_seconds)))
            r = out[-1][2]
            print("  %-55s p50 %8.1f  p99 %8.1f ms  (%d calls)" % (label, r["p50"], r["p99"],
                                                                 r["calls"]), flush=True)
        for label, path in bd.csv_requests(terminals, group=False):
            t = time.perf_counter()
            body = cl.get(path)
            ms = (time.perf_counter() - t) * 1000
            out.append((label, path, {"p50": ms, "p99": None, "bytes": len(body), "calls": 1}))
            print("  %-55s %8.1f ms (one call)" % (label, ms), flush=True)
        cl.conn.close()
        return out
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("workdir", nargs="?", default="/var/tmp/mg-bench-pg")
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--terminals", type=int, default=10000)
    ap.add_argument("--days", type=int, default=365, help="the events' time span, ending now")
    ap.add_argument("-n", type=int, default=100, help="calls per request")
    ap.add_argument("--max-seconds", type=float, default=20,
                    help="fewer calls (at least 5) when a request has taken this long")
    ap.add_argument("--jobs", type=int, default=2, help="partitions loaded/indexed at once")
    ap.add_argument("--bytes-per-event", type=float, default=600,
                    help="for the disk check before seeding (primary + replica)")
    ap.add_argument("--keep", action="store_true", help="keep WORKDIR (servers stopped)")
    a = ap.parse_args()
    os.environ["COLLECTOR"] = os.path.abspath(os.path.join(a.build, "collector",
                                                           "mynaguard-collector"))
    os.makedirs(a.workdir, exist_ok=True)
    st = os.statvfs(a.workdir)
    free = st.f_bavail * st.f_frsize
    need = a.events * a.bytes_per_event * 2 + 6e9
    print("disk: %.1f GB free, this run needs ~%.1f GB (primary + replica + WAL); limit: free"
          " - 15 GB" % (free / 1e9, need / 1e9), flush=True)
    if need > free - 15e9:
        sys.exit("not enough disk for %d events: lower --events" % a.events)
    tempfile.tempdir = a.workdir
    logs = a.workdir.rstrip("/") + "-logs"
    os.makedirs(logs, exist_ok=True)
    primary = replica = None
    try:
        primary = BenchPG(dbname="postgres").start()
        collectorlib._pg = primary  # the Collector's store="postgresql" uses this server
        d = os.path.join(a.workdir, "run")
        os.makedirs(d, exist_ok=True)
        pki = PKI(d)
        c = Collector(d, pki, store="postgresql")
        with open(c.conf, "a") as f:
            f.write("retention = 0\n")
        c.start()  # creates the schema
        c.stop()
        now = int(time.time() * 1000)
        t0 = time.time()
        phases, nparts = seed(primary, c.dbname, a.terminals, a.events, a.days, now, a.jobs)
        seed_s = time.time() - t0
        n_events = int(primary.sql(c.dbname, "SELECT count(*) FROM events")[0][0])
        sizes = primary.sql(c.dbname, """
            SELECT pg_database_size(current_database()),
              (SELECT sum(pg_table_size(c.oid)) FROM pg_inherits i JOIN pg_class c
                 ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass),
              (SELECT sum(pg_indexes_size(c.oid)) FROM pg_inherits i JOIN pg_class c
                 ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass),
              (SELECT avg(octet_length(data)) FROM events TABLESAMPLE SYSTEM (0.1)),
              (SELECT avg(pg_column_size(e.*)) FROM events e TABLESAMPLE SYSTEM (0.1))""")[0]
        dbsize, heap, idxs = int(sizes[0]), int(sizes[1]), int(sizes[2])
        kinds = primary.sql(c.dbname, "SELECT kind, count(*) FROM events TABLESAMPLE SYSTEM (1)"
                                      " GROUP BY 1 ORDER BY 2 DESC")
        print("seeded %d events (%d terminals, %d days, %d month partitions) in %.0f s" % (
            n_events, a.terminals, a.days, nparts, seed_s))
        for k, v in phases.items():
            print("  %-40s %6.0f s" % (k, v))
        print("database %.2f GB; events: heap %.2f GB + indexes %.2f GB = %.0f bytes per event"
              " (data column avg %.0f bytes, row avg %.0f bytes)" % (
                  dbsize / 1e9, heap / 1e9, idxs / 1e9, (heap + idxs) / n_events,
                  float(sizes[3]), float(sizes[4])))
        print("kind mix (1 % sample): " + ", ".join("%s %s" % (k, v) for k, v in kinds),
              flush=True)
        t0 = time.time()
        replica = BenchPG(dbname=c.dbname)
        replica.start(primary=primary)
        fresh(primary, replica, c.dbname, a.terminals)
        print("replica (pg_basebackup -R) ready in %.0f s" % (time.time() - t0), flush=True)
        print("== collector reading from the primary", flush=True)
        fresh(primary, replica, c.dbname, a.terminals)
        res_p = measure(c, pki, a.terminals, n_events, a.n, a.max_seconds)
        with open(c.conf) as f:
            text = f.read()
        with open(c.conf, "w") as f:
            f.write(text + "read_url = postgresql:///%s?host=%s&user=%s\n" % (
                c.dbname, replica.sock, replica.role))
        print("== collector reading from the replica ([store] read_url)", flush=True)
        fresh(primary, replica, c.dbname, a.terminals)
        res_r = measure(c, pki, a.terminals, n_events, a.n, a.max_seconds)
        mid = "term-%05d" % (a.terminals // 2)
        print()
        print("| request | primary p50 | primary p99 | replica p50 | replica p99 | bytes |")
        print("| --- | --- | --- | --- | --- | --- |")
        for (label, path, p), (_, _, r) in zip(res_p, res_r):
            if p["p99"] is None:
                print("| %s `%s` (one call, to the last byte) | %.1f ms | | %.1f ms | | %d |" % (
                    label, path.replace(mid, "term-MID"), p["p50"], r["p50"], p["bytes"]))
            else:
                print("| %s `%s` | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d |" % (
                    label, path.replace(mid, "term-MID"), p["p50"], p["p99"], r["p50"],
                    r["p99"], p["bytes"]))
        print("calls per request: %d (fewer where --max-seconds %.0f ran out: %s)" % (
            a.n, a.max_seconds, ", ".join("%s %d/%d" % (lb, p["calls"], r["calls"])
                                          for (lb, _, p), (_, _, r) in zip(res_p, res_r)
                                          if p["calls"] < a.n and p["p99"] is not None
                                          or r["calls"] < a.n and r["p99"] is not None)
            or "none"))
        print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]), flush=True)
    finally:
        for pg, name in ((replica, "replica"), (primary, "primary")):
            if pg:
                try:
                    shutil.copy(os.path.join(pg.dir, "server.log"),
                                os.path.join(logs, name + "-server.log"))
                except OSError:
                    pass
                if a.keep:
                    pg.run("pg_ctl", "-D", pg.data, "-m", "fast", "-w", "stop", check=False)
                else:
                    pg.stop()
        if not a.keep:
            shutil.rmtree(a.workdir, ignore_errors=True)
            print("deleted %s (server logs in %s)" % (a.workdir, logs))


if __name__ == "__main__":
    main()
