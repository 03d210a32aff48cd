#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Retention by kind (docs/evidence.md): [retention] gives each event kind (or kind prefix) its own
# period. Events stored now are disposed of by `mynaguard-collector --retention-run` run under
# libfaketime 400 days and 6 years later: compliance snapshots (1 year) and the default kinds
# (30 days) go first and leave tombstones between the kept auth and USB events (5 and 3 years),
# which go later; the terminals on legal hold keep everything. The hash chains verify after each
# partial disposal, an UPDATE of a kept event or of a tombstone is still found, and a disposal
# the policy does not allow (seen from today's clock) is named. GET /v1/retention and /metrics
# show the period and the oldest event kept per kind. A bad [retention] section is refused.
# term-o's expired events are the only ones of an old month: on PostgreSQL (MYNAGUARD_TEST_STORE,
# collector-pg-retention) that month's partition is dropped whole, on SQLite they are deleted;
# either way the chain starts at the same anchor. Two old months stay: one holds an event of the
# held term-h, one an expired event of term-l stored after a kept one (a tombstone in the middle
# of its chain), until that kept one expires too.
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import STORE, PKI, Collector, TestDir, batch, compliance, event  # noqa: E402

YEAR = 365 * 86400


def check(name, cond):
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    if not cond:
        sys.exit(1)


def collector(c, *args, later=None):
    cmd = [os.environ["COLLECTOR"], "--config", c.conf] + list(args)
    if later:
        cmd = ["faketime", "-f", later] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


PG = STORE == "postgresql"
OLD_MS = 1705320000000  # 2024-01-15: term-o's old month (events_p202401 on PostgreSQL)
HELD_MS = 1678838400000  # 2023-03-15: an event of term-h (events_p202303)
LATE_MS = 1686787200000  # 2023-06-15: term-l's event after a kept one (events_p202306)


def rows(c, name):
    """(seq, kind, tombstone) of a terminal's stored rows, in storage order."""
    return [(s, k, b == 1) for s, k, b in c.rows(
        "SELECT e.seq, e.kind, CASE WHEN e.body IS NULL THEN 0 ELSE 1 END FROM events e"
        " JOIN terminals t ON t.id = e.tid WHERE t.name = ? ORDER BY e.id", (name,))]


def anchor(c, name):
    """(first_seq or -1, disposed) of a terminal's anchor."""
    r = c.rows("SELECT coalesce(a.first_seq, -1), a.disposed FROM chain_anchors a"
               " JOIN terminals t ON t.id = a.tid WHERE t.name = ?", (name,))
    return r[0] if r else None


def sql(c, statement, args=()):
    """A change behind the collector's back (the tampering that verify must find)."""
    if PG:
        c.rows(statement, args)
        return
    con = sqlite3.connect(c.db)
    con.execute(statement, args)
    con.commit()
    con.close()


def partitions(c):
    return sorted(r[0] for r in c.rows(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"))


TERM_A = "tid = (SELECT id FROM terminals WHERE name = 'term-a')"


def mixed(terminal):
    """auth, compliance, usb, compliance, agent.started, auth: the 1-year and 30-day kinds
    sit between the 5-year ones in the chain."""
    evs = [event(terminal, 1, kind="auth.failure", data={"user": "u1", "service": "login"}),
           compliance(terminal, 2),
           event(terminal, 3, kind="usb.blocked"),
           compliance(terminal, 4),
           event(terminal, 5, kind="agent.started", data={"version": "1"}),
           event(terminal, 6, kind="auth.success", data={"user": "u1", "service": "login"})]
    return {"v": 1, "terminal": terminal, "events": evs}


def main():
    with TestDir("retention") as d:
        pki = PKI(d)
        a, h, s = pki.terminal("term-a"), pki.terminal("term-h"), pki.terminal("term-s")
        o, lt = pki.terminal("term-o"), pki.terminal("term-l")
        c = Collector(d, pki)
        base = open(c.conf).read()

        for text, want in (("[retention]\nhold = term-b bad/id\n", "is not a terminal id"),
                           ("[retention]\nhold = term-b term-b\n", "named twice"),
                           ("[retention]\nhold =\n", "empty"),
                           ("[retention]\nhold = x\nhold = y\n", "given twice"),
                           ("[retention]\nnosuch.* = 5y\n", "unknown key"),
                           ("[retention]\nauth.failed = 5y\n", "unknown key"),
                           ("[retention]\nauth.* = 5x\n", "expected a duration"),
                           ("[retention]\nauth.* = 101y\n", "expected a duration"),
                           ("[retention]\nauth.* = 5y\nauth.* = 1y\n", "given twice"),
                           ("[retention]\ndefault = 30d\n[store]\nretention = 1d\n",
                            "same period")):
            with open(c.conf, "w") as f:
                f.write(base + text)
            r = collector(c, "--check")
            check(f"refused: {text.splitlines()[1]!r} ({r.stderr.strip()})",
                  r.returncode == 1 and want in r.stderr and "collector.conf" in r.stderr)
            check("  ... and no database was made", not os.path.exists(c.db))

        with open(c.conf, "w") as f:
            f.write(base + "[retention]\ndefault = 30d\nauth.* = 5y\nusb.* = 5y\n"
                    "usb.blocked = 3y\ncompliance = 1y\nhold = term-h other-1\n")
        c.start()
        for cert, name in ((a, "term-a"), (h, "term-h"), (s, "term-s")):
            body = mixed(name) if name != "term-s" else \
                {"v": 1, "terminal": name, "events": [compliance(name, q) for q in (1, 2, 3)]}
            st, resp, _ = c.post(cert, body)
            check(f"{name}: events acknowledged ({st} {resp})", st == 200)
        # term-o: three snapshots of an old month, then an auth event of today
        st, resp, _ = c.post(o, {"v": 1, "terminal": "term-o", "events": [
            compliance("term-o", q, ts_ms=OLD_MS + q * 1000) for q in (1, 2, 3)] + [
            event("term-o", 4, kind="auth.failure", data={"user": "u1", "service": "login"})]})
        check(f"term-o: events of an old month acknowledged ({st} {resp})", st == 200)
        st, resp, _ = c.post(h, {"v": 1, "terminal": "term-h",
                                 "events": [compliance("term-h", 7, ts_ms=HELD_MS)]})
        check(f"term-h: an event of another old month acknowledged ({st} {resp})", st == 200)
        st, resp, _ = c.post(lt, {"v": 1, "terminal": "term-l", "events": [
            event("term-l", 1, kind="auth.failure", data={"user": "u1", "service": "login"}),
            compliance("term-l", 2, ts_ms=LATE_MS)]})
        check(f"term-l: a kept event, then one of an old month ({st} {resp})", st == 200)
        if PG:
            check(f"PostgreSQL: each old month has its own partition ({partitions(c)})",
                  partitions(c)[:3] == ["events_p202303", "events_p202306", "events_p202401"]
                  and len(partitions(c)) == 4)

        st, rj, _ = c.get("/v1/retention")
        check(f"GET /v1/retention: period per kind (a kind's own before its prefix), rules, hold ({rj})",
              st == 200 and rj["kinds"]["auth.failure"]["period_s"] == 5 * YEAR
              and rj["kinds"]["usb.blocked"]["period_s"] == 3 * YEAR
              and rj["kinds"]["usb.removed"]["period_s"] == 5 * YEAR
              and rj["kinds"]["compliance"]["period_s"] == YEAR
              and rj["kinds"]["agent.started"]["period_s"] == 30 * 86400
              and rj["period_s"] == 30 * 86400
              and rj["rules"] == {"auth.*": 5 * YEAR, "usb.*": 5 * YEAR,
                                  "usb.blocked": 3 * YEAR, "compliance": YEAR}
              and rj["hold"] == ["term-h", "other-1"]
              and isinstance(rj["kinds"]["compliance"]["oldest"], str)
              and rj["kinds"]["usb.removed"]["oldest"] is None
              and isinstance(rj["oldest"].get("usb.blocked"), str))
        check("the writer ran retention soon after start (nothing expired)",
              any(c.get("/v1/retention")[1]["last_run"] is not None or time.sleep(0.5)
                  for _ in range(20)))
        st, text, _ = c.get("/metrics", raw=True)
        text = text.decode()
        check("/metrics: period and oldest kept event per kind, last run",
              st == 200
              and f'mynaguard_collector_retention_period_seconds{{kind="compliance"}} {YEAR}' in text
              and f'mynaguard_collector_retention_period_seconds{{kind="auth.locked"}} {5 * YEAR}' in text
              and 'mynaguard_collector_oldest_event_seconds{kind="compliance"} ' in text
              and 'mynaguard_collector_oldest_event_seconds{kind="auth.failure"} ' in text
              and "mynaguard_collector_retention_last_run_seconds " in text
              and "mynaguard_collector_retention_last_disposed 0" in text)
        c.stop()

        # 400 days later: compliance (1 year) and agent.started (30 days) are past their period
        r = collector(c, "--retention-run", later="+400d")
        check(f"--retention-run 400 days later ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and "disposed of 10 events" in r.stdout
              and "2 terminals on hold" in r.stdout)
        ra = rows(c, "term-a")
        check(f"term-a: auth and USB kept, compliance and agent.started left tombstones ({ra})",
              ra == [(1, "auth.failure", False), (2, "compliance", True),
                     (3, "usb.blocked", False), (4, "compliance", True),
                     (5, "agent.started", True), (6, "auth.success", False)])
        check("term-a: the tombstones hold no content any more",
              c.count("SELECT count(*) FROM events WHERE body IS NOT NULL AND (clause != ''"
                      " OR data != '' OR length(body) != 32)") == 0)
        check(f"term-h on legal hold: everything kept ({rows(c, 'term-h')})",
              all(not t for _, _, t in rows(c, "term-h")) and len(rows(c, "term-h")) == 7)
        check(f"term-s (compliance only): its whole chain folded into the anchor ({rows(c, 'term-s')})",
              rows(c, "term-s") == [] and anchor(c, "term-s") == (-1, 3))
        check(f"term-o: the old month's snapshots gone, its chain anchored before seq 4"
              f" ({rows(c, 'term-o')} {anchor(c, 'term-o')})",
              rows(c, "term-o") == [(4, "auth.failure", False)]
              and anchor(c, "term-o") == (4, 3))
        check(f"term-l: its old event is a tombstone after the kept one ({rows(c, 'term-l')})",
              rows(c, "term-l") == [(1, "auth.failure", False), (2, "compliance", True)]
              and anchor(c, "term-l") is None)
        if PG:
            check(f"PostgreSQL: the expired month's partition was dropped, the held one's and"
                  f" the one with a tombstone in a chain stay ({partitions(c)})",
                  partitions(c)[:2] == ["events_p202303", "events_p202306"]
                  and len(partitions(c)) == 3
                  and c.count("SELECT count(*) FROM pg_class WHERE relname = 'events_p202401'")
                  == 0)
        r = collector(c, "--verify", later="+400d")
        check(f"--verify after the partial disposal: OK across the tombstones ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK 5 terminals, 16 events,")
              and "4 tombstones" in r.stdout)
        r = collector(c, "--verify")
        check(f"--verify on today's clock: the disposals were not yet due ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-a seq=2:" in r.stdout
              and "before its retention period ([retention] compliance)" in r.stdout)

        # each change is undone after verify found it
        (data3,), = c.rows("SELECT data FROM events WHERE seq = 3 AND " + TERM_A)
        sql(c, "UPDATE events SET data = '{\"vendor\":\"dead\"}' WHERE seq = 3 AND " + TERM_A)
        r = collector(c, "--verify", later="+400d")
        check(f"an UPDATE of a kept event beside tombstones is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=3:"))
        sql(c, "UPDATE events SET data = ? WHERE seq = 3 AND " + TERM_A, (data3,))
        sql(c, "UPDATE events SET received_at = received_at - 1 WHERE seq = 4 AND " + TERM_A)
        r = collector(c, "--verify", later="+400d")
        check(f"an UPDATE of a tombstone's metadata is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=4:"))
        sql(c, "UPDATE events SET received_at = received_at + 1 WHERE seq = 4 AND " + TERM_A)
        (clause1, data1), = c.rows("SELECT clause, data FROM events WHERE seq = 1 AND " + TERM_A)
        sql(c, "UPDATE events SET clause = '', data = '', body = "
            + ("decode(repeat('00', 32), 'hex')" if PG else "zeroblob(32)")
            + " WHERE seq = 1 AND " + TERM_A)
        r = collector(c, "--verify", later="+400d")
        check(f"an event emptied into a fake tombstone is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=1:"))
        sql(c, "UPDATE events SET clause = ?, data = ?, body = NULL WHERE seq = 1 AND " + TERM_A,
            (clause1, data1))
        r = collector(c, "--verify", later="+400d")
        check(f"--verify with the changes undone: OK again ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK 5 terminals, 16 events,"))

        # six years later: auth and USB go too; term-a folds into its anchor, term-h stays
        r = collector(c, "--retention-run", later="+2200d")
        check(f"--retention-run six years later ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and "disposed of 5 events" in r.stdout)
        check(f"term-a: nothing left but the anchor ({rows(c, 'term-a')})",
              rows(c, "term-a") == [] and anchor(c, "term-a") == (-1, 6))
        check(f"term-o: nothing left but the anchor ({rows(c, 'term-o')} {anchor(c, 'term-o')})",
              rows(c, "term-o") == [] and anchor(c, "term-o") == (-1, 4))
        check(f"term-l: nothing left but the anchor ({rows(c, 'term-l')} {anchor(c, 'term-l')})",
              rows(c, "term-l") == [] and anchor(c, "term-l") == (-1, 2))
        if PG:
            check(f"PostgreSQL: term-l's old month dropped once its chain allowed, the held"
                  f" month stays ({partitions(c)})",
                  partitions(c)[0] == "events_p202303" and len(partitions(c)) == 2)
        check("term-h on hold: still everything", len(rows(c, "term-h")) == 7)
        r = collector(c, "--verify", later="+2200d")
        check(f"--verify after the full disposal: OK ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK 5 terminals, 7 events, 4 chains"))

        c.start()
        st, _, _ = c.post(a, batch("term-a", [7, 8]))
        check("term-a goes on after its chain was folded into the anchor", st == 200)
        st, rj, _ = c.get("/v1/retention")
        check(f"GET /v1/retention: compliance oldest is term-h's (held) ({rj['oldest']})",
              st == 200 and "compliance" in rj["oldest"] and "agent.started" in rj["oldest"])
        c.stop()
        r = collector(c, "--verify", later="+2200d")
        check(f"--verify after more ingest: OK ({r.stdout.strip()})", r.returncode == 0)
        r = collector(c, "--retention-run", "--verify")
        check("--retention-run with --verify: usage error", r.returncode == 2)

        if PG:
            # a partition dropped by another process while a collector runs: its writer had the
            # month cached; the batch that finds no partition is answered 503 and its retry
            # makes the partition anew
            c.start()
            st, resp, _ = c.post(o, {"v": 1, "terminal": "term-o", "events": [
                compliance("term-o", 5, ts_ms=OLD_MS)]})
            check(f"PostgreSQL: term-o's old month again ({st} {resp} {partitions(c)})",
                  st == 200 and "events_p202401" in partitions(c))
            r = collector(c, "--retention-run", later="+400d")
            check(f"PostgreSQL: --retention-run beside the running collector drops it again"
                  f" ({r.stdout.strip()} {r.stderr.strip()} {partitions(c)})",
                  r.returncode == 0 and "disposed of 1 events" in r.stdout
                  and "events_p202401" not in partitions(c) and rows(c, "term-o") == []
                  and anchor(c, "term-o") == (-1, 5))
            body = {"v": 1, "terminal": "term-o",
                    "events": [compliance("term-o", 6, ts_ms=OLD_MS)]}
            st, resp, _ = c.post(o, body)
            check(f"PostgreSQL: the writer's cached month is gone: 503, no row ({st} {resp})",
                  st == 503 and rows(c, "term-o") == [])
            st, resp, _ = c.post(o, body)
            check(f"PostgreSQL: the retry makes the partition anew ({st} {resp} {partitions(c)})",
                  st == 200 and "events_p202401" in partitions(c)
                  and rows(c, "term-o") == [(6, "compliance", False)])
            c.stop()
            r = collector(c, "--verify", later="+400d")
            check(f"PostgreSQL: --verify after all that: OK ({r.stdout.strip()})",
                  r.returncode == 0)


if __name__ == "__main__":
    main()
