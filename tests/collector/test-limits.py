#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Limits the collector keeps by itself: at most max_connections ingest connections (the next one
# waits in the backlog until one closes, then is served), and retention deletes events received
# longer ago than [store] retention.
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch  # noqa: E402


def tls(c, cert, timeout):
    raw = socket.create_connection(c.ingest, timeout=timeout)
    return c.client_ctx(cert).wrap_socket(raw, server_hostname="127.0.0.1")


def main():
    with TestDir("limits") as d:
        pki = PKI(d)
        t1 = pki.terminal("term-001")
        c = Collector(d, pki, workers=1, extra="max_connections = 2\nrequest_timeout = 20s")
        with open(c.conf, "a") as f:
            f.write("retention = 1s\n")  # [store] is the last section
        c.start()
        try:
            a, b = tls(c, t1, 5), tls(c, t1, 5)
            # the third connects (kernel backlog) but gets no handshake while two are open
            raw = socket.create_connection(c.ingest, timeout=1.5)
            third = c.client_ctx(t1).wrap_socket(raw, server_hostname="127.0.0.1",
                                                 do_handshake_on_connect=False)
            try:
                third.do_handshake()
                raise AssertionError("a third connection was served over max_connections = 2")
            except (socket.timeout, TimeoutError):
                pass
            a.close()
            third.settimeout(10)
            third.do_handshake()  # served once a slot is free
            third.close()
            b.close()

            # retention: stored, then gone within a few seconds
            st, resp, _ = c.post(t1, batch("term-001", [1, 2, 3]))
            assert st == 200, (st, resp)
            deadline = time.time() + 15
            while c.count() and time.time() < deadline:
                time.sleep(0.5)
            assert c.count() == 0, "retention did not delete"
            st, m, _ = c.get("/metrics", raw=True)
            assert b"mynaguard_collector_retention_deleted_total 3" in m, m
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
