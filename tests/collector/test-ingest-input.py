#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Ingest answers bad input with the right status and a JSON reason, stores nothing from it, and
# keeps serving others: malformed JSON, wrong types, unknown kind, deep nesting, too many events,
# a body over max_body, a client that sends one byte a second, a silent TLS peer; the same batch
# twice is stored once; a full queue answers 429 with Retry-After; gaps are recorded.
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collectorlib import PKI, Collector, TestDir, batch, event  # noqa: E402

TIMEOUT_S = 3


def slow_client(c, cert, result):
    ctx = c.client_ctx(cert)
    raw = socket.create_connection(c.ingest, timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    t0 = time.time()
    req = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 100
    try:
        for b in req:
            s.send(bytes([b]))
            time.sleep(1)
            if time.time() - t0 > 20:
                break
        result["outcome"] = "sent everything"
    except (OSError, ssl.SSLError) as e:
        result["outcome"] = "cut: %s" % e
    result["elapsed"] = time.time() - t0
    s.close()


def silent_peer(c, result):
    raw = socket.create_connection(c.ingest, timeout=30)
    t0 = time.time()
    try:
        data = raw.recv(100)
        result["outcome"] = "closed" if data == b"" else "data"
    except OSError as e:
        result["outcome"] = "cut: %s" % e
    result["elapsed"] = time.time() - t0
    raw.close()


def curl_post(c, cert, path):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          c.pki.p("server-ca.pem"), "--cert", cert[0], "--key", cert[1],
                          "-H", "Content-Type: application/json", "--data-binary", "@" + path,
                          "https://127.0.0.1:%d/v1/events" % c.ingest[1]],
                         capture_output=True, timeout=60)
    return int(out.stdout or b"0")


def main():
    with TestDir("input") as d:
        pki = PKI(d)
        t1 = pki.terminal("term-001")
        t2 = pki.terminal("term-002")
        c = Collector(d, pki, extra="request_timeout = %ds\nmax_queue = 5\nretry_after = 7s" % TIMEOUT_S)
        c.start()
        try:
            cases = [
                (b"{not json", 400, None),
                (b"", 400, None),
                (json.dumps({"v": 1, "terminal": "term-001", "events": "x"}).encode(), 400, "events"),
                (json.dumps({"v": 1, "terminal": "term-001",
                             "events": [dict(event("term-001", 1), seq="1")]}).encode(), 400, "seq"),
                (json.dumps({"v": 1, "terminal": "term-001",
                             "events": [dict(event("term-001", 1), kind="usb.exploded")]}).encode(), 400, "kind"),
                (json.dumps({"v": 2, "terminal": "term-001", "events": []}).encode(), 400, None),
                (json.dumps(batch("term-001", [1], data={"a": [[[[[[[[[[[[1]]]]]]]]]]]]})).encode(), 400, "deep"),
                (b"[" * 100000 + b"]" * 100000, 400, None),
            ]
            for body, status, word in cases:
                st, resp, _ = c.post(t1, body)
                assert st == status, (body[:80], st, resp)
                assert isinstance(resp, dict) and resp.get("error"), resp
                if word:
                    assert word in resp["error"], (word, resp)

            # too many events in one batch: the codec's limit → 413 with JSON
            st, resp, _ = c.post(t1, batch("term-001", range(1, 1002)))
            assert st == 413 and "error" in resp, (st, resp)
            # a body over max_body (4 MiB): refused before it is read (curl waits for 100-continue)
            big = os.path.join(d, "big.json")
            with open(big, "w") as f:
                f.write('{"v":1,"terminal":"term-001","events":[],"pad":"' + "x" * (5 << 20) + '"}')
            assert curl_post(c, t1, big) == 413
            # a request head over max_headers (16 KiB): refused by the HTTP layer
            st, resp, _ = c.post(t1, batch("term-001", [1]), headers={"X-Big": "a" * 20000})
            assert st in (400, 413), st
            # wrong method and path
            conn = c.ingest_conn(t1)
            conn.request("GET", "/v1/events")
            r = conn.getresponse()
            assert r.status == 405 and json.loads(r.read())["error"], r.status
            conn.request("POST", "/v2/events", body=b"{}")
            r = conn.getresponse()
            assert r.status == 404 and json.loads(r.read())["error"], r.status
            conn.close()
            assert c.count() == 0, "a refused request stored something"

            # same batch twice (a retry after a lost answer) → stored once, same answer
            b = batch("term-001", [1, 2, 3])
            for _ in range(2):
                st, resp, _ = c.post(t1, b)
                assert st == 200 and resp == {"acked_through": 3}, (st, resp)
            assert c.count() == 3
            # out of order inside one batch: acked_through is the batch's highest seq
            st, resp, _ = c.post(t1, batch("term-001", [5, 4]))
            assert st == 200 and resp == {"acked_through": 5}, (st, resp)

            # queue bound: a batch bigger than max_queue (5) → 429 with Retry-After, nothing stored
            st, resp, hdrs = c.post(t1, batch("term-001", range(6, 12)))
            assert st == 429 and hdrs.get("Retry-After") == "7" and resp["error"], (st, resp, hdrs)
            assert c.count() == 5

            # a gap is recorded; a late event fills its place
            st, resp, _ = c.post(t2, batch("term-002", [1, 2, 6]))
            assert st == 200 and resp == {"acked_through": 6}
            gaps = lambda: ",".join("%d-%d" % r for r in c.rows(
                "SELECT first, last FROM gaps g JOIN terminals t ON t.id = g.tid"
                " WHERE t.name = 'term-002' ORDER BY first"))
            assert gaps() == "3-5", gaps()
            st, resp, _ = c.post(t2, batch("term-002", [4]))
            assert st == 200 and resp == {"acked_through": 4}
            assert sorted(gaps().split(",")) == ["3-3", "5-5"], gaps()
            # spool.dropped announces the range: the gap is marked as announced
            st, resp, _ = c.post(t2, {"v": 1, "terminal": "term-002", "events": [
                event("term-002", 7, kind="spool.dropped", data={"count": 1, "first_seq": 3, "last_seq": 3},
                      clause=["2-2-7"])]})
            assert st == 200, resp
            assert c.count("SELECT announced FROM gaps WHERE first = 3") == 1

            # a client that sends one byte a second is cut off after request_timeout, and a
            # silent TLS peer too, while others are served meanwhile
            slow, silent = {}, {}
            th = [threading.Thread(target=slow_client, args=(c, t2, slow)),
                  threading.Thread(target=silent_peer, args=(c, silent))]
            for t in th:
                t.start()
            time.sleep(1)
            t0 = time.time()
            st, resp, _ = c.post(t1, batch("term-001", [6]))
            assert st == 200 and time.time() - t0 < 2, (st, time.time() - t0)
            for t in th:
                t.join(30)
            assert slow["outcome"].startswith("cut") and slow["elapsed"] < TIMEOUT_S + 3, slow
            assert silent["outcome"] in ("closed",) or silent["outcome"].startswith("cut"), silent
            assert silent["elapsed"] < TIMEOUT_S + 3, silent
            assert c.alive()
            st, resp, _ = c.post(t1, batch("term-001", [7]))
            assert st == 200 and resp == {"acked_through": 7}
        finally:
            rc = c.stop()
        assert rc == 0, (rc, c.logtext())
    print("ok")


if __name__ == "__main__":
    main()
