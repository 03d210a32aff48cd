#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The PostgreSQL store (docs/postgresql.md) with a server of the test's own (pglib.py): the
# [store] settings and their refusals, month partitions made on demand, dedup on (terminal, seq)
# across partitions (a retry with another ts is a conflict, not a second row), --verify on the
# chains and the UPDATE of one stored event found by it, the fleet endpoints answering as on
# SQLite (503 without [fleet]; the fleet itself on PostgreSQL: collector-pg-fleet).
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, event, compliance  # noqa: E402

EXE = os.environ["COLLECTOR"]


def config_error(c, store_conf):
    """Rewrites c's [store] section; returns the collector's exit code and stderr."""
    text = open(c.conf).read()
    head = text[:text.index("[store]")]
    with open(c.conf, "w") as f:
        f.write(head + "[store]\n" + store_conf)
    p = subprocess.run([EXE, "--config", c.conf, "--check"], capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stderr + p.stdout


def verify(c):
    p = subprocess.run([EXE, "--config", c.conf, "--verify"], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def main():
    with TestDir("pgstore") as d:
        pki = PKI(d)
        t1 = pki.terminal("term-001")
        c = Collector(d, pki, store="postgresql")
        good = open(c.conf).read()
        pg = c.pg
        q = lambda sql: c.rows(sql)  # noqa: E731

        # ---- [store] refusals (checked before anything connects) ----
        for conf, want in (
                ("backend = postgresql\n", "needs [store] url"),
                ("backend = mysql\nurl = x\n", "sqlite or postgresql"),
                ("url = %s\n" % c.url, "need [store] backend = postgresql"),
                ("backend = postgresql\nurl = %s&password=hunter2\n" % c.url, "password"),
                ("backend = postgresql\nurl = host=/tmp password=hunter2\n", "password"),
                ("backend = postgresql\nurl = %s\ndatabase = /tmp/x.db\n" % c.url,
                 "leave it out"),
                ("backend = postgresql\nurl = postgresql://[bad\n", "url"),
        ):
            rc, out = config_error(c, conf)
            assert rc != 0 and want in out, (conf, rc, out)
            assert "hunter2" not in out, "a password was echoed"
        # retention periods work on PostgreSQL too (collector-pg-retention)
        rc, out = config_error(c, "backend = postgresql\nurl = %s\n\n[retention]\n"
                                  "default = 30d\nhold = term-x\n" % c.url)
        assert rc == 0, ("[retention] with backend = postgresql", rc, out)
        with open(c.conf, "w") as f:
            f.write(good)

        # an unreachable server: the collector does not start, and says so
        bad = Collector(tempfile.mkdtemp(dir=d), pki, store="sqlite")
        with open(bad.conf, "a") as f:
            pass
        text = open(bad.conf).read()
        text = text[:text.index("[store]")] + (
            "[store]\nbackend = postgresql\nurl = postgresql:///nothing?host=%s/nowhere\n" % d)
        with open(bad.conf, "w") as f:
            f.write(text)
        try:
            bad.start(timeout=10)
            raise AssertionError("started without its database")
        except RuntimeError as e:
            assert "Connection refused" in str(e), e

        c.start()
        # three months of the terminal's clock: one partition each, made on demand
        jan2000, mar2026, dec2026 = 946684800000, 1772323200000 + 86400000, 1796083200000
        st, resp, _ = c.post(t1, {"v": 1, "terminal": "term-001", "events": [
            event("term-001", 1, ts_ms=jan2000), event("term-001", 2, ts_ms=mar2026),
            event("term-001", 3, ts_ms=dec2026), compliance("term-001", 4)]})
        assert st == 200 and resp == {"acked_through": 4}, (st, resp)
        parts = sorted(r[0] for r in q(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"))
        assert "events_p200001" in parts and "events_p202603" in parts and \
            "events_p202612" in parts, parts
        assert c.count() == 4
        # the same (terminal, seq) again: with the same ts a plain retry, with another ts (it
        # would land in another partition) a conflict; neither stores a second row
        st, resp, _ = c.post(t1, {"v": 1, "terminal": "term-001", "events": [
            event("term-001", 1, ts_ms=jan2000), event("term-001", 2, ts_ms=dec2026)]})
        assert st == 200 and resp == {"acked_through": 2}, (st, resp)
        assert c.count() == 4
        assert c.count("SELECT conflicts FROM terminals WHERE name = 'term-001'") == 1
        # twice in one batch: stored once
        st, resp, _ = c.post(t1, batch("term-001", [5, 5, 6]))
        assert st == 200 and resp == {"acked_through": 6}, (st, resp)
        assert c.count() == 6
        assert c.count("SELECT count(DISTINCT seq) FROM events") == 6
        # the dashboard reads the same store
        st, body, _ = c.get("/v1/terminals/term-001")
        assert st == 200 and body["last_seq"] == 6 and len(body["checks"]) == 3, body
        st, body, _ = c.get("/v1/events?terminal=term-001&limit=10")
        assert st == 200 and [e["seq"] for e in body["events"]] == [1, 2, 3, 4, 5, 6], body
        assert body["events"][0]["ts"] == "2000-01-01T00:00:00.000Z", body["events"][0]
        # the workflow tables are there too: without [fleet], the same 503 as on SQLite
        st, body, _ = c.get("/v1/requests")
        assert st == 503 and "not configured" in body["error"], (st, body)
        # an unknown terminal's chain
        p = subprocess.run([EXE, "--config", c.conf, "--verify", "--terminal", "nobody"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "no such terminal" in p.stderr, p

        # backup/restore copy a SQLite file: refused, pointing at the PostgreSQL tools
        p = subprocess.run([EXE, "--config", c.conf, "--backup", os.path.join(d, "b.db")],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "pg_dump" in p.stderr + p.stdout, p
        assert not os.path.exists(os.path.join(d, "b.db"))

        # a server restart: the writer and the dashboard connect again (the first round after
        # it may fail with 503: the uplink sends again)
        pg.restart()
        for attempt in range(5):
            st, resp, _ = c.post(t1, batch("term-001", [7]))
            if st == 200:
                break
            assert st == 503, (st, resp)
        assert st == 200 and resp == {"acked_through": 7}, (st, resp)
        st, body, _ = c.get("/v1/terminals/term-001")
        assert st == 200 and body["last_seq"] == 7, (st, body)

        # bytes COPY escapes (backslash, tab, newline, CR, quotes, \\N, non-ASCII) come back
        # exactly as sent, and the chain over them verifies (below)
        awkward = {"path": "C:\\Users\\\u7530\u4e2d\\x.txt", "tab": "a\tb", "nl": "a\nb\r\n",
                   "quote": "\"q\" 'q'", "null": "\\N", "nul_like": "\\0\\.", "ja": "記録媒体"}
        st, resp, _ = c.post(t1, {"v": 1, "terminal": "term-001", "events": [
            event("term-001", 8, data=awkward), event("term-001", 9, data={"k": "\\"})]})
        assert st == 200 and resp == {"acked_through": 9}, (st, resp)
        st, body, _ = c.get("/v1/events?terminal=term-001&limit=20")
        got = {e["seq"]: e["data"] for e in body["events"]}
        assert got[8] == awkward and got[9] == {"k": "\\"}, (got[8], got[9])

        # ---- tamper evidence: the chains as docs/evidence.md defines them ----
        rc, out = verify(c)
        assert rc == 0 and out.startswith("OK "), (rc, out)
        pg.run("psql", "-h", pg.sock, "-U", pg.role, "-d", c.dbname, "-c",
               "UPDATE events SET data = '{\"vendor\":\"dead\"}' WHERE seq = 5 AND tid ="
               " (SELECT id FROM terminals WHERE name = 'term-001')")
        rc, out = verify(c)
        assert rc == 1 and "BROKEN terminal=term-001 seq=5" in out, (rc, out)
        c.stop()
    print("ok")


if __name__ == "__main__":
    main()
