#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Tamper evidence (docs/evidence.md): every terminal's stored events form a hash chain in storage
# order. After normal ingest (out-of-order batches, a gap filled late, duplicates, a restart, the
# collector's own events) `mynaguard-collector --verify` and GET /v1/verify say OK; an UPDATE of
# one stored event, a DELETE in the middle and a DELETE of the newest event (sqlite3 on the file,
# the collector stopped) are each found and named by terminal and seq. A schema-2 store is
# chained by the migrations, a schema-3 store is re-chained from its anchor by the 3 -> 4 one.
# Retention disposes of old events at a recorded anchor and verify
# still passes afterwards.
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def check(name, cond):
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    if not cond:
        sys.exit(1)


def collector(c, *args):
    return subprocess.run([os.environ["COLLECTOR"], "--config", c.conf] + list(args),
                          capture_output=True, text=True, timeout=120)


def verify_ok(c, what):
    r = collector(c, "--verify")
    check(f"{what}: --verify OK ({r.stdout.strip()} {r.stderr.strip()})",
          r.returncode == 0 and r.stdout.startswith("OK "))
    return r


def wait_for(cond, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def tampered(c, clean, sql, args=()):
    """A copy of the clean database (None: the database as it is) with one statement applied."""
    if clean:
        for ext in ("", "-wal", "-shm"):
            if os.path.exists(c.db + ext):
                os.unlink(c.db + ext)
        shutil.copy(clean, c.db)
    con = sqlite3.connect(c.db)
    con.execute(sql, args)
    con.commit()
    con.close()


def main():
    with TestDir("chain") as d:
        pki = PKI(d)
        a, b = pki.terminal("term-a"), pki.terminal("term-b")
        c = Collector(d, pki).start()

        # term-a: out of order within a batch, a gap filled late, duplicates
        for seqs in ([3, 1, 2], [4, 5], [8, 9, 10], [6, 7], [1, 2, 9], [10, 11]):
            st, resp, _ = c.post(a, batch("term-a", seqs))
            check(f"term-a batch {seqs} acknowledged", st == 200)
        for k in range(3):
            st, _, _ = c.post(b, batch("term-b", range(1 + 5 * k, 6 + 5 * k)))
            check(f"term-b batch {k} acknowledged", st == 200)
        # the collector's own event: a refused line in the revoked list
        with open(c.revoked, "a") as f:
            f.write("not-hex\n")
        c.post(b, batch("term-b", [1]))  # a handshake re-reads the list; a duplicate
        check("the collector stored an event of its own",
              wait_for(lambda: c.count("SELECT count(*) FROM events e JOIN terminals t"
                                       " ON t.id = e.tid WHERE t.name = 'mynaguard-collector'") >= 1))
        with open(c.revoked, "w") as f:
            f.write("# revoked serials (clean)\n")
        c.post(b, batch("term-b", [2]))
        check("the collector stored its second event",
              wait_for(lambda: c.count("SELECT count(*) FROM events e JOIN terminals t"
                                       " ON t.id = e.tid WHERE t.name = 'mynaguard-collector'") >= 2))

        st, v, _ = c.get("/v1/verify")
        check(f"GET /v1/verify: ok ({v})", st == 200 and v["ok"] is True and v["terminals"] == 3
              and v["events"] == 11 + 15 + c.count("SELECT count(*) FROM events e JOIN terminals t"
                                                   " ON t.id = e.tid WHERE t.name = 'mynaguard-collector'"))
        st, v, _ = c.get("/v1/verify?terminal=term-a")
        check(f"GET /v1/verify?terminal=term-a: ok, 11 events ({v})",
              st == 200 and v["ok"] and v["terminals"] == 1 and v["events"] == 11)
        st, v, _ = c.get("/v1/verify?terminal=nobody")
        check("GET /v1/verify of an unknown terminal: 404", st == 404)
        st, v, _ = c.get("/v1/verify?terminal=term-a&x=1")
        check("GET /v1/verify with an unknown parameter: 400", st == 400)
        st, v, _ = c.get("/v1/verify", token=None)
        check("GET /v1/verify without the token: 401", st == 401)
        r = verify_ok(c, "while the collector runs")

        # restart: the chain goes on from the stored head
        check("stopped cleanly", c.stop() == 0)
        c.start()
        st, _, _ = c.post(a, batch("term-a", [12, 13, 11]))
        check("term-a after the restart acknowledged", st == 200)
        check("stopped cleanly again", c.stop() == 0)
        r = verify_ok(c, "after a restart")
        r = collector(c, "--verify", "--terminal", "term-b")
        check(f"--verify --terminal term-b: OK, 15 events ({r.stdout.strip()})",
              r.returncode == 0 and "OK 1 terminals, 15 events" in r.stdout)
        r = collector(c, "--verify", "--terminal", "nobody")
        check(f"--verify --terminal nobody: refused ({r.stderr.strip()})",
              r.returncode == 1 and "no such terminal" in r.stderr)
        r = collector(c, "--terminal", "term-a")
        check("--terminal without --verify: usage error", r.returncode == 2)

        clean = os.path.join(d, "clean.db")
        con = sqlite3.connect(c.db)
        dst = sqlite3.connect(clean)
        con.backup(dst)
        dst.close()
        con.close()

        tid_a = "(SELECT id FROM terminals WHERE name = 'term-a')"
        tid_b = "(SELECT id FROM terminals WHERE name = 'term-b')"
        # one event altered
        tampered(c, clean, f"UPDATE events SET data = '{{\"vendor\":\"dead\"}}' WHERE tid = {tid_a} AND seq = 4")
        r = collector(c, "--verify")
        check(f"an UPDATE is found: terminal and seq named ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-a seq=4:"))
        tampered(c, clean, f"UPDATE events SET ts = ts + 1 WHERE tid = {tid_b} AND seq = 9")
        r = collector(c, "--verify", "--terminal", "term-b")
        check(f"a changed time is found ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-b seq=9:" in r.stdout)
        # one in the middle removed: the next one stored is named
        tampered(c, clean, f"DELETE FROM events WHERE tid = {tid_b} AND seq = 7")
        r = collector(c, "--verify")
        check(f"a DELETE in the middle is found at the next event ({r.stdout.strip()})",
              r.returncode == 1 and r.stdout.startswith("BROKEN terminal=term-b seq=8:")
              and "seq 6" in r.stdout)
        c.start()
        st, v, _ = c.get("/v1/verify")
        check(f"GET /v1/verify names it too ({v})", st == 200 and v["ok"] is False and
              v["broken"]["terminal"] == "term-b" and v["broken"]["seq"] == 8)
        c.stop()
        # the newest removed: the head does not match
        tampered(c, clean, f"DELETE FROM events WHERE tid = {tid_b} AND seq = 15")
        r = collector(c, "--verify")
        check(f"a DELETE of the newest event is found ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-b seq=14:" in r.stdout)
        # the first removed
        tampered(c, clean, f"DELETE FROM events WHERE tid = {tid_b} AND seq = 1")
        r = collector(c, "--verify")
        check(f"a DELETE of the first event is found ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-b seq=2:" in r.stdout)

        # a schema-2 store (no chain) is chained by the migration
        tampered(c, clean, "DROP TABLE chain_anchors")
        con = sqlite3.connect(c.db)
        con.executescript("DROP TABLE account_outbox; DROP TABLE account_tokens;"
                          "DROP TABLE account_sessions; DROP TABLE accounts;"  # schema 6
                          "DROP INDEX events_expiry; DROP INDEX events_tid;"
                          "DROP TABLE chain_collapse; DROP TABLE signed_heads;"
                          "ALTER TABLE events DROP COLUMN body;"
                          "ALTER TABLE events DROP COLUMN disposed_at;"
                          "ALTER TABLE events DROP COLUMN chain;"
                          "ALTER TABLE terminals DROP COLUMN chain_head;"
                          # and what schema 5 added (the daily history)
                          "DROP TABLE check_days; DROP TABLE clause_terminal_days;"
                          "DROP TABLE clause_days; DROP TABLE kind_days; DROP TABLE kind_totals;"
                          "DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                          "PRAGMA user_version = 2;")
        con.close()
        r = collector(c, "--verify")
        check(f"a schema-2 store: --verify says to migrate first ({r.stderr.strip()})",
              r.returncode == 1 and "schema" in r.stderr)
        c.start()
        check("the migration chained every stored event",
              c.count("SELECT count(*) FROM events WHERE chain IS NULL OR length(chain) != 32") == 0
              and c.count("SELECT count(*) FROM events") >= 31)
        st, _, _ = c.post(a, batch("term-a", [14, 15]))
        check("ingest goes on after the migration", st == 200)
        c.stop()
        verify_ok(c, "after the migration")

        # retention disposes of a prefix and records the anchor; verify still passes
        os.unlink(c.db)
        for ext in ("-wal", "-shm"):
            if os.path.exists(c.db + ext):
                os.unlink(c.db + ext)
        with open(c.conf, "a") as f:
            f.write("retention = 5s\n")
        c.start()
        st, _, _ = c.post(a, batch("term-a", range(1, 6)))
        st2, _, _ = c.post(b, batch("term-b", range(1, 4)))
        check("old events acknowledged", st == 200 and st2 == 200)
        time.sleep(5.5)
        st, _, _ = c.post(a, batch("term-a", range(6, 9)))
        check("recent events acknowledged", st == 200)
        check("retention disposed of the old events",
              wait_for(lambda: c.count("SELECT count(*) FROM events WHERE seq < 6") == 0, 20))
        left = c.count("SELECT group_concat(seq) FROM (SELECT seq FROM events e JOIN terminals t"
                       " ON t.id = e.tid WHERE t.name = 'term-a' ORDER BY seq)")
        check(f"term-a's recent events kept ({left})", left == "6,7,8")
        anchors = dict(((n, (fs, dis)) for n, fs, dis in sqlite3.connect(c.db).execute(
            "SELECT t.name, a.first_seq, a.disposed FROM chain_anchors a JOIN terminals t"
            " ON t.id = a.tid")))
        check(f"anchors recorded: term-a from seq 6, term-b emptied ({anchors})",
              anchors.get("term-a") == (6, 5) and anchors.get("term-b") == (None, 3))
        st, v, _ = c.get("/v1/verify")
        check(f"GET /v1/verify after disposal: ok, anchored ({v})",
              st == 200 and v["ok"] and v["anchored"] >= 2)
        st, _, _ = c.post(b, batch("term-b", [4]))
        check("term-b goes on after its chain was emptied", st == 200)
        c.stop()
        verify_ok(c, "after disposal and more ingest")
        # a schema-3 store (chains of the older definition, an anchor) is re-chained from its
        # anchor by the 3 -> 4 migration
        upgraded = os.path.join(d, "upgraded.db")
        con = sqlite3.connect(c.db)
        dst = sqlite3.connect(upgraded)
        con.backup(dst)
        dst.close()
        con.close()
        tampered(c, upgraded, "UPDATE events SET chain = zeroblob(32)")
        con = sqlite3.connect(c.db)
        con.executescript("DROP TABLE account_outbox; DROP TABLE account_tokens;"
                          "DROP TABLE account_sessions; DROP TABLE accounts;"  # schema 6
                          "DROP INDEX events_expiry; DROP INDEX events_tid;"
                          "DROP TABLE chain_collapse; DROP TABLE signed_heads;"
                          "ALTER TABLE events DROP COLUMN body;"
                          "ALTER TABLE events DROP COLUMN disposed_at;"
                          "UPDATE terminals SET chain_head = zeroblob(32);"
                          # and what schema 5 added (the daily history)
                          "DROP TABLE check_days; DROP TABLE clause_terminal_days;"
                          "DROP TABLE clause_days; DROP TABLE kind_days; DROP TABLE kind_totals;"
                          "DROP TABLE snapshot_days; DROP TABLE check_last_days;"
                          "PRAGMA user_version = 3;")
        con.close()
        c.start()
        c.stop()
        verify_ok(c, "a schema-3 store with an anchor, after the migration")
        tampered(c, upgraded, "SELECT 1")
        # (seq 6, or the head if a later run under load disposed of 6..8 too)
        tampered(c, None,
                 f"UPDATE chain_anchors SET chain = zeroblob(32) WHERE tid = {tid_a}")
        r = collector(c, "--verify")
        check(f"a changed anchor is found ({r.stdout.strip()})",
              r.returncode == 1 and "BROKEN terminal=term-a seq=" in r.stdout)


if __name__ == "__main__":
    main()
