#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# kill -9 in the middle of ingest, several rounds: the database passes integrity_check, every
# acknowledged event is there, and after a restart the terminals' retries (which resend from
# their last acknowledged seq) leave every event stored exactly once.
import os
import random
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402

TERMINALS = 6
ROUNDS = 4
BATCH = 40


def uplink(c, cert, name, state, stop):
    """Like mynaguard-uplink: send from the first unacknowledged seq, delete up to acked_through."""
    conn = None
    while not stop.is_set():
        first = state["acked"] + 1
        try:
            conn = conn or c.ingest_conn(cert, timeout=5)
            st, resp, _ = c.post(cert, batch(name, range(first, first + BATCH), ts_ms=1700000000000),
                                 conn=conn)
        except Exception:
            conn = None
            time.sleep(0.05)
            continue
        if st == 200:
            assert resp["acked_through"] == first + BATCH - 1, resp
            state["acked"] = resp["acked_through"]
        else:
            time.sleep(0.05)


def main():
    rng = random.Random(1234)
    with TestDir("kill9") as d:
        pki = PKI(d)
        certs = [pki.terminal("term-%03d" % i) for i in range(TERMINALS)]
        states = [{"acked": 0} for _ in range(TERMINALS)]
        c = Collector(d, pki)
        for rnd in range(ROUNDS):
            c.start()
            stop = threading.Event()
            threads = [threading.Thread(target=uplink, args=(c, certs[i], "term-%03d" % i, states[i], stop))
                       for i in range(TERMINALS)]
            for t in threads:
                t.start()
            time.sleep(0.5 + rng.random())
            c.proc.send_signal(signal.SIGKILL)
            c.proc.wait()
            stop.set()
            for t in threads:
                t.join(30)
            c.stop()

            if c.store == "sqlite":
                con = sqlite3.connect(c.db)
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                con.close()
            for i in range(TERMINALS):
                name = "term-%03d" % i
                rows = c.rows("SELECT count(*), coalesce(max(seq), 0) FROM events e JOIN terminals t"
                              " ON t.id = e.tid WHERE t.name = ? AND seq <= ?",
                              (name, states[i]["acked"]))[0]
                assert rows[0] == states[i]["acked"], (rnd, name, rows, states[i])
            dup = c.count("SELECT count(*) FROM (SELECT tid, seq FROM events GROUP BY tid, seq"
                          " HAVING count(*) > 1) d")
            assert dup == 0
        total = sum(s["acked"] for s in states)
        assert total > 0
        # a last clean run: resend from the acked point; everything lands once, no gaps
        c.start()
        for i in range(TERMINALS):
            name = "term-%03d" % i
            first = states[i]["acked"] + 1
            st, resp, _ = c.post(certs[i], batch(name, range(first, first + BATCH), ts_ms=1700000000000))
            assert st == 200, (st, resp)
        c.stop()
        n = c.count("SELECT count(*) FROM events")
        gaps = c.count("SELECT count(*) FROM gaps")
        # a batch committed whose answer was lost to the kill is the same batch the uplink sends
        # again: deduplicated, so the count is exactly acked + one batch per terminal
        assert n == total + BATCH * TERMINALS, (n, total)
        assert gaps == 0, gaps
        print("ok: %d acknowledged events across %d kill -9 rounds" % (total, ROUNDS))


if __name__ == "__main__":
    main()
