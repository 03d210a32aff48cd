#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The self-inspection report's compliance per clause (GET /r/selfcheck, collector/report.c) from
# the daily history (snapshot_days, check_last_days: docs/evidence.md "History"), against the
# real collector with snapshots uploaded over mTLS, compared with the same table computed here
# from the snapshots themselves the way the report counted before (evidence_daily(): each
# check's worst status of a day, its last status carried into the days without a snapshot and
# from the terminal's newest snapshot before the month, not_applicable complying):
# - a late older snapshot (uploaded after a newer one of the same day) makes that day failing
#   but not the days after it, which carry the newer snapshot's status;
# - the carried status from before the month counts only the checks of the newest snapshot
#   before it; a check that leaves the snapshots keeps its last status; changed clause ids;
#   not_applicable and error; duplicates; random backlogs uploaded in shuffled batches;
# - a store without the report's history (schema 6; PostgreSQL 2) gets it from its kept
#   snapshots by the migration, and the report reads the same, byte for byte.
# With MYNAGUARD_TEST_STORE=postgresql (collector-pg-selfcheck) the same on PostgreSQL, and there
# also: the same uploads into a SQLite store report the same, so does their copy into
# PostgreSQL (--migrate-to-postgresql).
import datetime
import os
import random
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, STORE, Collector, TestDir, at_jst, event  # noqa: E402

PG = STORE == "postgresql"
DAY = 86400000
STATUSES = ("pass", "fail", "not_applicable", "error")


def rank(status):
    return 2 if status in ("fail", "error") else 1 if status == "pass" else 0


def snap(name, seq, ms, checks):
    """checks: [(id, status, [clause ids])]"""
    return event(name, seq, kind="compliance", clause=["2-6-7"], ts_ms=ms,
                 data={"policy_hash": "sha256:" + "ab" * 32,
                       "checks": [{"id": i, "status": s, "clause": cl} for i, s, cl in checks]})


def expected(snaps, from_day, ndays):
    """The per-clause table as the report counted it from the snapshots (evidence_daily() and
    report.c's on_day() before the daily history): {clause: [ok, total, [(terminal, days)]]},
    and the number of terminals counted."""
    from_ms = at_jst(from_day, 0)
    to_ms = from_ms + ndays * DAY
    clauses, reporting = {}, 0
    for name in sorted({e["terminal"] for e in snaps}):
        mine = sorted((e for e in snaps if e["terminal"] == name),
                      key=lambda e: (e["_ms"], e["seq"]))
        before = [e["_ms"] for e in mine if e["_ms"] < from_ms]
        lo = max(before) if before else from_ms
        state = {}  # id: [last status, worst of the day, clause ids], in order of first sight
        days = []   # per day: [(clause ids, failed)]
        day = 0

        def flush(until):
            nonlocal day
            while day < until and day < ndays:
                days.append([(st[2], rank(st[1]) == 2) for st in state.values()])
                for st in state.values():
                    st[1] = st[0]
                day += 1
        for e in mine:
            if not lo <= e["_ms"] < to_ms:
                continue
            if e["_ms"] >= from_ms:
                flush((e["_ms"] - from_ms) // DAY)
            for c in e["data"]["checks"]:
                st = state.setdefault(c["id"], [c["status"], c["status"], None])
                st[0], st[2] = c["status"], c.get("clause", [])
                if rank(c["status"]) > rank(st[1]):
                    st[1] = c["status"]
        flush(ndays)
        if not any(days):
            continue
        reporting += 1
        fail_days = {}
        for d in days:
            seen = {}
            for cls, failed in d:
                for cl in cls:
                    seen[cl] = seen.get(cl, False) or failed
            for cl, failed in seen.items():
                row = clauses.setdefault(cl, [0, 0, []])
                row[1] += 1
                if failed:
                    fail_days[cl] = fail_days.get(cl, 0) + 1
                else:
                    row[0] += 1
        for cl, n in fail_days.items():
            clauses[cl][2].append((name, n))
    return clauses, reporting


ROW = re.compile(r'<tr><td class="clause">([^<]*)</td><td>[^<]*</td><td class="num rate">'
                 r'[0-9.]+%</td><td class="num">(\d+) / (\d+)</td><td>([^<]*)</td></tr>')


def table(html):
    """(the report's per-clause rows as expected() gives them, the terminals counted)"""
    out = {}
    for cl, ok, total, names in ROW.findall(html):
        lst = [] if names == "なし" else [
            (m.group(1), int(m.group(2))) for m in re.finditer(r"([^、（]+)（(\d+)）", names)]
        out[cl] = [int(ok), int(total), lst]
    m = re.search(r"端末数 <span class=\"en\">reporting</span></dt><dd>(\d+)</dd>", html)
    return out, int(m.group(1))


def report(c, month):
    st, html, _ = c.get("/r/selfcheck?month=" + month, raw=True)
    assert st == 200, (st, html)
    # without its time of making
    return re.sub(r"<dd>\d{4}-\d\d-\d\d \d\d:\d\d JST</dd>", "<dd></dd>", html.decode())


def main():
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=9))).date()
    first = (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
    month = first.strftime("%Y-%m")
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    from_day = (first - datetime.date(1970, 1, 1)).days
    ndays = (nxt - first).days
    D = lambda n, h=12, m=0: at_jst(from_day + n, h, m)  # noqa: E731

    UDD = ("usb.default_deny", ["2-6-3-a", "2-3-2"])
    MFA = ("mfa.pam_stack", ["2-6-3-a", "2-6-6"])
    TIME = ("time.synchronized", ["2-6-6"])
    # per terminal: its snapshots as (ms, checks), and the batches they are uploaded in
    plan = {}
    # a late older snapshot: day 10's 17:00 pass is uploaded first, its 09:00 fail later; day 10
    # fails, days 11.. carry the 17:00 pass
    plan["term-late"] = [[(D(2), [(*UDD[:1], "pass", UDD[1]), (MFA[0], "pass", MFA[1])]),
                          (D(10, 17), [(UDD[0], "pass", UDD[1]), (MFA[0], "pass", MFA[1])])],
                         [(D(10, 9), [(UDD[0], "fail", UDD[1]), (MFA[0], "pass", MFA[1])])]]
    # the same the other way round: the late one is newer (day 12 17:00 fail after 09:00 pass)
    plan["term-late2"] = [[(D(12, 9), [(TIME[0], "pass", TIME[1])])],
                          [(D(12, 17), [(TIME[0], "fail", TIME[1])])]]
    # carried from before the month: only the newest snapshot's checks (MFA left at 18:00)
    plan["term-carry"] = [[(D(-5, 9), [(MFA[0], "fail", MFA[1]), (TIME[0], "pass", TIME[1])]),
                           (D(-3, 9), [(MFA[0], "fail", MFA[1]), (TIME[0], "fail", TIME[1])]),
                           (D(-3, 18), [(TIME[0], "pass", TIME[1])]),
                           (D(6, 8), [(TIME[0], "error", TIME[1])]),
                           (D(7, 8), [(TIME[0], "pass", TIME[1])])]]
    # before the month only: every day carried; after the month only: not counted
    plan["term-old"] = [[(D(-20), [(UDD[0], "fail", UDD[1]), (MFA[0], "not_applicable", MFA[1])])]]
    plan["term-new"] = [[(D(ndays + 1), [(UDD[0], "fail", UDD[1])])]]
    # not_applicable, a clause list that changes, a check that leaves the snapshots, no checks
    plan["term-na"] = [[(D(0, 0, 0), [(MFA[0], "not_applicable", MFA[1])]),
                        (D(3), [(MFA[0], "fail", ["2-6-6"]), ("net.isolation", "pass", [])]),
                        (D(4), [(MFA[0], "not_applicable", ["2-6-6", "2-7"])]),
                        (D(9), []),
                        (D(ndays - 1, 23, 59), [(MFA[0], "error", ["2-8"])])]]
    # random backlogs in shuffled batches, two snapshots at one millisecond included
    rnd = random.Random(12)
    pool = [UDD, MFA, TIME, ("net.isolation", ["2-6-3-a"]), ("agent.integrity", ["2-2-7", "2-6-7"])]
    for k in range(4):
        snaps = []
        for _ in range(40):
            day = rnd.randrange(-6, ndays + 2)
            ms = D(day, rnd.randrange(24), rnd.randrange(60))
            checks = [(cid, rnd.choice(STATUSES), rnd.choice([cl, cl[:1], ["2-6-4"]]))
                      for cid, cl in rnd.sample(pool, rnd.randrange(1, len(pool) + 1))]
            snaps.append((ms, checks))
        snaps.append((snaps[-1][0], [(TIME[0], "fail", TIME[1])]))
        rnd.shuffle(snaps)
        plan["term-r%d" % k] = [snaps[i:i + 7] for i in range(0, len(snaps), 7)]

    with TestDir("selfcheck") as d:
        pki = PKI(d)
        c = Collector(d, pki)
        c.start()
        try:
            sent, uploads = [], []
            for name, batches in sorted(plan.items()):
                cert = pki.terminal(name)
                seq = 0
                posted = []
                for b in batches:
                    evs = []
                    for ms, checks in b:
                        seq += 1
                        e = snap(name, seq, ms, checks)
                        evs.append(e)
                        sent.append(dict(e, _ms=ms))
                    st, body, _ = c.post(cert, {"v": 1, "terminal": name, "events": evs})
                    assert st == 200, (name, st, body)
                    posted.append(evs)
                    uploads.append((name, evs))
                # a duplicate changes nothing
                st, body, _ = c.post(cert, {"v": 1, "terminal": name, "events": posted[0]})
                assert st == 200, body

            want = expected(sent, from_day, ndays)
            html = report(c, month)
            got = table(html)
            assert got == want, (got, want)
            # the cases above, spelled out
            rows = got[0]
            assert ("term-late", 1) in rows["2-3-2"][2], rows["2-3-2"]  # day 10 only
            assert ("term-late2", ndays - 12) in rows["2-6-6"][2], rows["2-6-6"]
            assert ("term-old", ndays) in rows["2-3-2"][2], rows["2-3-2"]
            assert "term-new" not in html
            # term-carry: the month starts with time.synchronized passing and without MFA;
            # fails on day 6 and on day 7, which begins with day 6's error
            assert ("term-carry", 2) in rows["2-6-6"][2], rows["2-6-6"]
            assert not any(t == "term-carry" for t, _ in rows["2-6-3-a"][2]), rows["2-6-3-a"]
            # term-na: 2-6-6 fails on day 3 and day 4 (which begins failing, then
            # not_applicable); 2-7 seen from day 4 (failing) to the day before the last,
            # when the check's clause becomes 2-8, failing
            assert ("term-na", 2) in rows["2-6-6"][2] and ("term-na", 1) in rows["2-8"][2], rows
            assert rows["2-7"] == [ndays - 6, ndays - 5, [("term-na", 1)]], rows["2-7"]

            # ---- the history dropped: the migration rebuilds it from the kept snapshots ----
            rc = c.stop()
            assert rc == 0, (rc, c.logtext())
            if PG:
                c.rows("DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                       " DELETE FROM mg_schema WHERE version > 4")
            else:
                con = sqlite3.connect(c.db)
                con.executescript("DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                                  " PRAGMA user_version = 6;")
                con.close()
            c.start()
            if PG:
                assert c.count("SELECT max(version) FROM mg_schema") == 5
            else:
                assert c.count("PRAGMA user_version") == 7
            assert c.count("SELECT count(*) FROM check_last_days") > 0
            assert report(c, month) == html

            if PG:
                # the same uploads into a SQLite store report the same; copied into
                # PostgreSQL (--migrate-to-postgresql), the history comes along
                for sub in ("src", "dst"):
                    os.makedirs(os.path.join(d, sub))
                src = Collector(os.path.join(d, "src"), pki, store="sqlite").start()
                try:
                    for name, evs in uploads:
                        st, body, _ = src.post(pki.terminal(name),
                                               {"v": 1, "terminal": name, "events": evs})
                        assert st == 200, body
                    assert report(src, month) == html
                finally:
                    assert src.stop() == 0, src.logtext()
                dst = Collector(os.path.join(d, "dst"), pki, store="postgresql")
                p = subprocess.run([os.environ["COLLECTOR"], "--config", src.conf,
                                    "--migrate-to-postgresql", dst.url],
                                   capture_output=True, text=True, timeout=120)
                assert p.returncode == 0, p.stdout + p.stderr
                dst.start()
                try:
                    assert report(dst, month) == html
                finally:
                    assert dst.stop() == 0, dst.logtext()
        finally:
            if c.alive():
                rc = c.stop()
                assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
