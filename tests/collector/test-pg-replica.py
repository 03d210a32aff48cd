#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# [store] read_url (docs/postgresql.md): the collector writes into the primary and its dashboard
# reads from a streaming replica (pg_basebackup -R of the test's own server, pglib.py). What is
# acknowledged shows on the dashboard once the replica replayed it; the replica refuses writes,
# so the dashboard cannot change the store; read_url without the postgresql backend is refused.
# The events cursor read on the replica does not pass a row of a round still under way on the
# primary, and shows it, in id order, once that round commits.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pglib  # noqa: E402
from alertlib import wait  # noqa: E402
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def main():
    with TestDir("pgrep") as d:
        pki = PKI(d)
        t1, t2 = pki.terminal("term-001"), pki.terminal("term-002")
        c = Collector(d, pki, store="postgresql")
        primary = c.pg
        # the schema exists before the copy: the collector makes it at its first start
        c.start()
        c.stop()
        replica = pglib.PostgreSQL(dbname=c.dbname)
        replica.start(primary=primary)
        try:
            read_url = "postgresql:///%s?host=%s&user=%s" % (c.dbname, replica.sock, replica.role)
            assert replica.scalar("SELECT pg_is_in_recovery()") == "t"
            text = open(c.conf).read()
            with open(c.conf, "w") as f:
                f.write(text + "read_url = %s\n" % read_url)
            c.start()
            st, resp, _ = c.post(t1, batch("term-001", [1, 2, 3]))
            assert st == 200 and resp == {"acked_through": 3}, (st, resp)
            deadline = time.time() + 20
            while True:
                st, body, _ = c.get("/v1/terminals/term-001")
                if st == 200 and body["last_seq"] == 3:
                    break
                assert st in (200, 404) and time.time() < deadline, (st, body)
                time.sleep(0.2)
            # the events by id (the cursor) once the writer's mark for them is replayed too
            wait(lambda: len(c.get("/v1/events?terminal=term-001")[1]["events"]) == 3,
                 what="the cursor's mark on the replica")
            st, body, _ = c.get("/v1/events?terminal=term-001")
            assert st == 200 and [e["seq"] for e in body["events"]] == [1, 2, 3], body
            # the dashboard's connection is the replica's: no writes possible there
            try:
                replica.psql("DELETE FROM events")
                raise AssertionError("the replica accepted a write")
            except RuntimeError as e:
                assert "read-only" in str(e), e
            assert c.count() == 3

            # the events cursor on the replica (docs/postgresql.md, "The cursor"): a round
            # under way on the primary holds an id; a later round commits and the replica
            # replays it, but the cursor read there stops before the held id until that round
            # ends (the primary's writer publishes the mark once no round is under way)
            st, resp, _ = c.post(t2, batch("term-002", [1]))
            assert st == 200, (st, resp)
            def wait_events(n):
                wait(lambda: len(c.get("/v1/events?after=0")[1]["events"]) == n,
                     what="the replica to show %d events" % n)
            wait_events(4)
            seen = int(c.get("/v1/events?after=0")[1]["events"][-1]["cursor"])
            held = pglib.HeldRound(primary, c.dbname, "term-002", 100)
            st, resp, _ = c.post(t1, batch("term-001", [4, 5]))
            assert st == 200, (st, resp)
            wait(lambda: replica.scalar("SELECT count(*) FROM events WHERE seq IN (4, 5)") == "2",
                 what="the replica to replay the later round")
            time.sleep(2)  # past the writer's publishing (once a second)
            st, body, _ = c.get("/v1/events?after=%d" % seen)
            assert st == 200 and body["events"] == [], body
            held.end("COMMIT")
            wait_events(7)
            st, body, _ = c.get("/v1/events?after=%d" % seen)
            assert [e["seq"] for e in body["events"]] == [100, 4, 5], body
            assert int(body["events"][0]["cursor"]) == held.id, (held.id, body)
            c.stop()
        finally:
            replica.stop()
        # read_url belongs to the postgresql backend
        text = open(c.conf).read()
        head = text[:text.index("[store]")]
        with open(c.conf, "w") as f:
            f.write(head + "[store]\ndatabase = %s\nread_url = %s\n" % (c.db, read_url))
        p = subprocess.run([os.environ["COLLECTOR"], "--config", c.conf, "--check"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "read_url need" in p.stderr, p
    print("ok")


if __name__ == "__main__":
    main()
