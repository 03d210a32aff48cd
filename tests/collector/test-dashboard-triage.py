#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The dashboard's triage API on a real collector and a real SQLite store: every compliance
# snapshot of an uploaded backlog is applied in event-time order ("failing since" is the first
# failing snapshot's time); "problem" covers a lockout and an unannounced sequence gap (not an
# announced one); server-side paging, sorting, filtering and search with summary counts; the
# terminal list and the event list as CSV (Japanese headers, BOM, CRLF, exactly the filter);
# events newest first with a cursor; bad parameters refused; a store of schema 1 (before these
# columns and indexes) migrates with its failing checks intact.
import csv
import io
import os
import random
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, compliance, event, ts  # noqa: E402

DAY = 86400 * 1000


def names(body):
    return [t["id"] for t in body["terminals"]]


# schema 1 as released (collector/store.c, migration 0 -> 1): a fixture, never edited
SCHEMA_1 = """
CREATE TABLE terminals (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, max_seq INTEGER NOT NULL DEFAULT 0,
  policy_hash TEXT, report_interval INTEGER, compliance_seq INTEGER NOT NULL DEFAULT 0,
  compliance_ts INTEGER, drift_ms INTEGER, conflicts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE events (id INTEGER PRIMARY KEY, tid INTEGER NOT NULL REFERENCES terminals(id),
  seq INTEGER NOT NULL, ts INTEGER NOT NULL, received_at INTEGER NOT NULL, kind TEXT NOT NULL,
  clause TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (tid, seq));
CREATE INDEX events_counted ON events (kind, ts, tid) WHERE kind IN ('usb.blocked', 'auth.failure');
CREATE TABLE checks (tid INTEGER NOT NULL REFERENCES terminals(id), check_id TEXT NOT NULL,
  status TEXT NOT NULL, clause TEXT NOT NULL, detail TEXT, since INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tid, check_id)) WITHOUT ROWID;
CREATE TABLE gaps (id INTEGER PRIMARY KEY, tid INTEGER NOT NULL REFERENCES terminals(id),
  first INTEGER NOT NULL, last INTEGER NOT NULL, detected_at INTEGER NOT NULL,
  announced INTEGER NOT NULL DEFAULT 0);
CREATE INDEX gaps_tid ON gaps (tid, first);
PRAGMA user_version = 1;
"""


def migration():
    with TestDir("triage-migrate") as d:
        pki = PKI(d)
        c = Collector(d, pki)
        now = int(time.time() * 1000)
        con = sqlite3.connect(c.db)
        con.executescript(SCHEMA_1)
        con.execute("INSERT INTO terminals (id, name, first_seen, last_seen, max_seq, report_interval,"
                    " compliance_seq, compliance_ts, drift_ms) VALUES (1, 'old-1', ?, ?, 2, 3600000, 1, ?, 0)",
                    (now - DAY, now, now - 1000))
        con.execute("INSERT INTO checks VALUES (1, 'mfa.pam_stack', 'fail', '[]', 'x', ?, ?, 1)", (now - DAY, now))
        con.execute("INSERT INTO checks VALUES (1, 'time.synchronized', 'pass', '[]', 'x', ?, ?, 1)", (now - DAY, now))
        con.execute("INSERT INTO events (tid, seq, ts, received_at, kind, clause, data)"
                    " VALUES (1, 2, ?, ?, 'auth.locked', '[]', '{\"user\":\"a\"}')", (now - 1000, now))
        con.commit()
        con.close()
        c.start()
        try:
            st, body, _ = c.get("/v1/terminals")
            assert st == 200, body
            t = body["terminals"][0]
            assert t["status"] == "noncompliant" and t["locked_24h"] == 1 and t["problem"], t
            assert [f["id"] for f in t["failing"]] == ["mfa.pam_stack"], t
            assert c.count("PRAGMA user_version") == 7  # 1 → 2 → 3 (the hash chain) → 4 (tombstones) → 5 (history) → 6 (accounts) → 7 (the report's history)
            assert c.count("SELECT count(*) FROM events WHERE length(chain) = 32 AND seq = 2") == 1
            assert c.count("SELECT n_failing FROM terminals") == 1
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())


def main():
    migration()
    with TestDir("triage") as d:
        pki = PKI(d)
        c = Collector(d, pki).start()
        now = int(time.time() * 1000)
        certs = {}

        def post(name, events):
            if name not in certs:
                certs[name] = pki.terminal(name)
            st, body, _ = c.post(certs[name], {"v": 1, "terminal": name, "events": events})
            assert st == 200, body

        try:
            # ---- bug 1: a backlog of snapshots, uploaded at once, in shuffled order ----
            snaps = [compliance("term-backlog", 1, interval_s=3600),  # passes
                     compliance("term-backlog", 2, failing=["mfa.pam_stack"], interval_s=3600),
                     compliance("term-backlog", 3, failing=["mfa.pam_stack"], interval_s=3600),
                     compliance("term-backlog", 4, failing=["mfa.pam_stack", "time.synchronized"],
                                interval_s=3600)]
            for i, e in enumerate(snaps):
                e["ts"] = ts(now - (10 - i) * DAY)
            shuffled = snaps[:]
            random.Random(7).shuffle(shuffled)
            post("term-backlog", shuffled)
            st, t, _ = c.get("/v1/terminals/term-backlog")
            assert st == 200, t
            f = {x["id"]: x["since"] for x in t["failing"]}
            assert f == {"mfa.pam_stack": ts(now - 9 * DAY), "time.synchronized": ts(now - 7 * DAY)}, f
            assert t["last_compliance"] == ts(now - 7 * DAY), t["last_compliance"]
            # a late snapshot older than the state shown does not rewrite it
            late = compliance("term-backlog", 5, interval_s=3600)
            late["ts"] = ts(now - 20 * DAY)
            post("term-backlog", [late])
            st, t, _ = c.get("/v1/terminals/term-backlog")
            assert {x["id"]: x["since"] for x in t["failing"]} == f, t["failing"]
            # seq order and event-time order disagree (the clock was set back): time wins
            a = compliance("term-clock", 1, failing=["mfa.pam_stack"], interval_s=3600)
            b = compliance("term-clock", 2, interval_s=3600)
            a["ts"], b["ts"] = ts(now - 1000), ts(now - 5000)
            post("term-clock", [b, a])
            st, t, _ = c.get("/v1/terminals/term-clock")
            assert [x["id"] for x in t["failing"]] == ["mfa.pam_stack"], t
            assert [x["id"] for x in t["checks"]] == ["mfa.pam_stack", "time.synchronized",
                                                      "usb.default_deny"], t["checks"]

            # ---- bug 2: lockouts and unannounced gaps are problems ----
            post("term-ok", [compliance("term-ok", 1, interval_s=3600)])
            post("term-locked", [compliance("term-locked", 1, interval_s=3600),
                                 event("term-locked", 2, kind="auth.locked",
                                       data={"user": "clerk1", "service": "login",
                                             "failures": 5})])
            post("term-gap", [compliance("term-gap", 1, interval_s=3600),
                              event("term-gap", 5, kind="agent.started", data={"version": "1"})])
            post("term-announced", [compliance("term-announced", 1, interval_s=3600),
                                    event("term-announced", 4, kind="spool.dropped",
                                          data={"count": 2, "first_seq": 2, "last_seq": 3},
                                          clause=["2-2-7"])])
            # a lockout two days ago is history, not a problem now
            post("term-oldlock", [compliance("term-oldlock", 1, interval_s=3600),
                                  event("term-oldlock", 2, kind="auth.locked", ts_ms=now - 2 * DAY,
                                        data={"user": "clerk2", "service": "login"})])
            st, body, _ = c.get("/v1/terminals?status=problem&sort=id")
            assert st == 200, body
            assert names(body) == ["term-backlog", "term-clock", "term-gap", "term-locked"], names(body)
            st, t, _ = c.get("/v1/terminals/term-locked")
            assert t["problem"] is True and t["locked_24h"] == 1 and t["status"] == "compliant", t
            st, t, _ = c.get("/v1/terminals/term-gap")
            assert t["problem"] is True and t["gaps_unannounced"] == 1, t
            st, t, _ = c.get("/v1/terminals/term-announced")
            assert t["problem"] is False and t["gaps"] == 1 and t["gaps_unannounced"] == 0, t

            # ---- triage: summary, default order problems first, paging, sort, filters ----
            post("term-stale", [compliance("term-stale", 1, interval_s=1)])
            post("term-new", [event("term-new", 1, kind="agent.started", data={"version": "1"})])
            for i in range(25):
                name = "desk-%02d" % i
                e = compliance(name, 1, interval_s=3600,
                               failing=["time.synchronized"] if i % 5 == 0 else ())
                e["data"]["description"] = "市民課 窓口%d番" % i if i < 10 else "税務課 %d" % i
                post(name, [e])
            time.sleep(2.2)
            st, body, _ = c.get("/v1/terminals?limit=5")
            assert st == 200, body
            s = body["summary"]
            assert s["total"] == 34, s
            assert s["noncompliant"] == 1 + 1 + 5, s  # backlog, clock, desk-00/05/10/15/20
            assert s["stale"] == 1 and s["unknown"] == 1, s
            assert s["problem"] == 7 + 1 + 2 + 1, s  # + stale + lock/gap + no report
            assert body["matched"] == 34 and len(body["terminals"]) == 5
            # default order: non-compliant, then stale, then other problems, no report, compliant
            st, allp, _ = c.get("/v1/terminals?limit=1000")
            order = names(allp)
            assert all(t["status"] == "noncompliant" for t in allp["terminals"][:7]), order
            assert order[7] == "term-stale", order
            assert set(order[8:10]) == {"term-gap", "term-locked"}, order
            assert order[10] == "term-new", order
            # pages join up to the whole list, without repeats
            got = []
            for page in range(1, 8):
                st, p, _ = c.get("/v1/terminals?limit=5&page=%d" % page)
                got += names(p)
            assert got == order, (got, order)
            st, p, _ = c.get("/v1/terminals?limit=5&page=99")
            assert p["terminals"] == [] and p["matched"] == 34
            # sorting
            st, p, _ = c.get("/v1/terminals?sort=id&dir=desc&limit=3")
            assert names(p) == ["term-stale", "term-oldlock", "term-ok"], names(p)
            st, p, _ = c.get("/v1/terminals?sort=failing&dir=desc&limit=2")
            assert names(p) == ["term-backlog", "desk-00"], names(p)
            st, p, _ = c.get("/v1/terminals?sort=last_seen&dir=asc&limit=1")
            assert names(p) == ["term-backlog"], names(p)
            # filters and search
            st, p, _ = c.get("/v1/terminals?status=noncompliant&sort=id")
            assert names(p) == ["desk-00", "desk-05", "desk-10", "desk-15", "desk-20",
                                "term-backlog", "term-clock"], names(p)
            assert p["matched"] == 7 and p["summary"]["total"] == 34
            st, p, _ = c.get("/v1/terminals?status=stale")
            assert names(p) == ["term-stale"]
            st, p, _ = c.get("/v1/terminals?q=%E5%B8%82%E6%B0%91%E8%AA%B2&sort=id")  # 市民課
            assert names(p) == ["desk-%02d" % i for i in range(10)], names(p)
            assert p["terminals"][0]["description"] == "市民課 窓口0番"
            st, p, _ = c.get("/v1/terminals?q=DESK-1&sort=id")  # the id, any case
            assert names(p) == ["desk-%02d" % i for i in range(10, 20)], names(p)
            st, p, _ = c.get("/v1/terminals?q=%25")  # a literal %, not a wildcard
            assert p["matched"] == 0 and p["terminals"] == []
            st, p, _ = c.get("/v1/terminals?check=time.synchronized&sort=id")
            assert names(p) == ["desk-00", "desk-05", "desk-10", "desk-15", "desk-20",
                                "term-backlog"], names(p)
            st, p, _ = c.get("/v1/terminals?check=time.synchronized&q=%E7%A8%8E&sort=id")  # 税
            assert names(p) == ["desk-10", "desk-15", "desk-20"], names(p)
            st, p, _ = c.get("/v1/terminals?status=problem&check=nothing.like.this")
            assert p["matched"] == 0 and p["summary"]["total"] == 34
            for bad in ("page=0", "limit=0", "limit=1001", "sort=color", "dir=up", "status=bad",
                        "check=a%20b", "page=1&page=2", "x=1", "q=" + "a" * 200, "q=%00"):
                st, body, _ = c.get("/v1/terminals?" + bad)
                assert st == 400 and body["error"], (bad, st, body)

            # ---- CSV of the terminal list: exactly the filter, every page of it ----
            st, raw, hdrs = c.get("/v1/terminals.csv?check=time.synchronized&sort=id&limit=2",
                                  raw=True)
            assert st == 200 and raw.startswith(b"\xef\xbb\xbf"), raw[:20]
            assert hdrs["Content-Type"].startswith("text/csv") and "attachment" in hdrs["Content-Disposition"]
            text = raw[3:].decode("utf-8")
            assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            assert rows[0][:3] == ["端末", "説明", "状態"], rows[0]
            assert [r[0] for r in rows[1:]] == ["desk-00", "desk-05", "desk-10", "desk-15",
                                                "desk-20", "term-backlog"], rows
            assert rows[1][2] == "非準拠" and "time.synchronized" in rows[1][5], rows[1]
            st, raw, _ = c.get("/v1/terminals.csv", raw=True)
            rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
            assert [r[0] for r in rows[1:]] == order, "the CSV follows the screen's order"
            st, body, _ = c.get("/v1/terminals.csv?sort=nope")
            assert st == 400

            # ---- events newest first, with the cursor, and its CSV ----
            seen, cursor = [], ""
            while True:
                st, p, _ = c.get("/v1/events?order=newest&limit=4&terminal=term-backlog" +
                                 ("&after=" + cursor if cursor else ""))
                assert st == 200, p
                seen += [e["seq"] for e in p["events"]]
                if not p["next"]:
                    break
                cursor = p["next"]
            assert seen == [4, 3, 2, 1, 5], seen  # by the terminal's clock
            st, p, _ = c.get("/v1/events?order=newest&kind=auth.locked&since=" + ts(now - DAY))
            assert [e["terminal"] for e in p["events"]] == ["term-locked"], p
            st, body, _ = c.get("/v1/events?after=" + cursor)  # a newest cursor in id order
            assert st == 400, body
            st, body, _ = c.get("/v1/events?order=sideways")
            assert st == 400, body
            st, raw, _ = c.get("/v1/export.csv?order=newest&terminal=term-backlog", raw=True)
            rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
            assert [r[1] for r in rows[1:]] == ["4", "3", "2", "1", "5"], rows
            assert rows[1][4] == "チェック報告 (compliance)", rows[1]
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
