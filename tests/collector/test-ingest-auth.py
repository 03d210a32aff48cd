#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Ingest refuses whoever is not a known, unrevoked terminal, and stores nothing from them:
# no client certificate, a certificate from another CA, a revoked serial (also on a connection
# opened before the revocation), a body whose terminal is not the certificate's CN (403), an
# event whose terminal is not its batch's (400), a CN that is not a valid terminal id.
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def expect_handshake_refused(c, cert):
    try:
        st, body, _ = c.post(cert, batch("term-001", [1]))
    except (ssl.SSLError, ConnectionError, OSError):
        return
    raise AssertionError("expected a refused handshake, got %r %r" % (st, body))


def main():
    with TestDir("auth") as d:
        pki = PKI(d)
        good = pki.terminal("term-001")
        other = pki.terminal("term-002")
        stranger = pki.terminal("term-001-other", ca="other-ca", cn="term-001")
        revoked = pki.terminal("term-003")
        bad_cn = pki.terminal("bad-cn", cn="not a terminal id!")
        c = Collector(d, pki).start()
        try:
            # no client certificate
            expect_handshake_refused(c, None)
            # a certificate from another CA (same CN as a real terminal)
            expect_handshake_refused(c, stranger)

            # revoked: first it works, then its serial is listed (file re-read on change)
            conn = c.ingest_conn(revoked)
            st, body, _ = c.post(revoked, batch("term-003", [1]), conn=conn)
            assert st == 200 and body == {"acked_through": 1}, (st, body)
            time.sleep(0.05)
            with open(c.revoked, "a") as f:
                f.write("serial=%s\n" % revoked[2])
            # same (kept-alive) connection: refused per request
            st, body, _ = c.post(revoked, batch("term-003", [2]), conn=conn)
            assert st == 403 and "revoked" in body["error"], (st, body)
            conn.close()
            # new connection: refused in the handshake
            expect_handshake_refused(c, revoked)

            # terminal in the body is not the certificate's
            st, body, _ = c.post(other, batch("term-001", [1]))
            assert st == 403 and body["error"].startswith("terminal does not match"), (st, body)
            # an event whose terminal is not its batch's: a malformed batch, 400 (the man page
            # said 403; code and page now agree on 400)
            mixed = batch("term-001", [1, 2])
            mixed["events"][1]["terminal"] = "term-002"
            st, body, _ = c.post(good, mixed)
            assert st == 400 and "does not match the batch terminal" in body["error"], (st, body)
            # CN that is no terminal id
            st, body, _ = c.post(bad_cn, batch("term-001", [1]))
            assert st == 403, (st, body)

            # nothing of the refused requests is stored; the good terminal still works
            st, body, _ = c.post(good, batch("term-001", [1, 2]))
            assert st == 200 and body == {"acked_through": 2}, (st, body)
            assert c.count() == 3, c.count()
            assert c.count("SELECT count(*) FROM events e JOIN terminals t ON t.id = e.tid"
                           " WHERE t.name = 'term-003'") == 1
            assert c.count("SELECT count(*) FROM terminals") == 2
            st, m, _ = c.get("/metrics", raw=True)
            assert b'mynaguard_collector_ingest_requests_total{code="403"} 3' in m, m
            assert b"mynaguard_collector_tls_handshakes_failed_total" in m
            assert c.alive()
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
        log = c.logtext()
        assert "status=403" in log and 'reason="certificate revoked"' in log, log
    print("ok")


if __name__ == "__main__":
    main()
