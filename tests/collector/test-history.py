#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The daily history on a real collector, real mTLS uploads and a real SQLite store: the 90-day
# pass/fail strip per check (GET /v1/terminals/ID/history), the per-clause daily counts
# (GET /v1/clauses), USB blocks and failed logins per day with the top terminals
# (GET /v1/activity) show seeded failures on the right days (days in Japan, UTC+9), also when a
# backlog is uploaded newest batch first and shuffled, a day with a failing and a passing
# snapshot counts as failing, and a duplicate upload counts nothing twice; the terminal list's
# clause+day filter (the chart's click-through); the events' group filter and its CSV; bad
# parameters refused; a store of schema 4 is backfilled from its events by the migration.
# With MYNAGUARD_TEST_STORE=postgresql (meson suite collector-pg) the same on PostgreSQL: the group
# filter reads the fleet's members there too (the schema's step 3 → 4), and the
# backfill is that of the PostgreSQL schema's step 1 → 2 (collector/store-pg.c); a backlog in one
# shuffled batch gives "failing since" the first failing snapshot's time. On PostgreSQL also: the
# same uploads into a SQLite store answer exactly the same, so does their copy into PostgreSQL
# (--migrate-to-postgresql), and two collectors on one database with eight terminals uploading at
# once count each day exactly.
import csv
import io
import os
import random
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import (PKI, STORE, Collector, TestDir, at_jst, compliance, event, jst_day,  # noqa: E402
                          ts, ymd)

DAY = 86400 * 1000


def snap(name, seq, day, failing=(), hour=12, minute=0):
    e = compliance(name, seq, failing=failing, interval_s=3600)
    e["ts"] = ts(at_jst(day, hour, minute))
    return e


# the fleet's membership table as collector/fleet-store.c creates it (the group filter reads it)
FLEET_MEMBERS = ("CREATE TABLE IF NOT EXISTS fleet_members (terminal TEXT PRIMARY KEY,"
                 " grp TEXT NOT NULL, added_at INTEGER NOT NULL)")


def two_collectors(d, pki):
    """PostgreSQL: two collector processes on one database, eight terminals uploading their
    backlogs at once through both; the shared day counters come out exact and no batch fails
    (each round adds to them at its commit, in key order: no deadlock)."""
    import threading
    for side in ("one", "two"):
        os.makedirs(os.path.join(d, side, "shared"))
    cs = [Collector(os.path.join(d, side, "shared"), pki) for side in ("one", "two")]
    assert cs[0].url == cs[1].url
    for c in cs:
        c.start()
    try:
        now = int(time.time() * 1000)
        today = jst_day(now)
        names = ["term-m%d" % i for i in range(8)]
        certs = {n: pki.terminal(n) for n in names}
        errors = []

        def upload(i, name):
            seq = 0
            for k in range(5):  # days -10..-1, two a batch, newest batch first
                evs = []
                for dd in (today - 2 * k - 1, today - 2 * k - 2):
                    seq += 1
                    evs.append(snap(name, 100 - seq, dd,
                                    failing=["mfa.pam_stack"] if (dd + i) % 3 == 0 else []))
                    evs.append(event(name, 200 - seq, kind="usb.blocked", ts_ms=at_jst(dd, 9)))
                st, body, _ = cs[(i + k) % 2].post(certs[name], {"v": 1, "terminal": name,
                                                                 "events": evs})
                if st != 200:
                    errors.append((name, st, body))

        threads = [threading.Thread(target=upload, args=(i, n)) for i, n in enumerate(names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors
        st, cl, _ = cs[0].get("/v1/clauses?days=11")
        a = {x["clause"]: x for x in cl["clauses"]}["2-6-3-a"]
        first = today - 10
        for j in range(11):
            dd = first + j
            rep = 8 if dd < today else 0
            bad = sum(1 for i in range(8) if (dd + i) % 3 == 0) if dd < today else 0
            assert a["reporting"][j] == rep and a["complied"][j] == rep - bad, (j, a)
        st, ac, _ = cs[1].get("/v1/activity?days=11")
        assert ac["usb_blocked"] == [8] * 10 + [0], ac
        assert ac["top"]["usb_blocked"] == [{"terminal": n, "n": 10} for n in names], ac["top"]
    finally:
        for c in cs:
            assert c.stop() == 0, c.logtext()


def main():
    with TestDir("history") as d:
        pki = PKI(d)
        c = Collector(d, pki)
        pg = STORE == "postgresql"
        if not pg:
            con = sqlite3.connect(c.db)
            con.execute(FLEET_MEMBERS)
            con.execute("INSERT INTO fleet_members VALUES ('term-a', 'shimin', 0), ('term-b', 'zeimu', 0)")
            con.commit()
            con.close()
        c.start()
        if pg:  # the collector made the fleet's tables (collector/store-pg.c)
            c.rows("INSERT INTO fleet_members VALUES ('term-a', 'shimin', 0), ('term-b', 'zeimu', 0)")
        now = int(time.time() * 1000)
        today = jst_day(now)
        first30 = today - 29
        certs = {}
        posted = []

        def post(name, events, to=None):
            if name not in certs:
                certs[name] = pki.terminal(name)
            st, body, _ = (to or c).post(certs[name], {"v": 1, "terminal": name, "events": events})
            assert st == 200, body
            if to is None:
                posted.append((name, events))
            return body

        try:
            # ---- term-a: 20 days of snapshots, mfa.pam_stack failing days -15..-12; uploaded as a
            # backlog in two batches, the newer batch first, each shuffled ----
            days = list(range(today - 20, today))  # -20 .. -1
            snaps = [snap("term-a", i + 1, dd,
                          failing=["mfa.pam_stack"] if today - 15 <= dd <= today - 12 else [])
                     for i, dd in enumerate(days)]
            # 00:30 in Japan on day -5 is 15:30 UTC of the day before: the day is Japan's
            snaps.append(snap("term-a", 21, today - 5, failing=["time.synchronized"], hour=0, minute=30))
            newer, older = snaps[10:], snaps[:10]
            random.Random(3).shuffle(newer)
            random.Random(4).shuffle(older)
            post("term-a", newer)
            post("term-a", older)
            # the same backlog again: duplicates count nothing
            post("term-a", older)
            assert c.count("SELECT count(*) FROM events") == len(snaps)
            # blocks: 3 on day -3
            post("term-a", [event("term-a", 22 + i, kind="usb.blocked", ts_ms=at_jst(today - 3, 10, i))
                            for i in range(3)])

            # ---- term-b: passes every day; on day -13 failing in the morning, passing at night
            # (the day counts as failing); one block on day -3, two failed logins on day -2 ----
            seq = 0
            evs = []
            for dd in days:
                seq += 1
                evs.append(snap("term-b", seq, dd, failing=["mfa.pam_stack"] if dd == today - 13 else [],
                                hour=8 if dd == today - 13 else 12))
                if dd == today - 13:
                    seq += 1
                    evs.append(snap("term-b", seq, dd, hour=20))
            evs.append(event("term-b", seq + 1, kind="usb.blocked", ts_ms=at_jst(today - 3, 11)))
            for i in range(2):
                evs.append(event("term-b", seq + 2 + i, kind="auth.failure", ts_ms=at_jst(today - 2, 9, i),
                                 data={"user": "clerk1", "service": "login", "reason": "bad code"}))
            post("term-b", evs)

            # ---- the strip ----
            st, h, _ = c.get("/v1/terminals/term-a/history?days=30")
            assert st == 200, h
            assert h["days"] == 30 and h["from"] == ymd(first30) and h["to"] == ymd(today), h
            assert len(h["dates"]) == 30 and h["dates"][-1] == ymd(today), h["dates"]
            strips = {x["id"]: x["days"] for x in h["checks"]}
            assert set(strips) == {"usb.default_deny", "mfa.pam_stack", "time.synchronized"}, strips

            def expect(fail_days, reported=days):
                return "".join("f" if first30 + i in fail_days else
                               "p" if first30 + i in reported else "-" for i in range(30))
            assert strips["mfa.pam_stack"] == expect(range(today - 15, today - 11)), strips
            assert strips["time.synchronized"] == expect([today - 5]), strips
            assert strips["usb.default_deny"] == expect([]), strips
            clauses = {x["id"]: x["clause"] for x in h["checks"]}
            assert clauses["mfa.pam_stack"] == ["2-6-3-a", "2-6-6"], clauses
            # 90 days by default
            st, h90, _ = c.get("/v1/terminals/term-a/history")
            assert st == 200 and h90["days"] == 90 and len(h90["checks"][0]["days"]) == 90, h90
            st, hb, _ = c.get("/v1/terminals/term-b/history?days=30")
            sb = {x["id"]: x["days"] for x in hb["checks"]}
            assert sb["mfa.pam_stack"] == expect([today - 13]), sb

            # ---- per clause ----
            st, cl, _ = c.get("/v1/clauses?days=30")
            assert st == 200, cl
            assert cl["terminals"] == 2 and cl["from"] == ymd(first30), cl
            by = {x["clause"]: x for x in cl["clauses"]}
            assert set(by) == {"2-6-3-a", "2-3-2", "2-6-6"}, by.keys()
            a = by["2-6-3-a"]
            for i in range(30):
                dd = first30 + i
                rep = 2 if dd in days else 0
                bad = (1 if today - 15 <= dd <= today - 12 else 0) + (1 if dd == today - 13 else 0)
                assert a["reporting"][i] == rep, (ymd(dd), a)
                assert a["complied"][i] == rep - bad, (ymd(dd), a)
            six = by["2-6-6"]
            i5 = today - 5 - first30
            assert six["reporting"][i5] == 2 and six["complied"][i5] == 1, six
            assert by["2-3-2"]["complied"] == by["2-3-2"]["reporting"], by["2-3-2"]
            # the click-through: the terminals that failed the clause that day
            st, l, _ = c.get("/v1/terminals?clause=2-6-3-a&day=" + ymd(today - 13))
            assert st == 200 and sorted(t["id"] for t in l["terminals"]) == ["term-a", "term-b"], l
            assert l["matched"] == 2, l
            st, l, _ = c.get("/v1/terminals?clause=2-6-3-a&day=" + ymd(today - 14))
            assert [t["id"] for t in l["terminals"]] == ["term-a"] and l["matched"] == 1, l
            st, l, _ = c.get("/v1/terminals?clause=2-6-3-a&day=" + ymd(today - 16))
            assert l["terminals"] == [] and l["matched"] == 0, l

            # ---- activity ----
            st, ac, _ = c.get("/v1/activity?days=30")
            assert st == 200, ac
            i3, i2 = today - 3 - first30, today - 2 - first30
            assert ac["usb_blocked"][i3] == 4 and sum(ac["usb_blocked"]) == 4, ac
            assert ac["auth_failure"][i2] == 2 and sum(ac["auth_failure"]) == 2, ac
            assert ac["top"]["usb_blocked"] == [{"terminal": "term-a", "n": 3},
                                                {"terminal": "term-b", "n": 1}], ac["top"]
            assert ac["top"]["auth_failure"] == [{"terminal": "term-b", "n": 2}], ac["top"]

            # ---- events: group and date range; the CSV is exactly that ----
            day3 = ymd(today - 3)
            since = ts(at_jst(today - 3, 0))
            until = ts(at_jst(today - 2, 0))
            q = "kind=usb.blocked&group=shimin&since=%s&until=%s&order=newest" % (since, until)
            st, ev, _ = c.get("/v1/events?" + q)
            assert st == 200 and [e["terminal"] for e in ev["events"]] == ["term-a"] * 3, ev
            st, ev, _ = c.get("/v1/events?group=zeimu&kind=usb.blocked")
            assert [e["terminal"] for e in ev["events"]] == ["term-b"], ev
            st, ev, _ = c.get("/v1/events?group=nobody")
            assert st == 200 and ev["events"] == [], ev
            st, raw, hdr = c.get("/v1/export.csv?" + q, raw=True)
            assert st == 200 and raw.startswith(b"\xef\xbb\xbf"), raw[:20]
            rows = list(csv.reader(io.StringIO(raw[3:].decode())))
            assert rows[0][0] == "端末" and len(rows) == 4, rows
            assert all(r[0] == "term-a" and r[2].startswith(day3[:4]) for r in rows[1:]), rows
            # the same date range without the group
            st, ev, _ = c.get("/v1/events?" + q.replace("group=shimin&", ""))
            assert st == 200 and [e["terminal"] for e in ev["events"]] == ["term-b"] + ["term-a"] * 3, ev

            # ---- refusals ----
            for path, code in (("/v1/terminals/term-a/history?days=0", 400),
                               ("/v1/terminals/term-a/history?days=401", 400),
                               ("/v1/terminals/term-a/history?day=3", 400),
                               ("/v1/terminals/term-a/history?days=3&days=4", 400),
                               ("/v1/terminals/nobody/history", 404),
                               ("/v1/terminals/term-a/historyx", 404),
                               ("/v1/clauses?days=x", 400),
                               ("/v1/activity?days=1000", 400),
                               ("/v1/terminals?clause=2-6-3-a", 400),
                               ("/v1/terminals?day=2026-01-01", 400),
                               ("/v1/terminals?clause=2-6-3-a&day=2026-02-30", 400),
                               ("/v1/terminals?clause=2-6-3-a&day=20260101", 400),
                               ("/v1/events?group=a%20b", 400)):
                st, body, _ = c.get(path)
                assert st == code, (path, st, body)
            st, body, _ = c.get("/v1/clauses", token=None)
            assert st == 401, body
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())

        # ---- a store of schema 4 (PostgreSQL: 1): the migration builds the history from the
        # events ----
        if pg:
            current = c.count("SELECT max(version) FROM mg_schema")
            # the later steps' tables (the accounts, 2 → 3; the fleet, 3 → 4; the report, 4 → 5) go too
            c.rows("DROP TABLE check_days; DROP TABLE clause_terminal_days; DROP TABLE clause_days;"
                   " DROP TABLE kind_days; DROP TABLE kind_totals; DROP FUNCTION mg_day;"
                   " DROP TABLE account_outbox, account_tokens, account_sessions, accounts;"
                   " DROP TABLE fleet_groups, fleet_members, fleet_exceptions, fleet_requests,"
                   " fleet_ledger, fleet_bundles, fleet_totp, fleet_totp_recovery,"
                   " fleet_totp_claims, fleet_terminal_keys;"
                   " DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                   " DELETE FROM mg_schema WHERE version > 1")
            assert c.count("SELECT max(version) FROM mg_schema") == 1
        else:
            con = sqlite3.connect(c.db)
            con.executescript("DROP TABLE check_days; DROP TABLE clause_terminal_days;"
                              " DROP TABLE clause_days; DROP TABLE kind_days; DROP TABLE kind_totals;"
                              " DROP TABLE account_outbox; DROP TABLE account_tokens;"
                              " DROP TABLE account_sessions; DROP TABLE accounts;"
                              " DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                              " PRAGMA user_version = 4;")
            con.close()
        c.start()
        try:
            if pg:
                assert c.count("SELECT max(version) FROM mg_schema") == current
            else:
                assert c.count("PRAGMA user_version") == 7
            st, h2, _ = c.get("/v1/terminals/term-a/history?days=30")
            assert {x["id"]: x["days"] for x in h2["checks"]} == strips, h2
            st, cl2, _ = c.get("/v1/clauses?days=30")
            assert cl2["clauses"] == cl["clauses"], (cl2, cl)
            st, ac2, _ = c.get("/v1/activity?days=30")
            assert ac2["usb_blocked"] == ac["usb_blocked"] and ac2["top"] == ac["top"], ac2

            if pg:
                # the same uploads into a SQLite store answer exactly the same; copied into
                # PostgreSQL (--migrate-to-postgresql), the history comes along
                reads = ("/v1/terminals/term-a/history?days=30", "/v1/terminals/term-b/history?days=90",
                         "/v1/clauses?days=30", "/v1/activity?days=30")
                mine = [c.get(path)[1] for path in reads]
                for sub in ("src", "dst"):
                    os.makedirs(os.path.join(d, sub))
                src = Collector(os.path.join(d, "src"), pki, store="sqlite").start()
                try:
                    for name, events in posted:
                        post(name, events, to=src)
                    assert [src.get(path)[1] for path in reads] == mine, mine
                finally:
                    assert src.stop() == 0, src.logtext()
                dst = Collector(os.path.join(d, "dst"), pki, store="postgresql")
                p = subprocess.run([os.environ["COLLECTOR"], "--config", src.conf,
                                    "--migrate-to-postgresql", dst.url],
                                   capture_output=True, text=True, timeout=120)
                assert p.returncode == 0, p.stdout + p.stderr
                assert dst.count("SELECT count(*) FROM clause_days") == \
                    c.count("SELECT count(*) FROM clause_days") > 0
                dst.start()
                try:
                    assert [dst.get(path)[1] for path in reads] == mine, mine
                finally:
                    assert dst.stop() == 0, dst.logtext()

            # ---- a backlog in one shuffled batch: "failing since" is the first failing
            # snapshot's time, the strip marks each day ----
            cert_c = pki.terminal("term-c")
            evs = [snap("term-c", i + 1, today - 4 + i, failing=["mfa.pam_stack"] if i else [])
                   for i in range(4)]
            random.Random(5).shuffle(evs)
            st, body, _ = c.post(cert_c, {"v": 1, "terminal": "term-c", "events": evs})
            assert st == 200, body
            st, tc, _ = c.get("/v1/terminals/term-c")
            assert st == 200, tc
            assert [(x["id"], x["since"]) for x in tc["failing"]] == \
                [("mfa.pam_stack", ts(at_jst(today - 3, 12)))], tc["failing"]
            st, hc, _ = c.get("/v1/terminals/term-c/history?days=5")
            assert {x["id"]: x["days"] for x in hc["checks"]}["mfa.pam_stack"] == "pfff-", hc
            st, cl3, _ = c.get("/v1/clauses?days=5")
            a3 = {x["clause"]: x for x in cl3["clauses"]}["2-6-3-a"]
            # term-a and term-b passed on days -4..-1; term-c failed on -3..-1
            assert a3["reporting"] == [3, 3, 3, 3, 0] and a3["complied"] == [3, 2, 2, 2, 0], a3
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
        if pg:
            two_collectors(d, pki)
    print("ok")


if __name__ == "__main__":
    main()
