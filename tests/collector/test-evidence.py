#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Evidence that can be trusted (issue 10), against the real collector over TLS:
# - an event over 64 KiB in a small batch gets 413 (it got 503 Retry-After, retried forever),
#   nothing of the batch is stored and the connection serves the next batch;
# - the CSV export stays valid UTF-8 when a long summary is cut;
# - a %00 in a query value is refused (it answered another terminal's events);
# - a bad line in revoked_serials no longer keeps the old list: the good lines apply (a serial
#   added in the same edit is revoked), and the dashboard shows it as an event and a failing
#   check of the terminal "mynaguard-collector"; fixing the file clears it, and so does a
#   restart with a fixed file; a bad line at start still stops the collector;
# - no client certificate may claim "mynaguard-collector".
import json
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, event  # noqa: E402

SELF = "mynaguard-collector"


def expect_handshake_refused(c, cert, terminal):
    try:
        st, body, _ = c.post(cert, batch(terminal, [99]))
    except (ssl.SSLError, ConnectionError, OSError):
        return
    raise AssertionError("expected a refused handshake, got %r %r" % (st, body))


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


def self_terminal(c):
    st, body, _ = c.get("/v1/terminals")
    assert st == 200, (st, body)
    return next((t for t in body["terminals"] if t["id"] == SELF), None)


def main():
    with TestDir("evidence") as d:
        pki = PKI(d)
        t1 = pki.terminal("term-a")
        t2 = pki.terminal("term-b")
        t3 = pki.terminal("term-c")
        fake = pki.terminal("fake-self", cn=SELF)
        c = Collector(d, pki).start()
        try:
            # ---- 413 for one event over 64 KiB ----
            conn = c.ingest_conn(t1)
            big = batch("term-a", [1, 2])
            big["events"][1]["data"] = {"note": "x" * (70 * 1024)}
            st, body, hdrs = c.post(t1, big, conn=conn)
            assert st == 413, (st, body)
            assert "too large" in body["error"] and "Retry-After" not in hdrs, (body, hdrs)
            assert c.count() == 0, "part of a refused batch was stored"
            st, body, _ = c.post(t1, batch("term-a", [1, 2]), conn=conn)
            assert st == 200 and body == {"acked_through": 2}, (st, body)
            conn.close()

            # ---- CSV: a summary cut at 1000 bytes stays UTF-8, whatever the offset ----
            for seq, pad in ((3, ""), (4, "x"), (5, "xx")):
                st, body, _ = c.post(t1, {"v": 1, "terminal": "term-a", "events": [
                    event("term-a", seq, data={"note": pad + "総務省" * 400})]})
                assert st == 200, (st, body)
            st, csv, _ = c.get("/v1/export.csv?terminal=term-a", raw=True)
            assert st == 200, st
            text = csv.decode("utf-8")  # strict: raises on a cut character
            assert text.count("...") >= 3, text[:300]

            # ---- %00 in a query value ----
            st, body, _ = c.post(t2, batch("term-b", [1]))
            assert st == 200
            st, body, _ = c.get("/v1/events?terminal=term-a%00x")
            assert st == 400 and "%00" in body["error"], (st, body)
            st, body, _ = c.get("/v1/export.csv?terminal=term-b%00")
            assert st == 400, (st, body)
            st, body, _ = c.get("/v1/events?terminal=term-a")
            assert st == 200 and len(body["events"]) == 5, body

            # ---- the collector's own terminal id is not for certificates ----
            st, body, _ = c.post(fake, batch(SELF, [1]))
            assert st == 403 and "reserved" in body["error"], (st, body)
            assert self_terminal(c) is None

            # ---- revoked_serials: a bad line beside a new serial ----
            st, body, _ = c.post(t3, batch("term-c", [1]))
            assert st == 200
            time.sleep(0.05)
            with open(c.revoked, "w") as f:
                f.write("# revoked serials\nnot-a-serial!\nserial=%s\n" % t3[2])
            # the serial of the same edit is revoked (it was not: the old list was kept)
            expect_handshake_refused(c, t3, "term-c")
            st, body, _ = c.post(t1, batch("term-a", [6]))
            assert st == 200, (st, body)
            # the dashboard shows it: a failing check and an event of the collector
            t = wait_for(lambda: self_terminal(c))
            assert t and t["status"] == "noncompliant", t
            failing = t["failing"]
            assert [f["id"] for f in failing] == ["collector.revoked_serials"], failing
            assert failing[0]["status"] == "error" and "line 2" in failing[0]["detail"], failing
            assert "NOT revoked" in failing[0]["detail"], failing
            st, body, _ = c.get("/v1/events?terminal=" + SELF)
            assert st == 200 and len(body["events"]) == 1, body
            ev = body["events"][0]
            assert ev["kind"] == "compliance" and ev["seq"] == 1, ev
            # and the log says it once, with what is and is not in force
            log = c.logtext()
            assert log.count("not a hexadecimal serial") == 1, log
            assert "a serial on a refused line is NOT revoked" in log, log

            # fixing the file clears it, with a second event in sequence
            time.sleep(0.05)
            with open(c.revoked, "w") as f:
                f.write("# revoked serials\nserial=%s\n" % t3[2])
            expect_handshake_refused(c, t3, "term-c")
            t = wait_for(lambda: (self_terminal(c) or {}).get("status") == "compliant" and self_terminal(c))
            assert t and t["status"] == "compliant" and t["failing"] == [], t
            st, body, _ = c.get("/v1/events?terminal=" + SELF)
            assert [e["seq"] for e in body["events"]] == [1, 2], body
            assert c.count("SELECT count(*) FROM gaps g JOIN terminals t ON t.id = g.tid"
                           " WHERE t.name = ?", (SELF,)) == 0
            # a good reload of a good file adds nothing
            time.sleep(0.05)
            with open(c.revoked, "a") as f:
                f.write("# another comment\n")
            expect_handshake_refused(c, t3, "term-c")
            time.sleep(0.5)
            st, body, _ = c.get("/v1/events?terminal=" + SELF)
            assert len(body["events"]) == 2, body

            # a bad edit, then the collector stops with that on the dashboard
            time.sleep(0.05)
            with open(c.revoked, "w") as f:
                f.write("zz\nserial=%s\n" % t3[2])
            expect_handshake_refused(c, t3, "term-c")
            assert wait_for(lambda: (self_terminal(c) or {}).get("status") == "noncompliant")
            assert c.alive()
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())

        # at start a bad line is still an error: the collector refuses to run on a list it
        # cannot fully apply (and --check says so)
        with open(c.revoked, "w") as f:
            f.write("nonsense\n")
        c2 = Collector(d, pki)
        try:
            c2.start(timeout=10)
            raise AssertionError("started with a bad revoked_serials line")
        except RuntimeError as e:
            assert "not a hexadecimal serial" in str(e), e
        finally:
            c2.stop()

        # fixed while it was down: the next run clears the dashboard's error with event 4
        with open(c.revoked, "w") as f:
            f.write("serial=%s\n" % t3[2])
        c3 = Collector(d, pki).start()
        try:
            t = wait_for(lambda: (self_terminal(c3) or {}).get("status") == "compliant" and self_terminal(c3))
            assert t and t["failing"] == [], t
            st, body, _ = c3.get("/v1/events?terminal=" + SELF)
            assert [e["seq"] for e in body["events"]] == [1, 2, 3, 4], body
            expect_handshake_refused(c3, t3, "term-c")
        finally:
            rc = c3.stop()
        assert rc == 0, (rc, c3.logtext())
    print("ok")


if __name__ == "__main__":
    main()
