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
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, compliance, event  # noqa: E402

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


def rows(c, name):
    """(seq, kind, tombstone) of a terminal's stored rows, in storage order."""
    con = sqlite3.connect(c.db)
    try:
        return [(s, k, b is not None) for s, k, b in con.execute(
            "SELECT seq, kind, body FROM events e JOIN terminals t ON t.id = e.tid"
            " WHERE t.name = ? ORDER BY e.id", (name,))]
    finally:
        con.close()


def save(db, path):
    src, dst = sqlite3.connect(db), sqlite3.connect(path)
    src.backup(dst)
    dst.close()
    src.close()


def restore(path, db):
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    shutil.copy(path, db)


def sql(db, statement):
    con = sqlite3.connect(db)
    con.execute(statement)
    con.commit()
    con.close()


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
              r.returncode == 0 and "disposed of 6 events" in r.stdout
              and "2 terminals on hold" in r.stdout)
        ra = rows(c, "term-a")
        check(f"term-a: auth and USB kept, compliance and agent.started left tombstones ({ra})",
              ra == [(1, "auth.failure", False), (2, "compliance", True),
                     (3, "usb.blocked", False), (4, "compliance", True),
                     (5, "agent.started", True), (6, "auth.success", False)])
        check("term-a: the tombstones hold no content any more",
              sqlite3.connect(c.db).execute(
                  "SELECT count(*) FROM events WHERE body IS NOT NULL AND (clause != ''"
                  " OR data != '' OR length(body) != 32)").fetchone()[0] == 0)
        check(f"term-h on legal hold: everything kept ({rows(c, 'term-h')})",
              all(not t for _, _, t in rows(c, "term-h")) and len(rows(c, "term-h")) == 6)
        check(f"term-s (compliance only): its whole chain folded into the anchor ({rows(c, 'term-s')})",
              rows(c, "term-s") == [] and sqlite3.connect(c.db).execute(
                  "SELECT first_seq, disposed FROM chain_anchors a JOIN terminals t ON t.id = a.tid"
                  " WHERE t.name = 'term-s'").fetchone() == (None, 3))
        r = collector(c, "--verify", later="+400d")
        check(f"--verify after the partial disposal: OK across the tombstones ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK 3 terminals, 12 events,")
              and "3 tombstones" in r.stdout)
        r = collector(c, "--verify")
        check(f"--verify on today's clock: the disposals were not yet due ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-a seq=2:" in r.stdout
              and "before its retention period ([retention] compliance)" in r.stdout)

        clean = os.path.join(d, "partial.db")
        save(c.db, clean)
        sql(c.db, "UPDATE events SET data = '{\"vendor\":\"dead\"}' WHERE seq = 3"
            " AND tid = (SELECT id FROM terminals WHERE name = 'term-a')")
        r = collector(c, "--verify", later="+400d")
        check(f"an UPDATE of a kept event beside tombstones is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=3:"))
        restore(clean, c.db)
        sql(c.db, "UPDATE events SET received_at = received_at - 1 WHERE seq = 4"
            " AND tid = (SELECT id FROM terminals WHERE name = 'term-a')")
        r = collector(c, "--verify", later="+400d")
        check(f"an UPDATE of a tombstone's metadata is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=4:"))
        restore(clean, c.db)
        sql(c.db, "UPDATE events SET clause = '', data = '', body = zeroblob(32) WHERE seq = 1"
            " AND tid = (SELECT id FROM terminals WHERE name = 'term-a')")
        r = collector(c, "--verify", later="+400d")
        check(f"an event emptied into a fake tombstone is found ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=1:"))
        restore(clean, c.db)

        # six years later: auth and USB go too; term-a folds into its anchor, term-h stays
        r = collector(c, "--retention-run", later="+2200d")
        check(f"--retention-run six years later ({r.stdout.strip()} {r.stderr.strip()})",
              r.returncode == 0 and "disposed of 3 events" in r.stdout)
        check(f"term-a: nothing left but the anchor ({rows(c, 'term-a')})",
              rows(c, "term-a") == [] and sqlite3.connect(c.db).execute(
                  "SELECT disposed FROM chain_anchors a JOIN terminals t ON t.id = a.tid"
                  " WHERE t.name = 'term-a'").fetchone() == (6,))
        check("term-h on hold: still everything", len(rows(c, "term-h")) == 6)
        r = collector(c, "--verify", later="+2200d")
        check(f"--verify after the full disposal: OK ({r.stdout.strip()})",
              r.returncode == 0 and r.stdout.startswith("OK 3 terminals, 6 events, 2 chains"))

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


if __name__ == "__main__":
    main()
