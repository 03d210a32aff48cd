#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The events cursor (GET /v1/events?after=ID) with several writers on one PostgreSQL database
# (docs/postgresql.md, "The cursor"): ids are taken at insert, transactions commit in another
# order, and a reader must never pass an id whose row may still commit. A psql session plays a
# second collector whose round is under way: it takes the cursor lock shared as a writer does,
# inserts one event (taking its id) and holds its transaction open. The collector stores a later
# batch meanwhile (writers do not wait for one another). A cursor read then waits for the open
# round a moment and answers nothing rather than the later ids without the earlier one; once
# that round commits it answers all of them, in id order, the held row first. A round that
# rolls back leaves a hole that the cursor passes; the newest-first listing does not wait.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402
from pglib import HeldRound  # noqa: E402

def ids(body):
    return [int(e["cursor"]) for e in body["events"]]


def main():
    with TestDir("pgcursor") as d:
        pki = PKI(d)
        t1, t2 = pki.terminal("term-001"), pki.terminal("term-002")
        c = Collector(d, pki, store="postgresql").start()
        try:
            # the held rounds are another terminal's (a terminal's rounds wait for one another)
            st, resp, _ = c.post(t2, batch("term-002", [1]))
            assert st == 200, (st, resp)
            st, resp, _ = c.post(t1, batch("term-001", [1, 2, 3]))
            assert st == 200, (st, resp)
            st, body, _ = c.get("/v1/events?after=0")
            assert st == 200 and len(body["events"]) == 4, body
            seen = ids(body)[-1]

            held = HeldRound(c.pg, c.dbname, "term-002", 100)
            # a later round commits while the held one is open: the writers do not wait
            t0 = time.time()
            st, resp, _ = c.post(t1, batch("term-001", [4, 5]))
            assert st == 200 and resp == {"acked_through": 5}, (st, resp)
            assert time.time() - t0 < 5
            # newest first does not wait, and shows what is committed
            st, body, _ = c.get("/v1/events?order=newest&terminal=term-001")
            assert st == 200 and [e["seq"] for e in body["events"]][:2] == [5, 4], body
            assert held.id not in ids(body), body

            # the cursor read does not pass the open round's id: it waits for the round a
            # moment (lock_timeout 1 s) and then answers nothing past its cursor yet
            t0 = time.time()
            st, body, _ = c.get("/v1/events?after=%d" % seen)
            assert st == 200 and body == {"events": [], "next": None}, body
            assert time.time() - t0 >= 0.9, "the cursor read did not wait for the round"
            # a round that ends while a reader waits: the reader answers it, in id order
            out = {}

            def read():
                out["r"] = c.get("/v1/events?after=%d" % seen)
            th = threading.Thread(target=read)
            th.start()
            time.sleep(0.3)
            held.end("COMMIT")
            th.join(20)
            st, body, _ = out["r"]
            assert st == 200, body
            got = ids(body)
            assert got[0] == held.id and got == sorted(got) and len(got) == 3, (held.id, body)
            assert [e["seq"] for e in body["events"]] == [100, 4, 5], body
            later = got[1:]
            assert held.id < min(later), (held.id, later)
            seen = got[-1]

            # a round that rolls back: its id is a hole the cursor passes
            held = HeldRound(c.pg, c.dbname, "term-002", 101)
            st, resp, _ = c.post(t1, batch("term-001", [6]))
            assert st == 200, (st, resp)
            held.end("ROLLBACK")
            st, body, _ = c.get("/v1/events?after=%d" % seen)
            assert st == 200 and [e["seq"] for e in body["events"]] == [6], body
            assert ids(body)[0] > held.id, (held.id, body)
            # the CSV export follows the same cursor
            st, text, _ = c.get("/v1/export.csv", raw=True)
            assert st == 200 and text.count(b"\n") == 1 + 8, text
        finally:
            assert c.stop() == 0, c.logtext()
    print("ok")


if __name__ == "__main__":
    main()
